"""Reliability of the nearline worker: crashes, takeovers, poison events, a clean stop. Redis and Kafka.

Workers run as real processes (``python -m tests.nearline.worker_main``: the worker of
``jude nearline run`` with the hash model, :class:`HashInference`, since the model is
not what is tested) and are killed with SIGKILL. Redis is the machine's; Kafka is
librdkafka's in-process mock cluster, which the worker processes reach over loopback.

The crash test runs ten kills on Redis and two on Kafka: after a kill, Kafka's group
coordinator hands the dead consumer's partitions on only when its session times out
(6 s here), so each Kafka kill costs that much; the cases are otherwise the same.
"""

from __future__ import annotations

import json
import random
import signal
import threading
import time
from uuid import uuid4

import numpy as np
import pytest

from jude.data.changes import ChangeStreamConfig, generate_change_stream, to_events
from jude.nearline.inference import HashInference
from jude.nearline.sources import KafkaPublisher, RedisStreamPublisher, encode_event, publish_events
from jude.nearline.worker import build_worker
from jude.stores.offline import DeltaHistory
from jude.stores.online import RedisOnlineStore
from tests.nearline.nearline_support import (
    VERSION,
    expected_hash,
    kafka_backlog,
    kill,
    online_mismatches,
    redis_backlog,
    resume,
    start_worker,
    wait_ready,
    worker_config,
)

pytestmark = pytest.mark.services

KAFKA_CONSUMER = {"session.timeout.ms": 6000, "heartbeat.interval.ms": 500, "fetch.wait.max.ms": 50, "log_level": 3}
ENTITY_TYPES = ("job", "profile", "resume")


class Backend:
    """Where a test's events go and how its group's backlog is read: Redis Streams or the mock Kafka."""

    def __init__(self, name: str, redis_client, redis_prefix: str, kafka_bootstrap: str | None = None):
        self.name = name
        self.redis = redis_client
        self.prefix = redis_prefix  # the online store's (and Redis streams') prefix
        self.bootstrap = kafka_bootstrap
        self.topic_prefix = f"jude-test-{uuid4().hex[:12]}."

    def config(self, tmp_path, **overrides) -> dict:
        cfg = worker_config(self.prefix, tmp_path / "history", **overrides)
        if self.name == "kafka":
            cfg |= {"source": "kafka", "kafka_bootstrap": self.bootstrap, "stream_prefix": self.topic_prefix}
            cfg["kafka_config"] = KAFKA_CONSUMER
        return cfg

    def publish(self, events) -> int:
        if self.name == "redis":
            return publish_events(events, RedisStreamPublisher(self.redis, prefix=self.prefix))
        return publish_events(events, KafkaPublisher(self.bootstrap, prefix=self.topic_prefix, config={"log_level": 3}))

    def backlog(self, group: str = VERSION) -> int:
        if self.name == "redis":
            return redis_backlog(self.redis, self.prefix, group)
        return kafka_backlog(
            self.bootstrap, f"{self.topic_prefix}{group}", [f"{self.topic_prefix}changes.{t}" for t in ENTITY_TYPES]
        )

    def dead_letter_count(self) -> int:
        if self.name == "redis":
            return sum(self.redis.xlen(f"{self.prefix}dlq:{t}") for t in ENTITY_TYPES)
        from confluent_kafka import Consumer, TopicPartition

        c = Consumer({"bootstrap.servers": self.bootstrap, "group.id": "dlq-count", "log_level": 3})
        try:
            meta = c.list_topics(timeout=10).topics
            n = 0
            for t in ENTITY_TYPES:
                topic = f"{self.topic_prefix}dlq.{t}"
                for p in meta[topic].partitions if topic in meta else ():
                    low, high = c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
                    n += high - low
            return n
        finally:
            c.close()


@pytest.fixture(params=["redis", "kafka"])
def backend(request, redis_client, redis_prefix):
    bootstrap = request.getfixturevalue("kafka_mock") if request.param == "kafka" else None
    return Backend(request.param, redis_client, redis_prefix, bootstrap)


def wait_for(predicate, timeout_s: float, what: str, interval_s: float = 0.2) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval_s)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")


