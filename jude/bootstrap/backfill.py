"""The backfill: change rows -> template -> hash -> dedup -> embed -> online store + offline history -> flip.

Plan (everything before the first inference, so bad input writes nothing):

1. Render every upsert with its template and hash it (``content_hash``: text, templates
   version, embedding version). A row the template cannot render raises
   :class:`BootstrapError` naming the entity and the field.
2. Per entity, keep the rows whose content differs from the entity's previous row (and
   its deletes): a counter increment re-saves the row but renders the same text.
3. The offline history of this version is the checkpoint: rows it already holds are not
   written again, and its vectors, by content hash, are reused instead of re-embedded.

Then, chunk by chunk (``chunk_size`` entities): embed the chunk's texts that no earlier
chunk (or earlier run) embedded, each distinct text once; append the chunk's history
rows; write each entity's latest row online (last write wins by event time, the
nearline's Lua script). History first, online second: a run killed between the two
finds the vectors in the history when started again and embeds nothing twice.

The ``active`` pointer flips only when every selected entity has an embedding of the
version online; a failed run never reaches the flip, so readers keep the previous one.
While the bootstrap runs, the version is *live* (the nearline writes it too).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from jude.bootstrap.engines import Engine
from jude.modeling.templates import TEMPLATES_VERSION, TemplateError, render
from jude.nearline.hashing import content_hash
from jude.stores.offline import DeltaHistory
from jude.stores.online import OnlineRecord, RedisOnlineStore, WriteStatus, check_version


class BootstrapError(ValueError):
    """Input the bootstrap refuses before any inference; the message names the entity, field or value."""


@dataclass
class BootstrapReport:
    """What one run did. ``inferences`` counts texts embedded; the rest were deduplicated or reused."""

    embedding_version: str
    entity_types: list[str]
    rows: int = 0  # change rows selected (row versions in a historical backfill)
    entities: int = 0
    distinct_texts: int = 0  # distinct (entity type, text) among the rows to write
    inferences: int = 0
    reused_from_history: int = 0  # distinct texts whose vector an earlier run (or chunk) had stored
    skipped_stored: int = 0  # entities whose history rows and online record were already there
    history_rows: int = 0  # rows appended to the offline history
    online_applied: int = 0
    online_refused: int = 0  # older than what the store held (a fresher nearline write)
    chunks: int = 0
    seconds: float = 0.0
    flipped: bool = False
    previous_active: dict[str, str | None] = field(default_factory=dict)

    @property
    def entities_per_s(self) -> float:
        return self.entities / self.seconds if self.seconds else 0.0

    @property
    def inferences_per_s(self) -> float:
        return self.inferences / self.seconds if self.seconds else 0.0

    def to_dict(self) -> dict:
        return {**asdict(self), "entities_per_s": self.entities_per_s, "inferences_per_s": self.inferences_per_s}


def plan_rows(rows: pd.DataFrame, embedding_version: str, style: str = "plain") -> pd.DataFrame:
    """The rows to write: text and hash per upsert, consecutive equal contents of an entity dropped.

    Columns: entity_type, entity_id, op, event_time_ms, text (None for a delete),
    content_hash (None for a delete); sorted by entity, then event time.
    """
    check_version(embedding_version)
    rows = rows.sort_values(["entity_type", "entity_id", "event_time_ms"], kind="stable")
    texts, hashes = [], []
    for etype, eid, op, fields in zip(rows["entity_type"], rows["entity_id"], rows["op"], rows["fields"]):
        if op == "delete":
            texts.append(None)
            hashes.append(None)
            continue
        try:
            text = render(etype, fields, style)
        except (TemplateError, KeyError, TypeError, ValueError) as exc:
            raise BootstrapError(f"{etype} {eid!r}: cannot render its template: {exc}") from None
        texts.append(text)
        hashes.append(content_hash(text, TEMPLATES_VERSION, embedding_version))
    plan = pd.DataFrame(
        {
            "entity_type": rows["entity_type"].to_numpy(),
            "entity_id": rows["entity_id"].astype(str).to_numpy(),
            "op": rows["op"].to_numpy(),
            "event_time_ms": rows["event_time_ms"].astype("int64").to_numpy(),
            "text": texts,
            "content_hash": hashes,
        }
    )
    same_entity = (plan["entity_type"] == plan["entity_type"].shift()) & (
        plan["entity_id"] == plan["entity_id"].shift()
    )
    same_content = (plan["op"] == plan["op"].shift()) & (plan["content_hash"] == plan["content_hash"].shift())
    keep = ~(same_entity & same_content)
    return plan[keep].reset_index(drop=True)


def _stored(history: DeltaHistory, entity_types: list[str], version: str) -> tuple[set, dict[str, np.ndarray]]:
    """What the history already holds for ``version``: its (type, id, time, op, hash) keys and vectors by hash."""
    keys: set = set()
    vectors: dict[str, np.ndarray] = {}
    for etype in entity_types:
        done = history.read(entity_type=etype, version=version)
        for eid, t, op, h, vec in zip(
            done["entity_id"], done["event_time"], done["op"], done["content_hash"], done["vector"]
        ):
            keys.add((etype, eid, int(t), op, h if op == "upsert" else None))
            if op == "upsert" and h not in vectors:
                vectors[h] = np.asarray(vec, dtype=np.float32)
    return keys, vectors


def backfill(
    rows: pd.DataFrame,
    engine: Engine,
    online: RedisOnlineStore | None,
    history: DeltaHistory,
    embedding_version: str,
    model_version: str = "",
    chunk_size: int = 2000,
    flip: bool = False,
    style: str = "plain",
    after_chunk: Callable[[int], None] | None = None,
) -> BootstrapReport:
    """Embed ``rows`` (change rows: ``jude.bootstrap.selection``) into both stores under ``embedding_version``.

    See the module docstring. ``after_chunk(k)`` is called once chunk ``k`` is written
    (progress; the resumption tests raise from it to kill a run part-way). ``online=None`` fills the offline
    history alone (what a training-data backfill needs, e.g. the ranker's point-in-time features): an entity
    counts as stored when all its rows are in the history, and there is nothing to flip.
    """
    if chunk_size < 1:
        raise BootstrapError(f"chunk_size must be >= 1, got {chunk_size}")
    if flip and online is None:
        raise BootstrapError("flip=True needs the online store: the active version is an online-store pointer")
    started = time.perf_counter()
    entity_types = sorted(set(rows["entity_type"]))
    plan = plan_rows(rows, embedding_version, style)
    report = BootstrapReport(embedding_version, entity_types, rows=len(rows))
    upserts = plan[plan["op"] == "upsert"]
    report.distinct_texts = int(upserts[["entity_type", "text"]].drop_duplicates().shape[0])

    done_keys, vectors = _stored(history, entity_types, embedding_version)
    latest = plan.groupby(["entity_type", "entity_id"], sort=False).tail(1)
    report.entities = len(latest)
    # Entities already complete (history rows and online record) are skipped whole.
    online_hash: dict[tuple[str, str], str | None] = {}
    if online is not None:
        for etype in entity_types:
            online.add_live_version(etype, embedding_version)  # the nearline writes it too from now on
        for etype, group in latest.groupby("entity_type"):
            ids = group["entity_id"].tolist()
            online_hash.update(zip(((etype, i) for i in ids), online.get_hashes(etype, ids, embedding_version)))
    plan_keys = list(
        zip(plan["entity_type"], plan["entity_id"], plan["event_time_ms"].astype(int), plan["op"], plan["content_hash"])
    )
    plan["_in_history"] = [k in done_keys for k in plan_keys]
    in_history = plan.groupby(["entity_type", "entity_id"], sort=False)["_in_history"].all()
    complete = {
        key
        for key, h in zip(zip(latest["entity_type"], latest["entity_id"]), latest["content_hash"])
        if in_history[key] and (online is None or online_hash.get(key) == h)
    }
    report.skipped_stored = len(complete)
    is_complete = [key in complete for key in zip(plan["entity_type"], plan["entity_id"])]
    todo = plan[~np.asarray(is_complete, dtype=bool)]

    entities = todo[["entity_type", "entity_id"]].drop_duplicates()
    reused: set[str] = set()
    for k, start in enumerate(range(0, len(entities), chunk_size)):
        chunk_ids = entities.iloc[start : start + chunk_size]
        chunk = todo.merge(chunk_ids, on=["entity_type", "entity_id"])
        need = chunk[(chunk["op"] == "upsert")]
        reused.update(h for h in need["content_hash"] if h in vectors)
        fresh = need[~need["content_hash"].isin(vectors)].drop_duplicates("content_hash")
        for etype, texts in fresh.groupby("entity_type", sort=True):  # each type has its own token limit
            embedded = engine.encode(texts["text"].tolist(), etype)  # (n, D)
            vectors.update(zip(texts["content_hash"], embedded))
            report.inferences += len(texts)

        new_history = chunk[~chunk["_in_history"]]
        report.history_rows += history.append(
            [
                {
                    "entity_type": t,
                    "entity_id": i,
                    "event_time": int(ms),
                    "embedding_version": embedding_version,
                    "content_hash": h,
                    "op": op,
                    "vector": vectors[h] if op == "upsert" else None,
                }
                for t, i, ms, op, h in zip(
                    new_history["entity_type"],
                    new_history["entity_id"],
                    new_history["event_time_ms"],
                    new_history["op"],
                    new_history["content_hash"],
                )
            ]
        )
        if online is not None:  # the history alone when there is no online store
            last = chunk.groupby(["entity_type", "entity_id"], sort=False).tail(1)
            statuses = online.write_many(
                OnlineRecord(
                    entity_type=t,
                    entity_id=i,
                    embedding_version=embedding_version,
                    event_time_ms=int(ms),
                    op=op,
                    vector=vectors[h] if op == "upsert" else None,
                    content_hash=h,
                    model_version=model_version,
                )
                for t, i, ms, op, h in zip(
                    last["entity_type"], last["entity_id"], last["event_time_ms"], last["op"], last["content_hash"]
                )
            )
            report.online_applied += sum(s == WriteStatus.APPLIED for s in statuses)
            report.online_refused += sum(s == WriteStatus.REFUSED for s in statuses)
        report.chunks += 1
        if after_chunk is not None:
            after_chunk(k)
    report.reused_from_history = len(reused)

    if flip:
        report.previous_active = flip_active(online, rows, embedding_version)
        report.flipped = True
    report.seconds = time.perf_counter() - started
    return report


def flip_active(online: RedisOnlineStore, rows: pd.DataFrame, embedding_version: str) -> dict[str, str | None]:
    """Point readers of each entity type in ``rows`` at ``embedding_version``; returns the previous versions.

    Refused (:class:`BootstrapError`, nothing flipped) while a selected entity whose
    latest row is an upsert has no embedding of the version online. With jobs selected,
    the version's job index is built from the online store, checked and saved as the
    snapshot the servers load (``jude.retrieval.build.prepare_version``) before the flip.
    """
    latest = rows.sort_values("event_time_ms", kind="stable").groupby(["entity_type", "entity_id"]).tail(1)
    missing = _missing(online, latest, embedding_version)
    if missing:
        raise BootstrapError(
            f"not flipping the active version to {embedding_version!r}: {len(missing)} selected entities have "
            f"no embedding of it online (first: {missing[0]})"
        )
    if "job" in set(latest["entity_type"]):  # the servers' next job index, built and checked before the flip
        from jude.retrieval.build import prepare_version

        prepare_version(online, embedding_version, jobs=latest[latest["entity_type"] == "job"])
    return {etype: online.set_active(etype, embedding_version) for etype in sorted(set(latest["entity_type"]))}


def _missing(online: RedisOnlineStore, latest: pd.DataFrame, version: str) -> list[str]:
    """Entities whose latest row is an upsert but that have no record of ``version`` online."""
    out = []
    ups = latest[latest["op"] == "upsert"]
    for etype, group in ups.groupby("entity_type"):
        ids = group["entity_id"].tolist()
        out += [f"{etype}/{i}" for i, h in zip(ids, online.get_hashes(etype, ids, version)) if h is None]
    return out
