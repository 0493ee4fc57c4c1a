"""Where change events come from: Redis Streams (the local default) and Kafka (at scale), behind one interface.

A :class:`Source` hands out :class:`Message` batches and is told what happened to them:

- ``read(max_messages, block_ms)``: a batch to process. What a dead consumer left
  pending (or what this one released) comes first, then new messages. Each message
  carries its ``deliveries`` (1 the first time).
- ``ack(messages)``: the messages are done; call it only after every sink is written.
  Nothing is acknowledged behind the caller's back, so a crash between read and ack
  redelivers the batch (at-least-once; the sinks are idempotent by event time).
- ``release(messages, reason)``: processing failed; hand them back for redelivery and
  remember why (the reason goes into the dead-letter record if they never succeed).
- ``dead_letter(message, reason)``: give up on one message: it is written to the
  dead-letter stream/topic with the reason and its delivery count, then acknowledged.
- ``claim()``: take over what dead consumers of the group left pending.

A message delivered more than ``max_deliveries`` times is dead-lettered by the source
instead of being handed out again ("poison message"), so one bad event cannot stall
a stream.

Names: the change stream of an entity type is ``{prefix}changes:{entity_type}`` (Redis)
or the topic ``{prefix}changes.{entity_type}`` (Kafka, keyed by entity id so one
entity's changes stay in order in one partition); the dead letters go to
``{prefix}dlq:{entity_type}`` / ``{prefix}dlq.{entity_type}``. The consumer group is one
per embedding version: two versions being filled at once read the same stream
independently.

Producers: :func:`publish_events` with a :class:`RedisStreamPublisher` or a
:class:`KafkaPublisher` puts change events (dicts, ``ChangeEvent`` models) on the wire as
UTF-8 JSON.
"""

from __future__ import annotations

import json
import logging
import re
import time
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, timezone
from typing import Any, ClassVar, Protocol

from jude.data.schema import ENTITY_TYPES

log = logging.getLogger(__name__)

EVENT_KEYS = ("entity_type", "entity_id", "op", "event_time", "fields")
_KAFKA_NAME = re.compile(r"^[A-Za-z0-9._-]*$")


@dataclass(frozen=True)
class Message:
    """One change event as delivered by a source.

    ``id`` identifies it within its entity type's stream: the Redis stream entry id,
    or ``"<partition>:<offset>"`` for Kafka. ``key`` is the entity id the producer
    gave (the Kafka message key). ``payload`` is the event as UTF-8 JSON bytes,
    exactly as published (parse it with ``jude.nearline.events.parse_event``).
    """

    entity_type: str
    id: str
    key: str | None
    payload: bytes
    deliveries: int
    partition: int = 0
    offset: int | None = None

    def event(self) -> Any:
        """The payload decoded from JSON (no validation)."""
        return json.loads(self.payload)


@dataclass(frozen=True)
class DeadLetter:
    """A dead-lettered message: the original event, why it was given up, and how often it was delivered."""

    entity_type: str
    payload: bytes
    reason: str
    deliveries: int
    source_id: str
    key: str | None = None


