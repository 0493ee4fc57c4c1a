"""The change-event sources: the same cases against Redis Streams and Kafka (librdkafka's in-process mock cluster).

Redis is the machine's (skipped with a reason when it does not answer PING); Kafka is a
3-broker mock cluster started inside the test process, which speaks the real protocol:
consumer groups, rebalances and committed offsets work, topics are auto-created.
"""

from __future__ import annotations

import json
import os
import time
from uuid import uuid4

import pytest

from jude.nearline.sources import (
    KafkaPublisher,
    KafkaSource,
    Message,
    RedisStreamPublisher,
    RedisStreamSource,
    _PartitionOffsets,
    encode_event,
    publish_events,
)

pytestmark = pytest.mark.services

REDIS_URL = os.environ.get("JUDE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
# Short group timeouts so a rebalance takes seconds, short fetch long-polls so the offset
# queries queued behind them (backlog) answer at once; errors only from librdkafka's own log.
KAFKA_CONSUMER = {"session.timeout.ms": 6000, "heartbeat.interval.ms": 500, "fetch.wait.max.ms": 50, "log_level": 3}
QUIET = {"log_level": 3}


def _event(entity_type: str, entity_id: str, version: int) -> dict:
    return {
        "entity_type": entity_type,
        "entity_id": entity_id,
        "op": "upsert",
        "event_time": f"2026-01-01T00:{version // 60:02d}:{version % 60:02d}.000Z",
        "fields": {"version": version},
    }


def _events(n: int, entity_types=("job", "profile", "resume")) -> list[dict]:
    return [_event(entity_types[i % len(entity_types)], f"E{i % 7}", i) for i in range(n)]


class RedisBackend:
    """Sources and a publisher on the machine's Redis under a prefix of their own."""

    name = "redis"

    def __init__(self):
        import redis

        self.client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
        try:
            self.client.ping()
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as exc:
            pytest.skip(f"Redis at {REDIS_URL} does not answer PING ({exc}); start redis-server to run this test")
        self.prefix = f"jude-test:{uuid4().hex}:"
        self.group = "jude-embedder-1"

    def publish(self, events) -> int:
        return publish_events(events, RedisStreamPublisher(self.client, prefix=self.prefix))

    def source(self, consumer: str, **kwargs) -> RedisStreamSource:
        kwargs.setdefault("claim_idle_ms", 100)
        return RedisStreamSource(self.client, group=self.group, consumer=consumer, prefix=self.prefix, **kwargs)

    def close(self) -> None:
        keys = list(self.client.scan_iter(match=self.prefix + "*", count=1000))
        if keys:
            self.client.delete(*keys)
        self.client.close()


class KafkaBackend:
    """Sources and a publisher on the mock cluster, with topics and a group of their own."""

    name = "kafka"

    def __init__(self, bootstrap: str):
        self.bootstrap = bootstrap
        self.prefix = f"jude-test-{uuid4().hex[:12]}."
        self.group = "jude-embedder-1"
        self.sources: list[KafkaSource] = []

    def publish(self, events) -> int:
        return publish_events(events, KafkaPublisher(self.bootstrap, prefix=self.prefix, config=QUIET))

    def source(self, consumer: str, **kwargs) -> KafkaSource:
        source = KafkaSource(
            self.bootstrap,
            group=self.group,
            consumer=consumer,
            prefix=self.prefix,
            config=KAFKA_CONSUMER,
            producer_config=QUIET,
            **kwargs,
        )
        self.sources.append(source)
        return source

    def close(self) -> None:
        for source in self.sources:
            source.close()


@pytest.fixture(scope="module")
def kafka_bootstrap():
    """A 3-broker librdkafka mock cluster for this module; it lives as long as the producer that made it."""
    from confluent_kafka import Producer

    mock = Producer({"test.mock.num.brokers": 3, **QUIET})
    brokers = mock.list_topics(timeout=10).brokers.values()
    yield ",".join(f"{b.host}:{b.port}" for b in brokers)
    del mock


@pytest.fixture(params=["redis", "kafka"])
def backend(request):
    b = RedisBackend() if request.param == "redis" else KafkaBackend(request.getfixturevalue("kafka_bootstrap"))
    yield b
    b.close()


def drain(source, n: int, timeout_s: float = 30.0) -> list[Message]:
    """Read until ``n`` messages arrived (or the time is up; Kafka needs a few seconds to join the group)."""
    got: list[Message] = []
    deadline = time.monotonic() + timeout_s
    while len(got) < n and time.monotonic() < deadline:
        got += source.read(max_messages=50, block_ms=200)
    return got


def payloads(messages) -> list[bytes]:
    return [m.payload for m in messages]


def nothing_but_a_marker(backend, source, entity_type: str = "job", timeout_s: float = 30.0) -> list[Message]:
    """Publish a marker and read until it arrives: what came before it was redelivered.

    The marker goes to a stream/topic the test already used: a Kafka consumer notices a
    topic created after it subscribed only at its next metadata refresh (minutes).
    """
    marker = _event(entity_type, "MARKER", 999)
    backend.publish([marker])
    got: list[Message] = []
    deadline = time.monotonic() + timeout_s
    while encode_event(marker) not in payloads(got) and time.monotonic() < deadline:
        got += source.read(max_messages=50, block_ms=200)
    assert encode_event(marker) in payloads(got), "the marker never arrived"
    source.ack(got)
    return [m for m in got if m.payload != encode_event(marker)]


# --------------------------------------------------------------------------- the same cases on both sources


def test_published_events_are_read_and_not_redelivered_after_ack(backend):
    events = _events(30)
    assert backend.publish(events) == 30
    first = backend.source("worker-1")
    got = drain(first, 30)
    assert sorted(payloads(got)) == sorted(encode_event(e) for e in events)
    assert all(m.deliveries == 1 for m in got)
    assert {m.entity_type for m in got} == {"job", "profile", "resume"}
    assert all(m.event()["entity_type"] == m.entity_type and m.key == m.event()["entity_id"] for m in got)
    first.ack(got)
    assert first.backlog() == 0
    first.close()

    second = backend.source("worker-2")  # a restart, or another worker of the group
    assert nothing_but_a_marker(backend, second) == []


def test_unacked_messages_go_to_another_consumer_after_the_first_dies(backend):
    events = _events(24)
    backend.publish(events)
    first = backend.source("worker-1")
    got = drain(first, 24)
    assert len(got) == 24
    done, in_flight = got[:10], got[10:]  # a prefix of the delivery order: whole per partition on Kafka
    first.ack(done)
    first.close()  # dies holding in_flight

    second = backend.source("worker-2")
    taken = drain(second, len(in_flight))
    assert sorted(payloads(taken)) == sorted(payloads(in_flight))
    # Redis continues the server's count; Kafka counts per process and starts again.
    expected = 2 if second.durable_delivery_counts else 1
    assert {m.deliveries for m in taken} == {expected}
    second.ack(taken)
    assert second.backlog() == 0
    assert second.dead_letters("job") == []


def test_poison_message_is_dead_lettered_after_max_deliveries_with_its_reason(backend):
    poison = _event("job", "J-POISON", 1)
    good = [_event("job", f"J{i}", 10 + i) for i in range(5)]
    backend.publish([poison, *good])
    source = backend.source("worker-1", max_deliveries=3)
    handed_out = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        batch = source.read(max_messages=50, block_ms=200)
        bad = [m for m in batch if m.payload == encode_event(poison)]
        handed_out += [m.deliveries for m in bad]
        source.ack([m for m in batch if m not in bad])
        source.release(bad, reason="fields.remote: expected a boolean")
        if source.dead_letters("job"):
            break

    assert handed_out == [1, 2, 3]
    [letter] = source.dead_letters("job")
    assert letter.payload == encode_event(poison)
    assert letter.deliveries == 3
    assert letter.key == "J-POISON"
    assert "max_deliveries=3" in letter.reason and "fields.remote: expected a boolean" in letter.reason
    assert source.backlog() == 0
    assert nothing_but_a_marker(backend, source) == []


def test_dead_letter_keeps_the_event_and_reason_and_acknowledges_it(backend):
    bad = _event("profile", "M1", 1)
    backend.publish([bad])
    source = backend.source("worker-1")
    [message] = drain(source, 1)
    source.dead_letter(message, "fields.years_experience: expected a number of years >= 0")
    [letter] = source.dead_letters("profile")
    assert (letter.payload, letter.deliveries, letter.key) == (encode_event(bad), 1, "M1")
    assert letter.reason == "fields.years_experience: expected a number of years >= 0"
    assert source.backlog() == 0
    assert nothing_but_a_marker(backend, source, "profile") == []


def test_each_entitys_changes_arrive_in_the_order_they_were_published(backend):
    n_entities, n_versions = 8, 12
    events = [_event("job", f"J{e}", v) for v in range(n_versions) for e in range(n_entities)]
    backend.publish(events)
    source = backend.source("worker-1")
    got = drain(source, len(events))
    assert len(got) == len(events)
    seen: dict[str, list[int]] = {}
    partitions: dict[str, set[int]] = {}
    for m in got:
        seen.setdefault(m.key, []).append(m.event()["fields"]["version"])
        partitions.setdefault(m.key, set()).add(m.partition)
    assert seen == {f"J{e}": list(range(n_versions)) for e in range(n_entities)}
    assert all(len(p) == 1 for p in partitions.values())  # Kafka: the key picks one partition
    if backend.name == "kafka":
        assert len(set().union(*partitions.values())) > 1  # and the entities are spread over several
    source.ack(got)


# --------------------------------------------------------------------------- Redis only


def test_redis_poison_that_kills_every_worker_is_dead_lettered_across_workers():
    """The delivery count lives on the server, so workers that die holding the message still add up."""
    backend = RedisBackend()
    try:
        poison = _event("resume", "M-POISON", 1)
        backend.publish([poison])
        for i in range(3):
            worker = backend.source(f"worker-{i}", max_deliveries=3)
            [message] = drain(worker, 1, timeout_s=5)
            assert message.deliveries == i + 1
            worker.close()  # dies before acknowledging
        survivor = backend.source("worker-3", max_deliveries=3)
        time.sleep(0.15)  # past claim_idle_ms
        assert survivor.read(max_messages=10, block_ms=100) == []
        [letter] = survivor.dead_letters("resume")
        assert letter.deliveries == 3 and letter.payload == encode_event(poison)
        assert letter.reason == "not acknowledged after 3 deliveries (max_deliveries=3)"
        assert survivor.backlog() == 0
    finally:
        backend.close()


def test_redis_group_is_created_idempotently_and_per_embedding_version():
    backend = RedisBackend()
    try:
        backend.publish(_events(6))
        one = backend.source("w")
        again = backend.source("w")  # same group again: no error
        other = RedisStreamSource(backend.client, group="jude-embedder-2", consumer="w", prefix=backend.prefix)
        assert len(drain(one, 6, timeout_s=5)) == 6
        assert again.read(max_messages=10, block_ms=50) == []  # the group has delivered them
        assert len(drain(other, 6, timeout_s=5)) == 6  # another version reads the stream independently
    finally:
        backend.close()


def test_redis_read_respects_max_messages_across_streams():
    backend = RedisBackend()
    try:
        backend.publish(_events(60))
        source = backend.source("w")
        batch = source.read(max_messages=25, block_ms=50)
        assert len(batch) == 25
    finally:
        backend.close()


# --------------------------------------------------------------------------- Kafka offsets, publishing


def test_kafka_commit_stops_at_the_first_unacked_offset():
    offsets = _PartitionOffsets()
    for o in range(5, 9):
        assert offsets.delivered(o) == 1
    offsets.ack(5)
    offsets.ack(7)
    assert offsets.commit_point() == 6  # 6 is not done: 7 must wait
    offsets.committed_to(6)
    assert offsets.commit_point() is None  # nothing new to commit
    offsets.ack(6)
    offsets.ack(8)
    assert offsets.commit_point() == 9


def test_kafka_offsets_count_redeliveries_and_skip_what_was_acked():
    offsets = _PartitionOffsets()
    offsets.delivered(0)
    offsets.delivered(1)
    offsets.ack(1)
    # A seek back to 0 reads 0 and 1 again: 0 is a redelivery, 1 is done.
    assert offsets.delivered(0) == 2
    assert offsets.delivered(1) is None
    offsets.ack(0)
    assert offsets.commit_point() == 2


class ListTransport:
    def __init__(self):
        self.sent: list[tuple[str, str, bytes]] = []
        self.flushed = 0

    def publish(self, entity_type, key, payload):
        self.sent.append((entity_type, key, payload))

    def flush(self):
        self.flushed += 1


def test_publish_events_routes_by_entity_type_and_keys_by_entity_id():
    transport = ListTransport()
    events = _events(6)
    assert publish_events(events, transport) == 6
    assert [(t, k) for t, k, _ in transport.sent] == [(e["entity_type"], e["entity_id"]) for e in events]
    assert [json.loads(p) for _, _, p in transport.sent] == events
    assert transport.flushed == 1


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"entity_type": "company", "entity_id": "C1"}, "event 1: entity_type must be one of"),
        ({"entity_type": "job", "entity_id": ""}, "event 1: entity_id must be a non-empty string"),
    ],
)
def test_publish_events_names_the_event_it_cannot_route(bad, message):
    with pytest.raises(ValueError, match=message):
        publish_events([_event("job", "J1", 1), bad], ListTransport())


def test_sources_validate_their_settings():
    with pytest.raises(ValueError, match="max_deliveries must be >= 1, got 0"):
        KafkaSource("127.0.0.1:1", group="g", consumer="c", max_deliveries=0)
    with pytest.raises(ValueError, match="entity_types must be a non-empty subset"):
        KafkaSource("127.0.0.1:1", group="g", consumer="c", entity_types=["company"])
    with pytest.raises(ValueError, match="prefix may only hold"):
        KafkaPublisher("127.0.0.1:1", prefix="jude:")
