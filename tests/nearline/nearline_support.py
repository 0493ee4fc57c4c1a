"""Helpers of the nearline tests: event builders, a fake source and history, the oracle, the ack audit, workers.

The model is :class:`jude.nearline.inference.HashInference` wherever the model is not
what is tested (a deterministic vector per text: the oracle can predict every vector).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from jude.data.changes import latest_state
from jude.modeling.templates import TEMPLATES_VERSION
from jude.nearline.events import event_text, parse_event
from jude.nearline.hashing import content_hash
from jude.nearline.inference import HashInference
from jude.nearline.sources import DeadLetter, Message, Source, encode_event
from jude.stores.offline import to_history_table

ROOT = Path(__file__).resolve().parents[2]
VERSION = "hash-1"


def iso(ms: int) -> str:
    return pd.Timestamp(ms, unit="ms", tz="UTC").isoformat().replace("+00:00", "Z")


def resume(entity_id: str, ms: int, text: str | None, **extra) -> dict:
    """A resume event at epoch ms ``ms``: an upsert of ``text``, or a delete when ``text`` is None."""
    if text is None:
        return {"entity_type": "resume", "entity_id": entity_id, "op": "delete", "event_time": iso(ms), "fields": {}}
    fields = {"resume_text": text, **extra}
    return {"entity_type": "resume", "entity_id": entity_id, "op": "upsert", "event_time": iso(ms), "fields": fields}


JOB_FIELDS = {
    "title": "Backend Engineer",
    "company": "Acme",
    "location": "Berlin",
    "remote": True,
    "seniority": "senior",
    "min_years": 5,
    "skills": ["python", "kafka"],
    "description": "Build the event pipeline.",
}


def job(entity_id: str, ms: int, **fields) -> dict:
    return {
        "entity_type": "job",
        "entity_id": entity_id,
        "op": "upsert",
        "event_time": iso(ms),
        "fields": {**JOB_FIELDS, **fields},
    }


class FakeSource(Source):
    """Messages are handed to the processor by the test; this records what the processor told the source."""

    def __init__(self, entity_types=("job", "profile", "resume"), max_deliveries: int = 5):
        super().__init__(group="g", consumer="c", entity_types=entity_types, max_deliveries=max_deliveries)
        self.acked: list[Message] = []
        self.dead: list[tuple[Message, str]] = []
        self.released: list[tuple[Message, str | None]] = []
        self._n = 0

    def message(self, event: Mapping | bytes, deliveries: int = 1, id: str | None = None) -> Message:
        """``event`` as a delivered message, on its entity type's stream (``resume``'s when it has no valid one)."""
        payload = event if isinstance(event, bytes) else encode_event(event)
        stream = event.get("entity_type") if isinstance(event, Mapping) else None
        self._n += 1
        return Message(
            stream if stream in self.entity_types else "resume", id or f"m{self._n}", None, payload, deliveries
        )

    def read(self, max_messages=100, block_ms=1000):
        return []

    def ack(self, messages):
        self.acked += list(messages)

    def release(self, messages, reason=None):
        self.released += [(m, reason) for m in messages]

    def dead_letter(self, message, reason):
        self.dead.append((message, reason))

    def claim(self, max_messages=100):
        return []

    def dead_letters(self, entity_type) -> list[DeadLetter]:
        return [
            DeadLetter(m.entity_type, m.payload, r, m.deliveries, m.id)
            for m, r in self.dead
            if m.entity_type == entity_type
        ]

    def backlog(self) -> int:
        return 0

    def close(self) -> None:
        pass


class MemoryHistory:
    """The offline history's interface in memory (rows validated like DeltaHistory's); ``fail`` appends raise first."""

    def __init__(self, fail: int = 0, error: type[Exception] = OSError):
        self.rows: list[dict] = []
        self.fail = fail
        self.error = error

    def append(self, rows) -> int:
        if self.fail:
            self.fail -= 1
            raise self.error("the history's storage is unreachable")
        table = to_history_table(rows)
        self.rows += table.to_pylist()
        return table.num_rows

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.rows)


def point_in_time(rows: pd.DataFrame, entity_type: str, version: str, entity_id: str, ts: int) -> dict | None:
    """Brute force: the latest history row at or before ts (ties: a delete above an upsert, then the larger hash)."""
    r = rows[
        (rows.entity_type == entity_type)
        & (rows.embedding_version == version)
        & (rows.entity_id == entity_id)
        & (rows.event_time <= ts)
    ]
    if r.empty:
        return None
    r = r.assign(rank=(r.op == "delete").astype(int), h=r.content_hash.fillna(""))
    best = r.sort_values(["event_time", "rank", "h"]).iloc[-1]
    return None if best.op == "delete" else {"content_hash": best.content_hash, "vector": np.asarray(best.vector)}


def expected_hash(event: Mapping, version: str = VERSION, style: str = "plain") -> str:
    return content_hash(event_text(parse_event(dict(event)), style), TEMPLATES_VERSION, version)


def online_mismatches(store, events: Iterable[Mapping], inference: HashInference, version: str = VERSION) -> list[str]:
    """Where the online store differs from the oracle (per entity: the latest event by event time, embedded)."""
    oracle = latest_state(list(events))
    bad = []
    by_type: dict[str, list] = {}
    for (t, i), ev in oracle.items():
        by_type.setdefault(t, []).append((i, ev))
    for t, pairs in by_type.items():
        got = store.get_embeddings(t, [i for i, _ in pairs], version=version)
        for k, (i, ev) in enumerate(pairs):
            if ev["op"] == "delete":
                if got.found[k]:
                    bad.append(f"{t}/{i}: deleted at {ev['event_time']} but found")
                continue
            parsed = parse_event(dict(ev))
            want_hash = expected_hash(ev, version, inference.info.template_style)
            want_vec = inference.vector(event_text(parsed, inference.info.template_style))
            if not got.found[k]:
                bad.append(f"{t}/{i}: missing")
            elif got.meta.content_hash[k] != want_hash or int(got.meta.event_time_ms[k]) != parsed.event_time_ms:
                bad.append(
                    f"{t}/{i}: hash/time {got.meta.content_hash[k][:8]}@{got.meta.event_time_ms[k]}, "
                    f"want {want_hash[:8]}@{parsed.event_time_ms}"
                )
            elif not np.allclose(got.vectors[k], want_vec, atol=1e-6):
                bad.append(f"{t}/{i}: vector differs")
    return bad


# ---------------------------------------------------------------------------- the ack audit (test-only)


def audit_violations(messages: list[Message], client, prefix: str, history, version: str = VERSION) -> list[str]:
    """Messages about to be acknowledged whose writes are not in the stores yet (read back from Redis and Delta).

    An upsert must have its row in the history (at its event time, with its content
    hash) and an online record at least as new (by the store's order); a delete its
    delete row and a record at least as new as the tombstone.
    """
    bad = []
    events = [(m, parse_event(m.payload)) for m in messages]
    by_type: dict[str, list] = {}
    for m, ev in events:
        by_type.setdefault(ev.entity_type, []).append((m, ev))
    for t, pairs in by_type.items():
        rows = history.read(entity_type=t, version=version, entity_ids=[ev.entity_id for _, ev in pairs])
        have = set(zip(rows.entity_id, rows.event_time, rows.op, rows.content_hash.fillna("")))
        pipe = client.pipeline(transaction=False)
        for _, ev in pairs:
            pipe.hmget(f"{prefix}emb:{version}:{t}:{ev.entity_id}", "ts", "del", "hash")
        for (m, ev), (ts, deleted, h) in zip(pairs, pipe.execute()):
            rank = 1 if ev.op == "delete" else 0
            want = expected_hash(ev.model_dump(mode="json"), version) if ev.op == "upsert" else ""
            if (ev.entity_id, ev.event_time_ms, ev.op, want) not in have:
                bad.append(f"{t} {m.id}: no history row for {ev.op} at {ev.event_time_ms}")
            stored = None if ts is None else (int(ts), 1 if deleted == b"1" else 0, (h or b"").decode())
            if stored is None or stored < (ev.event_time_ms, rank, want):
                bad.append(f"{t} {m.id}: online holds {stored}, older than the acked {ev.op} at {ev.event_time_ms}")
    return bad


# ---------------------------------------------------------------------------- workers as processes


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def worker_config(prefix: str, history_path: Path, **overrides) -> dict:
    """A worker config (JSON-able) on the test's prefix and history, the hash model, quick claims."""
    cfg = {
        "stream_prefix": prefix,
        "online_prefix": prefix,
        "history_path": str(history_path),
        "targets": [{"model_uri": "hash", "embedding_version": VERSION}],
        "batch_size": 25,
        "block_ms": 100,
        "claim_idle_ms": 300,
        "max_deliveries": 50,
        "metrics_port": free_port(),
        "lag_interval_s": 0.5,
    }
    cfg.update(overrides)
    return cfg


def start_worker(cfg: dict, log_path: Path, audit: Path | None = None, embed_delay: float = 0.0) -> subprocess.Popen:
    """``python -m tests.nearline.worker_main``: the real worker (``jude.nearline.worker.run``) with the hash model."""
    cmd = [sys.executable, "-m", "tests.nearline.worker_main", "--config-json", json.dumps(cfg)]
    if audit is not None:
        cmd += ["--audit", str(audit)]
    if embed_delay:
        cmd += ["--embed-delay", str(embed_delay)]
    env = {k: v for k, v in os.environ.items() if k != "JUDE_NEARLINE_CONFIG"}
    with open(log_path, "ab") as log:
        return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)


