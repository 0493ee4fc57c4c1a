"""Building a version's job index: from the online store (a server's start), the Delta history, or a snapshot.

**From the online store** (:func:`build_from_store`): the feed's newest entry id is read
*first*, then every ``{prefix}emb:{version}:job:*`` record is scanned (tombstones too,
so a late older upsert stays refused) with the jobs' attributes; the follower then
applies the feed from that id on. A write that lands during the scan is either in the
scan, or in the feed after the id, or both: last write wins makes both harmless.

**From the history** (:func:`build_from_history`): the latest row per job of the
version (the tie rule of the online store), at ``as_of_ms`` or now; what the bench's
daily and weekly rebuilds are, and a server's fallback when Redis lost its records.

**Snapshots** (:func:`prepare_version`, :func:`load_or_build`): the bootstrap builds the
new version's index from the online store, checks it against the store (the same live
jobs), and saves it under ``<index_dir>/<version>/`` with the feed position *before* it
flips ``active``; a server that sees the flip loads it and follows the feed from there
(or rebuilds from the store when the snapshot is missing or its position was trimmed).
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from jude.config.retrieval import RetrievalConfig
from jude.retrieval.feed import FeedPosition, IndexFeed
from jude.retrieval.index import IndexUpdate, JobIndex
from jude.stores.online import DTYPES, RedisOnlineStore, check_version

log = logging.getLogger(__name__)
_CHUNK = 1000


def new_index(version: str, dim: int, cfg: RetrievalConfig, kind: str | None = None) -> JobIndex:
    return JobIndex(
        version,
        dim,
        kind or cfg.index,
        nlist=cfg.nlist,
        nprobe=cfg.nprobe,
        min_train=cfg.min_train,
        retrain_factor=cfg.retrain_factor,
    )


def scan_store(store: RedisOnlineStore, version: str, entity_type: str = "job") -> list[IndexUpdate]:
    """Every record of ``version`` and ``entity_type`` in the online store, tombstones as deletes."""
    check_version(version)
    pattern = re.sub(r"([\\*?\[\]])", r"\\\1", store.key(entity_type, "", version)) + "*"
    cut = len(store.key(entity_type, "", version))
    keys = list(store.client.scan_iter(match=pattern, count=1000))
    out: list[IndexUpdate] = []
    for start in range(0, len(keys), _CHUNK):
        chunk = keys[start : start + _CHUNK]
        pipe = store.client.pipeline(transaction=False)
        for key in chunk:
            pipe.hmget(key, b"vec", b"dtype", b"hash", b"ts", b"del")
        for key, (vec, dtype, h, ts, deleted) in zip(chunk, pipe.execute()):
            if ts is None:
                continue  # expired between the scan and the read
            job_id = key.decode()[cut:]
            if deleted == b"1":
                out.append(IndexUpdate(job_id, "delete", int(ts)))
            elif vec is not None:
                v = np.frombuffer(vec, dtype=DTYPES[dtype.decode()]).astype(np.float32)
                out.append(IndexUpdate(job_id, "upsert", int(ts), h.decode(), v))
    return out


def _with(u: IndexUpdate, attrs: tuple[str | None, bool | None]) -> IndexUpdate:
    """``u`` with the job's (location, remote)."""
    return u if u.op == "delete" else IndexUpdate(u.entity_id, u.op, u.event_time_ms, u.content_hash, u.vector, *attrs)


def _with_attrs(updates: list[IndexUpdate], feed: IndexFeed | None) -> list[IndexUpdate]:
    if feed is None:
        return updates
    ids = [u.entity_id for u in updates if u.op == "upsert"]
    attrs = dict(zip(ids, feed.read_attrs(ids)))
    return [
        u
        if u.op == "delete"
        else IndexUpdate(u.entity_id, u.op, u.event_time_ms, u.content_hash, u.vector, *attrs[u.entity_id])
        for u in updates
    ]


def _index_of(updates: list[IndexUpdate], version: str, cfg: RetrievalConfig, dim: int | None, kind: str | None):
    dims = {u.vector.shape[0] for u in updates if u.op == "upsert"}
    if len(dims) > 1:
        raise ValueError(f"job vectors of version {version!r} have mixed dimensions {sorted(dims)}")
    dim = dims.pop() if dims else dim
    if dim is None:
        raise LookupError(f"no job of embedding version {version!r} to build an index from (and no dimension given)")
    index = new_index(version, dim, cfg, kind)
    index.apply(updates)
    if index.needs_retrain():
        index.retrain()
    return index


def build_from_store(
    store: RedisOnlineStore,
    feed: IndexFeed | None,
    version: str,
    cfg: RetrievalConfig,
    *,
    dim: int | None = None,
    kind: str | None = None,
) -> tuple[JobIndex, FeedPosition]:
    """The version's index from the online store -> (index, feed position to follow from)."""
    position = feed.position(version) if feed is not None else FeedPosition()
    updates = _with_attrs(scan_store(store, version), feed)
    index = _index_of(updates, version, cfg, dim, kind)
    log.info("job index %s built from the online store: %d jobs (%s)", version, len(index), index.kind)
    return index, position


