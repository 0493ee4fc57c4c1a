"""The index feed: how job writes reach every server's in-memory index, and the jobs' filter attributes.

The index lives in each ``jude serve`` process (FAISS in the serving process); the
nearline workers are other processes. After a batch's online writes and before its
acknowledgement, the processor hands the writes the online store *applied* to an
:class:`IndexFeed` (its ``listener``), which appends them to one Redis stream per
embedding version, ``{prefix}index:{version}:job`` (id, op, event time, content hash,
vector, location, remote). Every server follows the stream of its active version from
where its index was built and applies each entry (:class:`jude.retrieval.index.JobIndex`
applies last write wins, so redeliveries and the interleaving of several workers end in
the online store's state). The stream is trimmed to about ``feed_maxlen`` entries; a
server that finds its position trimmed away rebuilds from the online store.

Why a stream of the writes and not the change streams themselves: the vectors are
made once, by the nearline, and a server must apply exactly what the online store
holds (only applied writes are fed), in the store's order rule.

The filter attributes (``location``, ``remote``) are not in the online record, which
holds vectors; they are kept per job in ``{prefix}jobattrs:{job_id}`` (last write wins by
event time, one Lua step), written by the same listener and by the bootstrap, and read
when an index is rebuilt from the online store.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from jude.retrieval.index import IndexUpdate

_CHUNK = 1000

# KEYS[1]: the attributes key. ARGV: ts, location ('' none), remote ('', '0', '1'). 1 written, 0 older.
_ATTRS_LUA = """
local cur = redis.call('HGET', KEYS[1], 'ts')
if cur and tonumber(cur) > tonumber(ARGV[1]) then return 0 end
redis.call('HSET', KEYS[1], 'ts', ARGV[1], 'loc', ARGV[2], 'remote', ARGV[3])
return 1
"""


@dataclass(frozen=True)
class AppliedWrite:
    """One write the online store applied, as the processor hands it to its listeners.

    ``vector``: the record's vector (for an unchanged upsert, the stored one); ``fields``:
    the event's template fields (None for a delete).
    """

    entity_type: str
    entity_id: str
    embedding_version: str
    op: str
    event_time_ms: int
    content_hash: str | None
    vector: np.ndarray | None
    fields: dict | None


@dataclass(frozen=True)
class FeedPosition:
    """A follower's place in a feed: the last entry applied, and how many entries the stream had removed then."""

    entry_id: str = "0-0"
    removed: int = 0


class WriteListener(Protocol):
    """What the nearline processor tells of the online writes it applied (before it acknowledges the batch)."""

    def on_applied(self, writes: Sequence[AppliedWrite]) -> object: ...


def _remote_code(remote: bool | None) -> bytes:
    return b"" if remote is None else (b"1" if remote else b"0")


def _decode_remote(raw: bytes | None) -> bool | None:
    return None if not raw else raw == b"1"


