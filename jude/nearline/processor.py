"""Micro-batch processing: change events in, embeddings written to both stores, then acknowledged.

One batch (:meth:`Processor.process`, or :meth:`~Processor.prepare` then
:meth:`~Processor.commit` when the caller retries the second part):

1. **Parse** every message (``jude.nearline.events.parse_event``): the envelope and an
   upsert's template fields are checked once, against the entity contract
   (``jude.entities``, the types and bounds the model server and the tables use: a
   seniority outside the vocabulary, an empty resume), and a missing template field is
   named (``event_entity``). A bad event is dead-lettered at once with the field and
   value named (``EventError``); the rest go on.
2. For every **target** (an embedding version and the model that makes it) that is in
   the entity type's ``live`` set (``RedisOnlineStore.live_versions``):
   **template** (``Item.text``: rendered once per template style, kept for a retried
   commit), **hash** (``content_hash`` of text, templates version, embedding version)
   and **compare** with the record stored online (hash and vector, read in one step).
   Equal: no inference; the stored vector is the vector of this text. Different: the
   text itself is **embedded** (``Inference.embed_texts``: nobody renders it again, so
   the text hashed is the text embedded), once per distinct text in the batch (a
   posting saved twice in one batch is embedded once).
3. **Write.** The offline history first (``DeltaHistory.append``: one row per event, at
   its own event time: the upsert's vector, or the delete), then the online store
   (``write_many``: last write wins by event time, atomically; deletes leave
   tombstones; an unchanged upsert is a *touch* that only advances the stored event
   time). History first, because a crash between the two redelivers the batch and
   both writes are made again; with the online store first, nothing would tell the
   redelivery that a history row is missing. A touch the server answers
   ``needs_vector`` (another worker changed the entity meanwhile) is written again
   with the vector.
4. **Acknowledge** the messages, only now (at-least-once: a crash anywhere before this
   redelivers the batch, and every write above is idempotent).

Why a history row per event, not per embedding: events arrive out of order. If only
embeddings were recorded, an unchanged edit at t=2 (no row) followed by a late,
different edit from t=1.5 (a row) would make a point-in-time read at t=2.5 return the
late edit. With every event at its own time the history's latest row at or before t is
always the latest event at or before t, whatever the delivery order. A late upsert
with new content is embedded for the same reason (the online store refuses it).

Errors: :class:`~jude.nearline.inference.InferenceRejected` (the server refuses one
entity) dead-letters that event and goes on. Everything else propagates from
:meth:`~Processor.commit` with nothing acknowledged; :func:`is_transient` says which
errors are the infrastructure's (retry the batch later) and which may be one event's
(the worker then commits event by event and releases the one that fails, which the
source dead-letters after ``max_deliveries``).
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import redis
from deltalake.exceptions import CommitFailedError

from jude.nearline.events import ChangeEvent, EventError, event_entity, parse_event, render_entity
from jude.nearline.hashing import content_hash
from jude.nearline.inference import Inference, InferenceRejected, InferenceUnavailable
from jude.nearline.sources import Message, Source
from jude.retrieval.feed import AppliedWrite, WriteListener
from jude.stores.offline import DeltaHistory
from jude.stores.online import OnlineRecord, RedisOnlineStore, WriteStatus, check_version

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Target:
    """One embedding version the processor keeps current, and the model that makes its vectors."""

    embedding_version: str
    inference: Inference

    def __post_init__(self):
        check_version(self.embedding_version)


@dataclass
class Item:
    """A parsed message: its event and, for an upsert, its template fields and their rendered texts."""

    message: Message
    event: ChangeEvent
    entity: dict[str, Any] | None
    texts: dict[str, str] = field(default_factory=dict)  # template style -> the entity's text

    @property
    def key(self) -> tuple[str, str]:
        return (self.message.entity_type, self.message.id)

    def text(self, style: str) -> str:
        """The upsert's entity rendered by its template in ``style``: once, however many targets or retries ask."""
        if style not in self.texts:
            self.texts[style] = render_entity(self.event.entity_type, self.entity, style)
        return self.texts[style]