class Source(ABC):
    """The small interface the nearline processor reads change events through (module docstring)."""

    #: Whether ``deliveries`` survives the consumer: Redis keeps the count on the server
    #: (a message claimed from a dead worker continues its count); Kafka has no such
    #: count, so it is kept per process and starts again at 1 after a restart.
    durable_delivery_counts: ClassVar[bool] = False

    def __init__(self, *, group: str, consumer: str, entity_types: Sequence[str], max_deliveries: int):
        if not group:
            raise ValueError(f"group must be a non-empty string (one per embedding version), got {group!r}")
        if not consumer:
            raise ValueError(f"consumer must be a non-empty string (one per worker), got {consumer!r}")
        if max_deliveries < 1:
            raise ValueError(f"max_deliveries must be >= 1, got {max_deliveries}")
        entity_types = tuple(entity_types)
        unknown = [t for t in entity_types if t not in ENTITY_TYPES]
        if unknown or not entity_types:
            raise ValueError(
                f"entity_types must be a non-empty subset of {list(ENTITY_TYPES)}, got {list(entity_types)}"
            )
        self.group = group
        self.consumer = consumer
        self.entity_types = entity_types
        self.max_deliveries = max_deliveries
        self._last_error: dict[tuple[str, str], str] = {}

    @abstractmethod
    def read(self, max_messages: int = 100, block_ms: int = 1000) -> list[Message]:
        """Up to ``max_messages`` messages: claimed/released ones first, then new ones (waits up to ``block_ms``)."""

    @abstractmethod
    def ack(self, messages: Iterable[Message]) -> None:
        """Mark messages done; call only after their writes landed."""

    @abstractmethod
    def release(self, messages: Iterable[Message], reason: str | None = None) -> None:
        """Hand messages back for redelivery (processing failed); ``reason`` is kept for the dead-letter record."""

    @abstractmethod
    def dead_letter(self, message: Message, reason: str) -> None:
        """Write ``message`` with ``reason`` to the dead-letter stream/topic, then acknowledge it."""

    @abstractmethod
    def claim(self, max_messages: int = 100) -> list[Message]:
        """Messages that consumers of the group left pending and that this one now owns."""

    @abstractmethod
    def dead_letters(self, entity_type: str) -> list[DeadLetter]:
        """Everything in the dead-letter stream/topic of ``entity_type``, oldest first."""

    @abstractmethod
    def backlog(self) -> int:
        """Messages the group has not acknowledged yet (delivered and pending, or not delivered at all)."""

    @abstractmethod
    def close(self) -> None:
        """Stop consuming. Unacknowledged messages stay with the group and are redelivered."""

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # --- shared by both implementations

    def _check_entity_type(self, entity_type: str) -> None:
        if entity_type not in ENTITY_TYPES:
            raise ValueError(f"entity_type must be one of {list(ENTITY_TYPES)}, got {entity_type!r}")

    def _remember(self, messages: Iterable[Message], reason: str | None) -> None:
        if reason:
            for m in messages:
                self._last_error[(m.entity_type, m.id)] = reason

    def _forget(self, messages: Iterable[Message]) -> None:
        for m in messages:
            self._last_error.pop((m.entity_type, m.id), None)

    def _poison_reason(self, message: Message) -> str:
        reason = f"not acknowledged after {message.deliveries} deliveries (max_deliveries={self.max_deliveries})"
        last = self._last_error.get((message.entity_type, message.id))
        return f"{reason}; last error: {last}" if last else reason


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, (bytes, bytearray)) else str(value)


def _raw(value: Any) -> bytes:
    return bytes(value) if isinstance(value, (bytes, bytearray, memoryview)) else str(value).encode("utf-8")


def _field(fields: Mapping, name: str) -> Any:
    """A stream entry field by name, whether the client decodes responses or not."""
    if name in fields:
        return fields[name]
    return fields.get(name.encode())


# ----------------------------------------------------------------------------- Redis Streams


