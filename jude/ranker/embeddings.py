"""Embedding features read from the offline history as of each impression, and the time-travel read.

**The history.** ``jude.stores.offline.DeltaHistory``: one row per processed change, per embedding
version. :func:`change_rows` replays the marketplace's synthetic change stream (``jude.data.changes``:
postings, edits, and the profile edits that follow applies) and :func:`fill_history` hands it to the
bootstrap's backfill (``jude.bootstrap.backfill``: template, content hash, dedup, each distinct text
embedded once, what the history already holds reused), without an online store.

**The reads.** :func:`read_vectors` is the offline store's point-in-time read (DuckDB ``ASOF JOIN``): the
entity's latest row with ``event_time <= ts``. An entity not yet embedded at ts (or deleted) is missing,
never given a later embedding; every read re-checks that no returned row is later than its query.
Reading at :data:`LATEST` instead gives the embedding as it is at the end of the history: what a
Lambda-style nightly snapshot joined to old impressions gives, the *time-travel* read.

**The views** (:data:`VIEWS`): which read the training rows and the test rows of a feature set use.
``champion_latest`` is the time-travel model as its team would evaluate it offline (latest everywhere);
``champion_latest_served`` is the same model as production runs it, fed the embeddings the online store
held at each impression (the honest figure for a model trained on the snapshot).

**The features** of a view: ``<view>.cosine`` (member vs job; missing if either is), and with
``projection`` the first ``projection_dim`` principal components of each vector (``<view>.member_pc0``,
``<view>.job_pc0``, ...), one PCA over the distinct member and job vectors of the training rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from jude.bootstrap.backfill import backfill
from jude.bootstrap.engines import Engine
from jude.bootstrap.selection import ROW_COLUMNS as CHANGE_ROW_COLUMNS
from jude.data.schema import Marketplace
from jude.ranker.features import RankerError
from jude.stores.offline import DeltaHistory

LATEST = int(np.iinfo(np.int64).max)  # a read as of this time returns each entity's latest embedding


@dataclass(frozen=True)
class View:
    """Where a feature set's embeddings come from: which model, and the read of its train and test rows."""

    model: str  # "base" | "champion"
    train_read: str  # "as_of" | "latest"
    test_read: str


VIEWS = {
    "base": View("base", "as_of", "as_of"),
    "champion": View("champion", "as_of", "as_of"),
    "champion_latest": View("champion", "latest", "latest"),  # time travel, evaluated the Lambda way
    "champion_latest_served": View("champion", "latest", "as_of"),  # the same model, served as of each impression
}


def change_rows(
    market: Marketplace, entity_types: Sequence[str], n_events: int, seed: int = 0, apply_edit_share: float = 0.0
) -> pd.DataFrame:
    """The change rows (``jude.bootstrap.selection.ROW_COLUMNS``) of ``entity_types`` in the synthetic stream.

    Without deletes: the marketplace's recommender shows a posting for up to 60 days and a member for the whole
    period whatever the stream says, so a posting closed (or an account deleted) in the stream would leave
    impressions with no embedding to read.
    """
    from jude.data.changes import ChangeStreamConfig, generate_change_stream

    cfg = ChangeStreamConfig(
        seed=seed,
        n_events=n_events,
        apply_edit_share=apply_edit_share,
        job_close_share=0.0,
        member_delete_share=0.0,
    )
    try:
        stream = generate_change_stream(market, cfg)
    except ValueError as e:
        raise RankerError(f"ranker.stream_events={n_events}: {e}") from None
    return stream.loc[stream["entity_type"].isin(list(entity_types)), CHANGE_ROW_COLUMNS].reset_index(drop=True)


def fill_history(
    rows: pd.DataFrame,
    engine: Engine,
    history: DeltaHistory,
    embedding_version: str,
    model_version: str = "",
    style: str = "plain",
    chunk_size: int = 2000,
) -> dict:
    """Backfill ``rows`` into the history under ``embedding_version`` (no online store); the run's counts."""
    report = backfill(rows, engine, None, history, embedding_version, model_version, chunk_size=chunk_size, style=style)
    return report.to_dict()


def check_versions(history: DeltaHistory, versions: dict[str, str], entity_types: Sequence[str]) -> None:
    """Every ``{role: version}`` has rows of every entity type in the history, else :class:`RankerError`."""
    for role, version in versions.items():
        for etype in entity_types:
            held = history.versions(etype)
            if version not in held:
                raise RankerError(
                    f"embedding version {version!r} (the {role} model) has no {etype} rows in the offline history "
                    f"at {history.uri} (its {etype} versions: {held or 'none'}); let the ranker build it "
                    f"(ranker.build_history: true) or fill it with the bootstrap pipeline (bootstrap.history: true, "
                    f"the same history_path)"
                )


def read_vectors(
    history: DeltaHistory, entity_type: str, version: str, entity_ids: Sequence[str], ts_ms: np.ndarray
) -> pd.DataFrame:
    """The embedding each entity had at each time (epoch ms; :data:`LATEST` for the latest), aligned with the input.

    Columns: found, event_time (ms, <NA> when missing), content_hash, vector (None when missing). Raises
    ``AssertionError`` if the store ever returned a row later than its query (the property the features rest on).
    """
    queries = pd.DataFrame({"entity_id": [str(i) for i in entity_ids], "ts": np.asarray(ts_ms, dtype=np.int64)})
    out = history.point_in_time(entity_type, version, queries)
    later = out["found"].to_numpy() & (out["event_time"].fillna(0).to_numpy(np.int64) > queries["ts"].to_numpy())
    if later.any():
        row = int(np.flatnonzero(later)[0])
        raise AssertionError(f"point-in-time read returned a later embedding: {out.iloc[row].to_dict()}")
    return out[["found", "event_time", "content_hash", "vector"]]