def latest_rows(history: pd.DataFrame, as_of_ms: int | None = None) -> pd.DataFrame:
    """The latest row per entity at or before ``as_of_ms`` by the online store's order (delete above upsert, hash)."""
    rows = history if as_of_ms is None else history[history["event_time"] <= as_of_ms]
    rows = rows.assign(_rank=(rows["op"] == "delete").astype(int), _h=rows["content_hash"].fillna(""))
    rows = rows.sort_values(["entity_id", "event_time", "_rank", "_h"], kind="stable")
    return rows.groupby("entity_id", sort=False).tail(1).drop(columns=["_rank", "_h"])


def history_updates(history: pd.DataFrame, as_of_ms: int | None = None) -> list[IndexUpdate]:
    latest = latest_rows(history, as_of_ms)
    out = []
    for r in latest.itertuples(index=False):
        if r.op == "delete":
            out.append(IndexUpdate(r.entity_id, "delete", int(r.event_time)))
        else:
            out.append(IndexUpdate(r.entity_id, "upsert", int(r.event_time), r.content_hash, np.asarray(r.vector)))
    return out


def build_from_history(
    history,
    version: str,
    cfg: RetrievalConfig,
    *,
    as_of_ms: int | None = None,
    feed: IndexFeed | None = None,
    attrs: Callable[[str], tuple[str | None, bool | None]] | None = None,
    kind: str | None = None,
    dim: int | None = None,
) -> JobIndex:
    """The version's index as of ``as_of_ms`` (None: everything) from a ``DeltaHistory`` or its rows."""
    rows = history if isinstance(history, pd.DataFrame) else history.read(entity_type="job", version=version)
    rows = rows[(rows["entity_type"] == "job") & (rows["embedding_version"] == version)]
    updates = _with_attrs(history_updates(rows, as_of_ms), feed)
    if attrs is not None:
        updates = [
            u
            if u.op == "delete"
            else IndexUpdate(u.entity_id, u.op, u.event_time_ms, u.content_hash, u.vector, *attrs(u.entity_id))
            for u in updates
        ]
    return _index_of(updates, version, cfg, dim, kind)


# ---- snapshots: the bootstrap builds the next version's index before it flips ---------------
def snapshot_dir(cfg: RetrievalConfig, version: str) -> Path:
    """``<index_dir>/<version>``; a relative ``index_dir`` is under ``$JUDE_HOME`` (or the working directory)."""
    root = Path(cfg.index_dir)
    if not root.is_absolute():
        root = Path(os.environ.get("JUDE_HOME", os.getcwd())) / root
    return root / check_version(version)


def prepare_version(
    store: RedisOnlineStore,
    version: str,
    cfg: RetrievalConfig | None = None,
    jobs: pd.DataFrame | None = None,
) -> dict:
    """Build ``version``'s job index from the online store, check it, save its snapshot (before the flip).

    ``jobs`` (entity_id, event_time_ms, fields) gives the jobs' filter attributes. The
    check: the index holds exactly the jobs the online store holds live for the version;
    a ``ValueError`` otherwise (the bootstrap then does not flip).
    """
    cfg = cfg or RetrievalConfig()
    feed = IndexFeed(store.client, prefix=store.prefix, maxlen=cfg.feed_maxlen)
    if jobs is not None and len(jobs):
        feed.write_attrs(
            (r.entity_id, int(r.event_time_ms), (r.fields or {}).get("location"), (r.fields or {}).get("remote"))
            for r in jobs.itertuples(index=False)
            if isinstance(r.fields, dict)
        )
    index, position = build_from_store(store, feed, version, cfg)
    _check_built(index, [] if jobs is None else jobs.loc[jobs["op"] == "upsert", "entity_id"].tolist())
    extra = {"feed_position": position.entry_id, "feed_removed": position.removed}
    path = index.save(snapshot_dir(cfg, version), extra=extra)
    log.info("job index %s: %d jobs, snapshot %s (feed position %s)", version, len(index), path, position.entry_id)
    return {"jobs": len(index), "snapshot": str(path), **extra, **index.stats()}


def _check_built(index: JobIndex, expected: list[str], sample: int = 64) -> None:
    missing = [j for j in expected if not index.contains(j)]
    if missing:
        raise ValueError(
            f"the job index of {index.version!r} lacks {len(missing)} bootstrapped jobs (first: {missing[0]}); "
            f"not flipping"
        )
    live = index.live_ids()
    rng = np.random.default_rng(0)
    for job_id in rng.choice(live, min(sample, len(live)), replace=False) if live else []:
        vec = index.exact.reconstruct(index._ids[job_id])
        hits = index.search(vec, 1)
        if not hits or hits[0].score < 0.999:
            raise ValueError(f"the job index of {index.version!r} does not find job {job_id!r} by its own vector")


def load_or_build(
    store: RedisOnlineStore, feed: IndexFeed, version: str, cfg: RetrievalConfig
) -> tuple[JobIndex, FeedPosition]:
    """The bootstrap's snapshot of ``version`` if it is there and its feed position is not trimmed, else a rebuild."""
    path = snapshot_dir(cfg, version)
    if (path / "state.json").exists():
        try:
            index, state = JobIndex.load(path)
            position = FeedPosition(state.get("feed_position", "0-0"), int(state.get("feed_removed", 0)))
            if not feed.trimmed_past(version, position):
                if index.kind == cfg.index:
                    index.nprobe = cfg.nprobe
                    log.info("job index %s loaded from %s (feed position %s)", version, path, position.entry_id)
                    return index, position
        except (OSError, ValueError, KeyError) as e:
            log.warning("job index snapshot %s unusable (%s); rebuilding from the online store", path, e)
    return build_from_store(store, feed, version, cfg)