class RedisStreamSource(Source):
    """Change events from Redis Streams: one stream per entity type, one consumer group per embedding version.

    - The group is created idempotently (``XGROUP CREATE ... MKSTREAM``) from ``start_id``
      (``"0"``: a new embedding version's group reads what the streams still hold;
      ``"$"``: only what arrives from now on).
    - ``read`` first claims pending entries idle for at least ``claim_idle_ms``
      (``XAUTOCLAIM``: a live worker takes over what a dead one was given, and what this
      one released), then reads new entries (``XREADGROUP ... >``). Claiming increments
      the server's delivery count, read back with ``XPENDING``; an entry that would be
      delivered more than ``max_deliveries`` times goes to ``{prefix}dlq:{entity_type}``
      with the event, the reason and the count (``XADD`` and ``XACK`` in one ``MULTI``).
    - ``claim_idle_ms`` must be longer than a batch ever takes to process, or a slow but
      live worker's batch is claimed by another one too (harmless, but wasted work).
    - ``ack`` is ``XACK``. Nothing is acknowledged unless the caller acks.
    """

    durable_delivery_counts = True

    def __init__(
        self,
        client,
        *,
        group: str,
        consumer: str,
        entity_types: Sequence[str] = ENTITY_TYPES,
        prefix: str = "jude:",
        max_deliveries: int = 5,
        claim_idle_ms: int = 30_000,
        start_id: str = "0",
    ):
        super().__init__(group=group, consumer=consumer, entity_types=entity_types, max_deliveries=max_deliveries)
        if claim_idle_ms < 0:
            raise ValueError(f"claim_idle_ms must be >= 0, got {claim_idle_ms}")
        self.client = client
        self.prefix = prefix
        self.claim_idle_ms = claim_idle_ms
        self.start_id = start_id
        self._cursors = {t: "0-0" for t in self.entity_types}
        self._turn = 0
        self.ensure_groups()

    def stream(self, entity_type: str) -> str:
        return f"{self.prefix}changes:{entity_type}"

    def dlq(self, entity_type: str) -> str:
        return f"{self.prefix}dlq:{entity_type}"

    def ensure_groups(self) -> None:
        """Create the consumer group on every stream (and the streams), if missing."""
        import redis

        for t in self.entity_types:
            try:
                self.client.xgroup_create(self.stream(t), self.group, id=self.start_id, mkstream=True)
            except redis.ResponseError as e:
                if "BUSYGROUP" not in str(e):
                    raise

    def _retrying_nogroup(self, command, *args, **kwargs):
        """Run a client command; if a stream (and its group) was deleted meanwhile, recreate the groups, retry once."""
        import redis

        try:
            return command(*args, **kwargs)
        except redis.ResponseError as e:
            if "NOGROUP" not in str(e):
                raise
            self.ensure_groups()
            return command(*args, **kwargs)

    def _message(self, entity_type: str, entry_id: Any, fields: Mapping, deliveries: int) -> Message | None:
        entry_id = _text(entry_id)
        payload = _field(fields, "event")
        key = _field(fields, "entity_id")
        message = Message(
            entity_type=entity_type,
            id=entry_id,
            key=None if key is None else _text(key),
            payload=b"" if payload is None else _raw(payload),
            deliveries=deliveries,
        )
        if payload is None:
            self.dead_letter(message, f"stream entry has no 'event' field (fields: {sorted(map(_text, fields))})")
            return None
        return message

    def _delivery_counts(self, stream: str, ids: list) -> dict[str, int]:
        pipe = self.client.pipeline(transaction=False)
        for entry_id in ids:
            pipe.xpending_range(stream, self.group, min=entry_id, max=entry_id, count=1)
        counts = {}
        for rows in pipe.execute():
            for row in rows:
                counts[_text(row["message_id"])] = int(row["times_delivered"])
        return counts

    def claim(self, max_messages: int = 100) -> list[Message]:
        out: list[Message] = []
        for t in self.entity_types:
            if len(out) >= max_messages:
                break
            stream = self.stream(t)
            reply = self._retrying_nogroup(
                self.client.xautoclaim,
                stream,
                self.group,
                self.consumer,
                min_idle_time=self.claim_idle_ms,
                start_id=self._cursors[t],
                count=max_messages - len(out),
            )
            cursor, entries = _text(reply[0]), reply[1]
            self._cursors[t] = cursor
            entries = [(i, f) for i, f in entries if f is not None]  # deleted from the stream meanwhile
            if not entries:
                continue
            counts = self._delivery_counts(stream, [i for i, _ in entries])
            for entry_id, fields in entries:
                message = self._message(t, entry_id, fields, counts.get(_text(entry_id), 1))
                if message is None:
                    continue
                if message.deliveries > self.max_deliveries:
                    handed_out = replace(message, deliveries=message.deliveries - 1)
                    self.dead_letter(handed_out, self._poison_reason(handed_out))
                    continue
                out.append(message)
        return out

    def read(self, max_messages: int = 100, block_ms: int = 1000) -> list[Message]:
        if max_messages < 1:
            raise ValueError(f"max_messages must be >= 1, got {max_messages}")
        out = self.claim(max_messages)
        # New entries: the budget is shared by the streams; a stream that filled its share
        # may have more, so it is asked again (without blocking) while budget is left. The
        # first stream asked rotates, so a small budget does not always favour one type.
        self._turn = (self._turn + 1) % len(self.entity_types)
        streams = list(self.entity_types[self._turn :] + self.entity_types[: self._turn])
        block = block_ms if not out and block_ms > 0 else None
        while streams and len(out) < max_messages:
            left = max_messages - len(out)
            streams = streams[:left]
            share = left // len(streams)
            reply = self._retrying_nogroup(
                self.client.xreadgroup,
                self.group,
                self.consumer,
                {self.stream(t): ">" for t in streams},
                count=share,
                block=block,
            )
            block = None
            items = reply.items() if isinstance(reply, dict) else (reply or [])
            full = []
            for stream_name, entries in items:
                t = _text(stream_name)[len(self.prefix) + len("changes:") :]
                for entry_id, fields in entries:
                    message = self._message(t, entry_id, fields or {}, 1)
                    if message is not None:
                        out.append(message)
                if len(entries) >= share:
                    full.append(t)
            streams = full
        return out

    def ack(self, messages: Iterable[Message]) -> None:
        messages = list(messages)
        if not messages:
            return
        pipe = self.client.pipeline(transaction=False)
        for t in {m.entity_type for m in messages}:
            pipe.xack(self.stream(t), self.group, *[m.id for m in messages if m.entity_type == t])
        pipe.execute()
        self._forget(messages)

    def release(self, messages: Iterable[Message], reason: str | None = None) -> None:
        # Set the entries' idle time past claim_idle_ms so the next claim (by any worker)
        # picks them up at once; JUSTID leaves the delivery count to that claim.
        messages = list(messages)
        self._remember(messages, reason)
        for t in {m.entity_type for m in messages}:
            ids = [m.id for m in messages if m.entity_type == t]
            self.client.xclaim(self.stream(t), self.group, self.consumer, 0, ids, idle=self.claim_idle_ms, justid=True)
            self._cursors[t] = "0-0"

    def dead_letter(self, message: Message, reason: str) -> None:
        record = {
            "event": message.payload,
            "reason": reason,
            "deliveries": message.deliveries,
            "source_id": message.id,
            "entity_id": message.key or "",
            "group": self.group,
            "consumer": self.consumer,
            "dead_lettered_at": datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
        }
        pipe = self.client.pipeline(transaction=True)
        pipe.xadd(self.dlq(message.entity_type), record)
        pipe.xack(self.stream(message.entity_type), self.group, message.id)
        pipe.execute()
        self._forget([message])
        log.warning("dead-lettered %s %s: %s", message.entity_type, message.id, reason)

    def dead_letters(self, entity_type: str) -> list[DeadLetter]:
        self._check_entity_type(entity_type)
        out = []
        for _, f in self.client.xrange(self.dlq(entity_type)):
            key = _field(f, "entity_id")
            out.append(
                DeadLetter(
                    entity_type=entity_type,
                    payload=_raw(_field(f, "event")),
                    reason=_text(_field(f, "reason")),
                    deliveries=int(_field(f, "deliveries")),
                    source_id=_text(_field(f, "source_id")),
                    key=_text(key) if key else None,
                )
            )
        return out

    def backlog(self) -> int:
        total = 0
        for t in self.entity_types:
            stream = self.stream(t)
            groups = self._retrying_nogroup(self.client.xinfo_groups, stream)
            info = next((g for g in groups if _text(g["name"]) == self.group), None)
            if info is None:
                continue
            lag = info.get("lag")
            if lag is None:  # unknown after deletions inside the stream: count what follows the group's position
                lag = len(self.client.xrange(stream, min=f"({_text(info['last-delivered-id'])}", max="+"))
            total += int(info["pending"]) + int(lag)
        return total

    def close(self) -> None:
        """Nothing to hand back: this consumer's pending entries stay in the group for others to claim."""


