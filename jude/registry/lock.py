"""One promotion at a time: the lock every alias move of a registered model takes.

The gate reads ``challenger`` and ``champion``, compares them (seconds to minutes), then moves ``champion`` and
``previous``. Two gates that overlap both read the same champion, and whichever writes last wins, even when its
challenger never met the other's: ``champion`` ends on a version that lost (or would lose) its comparison, or on
the version the other gate just retired to ``previous``. Registration races too: two first versions trained at
once would both be crowned. So the gate (:func:`jude.registry.promotion.promote_challenger`), the registration's
alias writes (:func:`jude.registry.mlflow_registry.log_model_version`) and promotion by hand
(:func:`jude.registry.champion.promote_by_hand`) all run inside :func:`promotion_lock`, and re-read the aliases
once they hold it.

Which lock:

- ``$JUDE_PROMOTION_LOCK`` = ``postgresql://…`` (team mode sets it to the MLflow server's own database): a
  PostgreSQL session-level advisory lock (``pg_try_advisory_lock`` on a key derived from the model name). Every
  machine that promotes reaches the same database, so it serialises across machines; PostgreSQL releases it when
  the holder's connection ends, so a holder killed with ``kill -9`` never leaves it stuck. The waiting side
  names the holder (its ``application_name``: host, pid) when it gives up.
- otherwise (the embedded sqlite store, one machine): an exclusive ``flock`` on ``.jude/locks/<model>.lock``,
  released by the kernel when the holder dies. A file lock serialises one machine only, which is all that a
  sqlite store serves.
"""

from __future__ import annotations

import hashlib
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager

from jude.registry.tracking import state_dir

LOCK_ENV = "JUDE_PROMOTION_LOCK"
DEFAULT_TIMEOUT_S = 1800.0  # a gate ranks two models on the held-out set: minutes on a CPU


class PromotionLockTimeout(TimeoutError):
    """Another promotion held the lock for longer than the timeout; the message names where and who."""


def lock_key(model_name: str) -> int:
    """A stable signed 64-bit key for ``model_name`` (PostgreSQL advisory locks take a bigint)."""
    digest = hashlib.sha256(f"jude-promotion:{model_name}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


@contextmanager
def promotion_lock(model_name: str, timeout: float | None = None, url: str | None = None) -> Iterator[str]:
    """Hold the promotion lock of ``model_name`` for the block; yields a description of the lock held."""
    timeout = DEFAULT_TIMEOUT_S if timeout is None else timeout
    url = url if url is not None else os.environ.get(LOCK_ENV, "")
    if url.startswith(("postgresql://", "postgres://", "postgresql+psycopg2://")):
        with _pg_lock(model_name, url.replace("postgresql+psycopg2://", "postgresql://", 1), timeout) as held:
            yield held
    else:
        with _file_lock(model_name, timeout) as held:
            yield held


def _safe_url(url: str) -> str:
    from urllib.parse import urlsplit

    u = urlsplit(url)
    return f"{u.hostname}:{u.port or 5432}/{u.path.lstrip('/')}"


@contextmanager
def _pg_lock(model_name: str, url: str, timeout: float) -> Iterator[str]:
    import psycopg2

    key, where = lock_key(model_name), _safe_url(url)
    me = f"jude promotion {socket.gethostname()} pid {os.getpid()}"
    try:
        conn = psycopg2.connect(url, connect_timeout=10, application_name=me[:63])
    except psycopg2.OperationalError as e:
        raise RuntimeError(
            f"the promotion lock's database {where} ({LOCK_ENV}) refused the connection: {str(e).strip()}"
        ) from e
    conn.autocommit = True
    try:
        deadline = time.monotonic() + timeout
        with conn.cursor() as cur:
            while True:
                cur.execute("SELECT pg_try_advisory_lock(%s)", (key,))
                if cur.fetchone()[0]:
                    break
                if time.monotonic() >= deadline:
                    unsigned = key & 0xFFFFFFFFFFFFFFFF  # pg_locks shows a bigint key as two 32-bit oids
                    cur.execute(
                        "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
                        "WHERE l.locktype = 'advisory' AND l.granted AND l.classid::bigint = %s "
                        "AND l.objid::bigint = %s",
                        (unsigned >> 32, unsigned & 0xFFFFFFFF),
                    )
                    holder = cur.fetchone()
                    raise PromotionLockTimeout(
                        f"another promotion of {model_name!r} ({holder[0] if holder else 'holder unknown'}) held the "
                        f"lock on {where} for over {timeout:g} s"
                    )
                time.sleep(0.2)
        try:
            yield f"PostgreSQL advisory lock {key} on {where}"
        finally:
            with conn.cursor() as cur:
                cur.execute("SELECT pg_advisory_unlock(%s)", (key,))
    finally:
        conn.close()


@contextmanager
def _file_lock(model_name: str, timeout: float) -> Iterator[str]:
    import fcntl

    path = state_dir() / "locks" / f"{model_name}.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + timeout
    with open(path, "a+") as f:  # flock is per open file: two threads that each open it exclude each other too
        while True:
            try:
                fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise PromotionLockTimeout(
                        f"another promotion of {model_name!r} held {path} for over {timeout:g} s"
                    ) from None
                time.sleep(0.1)
        try:
            yield f"file lock {path}"
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)