def to_ms(ts: pd.Series) -> np.ndarray:
    """Datetimes (naive = UTC) as int64 epoch milliseconds."""
    utc = pd.to_datetime(pd.Series(ts), utc=True)
    return ((utc - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(milliseconds=1)).to_numpy(dtype=np.int64)


@dataclass
class Reads:
    """One model's vectors for every row's member and job, as of the impression and latest."""

    member: dict[str, pd.DataFrame]  # read -> read_vectors frame, aligned with the rows
    job: dict[str, pd.DataFrame]


def read_model(history: DeltaHistory, version: str, rows: pd.DataFrame, member_entity: str = "profile") -> Reads:
    """Both reads (``as_of`` each impression, ``latest``) of one version for the rows' members and jobs."""
    at = {"as_of": to_ms(rows["ts"]), "latest": np.full(len(rows), LATEST, dtype=np.int64)}
    member = {r: read_vectors(history, member_entity, version, rows["member_id"], t) for r, t in at.items()}
    job = {r: read_vectors(history, "job", version, rows["job_id"], t) for r, t in at.items()}
    return Reads(member, job)


def view_features(
    rows: pd.DataFrame,
    reads: Reads,
    view: str,
    embedding_features: Sequence[str] = ("cosine",),
    projection_dim: int = 8,
) -> tuple[pd.DataFrame, dict]:
    """The embedding features of ``view`` for every row (train rows read by its train read, test rows by its
    test read), and their statistics (missing shares, rows whose embedding changed after the impression)."""
    spec = VIEWS[view]
    train = (rows["split"] == "train").to_numpy()
    member = _pick(reads.member, spec, train)
    job = _pick(reads.job, spec, train)
    out: dict[str, np.ndarray] = {}
    if "cosine" in embedding_features:
        out[f"{view}.cosine"] = _cosine(member["vector"], job["vector"])
    if "projection" in embedding_features:
        pca = _fit_projection(member[train], job[train], projection_dim)
        for side, frame in (("member", member), ("job", job)):
            comps = _project(pca, frame["vector"], projection_dim)  # (N, d)
            for i in range(projection_dim):
                out[f"{view}.{side}_pc{i}"] = comps[:, i]
    stats = {
        f"{side}_missing_{part}": float((~frame["found"].to_numpy()[mask]).mean()) if mask.any() else 0.0
        for side, frame in (("member", member), ("job", job))
        for part, mask in (("train", train), ("test", ~train))
    }
    return pd.DataFrame(out, index=rows.index), stats


def time_travel(reads: Reads, rows: pd.DataFrame) -> dict:
    """How much a latest read differs from the as-of read: the share of rows whose member (job) embedding
    changed between the impression and the end of the history, for the train and the test rows."""
    out = {}
    for part in ("train", "test"):
        mask = (rows["split"] == part).to_numpy()
        for side, r in (("member", reads.member), ("job", reads.job)):
            changed = r["as_of"]["content_hash"].to_numpy(object) != r["latest"]["content_hash"].to_numpy(object)
            out[f"{part}_{side}_changed"] = float(changed[mask].mean()) if mask.any() else 0.0
    return out


def _pick(read: dict[str, pd.DataFrame], spec: View, train: np.ndarray) -> pd.DataFrame:
    """Train rows from the view's train read, test rows from its test read (same row order)."""
    a, b = read[spec.train_read], read[spec.test_read]
    if spec.train_read == spec.test_read:
        return a.reset_index(drop=True)
    return pd.concat([a[train], b[~train]]).sort_index().reset_index(drop=True)


def _cosine(a: pd.Series, b: pd.Series) -> np.ndarray:
    out = np.full(len(a), np.nan)
    for i, (u, v) in enumerate(zip(a, b)):
        if u is not None and v is not None:
            nu, nv = float(np.linalg.norm(u)), float(np.linalg.norm(v))
            out[i] = float(np.dot(u, v)) / (nu * nv) if nu > 0 and nv > 0 else np.nan
    return out


def _fit_projection(member: pd.DataFrame, job: pd.DataFrame, dim: int):
    """PCA over the distinct member and job vectors of the training rows (by content hash)."""
    from sklearn.decomposition import PCA

    found = pd.concat([member[member["found"]], job[job["found"]]]).drop_duplicates("content_hash")
    if len(found) <= dim:
        raise RankerError(
            f"ranker.projection_dim={dim}: the training rows have only {len(found)} distinct embeddings to fit it on"
        )
    return PCA(n_components=dim, svd_solver="full").fit(np.stack(found["vector"].to_list()))


def _project(pca, vectors: pd.Series, dim: int) -> np.ndarray:
    out = np.full((len(vectors), dim), np.nan)
    found = np.array([v is not None for v in vectors])
    if found.any():
        out[found] = pca.transform(np.stack([v for v in vectors if v is not None]))
    return out