# ----------------------------------------------------------------------------- Kafka


class _PartitionOffsets:
    """What a consumer was given from one partition and what it acked: the offset it may commit.

    Kafka keeps one committed offset per partition ("everything below is done"), so the
    commit may only advance to the lowest delivered-but-unacked offset: acking 5 and 7
    but not 6 commits 6, and after a restart 6 and 7 are delivered again. Within the
    process, an offset acked already is not handed out again when a seek back
    (``release``) reads past it.
    """

    def __init__(self) -> None:
        self.unacked: set[int] = set()
        self.acked: set[int] = set()  # acked at or above the committed offset
        self.high = -1  # highest offset delivered
        self.committed = -1  # last offset committed (the next offset to read), -1 when none yet
        self.deliveries: dict[int, int] = {}

    def delivered(self, offset: int) -> int | None:
        """Record a delivery: how often this process has delivered the offset, or None if it was acked already."""
        if offset in self.acked or offset < self.committed:
            return None
        self.unacked.add(offset)
        self.high = max(self.high, offset)
        self.deliveries[offset] = self.deliveries.get(offset, 0) + 1
        return self.deliveries[offset]

    def ack(self, offset: int) -> None:
        if offset in self.unacked:
            self.unacked.discard(offset)
            self.acked.add(offset)

    def commit_point(self) -> int | None:
        """The offset to commit now (the next one to read), or None if the commit would not advance."""
        point = min(self.unacked) if self.unacked else self.high + 1
        return point if point > self.committed else None

    def committed_to(self, point: int) -> None:
        self.committed = point
        self.acked = {o for o in self.acked if o >= point}
        self.deliveries = {o: n for o, n in self.deliveries.items() if o >= point}