def test_crash_test_the_stores_match_the_oracle_after_repeated_sigkills(backend, small_market, tmp_path):
    kills = 10 if backend.name == "redis" else 2
    stream = generate_change_stream(
        small_market, ChangeStreamConfig(n_events=3000, duplicates=0.03, shuffle_window=8, seed=3)
    )
    events = to_events(stream)
    backend.publish(events)
    audit, log = tmp_path / "audit.jsonl", tmp_path / "workers.log"
    rng = random.Random(7)
    started = time.monotonic()
    for i in range(kills + 1):
        cfg = backend.config(tmp_path)
        # a slightly slow model (20 ms per call) so that the streams outlast the kills: each lands mid-work
        proc = start_worker(cfg, log, audit=audit, embed_delay=0.02)
        wait_ready(proc, cfg["metrics_port"], log)
        if i < kills:
            time.sleep(rng.uniform(0.3, 1.5))
            assert kill(proc) == -signal.SIGKILL
    wait_for(lambda: backend.backlog() == 0, 180, "the last worker to drain the streams")
    assert kill(proc, signal.SIGTERM) == 0, log.read_text()[-3000:]

    store = RedisOnlineStore(backend.redis, prefix=backend.prefix)
    model = HashInference()
    mismatches = online_mismatches(store, events, model)
    oracle_entities = {(e["entity_type"], e["entity_id"]) for e in events}
    stored_keys = list(backend.redis.scan_iter(match=f"{backend.prefix}emb:{VERSION}:*", count=1000))
    history = DeltaHistory(tmp_path / "history").read()
    rewritten = int(history.duplicated(["entity_type", "entity_id", "event_time", "op"]).sum())
    rows = set(
        zip(history.entity_type, history.entity_id, history.event_time, history.op, history.content_hash.fillna(""))
    )
    contents = {(t, i, h) for t, i, _, op, h in rows if op == "upsert"}
    missing_rows = []
    for e in events:
        ms = int(np.datetime64(e["event_time"].rstrip("Z"), "ms").astype("int64"))
        h = expected_hash(e) if e["op"] == "upsert" else ""
        if (e["entity_type"], e["entity_id"], ms, e["op"], h) not in rows:
            missing_rows.append(e)
    distinct = {(e["entity_type"], e["entity_id"], expected_hash(e)) for e in events if e["op"] == "upsert"}
    acks = [json.loads(line) for line in audit.read_text().splitlines()]
    violations = [v for a in acks for v in a["violations"]]
    acked = sum(len(a["acked"]) for a in acks)
    # Redis counts deliveries on the server; Kafka per process, so there a redelivery shows as 1 again
    redelivered = sum(d > 1 for a in acks for d in a["deliveries"])
    print(
        f"\ncrash test ({backend.name}): {kills} SIGKILLs, {len(events)} events published "
        f"({len(stream.drop_duplicates('seq'))} distinct), {acked} acknowledged, {redelivered} of them redelivered, "
        f"{len(history)} history rows ({rewritten} written again by a redelivery), {len(oracle_entities)} entities, "
        f"mismatches: {len(mismatches)}, acked before written: {len(violations)}, "
        f"{time.monotonic() - started:.0f}s"
    )
    assert mismatches == []
    assert len(stored_keys) == len(oracle_entities)  # nothing the log does not explain
    assert backend.backlog() == 0 and backend.dead_letter_count() == 0
    assert distinct <= contents  # every distinct (entity, content) of the log was embedded into the history
    assert missing_rows == []  # every event has its row, at its own time
    assert violations == []
    assert acked >= len(events)
    if backend.name == "redis":
        assert redelivered > 0  # the kills interrupted batches, which another worker took over