class IndexFeed:
    """Writes and reads the per-version index streams and the job attributes (module docstring).

    ``client``: a ``redis.Redis`` with ``decode_responses=False``.
    """

    def __init__(self, client, prefix: str = "jude:", maxlen: int = 100_000):
        self.client = client
        self.prefix = prefix
        self.maxlen = maxlen
        self._attrs = client.register_script(_ATTRS_LUA)

    def stream(self, version: str) -> str:
        return f"{self.prefix}index:{version}:job"

    def attrs_key(self, job_id: str) -> str:
        return f"{self.prefix}jobattrs:{job_id}"

    # ---- the processor's listener ------------------------------------------------------
    def on_applied(self, writes: Sequence[AppliedWrite]) -> int:
        """Append the jobs among ``writes`` to their version's stream (and their attributes); returns how many."""
        jobs = [w for w in writes if w.entity_type == "job"]
        if not jobs:
            return 0
        self.write_attrs(
            (w.entity_id, w.event_time_ms, (w.fields or {}).get("location"), (w.fields or {}).get("remote"))
            for w in jobs
            if w.op == "upsert"
        )
        updates: dict[str, list[IndexUpdate]] = {}
        for w in jobs:
            fields = w.fields or {}
            updates.setdefault(w.embedding_version, []).append(
                IndexUpdate(
                    w.entity_id,
                    w.op,  # type: ignore[arg-type]
                    int(w.event_time_ms),
                    w.content_hash or "",
                    None if w.op == "delete" else np.asarray(w.vector, dtype=np.float32),
                    fields.get("location"),
                    fields.get("remote"),
                )
            )
        for version, ups in updates.items():
            self.publish(version, ups)
        return len(jobs)

    # ---- the streams -------------------------------------------------------------------
    def publish(self, version: str, updates: Sequence[IndexUpdate]) -> list[str]:
        """XADD each update to the version's stream (pipelined); returns the entry ids."""
        out: list[str] = []
        key = self.stream(version)
        for start in range(0, len(updates), _CHUNK):
            pipe = self.client.pipeline(transaction=False)
            for u in updates[start : start + _CHUNK]:
                entry = {
                    b"id": u.entity_id.encode(),
                    b"op": u.op.encode(),
                    b"ts": str(int(u.event_time_ms)).encode(),
                    b"hash": (u.content_hash or "").encode(),
                    b"vec": b"" if u.vector is None else np.asarray(u.vector, dtype="<f4").tobytes(),
                    b"loc": (u.location or "").encode(),
                    b"remote": _remote_code(u.remote),
                }
                pipe.xadd(key, entry, maxlen=self.maxlen, approximate=True)
            out += [i.decode() if isinstance(i, bytes) else i for i in pipe.execute()]
        return out

    def last_id(self, version: str) -> str:
        """The newest entry's id ('0-0' for an empty or missing stream): a follower starts after it."""
        got = self.client.xrevrange(self.stream(version), count=1)
        return got[0][0].decode() if got else "0-0"

    def first_id(self, version: str) -> str | None:
        got = self.client.xrange(self.stream(version), count=1)
        return got[0][0].decode() if got else None

    def position(self, version: str) -> FeedPosition:
        """Where a follower that has applied everything up to now starts (read before a build scans the store)."""
        removed = self._removed(version)  # first: a trim after this read only makes the check more cautious
        return FeedPosition(self.last_id(version), removed)

    def _removed(self, version: str) -> int:
        try:
            info = self.client.xinfo_stream(self.stream(version))
        except Exception:  # noqa: BLE001 - no such stream yet
            return 0
        return int(info.get("entries-added", 0)) - int(info.get("length", 0))

    def trimmed_past(self, version: str, position: FeedPosition) -> bool:
        """Whether entries after ``position`` may have been trimmed away (the follower must rebuild instead).

        A trim removes the oldest entries first: while the entry at ``position`` is still
        in the stream, nothing after it is gone; when no entry was removed since the
        position was taken, nothing after it is gone either. Otherwise: yes (cautious:
        the next entries may have gone with it; the cost is one rebuild).
        """
        if position.entry_id != "0-0" and self.client.xrange(
            self.stream(version), min=position.entry_id, max=position.entry_id, count=1
        ):
            return False
        return self._removed(version) > position.removed

    def read(
        self, version: str, after: str | FeedPosition, count: int = 1000, block_ms: int | None = None
    ) -> list[tuple[str, IndexUpdate]]:
        """Entries after ``after`` (blocking up to ``block_ms`` when there are none)."""
        after = after.entry_id if isinstance(after, FeedPosition) else after
        got = self.client.xread({self.stream(version): after}, count=count, block=block_ms)
        out = []
        for _, entries in got or []:
            for entry_id, f in entries:
                vec = f.get(b"vec") or b""
                out.append(
                    (
                        entry_id.decode(),
                        IndexUpdate(
                            f[b"id"].decode(),
                            f[b"op"].decode(),  # type: ignore[arg-type]
                            int(f[b"ts"]),
                            f.get(b"hash", b"").decode(),
                            np.frombuffer(vec, dtype="<f4").astype(np.float32) if vec else None,
                            f.get(b"loc", b"").decode() or None,
                            _decode_remote(f.get(b"remote")),
                        ),
                    )
                )
        return out

    # ---- attributes --------------------------------------------------------------------
    def write_attrs(self, rows: Iterable[tuple[str, int, str | None, bool | None]]) -> None:
        """(job id, event time ms, location, remote) per job; an older write than the stored one is ignored."""
        rows = list(rows)
        for start in range(0, len(rows), _CHUNK):
            pipe = self.client.pipeline(transaction=False)
            for job_id, ts, loc, remote in rows[start : start + _CHUNK]:
                self._attrs(
                    keys=[self.attrs_key(job_id)],
                    args=[int(ts), loc or "", _remote_code(None if remote is None else bool(remote))],
                    client=pipe,
                )
            pipe.execute()

    def read_attrs(self, job_ids: Sequence[str]) -> list[tuple[str | None, bool | None]]:
        out = []
        for start in range(0, len(job_ids), _CHUNK):
            pipe = self.client.pipeline(transaction=False)
            for job_id in job_ids[start : start + _CHUNK]:
                pipe.hmget(self.attrs_key(job_id), b"loc", b"remote")
            out += [((loc or b"").decode() or None, _decode_remote(remote)) for loc, remote in pipe.execute()]
        return out


def _id_tuple(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)