class KafkaSource(Source):
    """Change events from Kafka (``confluent-kafka``): a topic per entity type keyed by entity id, a consumer group.

    - ``enable.auto.commit`` is off; ``ack`` commits synchronously, per partition, the
      highest offset below which every delivered message was acked (see
      :class:`_PartitionOffsets`). So a crash redelivers everything not acked, and
      possibly some acked messages that followed a gap (at-least-once).
    - ``claim`` returns nothing: Kafka's group coordinator moves a dead consumer's
      partitions to the live ones (at once when it closed, after ``session.timeout.ms``
      when it died), and ``read`` continues them from the last committed offset.
    - ``release`` seeks the partition back to the lowest released offset, so the
      messages are read again; messages after them that were acked meanwhile are
      skipped, unacked ones come again too.
    - Topics should exist before workers subscribe: a consumer notices a topic created
      later only at its next metadata refresh (``topic.metadata.refresh.interval.ms``,
      5 minutes by default).
    - **Delivery counts**: Kafka keeps none. This source counts deliveries per
      (partition, offset) in the process; after a restart, or when another consumer
      takes over the partition, the count starts again, so a poison message that kills
      the process is retried up to ``max_deliveries`` more times by each new process.
      Messages that fail without killing the process are dead-lettered as on Redis.
    - Dead letters go to ``{prefix}dlq.{entity_type}`` with the entity id as key, the
      original event as value and the reason, delivery count and origin in headers.

    ``config`` adds or overrides librdkafka settings of the consumer (e.g.
    ``session.timeout.ms``); ``producer_config`` those of the dead-letter producer.
    """

    durable_delivery_counts = False

    def __init__(
        self,
        bootstrap_servers: str,
        *,
        group: str,
        consumer: str,
        entity_types: Sequence[str] = ENTITY_TYPES,
        prefix: str = "jude.",
        max_deliveries: int = 5,
        config: Mapping[str, Any] | None = None,
        producer_config: Mapping[str, Any] | None = None,
        timeout_s: float = 10.0,
    ):
        from confluent_kafka import Consumer

        super().__init__(group=group, consumer=consumer, entity_types=entity_types, max_deliveries=max_deliveries)
        if not _KAFKA_NAME.match(prefix):
            raise ValueError(
                f"prefix may only hold letters, digits, '.', '_' and '-' (a Kafka topic name), got {prefix!r}"
            )
        self.prefix = prefix
        self.bootstrap_servers = bootstrap_servers
        self.timeout_s = timeout_s
        self._producer_config = {"bootstrap.servers": bootstrap_servers, **(producer_config or {})}
        self._producer = None
        self._offsets: dict[tuple[str, int], _PartitionOffsets] = {}
        self._consumer = Consumer(
            {
                "bootstrap.servers": bootstrap_servers,
                "group.id": f"{prefix}{group}",
                "client.id": consumer,
                "enable.auto.commit": False,
                "enable.auto.offset.store": False,
                "auto.offset.reset": "earliest",
                **(config or {}),
            }
        )
        self._consumer.subscribe(
            [self.topic(t) for t in self.entity_types], on_revoke=self._on_revoke, on_lost=self._on_revoke
        )
        self._closed = False

    def topic(self, entity_type: str) -> str:
        return f"{self.prefix}changes.{entity_type}"

    def dlq_topic(self, entity_type: str) -> str:
        return f"{self.prefix}dlq.{entity_type}"

    def _entity_type_of(self, topic: str) -> str:
        return topic[len(self.prefix) + len("changes.") :]

    def _on_revoke(self, consumer, partitions) -> None:
        # Another consumer continues these partitions from the last commit; forget them here.
        for tp in partitions:
            self._offsets.pop((tp.topic, tp.partition), None)

    def claim(self, max_messages: int = 100) -> list[Message]:
        return []  # the group coordinator reassigns a dead consumer's partitions; read() continues them

    def read(self, max_messages: int = 100, block_ms: int = 1000) -> list[Message]:
        from confluent_kafka import KafkaError, KafkaException

        if max_messages < 1:
            raise ValueError(f"max_messages must be >= 1, got {max_messages}")
        # Wait for the first message only, then take what is already there: consume(n, timeout)
        # would wait for a full batch.
        first = self._consumer.poll(max(block_ms, 0) / 1000)
        raw = [first] if first is not None else []
        if raw and max_messages > 1:
            raw += self._consumer.consume(num_messages=max_messages - 1, timeout=0)
        out = []
        for m in raw:
            err = m.error()
            if err is not None:
                if err.code() in (KafkaError._PARTITION_EOF, KafkaError.UNKNOWN_TOPIC_OR_PART):
                    continue  # end of a partition, or a topic nobody has produced to yet
                raise KafkaException(err)
            offsets = self._offsets.setdefault((m.topic(), m.partition()), _PartitionOffsets())
            deliveries = offsets.delivered(m.offset())
            if deliveries is None:
                continue  # acked already; read again only because release() sought back past it
            key = m.key()
            message = Message(
                entity_type=self._entity_type_of(m.topic()),
                id=f"{m.partition()}:{m.offset()}",
                key=None if key is None else _text(key),
                payload=m.value() or b"",
                deliveries=deliveries,
                partition=m.partition(),
                offset=m.offset(),
            )
            if message.deliveries > self.max_deliveries:
                handed_out = replace(message, deliveries=message.deliveries - 1)
                self.dead_letter(handed_out, self._poison_reason(handed_out))
                continue
            out.append(message)
        return out

    def ack(self, messages: Iterable[Message]) -> None:
        from confluent_kafka import TopicPartition

        messages = list(messages)
        touched = set()
        for m in messages:
            tp = (self.topic(m.entity_type), m.partition)
            offsets = self._offsets.get(tp)
            if offsets is None:
                continue  # the partition moved to another consumer, which redelivers from the last commit
            offsets.ack(m.offset)
            touched.add(tp)
        commits = []
        for tp in sorted(touched):
            point = self._offsets[tp].commit_point()
            if point is not None:
                commits.append((tp, point))
        if commits:
            self._consumer.commit(
                offsets=[TopicPartition(topic, partition, point) for (topic, partition), point in commits],
                asynchronous=False,
            )
            for tp, point in commits:
                if tp in self._offsets:
                    self._offsets[tp].committed_to(point)
        self._forget(messages)

    def release(self, messages: Iterable[Message], reason: str | None = None) -> None:
        from confluent_kafka import KafkaException, TopicPartition

        messages = list(messages)
        self._remember(messages, reason)
        lowest: dict[tuple[str, int], int] = {}
        for m in messages:
            tp = (self.topic(m.entity_type), m.partition)
            lowest[tp] = min(lowest.get(tp, m.offset), m.offset)
        for (topic, partition), offset in lowest.items():
            if (topic, partition) not in self._offsets:
                continue  # no longer ours; the new owner redelivers it
            try:
                self._consumer.seek(TopicPartition(topic, partition, offset))
            except KafkaException as e:  # the partition was revoked meanwhile
                log.warning("could not seek %s[%d] back to %d: %s", topic, partition, offset, e)

    def _dlq_producer(self):
        from confluent_kafka import Producer

        if self._producer is None:
            self._producer = Producer(self._producer_config)
        return self._producer

    def dead_letter(self, message: Message, reason: str) -> None:
        errors: list = []
        producer = self._dlq_producer()
        producer.produce(
            self.dlq_topic(message.entity_type),
            key=message.key,
            value=message.payload,
            headers=[
                ("reason", reason.encode("utf-8")),
                ("deliveries", str(message.deliveries).encode()),
                ("source_topic", self.topic(message.entity_type).encode()),
                ("source_partition", str(message.partition).encode()),
                ("source_offset", str(message.offset).encode()),
                ("group", self.group.encode()),
            ],
            on_delivery=lambda err, msg: errors.append(err) if err is not None else None,
        )
        left = producer.flush(self.timeout_s)
        if left or errors:
            raise RuntimeError(
                f"dead-lettering {message.entity_type} {message.id} failed "
                f"({left} message(s) undelivered, errors: {errors}); it stays unacknowledged"
            )
        self.ack([message])
        log.warning("dead-lettered %s %s: %s", message.entity_type, message.id, reason)

    def dead_letters(self, entity_type: str) -> list[DeadLetter]:
        """Reads the whole dead-letter topic with a throwaway consumer (no group offsets are touched)."""
        from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

        self._check_entity_type(entity_type)
        topic = self.dlq_topic(entity_type)
        reader = Consumer(
            {
                "bootstrap.servers": self.bootstrap_servers,
                "group.id": f"{self.prefix}dlq-reader",
                "enable.auto.commit": False,
            }
        )
        try:
            meta = reader.list_topics(topic, timeout=self.timeout_s).topics.get(topic)
            if meta is None or meta.error is not None:
                return []
            ends = {}
            for p in meta.partitions:
                low, high = reader.get_watermark_offsets(TopicPartition(topic, p), timeout=self.timeout_s)
                if high > low:
                    ends[p] = high
            reader.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in ends])
            rows = []
            deadline = time.monotonic() + self.timeout_s
            while ends and time.monotonic() < deadline:
                m = reader.poll(0.2)
                if m is None or m.error() is not None:
                    continue
                headers = {k: v.decode() for k, v in (m.headers() or [])}
                rows.append(
                    (
                        m.timestamp()[1],
                        DeadLetter(
                            entity_type=entity_type,
                            payload=m.value() or b"",
                            reason=headers.get("reason", ""),
                            deliveries=int(headers.get("deliveries", 0)),
                            source_id=f"{headers.get('source_partition')}:{headers.get('source_offset')}",
                            key=None if m.key() is None else _text(m.key()),
                        ),
                    )
                )
                if m.offset() + 1 >= ends[m.partition()]:
                    del ends[m.partition()]
            return [d for _, d in sorted(rows, key=lambda r: r[0])]
        finally:
            reader.close()

    def backlog(self) -> int:
        from confluent_kafka import TopicPartition

        total = 0
        meta = self._consumer.list_topics(timeout=self.timeout_s).topics
        parts = [
            TopicPartition(topic, p)
            for topic in map(self.topic, self.entity_types)
            if topic in meta and meta[topic].error is None
            for p in meta[topic].partitions
        ]
        if not parts:
            return 0
        for tp in self._consumer.committed(parts, timeout=self.timeout_s):
            where = TopicPartition(tp.topic, tp.partition)
            # Partitions this consumer fetches know their end from the last fetch; ask for the others.
            low, high = self._consumer.get_watermark_offsets(where, cached=True)
            if (tp.topic, tp.partition) not in self._offsets or high < 0:
                low, high = self._consumer.get_watermark_offsets(where, timeout=self.timeout_s)
            start = tp.offset if tp.offset >= 0 else low
            total += max(high - start, 0)
        return total

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._consumer.close()  # leaves the group; auto-commit is off, so nothing is committed
        if self._producer is not None:
            self._producer.flush(self.timeout_s)