def test_two_workers_in_one_group_the_survivor_claims_what_the_killed_one_held(
    redis_client, redis_prefix, small_market, tmp_path
):
    backend = Backend("redis", redis_client, redis_prefix)
    stream = generate_change_stream(small_market, ChangeStreamConfig(n_events=600, seed=5))
    events = to_events(stream)
    backend.publish(events)
    log = tmp_path / "a.log"
    slow = backend.config(tmp_path, worker_name="worker-a", batch_size=20, claim_idle_ms=2000)
    a = start_worker(slow, log, embed_delay=60)  # stuck in the model: mid-batch
    wait_ready(a, slow["metrics_port"], log)
    stream_keys = [f"{redis_prefix}changes:{t}" for t in ENTITY_TYPES]

    def held_by_a():
        return {
            (k, row["message_id"].decode())
            for k in stream_keys
            for row in redis_client.xpending_range(k, VERSION, "-", "+", 1000, consumername="worker-a")
        }

    wait_for(lambda: len(held_by_a()) > 0, 30, "worker-a to read a batch")
    cfg = backend.config(tmp_path, worker_name="worker-b", claim_idle_ms=2000, block_ms=100)
    from jude.nearline.worker import load_config

    b = build_worker(load_config(overrides=cfg), inference_factory=lambda t: HashInference())
    seen: list = []
    original_ack = b.source.ack

    def recording_ack(messages):
        messages = list(messages)
        seen.extend(messages)
        original_ack(messages)

    b.source.ack = recording_ack
    stop = threading.Event()
    thread = threading.Thread(target=b.run, args=(stop,), daemon=True)
    thread.start()
    try:
        time.sleep(0.3)  # both workers live in the group
        held = held_by_a()
        assert kill(a) == -signal.SIGKILL
        wait_for(lambda: backend.backlog() == 0, 60, "worker-b to drain the streams")
    finally:
        stop.set()
        thread.join(10)
    taken = {(f"{redis_prefix}changes:{m.entity_type}", m.id): m.deliveries for m in seen}
    assert held <= set(taken)  # everything worker-a died holding, worker-b acknowledged
    assert all(taken[k] >= 2 for k in held)  # claimed: a second delivery
    assert online_mismatches(RedisOnlineStore(redis_client, prefix=redis_prefix), events, HashInference()) == []


class CrashingModel(HashInference):
    """A model that fails on one entity (an unexpected error, not a refusal): the poison event."""

    def embed_texts(self, entity_type, texts):
        if any("POISON" in text for text in texts):
            raise RuntimeError("the model crashed on this entity")
        return super().embed_texts(entity_type, texts)


def test_a_poison_event_is_dead_lettered_after_max_deliveries_with_its_reason(backend, tmp_path):
    good = [resume(f"R{i}", 1000 + i, f"Welder {i}.") for i in range(4)]
    poison = resume("R-POISON", 5000, "POISON")
    backend.publish([good[0], good[1], poison, good[2], good[3]])
    from jude.nearline.worker import load_config

    cfg = load_config(overrides=backend.config(tmp_path, max_deliveries=3, claim_idle_ms=100, block_ms=100))
    worker = build_worker(cfg, inference_factory=lambda t: CrashingModel())
    stop = threading.Event()
    thread = threading.Thread(target=worker.run, args=(stop,), daemon=True)
    thread.start()
    try:
        wait_for(lambda: backend.dead_letter_count() == 1 and backend.backlog() == 0, 60, "the poison's dead letter")
        [letter] = worker.source.dead_letters("resume")
    finally:
        stop.set()
        thread.join(15)
    assert letter.payload == encode_event(poison) and letter.deliveries == 3
    assert "max_deliveries=3" in letter.reason and "RuntimeError: the model crashed on this entity" in letter.reason
    assert worker.metrics.dead_lettered.labels("resume")._value.get() == 1
    assert worker.metrics.released._value.get() == 3
    assert online_mismatches(RedisOnlineStore(backend.redis, prefix=backend.prefix), good, HashInference()) == []


def test_sigterm_finishes_the_batch_in_flight_then_exits_cleanly(redis_client, redis_prefix, tmp_path):
    backend = Backend("redis", redis_client, redis_prefix)
    events = [resume(f"R{i}", 1000 + i, f"Welder {i}.") for i in range(30)]
    backend.publish(events)
    cfg = backend.config(tmp_path, worker_name="w-term", batch_size=10)
    log = tmp_path / "w.log"
    proc = start_worker(cfg, log, embed_delay=2.0)
    wait_ready(proc, cfg["metrics_port"], log)
    key = f"{redis_prefix}changes:resume"

    def in_flight():
        return [
            r["message_id"] for r in redis_client.xpending_range(key, VERSION, "-", "+", 100, consumername="w-term")
        ]

    wait_for(lambda: len(in_flight()) == 10, 30, "a batch in flight")
    assert kill(proc, signal.SIGTERM) == 0, log.read_text()[-3000:]
    assert in_flight() == []  # written and acknowledged before the exit
    assert backend.backlog() == 20  # and nothing more was read
    store = RedisOnlineStore(redis_client, prefix=redis_prefix)
    assert store.get_embeddings("resume", [f"R{i}" for i in range(30)]).found.sum() == 10
    assert "SIGTERM: finishing the batch in flight" in log.read_text()