@dataclass
class BatchResult:
    """What one batch did. Counters are keyed by entity type; per-target counts add over targets.

    ``latencies_ms``: event time to online write (applied writes only), one per write.
    """

    events: Counter = field(default_factory=Counter)  # messages parsed, by entity type
    deletes: Counter = field(default_factory=Counter)
    dead_lettered: Counter = field(default_factory=Counter)
    unchanged: Counter = field(default_factory=Counter)  # stored hash equal: no inference (a touch write)
    changed: Counter = field(default_factory=Counter)  # needed a vector (before the in-batch dedup)
    embedded: Counter = field(default_factory=Counter)  # texts the model embedded (inferences)
    online: Counter = field(default_factory=Counter)  # (entity type, WriteStatus value)
    history_rows: Counter = field(default_factory=Counter)
    not_live: Counter = field(default_factory=Counter)  # (entity type, version) skipped: not in the live set
    acked: int = 0
    reasons: list[str] = field(default_factory=list)  # why each dead letter
    rejected: set = field(default_factory=set)  # (entity type, message id) dead-lettered in this batch
    latencies_ms: list[int] = field(default_factory=list)


def is_transient(exc: BaseException) -> bool:
    """Whether ``exc`` is the infrastructure's (retry the same batch later) rather than an event's fault.

    The model unreachable after its retries, Redis unreachable or timing out, an I/O
    error, a Delta commit that lost a race too often.
    """
    transient = (
        InferenceUnavailable,
        OSError,
        TimeoutError,
        redis.exceptions.ConnectionError,
        redis.exceptions.TimeoutError,
        CommitFailedError,
    )
    return isinstance(exc, transient)


@dataclass
class _Upsert:
    """One upsert in one (target, entity type): its text, hash, and vector (stored, embedded, or pending)."""

    item: Item
    text: str
    content_hash: str
    unchanged: bool  # the stored record has this hash: the vector was read, not embedded
    vector: np.ndarray | None = None


@dataclass
class _Plan:
    """The writes of one (target, entity type) in a batch."""

    target: Target
    entity_type: str
    upserts: list[_Upsert] = field(default_factory=list)
    deletes: list[Item] = field(default_factory=list)