# ----------------------------------------------------------------------------- producers


class Transport(Protocol):
    """Where :func:`publish_events` puts events: one stream/topic per entity type, keyed by entity id."""

    def publish(self, entity_type: str, key: str, payload: bytes) -> None: ...

    def flush(self) -> None: ...


class RedisStreamPublisher:
    """Appends change events to ``{prefix}changes:{entity_type}`` (pipelined ``XADD``, ``pipeline_size`` at a time).

    ``maxlen`` trims each stream to about that many entries (``XADD MAXLEN ~``); leave it
    None unless every consumer group keeps up, or unread events are lost.
    """

    def __init__(self, client, prefix: str = "jude:", maxlen: int | None = None, pipeline_size: int = 500):
        if pipeline_size < 1:
            raise ValueError(f"pipeline_size must be >= 1, got {pipeline_size}")
        self.client = client
        self.prefix = prefix
        self.maxlen = maxlen
        self.pipeline_size = pipeline_size
        self._pipe = client.pipeline(transaction=False)
        self._buffered = 0

    def publish(self, entity_type: str, key: str, payload: bytes) -> None:
        self._pipe.xadd(f"{self.prefix}changes:{entity_type}", {"event": payload, "entity_id": key}, maxlen=self.maxlen)
        self._buffered += 1
        if self._buffered >= self.pipeline_size:
            self.flush()

    def flush(self) -> None:
        if self._buffered:
            self._pipe.execute()
            self._buffered = 0