def wait_ready(proc: subprocess.Popen, port: int, log_path: Path, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"worker exited with {proc.returncode}:\n{log_path.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.05)
    raise AssertionError(f"worker not ready after {timeout_s}s:\n{log_path.read_text()[-3000:]}")


def kill(proc: subprocess.Popen, sig: int = signal.SIGKILL, timeout_s: float = 30.0) -> int:
    proc.send_signal(sig)
    return proc.wait(timeout_s)


def redis_backlog(client, prefix: str, group: str, entity_types=("job", "profile", "resume")) -> int:
    """Pending plus undelivered entries of the group over the entity types' streams."""
    total = 0
    for t in entity_types:
        stream = f"{prefix}changes:{t}"
        if not client.exists(stream):
            continue
        for g in client.xinfo_groups(stream):
            if g["name"].decode() == group:
                total += int(g["pending"]) + int(g["lag"] or 0)
    return total


def kafka_backlog(bootstrap: str, group_id: str, topics: list[str]) -> int:
    """Messages after the group's committed offsets (read without joining the group)."""
    from confluent_kafka import Consumer, TopicPartition

    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group_id, "enable.auto.commit": False, "log_level": 3})
    try:
        meta = c.list_topics(timeout=10).topics
        parts = [TopicPartition(t, p) for t in topics if t in meta for p in meta[t].partitions]
        total = 0
        for tp in c.committed(parts, timeout=10):
            low, high = c.get_watermark_offsets(TopicPartition(tp.topic, tp.partition), timeout=10)
            total += high - (tp.offset if tp.offset >= 0 else low)
        return total
    finally:
        c.close()