class Processor:
    """Turns batches of change-event messages into online and offline writes (module docstring).

    ``change_detection=False`` and ``dedupe=False`` make the naive updater the benchmark
    compares against: every upsert embedded, no stored hash compared, no text shared.
    ``clock`` returns epoch seconds (tests freeze it).
    """

    def __init__(
        self,
        source: Source,
        store: RedisOnlineStore,
        history: DeltaHistory,
        targets: Sequence[Target],
        *,
        change_detection: bool = True,
        dedupe: bool = True,
        clock: Callable[[], float] = time.time,
        listeners: Sequence[WriteListener] = (),
    ):
        if not targets:
            raise ValueError("targets must hold at least one (embedding version, inference)")
        versions = [t.embedding_version for t in targets]
        if len(set(versions)) != len(versions):
            raise ValueError(f"targets: each embedding version once, got {versions}")
        self.source = source
        self.store = store
        self.history = history
        self.targets = list(targets)
        self.change_detection = change_detection
        self.dedupe = dedupe
        self.clock = clock
        self._warned_not_live: set[tuple[str, str]] = set()
        self.listeners = list(listeners)  # told of every applied online write before the ack (the job index feed)

    # ---- the whole batch ---------------------------------------------------------------
    def process(self, messages: Sequence[Message]) -> BatchResult:
        """Parse, write and acknowledge one batch (dead letters included); see the module docstring."""
        result = BatchResult()
        items = self.prepare(messages, result)
        self.commit(items, result)
        return result

    # ---- 1. parse ------------------------------------------------------------------------
    def prepare(self, messages: Iterable[Message], result: BatchResult | None = None) -> list[Item]:
        """Parse the messages; dead-letter (and so acknowledge) the bad ones, return the rest."""
        result = result if result is not None else BatchResult()
        items = []
        for m in messages:
            try:
                item = self._parse(m)
            except EventError as e:
                self._dead_letter(m, str(e), result)
                continue
            result.events[m.entity_type] += 1
            items.append(item)
        return items

    def _parse(self, m: Message) -> Item:
        event = parse_event(m.payload)
        if event.entity_type != m.entity_type:
            raise EventError(
                "entity_type", event.entity_type, f"the event arrived on the {m.entity_type!r} stream/topic"
            )
        if event.op == "delete":
            return Item(m, event, None)
        return Item(m, event, event_entity(event))  # its fields checked by parse_event; a missing one is named

    def _dead_letter(self, m: Message, reason: str, result: BatchResult) -> None:
        self.source.dead_letter(m, reason)
        result.dead_lettered[m.entity_type] += 1
        result.reasons.append(reason)
        result.rejected.add((m.entity_type, m.id))

    # ---- 2-4. embed, write, acknowledge --------------------------------------------------
    def commit(self, items: Sequence[Item], result: BatchResult | None = None) -> BatchResult:
        """Embed what changed, write the history then the online store, acknowledge.

        Raises with nothing acknowledged when a store or the model fails (the caller
        retries or releases); calling it again with the same items is safe. Items
        dead-lettered meanwhile (``result.rejected``) are skipped.
        """
        result = result if result is not None else BatchResult()
        items = [i for i in items if i.key not in result.rejected]
        if not items:
            return result
        by_type: dict[str, list[Item]] = {}
        for item in items:
            by_type.setdefault(item.event.entity_type, []).append(item)
        live = {t: set(self.store.live_versions(t)) for t in by_type}

        plans = []
        for target in self.targets:
            for entity_type, group in by_type.items():
                if target.embedding_version in live[entity_type]:
                    plans.append(self._plan(target, entity_type, group, result))
                else:
                    self._not_live(entity_type, target.embedding_version, len(group), result)
        for plan in plans:
            self._embed(plan, result)

        online: list[OnlineRecord] = []
        vectors: list[np.ndarray | None] = []  # what a touch answered needs_vector is rewritten with
        rows: list[dict] = []
        for plan in plans:
            version, model = plan.target.embedding_version, plan.target.inference.info.model
            for u in plan.upserts:
                if u.item.key in result.rejected:
                    continue
                ev = u.item.event
                touch = u.unchanged and self.change_detection
                online.append(
                    OnlineRecord(
                        ev.entity_type,
                        ev.entity_id,
                        version,
                        ev.event_time_ms,
                        "upsert",
                        None if touch else u.vector,
                        u.content_hash,
                        model,
                    )
                )
                vectors.append(u.vector)
                rows.append(_row(ev, version, "upsert", u.content_hash, u.vector))
            for item in plan.deletes:
                ev = item.event
                online.append(
                    OnlineRecord(ev.entity_type, ev.entity_id, version, ev.event_time_ms, "delete", model_version=model)
                )
                vectors.append(None)
                rows.append(_row(ev, version, "delete", None, None))

        self._append_history(rows, result)
        statuses = self.store.write_many(online)
        again = [replace(r, vector=v) for r, v, s in zip(online, vectors, statuses) if s is WriteStatus.NEEDS_VECTOR]
        done = [(r, s) for r, s in zip(online, statuses) if s is not WriteStatus.NEEDS_VECTOR]
        if again:
            done += list(zip(again, self.store.write_many(again)))
        written_ms = int(self.clock() * 1000)
        for record, status in done:
            result.online[(record.entity_type, status.value)] += 1
            if status is WriteStatus.APPLIED:
                result.latencies_ms.append(written_ms - record.event_time_ms)

        self._notify_listeners(plans, done)
        acked = [item.message for item in items if item.key not in result.rejected]
        self.source.ack(acked)
        result.acked += len(acked)
        return result

    def _notify_listeners(self, plans: list[_Plan], done: list[tuple[OnlineRecord, WriteStatus]]) -> None:
        """Hand the applied online writes (with their vectors and fields) to the listeners; an error propagates
        before the ack, so the batch is redelivered and the listener told again (it must be idempotent)."""
        if not self.listeners:
            return
        upserts = {
            (p.target.embedding_version, u.item.event.entity_type, u.item.event.entity_id)
            + (u.item.event.event_time_ms, u.content_hash): u
            for p in plans
            for u in p.upserts
        }
        writes = []
        for r, status in done:
            if status is not WriteStatus.APPLIED:
                continue
            u = upserts.get((r.embedding_version, r.entity_type, r.entity_id, r.event_time_ms, r.content_hash))
            if r.op == "upsert" and u is None:
                continue
            vector, fields = (u.vector, u.item.entity) if r.op == "upsert" else (None, None)
            key = (r.entity_type, r.entity_id, r.embedding_version, r.op, r.event_time_ms, r.content_hash)
            writes.append(AppliedWrite(*key, vector, fields))
        for listener in self.listeners:
            listener.on_applied(writes)

    def _not_live(self, entity_type: str, version: str, n: int, result: BatchResult) -> None:
        result.not_live[(entity_type, version)] += n
        if (entity_type, version) not in self._warned_not_live:
            self._warned_not_live.add((entity_type, version))
            log.warning(
                "embedding version %s is not in the live set of %s; %s events are not written to it",
                version,
                entity_type,
                entity_type,
            )

    def _plan(self, target: Target, entity_type: str, group: list[Item], result: BatchResult) -> _Plan:
        """Template and hash the group's upserts; take the stored vector of those whose hash is stored."""
        info = target.inference.info
        version = target.embedding_version
        plan = _Plan(target, entity_type)
        upserts = [i for i in group if i.event.op == "upsert"]
        plan.deletes = [i for i in group if i.event.op == "delete"]
        result.deletes[entity_type] += len(plan.deletes)
        stored_hash: list[str | None] = [None] * len(upserts)
        stored_vec: np.ndarray | None = None
        if self.change_detection and upserts:
            # hash and vector in one read: the vector is the stored hash's, whatever writes come after
            found = self.store.get_embeddings(entity_type, [i.event.entity_id for i in upserts], version)
            stored_hash = found.meta["content_hash"].tolist()
            stored_vec = found.vectors
        for k, item in enumerate(upserts):
            text = item.text(info.template_style)
            h = content_hash(text, info.templates_version, version)
            unchanged = stored_hash[k] == h
            plan.upserts.append(_Upsert(item, text, h, unchanged, stored_vec[k].copy() if unchanged else None))
            result.unchanged[entity_type] += unchanged
            result.changed[entity_type] += not unchanged
        return plan

    def _embed(self, plan: _Plan, result: BatchResult) -> None:
        """Fill the vectors of the plan's changed upserts; an entity the model refuses is dead-lettered."""
        while True:
            pending = [u for u in plan.upserts if u.vector is None and u.item.key not in result.rejected]
            if not pending:
                return
            if self.dedupe:
                first: dict[str, _Upsert] = {}
                for u in pending:
                    first.setdefault(u.text, u)
                reps = list(first.values())
            else:  # the naive updater: one inference per event
                reps = pending
            try:
                vectors = plan.target.inference.embed_texts(plan.entity_type, [u.text for u in reps])
            except InferenceRejected as e:
                bad = reps[e.index].text
                for u in pending:
                    if u.text == bad and u.item.key not in result.rejected:
                        self._dead_letter(u.item.message, f"the model server refused the entity: {e.reason}", result)
                continue
            result.embedded[plan.entity_type] += len(reps)
            by_text = {u.text: v for u, v in zip(reps, vectors)} if self.dedupe else None
            for k, u in enumerate(pending):
                u.vector = by_text[u.text] if by_text is not None else vectors[k]
            return

    def _append_history(self, rows: list[dict], result: BatchResult) -> None:
        seen, unique = set(), []
        for r in rows:  # a duplicated event in one batch writes its row once
            key = (
                r["entity_type"],
                r["entity_id"],
                r["embedding_version"],
                r["event_time"],
                r["op"],
                r["content_hash"],
            )
            if key not in seen:
                seen.add(key)
                unique.append(r)
        if unique:
            self.history.append(unique)
            for r in unique:
                result.history_rows[r["entity_type"]] += 1


def _row(event: ChangeEvent, version: str, op: str, content_hash: str | None, vector) -> dict:
    return {
        "entity_type": event.entity_type,
        "entity_id": event.entity_id,
        "event_time": event.event_time_ms,
        "embedding_version": version,
        "content_hash": content_hash,
        "op": op,
        "vector": None if vector is None else np.asarray(vector, dtype=np.float32),
    }