class KafkaPublisher:
    """Produces change events to ``{prefix}changes.{entity_type}``, keyed by entity id.

    Idempotent producer (no duplicates or reordering from its own retries) and the
    ``murmur2_random`` partitioner, the Java client's, so a key lands in the same
    partition whichever client produced it. ``flush`` raises if any message failed.
    """

    def __init__(self, bootstrap_servers: str, prefix: str = "jude.", config: Mapping[str, Any] | None = None):
        from confluent_kafka import Producer

        if not _KAFKA_NAME.match(prefix):
            raise ValueError(
                f"prefix may only hold letters, digits, '.', '_' and '-' (a Kafka topic name), got {prefix!r}"
            )
        self.prefix = prefix
        self._errors: list = []
        self._producer = Producer(
            {
                "bootstrap.servers": bootstrap_servers,
                "enable.idempotence": True,
                "partitioner": "murmur2_random",
                "linger.ms": 5,
                **(config or {}),
            }
        )

    def _on_delivery(self, err, msg) -> None:
        if err is not None:
            self._errors.append(f"{msg.topic()} key {msg.key()!r}: {err}")

    def publish(self, entity_type: str, key: str, payload: bytes) -> None:
        topic = f"{self.prefix}changes.{entity_type}"
        while True:
            try:
                self._producer.produce(topic, key=key, value=payload, on_delivery=self._on_delivery)
                break
            except BufferError:  # the local queue is full: let deliveries drain, then retry
                self._producer.poll(0.1)
        self._producer.poll(0)

    def flush(self, timeout_s: float = 30.0) -> None:
        left = self._producer.flush(timeout_s)
        if left or self._errors:
            errors, self._errors = self._errors, []
            raise RuntimeError(
                f"publishing failed: {left} message(s) undelivered after {timeout_s}s; errors: {errors[:5]}"
            )


def _json_default(value: Any) -> Any:
    """numpy scalars/arrays and timestamps (events built from DataFrames) -> JSON values."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def encode_event(event: Mapping[str, Any] | Any) -> bytes:
    """One change event (a mapping or a pydantic model) as the UTF-8 JSON that goes on the wire."""
    if hasattr(event, "model_dump"):
        event = event.model_dump(mode="json")
    text = json.dumps(dict(event), ensure_ascii=False, separators=(",", ":"), default=_json_default)
    return text.encode("utf-8")


def publish_events(events: Iterable[Mapping[str, Any] | Any], transport: Transport) -> int:
    """Publish change events in order to ``transport``; returns how many were published.

    ``events`` are mappings (``jude.data.changes.to_events``) or ``ChangeEvent`` models.
    Each goes to its entity type's stream/topic, keyed by its entity id. A DataFrame
    is read through its contract columns. Raises ``ValueError`` naming the event (by
    position) whose entity type or id is unusable; the events before it may already
    be published.
    """
    if hasattr(events, "to_dict") and hasattr(events, "columns"):  # a pandas DataFrame
        missing = [k for k in EVENT_KEYS if k not in events.columns]
        if missing:
            raise ValueError(f"events: missing column(s) {missing}; expected {list(EVENT_KEYS)}")
        events = events[list(EVENT_KEYS)].to_dict("records")
    n = 0
    for i, event in enumerate(events):
        entity_type = getattr(event, "entity_type", None) or (
            event.get("entity_type") if isinstance(event, Mapping) else None
        )
        entity_id = getattr(event, "entity_id", None) or (
            event.get("entity_id") if isinstance(event, Mapping) else None
        )
        if entity_type not in ENTITY_TYPES:
            raise ValueError(f"event {i}: entity_type must be one of {list(ENTITY_TYPES)}, got {entity_type!r}")
        if not isinstance(entity_id, str) or not entity_id:
            raise ValueError(f"event {i}: entity_id must be a non-empty string, got {entity_id!r}")
        transport.publish(entity_type, entity_id, encode_event(event))
        n += 1
    transport.flush()
    return n
