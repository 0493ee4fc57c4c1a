"""Drift between two windows of entity embeddings: Evidently decides, plain numbers explain.

The embeddings are the features of every downstream ranker, so a silent shift in
what they encode must be caught. This module is pure: two :class:`EmbeddingSet`
(a reference window, usually the entities of the training period, and a current
window, the entities created or updated recently) go in; a :class:`DriftResult`
comes out. Nothing here embeds text or talks to a tracking server.

Detection is Evidently's ``EmbeddingsDrift`` metric (``evidently.metrics``; the
methods live in ``evidently.legacy.metrics.data_drift.embedding_drift_methods``):

- ``model`` (the default): a logistic classifier (SGD) is trained on half of the
  pooled rows to tell reference from current; the score is its ROC AUC on the
  other half. 0.5 means the windows are indistinguishable; 1.0 means every
  entity can be told apart. Under no drift the AUC of ``n`` test rows wobbles by
  about ``sqrt((n+1) / (3 n^2 / 4))`` (0.047 at 150 + 150), which is why the
  default threshold is 0.65, not Evidently's 0.55 meant for large windows.
- ``mmd``: the unbiased squared Maximum Mean Discrepancy with an RBF kernel
  whose width is the median pairwise distance. It builds the full
  ``(n + m)^2`` kernel matrix, so windows are sampled down to
  ``MonitorConfig.sample_size`` first.

Beside the verdict come statistics a person can read without knowing either
method: the cosine distance between the window centroids, the quantiles of the
vector norms (a broken pipeline that forgets to normalise shows here), and the
quantiles of each entity's cosine similarity to the reference centroid.

The HTML page is drawn by :mod:`jude.monitoring.report`.

Bad input raises a :class:`DriftInputError` that names what is wrong: an empty
or too small window, embeddings of different dimensions, windows embedded by
another model version, base model or templates version.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from jude.config import MonitorConfig
from jude.data.schema import ENTITY_TYPES

logger = logging.getLogger(__name__)

QUANTILES = (0.05, 0.5, 0.95)
# The provenance every EmbeddingSet carries; two windows are comparable only if all match.
PROVENANCE = ("model_version", "base_model", "templates_version")


class DriftInputError(ValueError):
    """Two windows that cannot be compared (empty, other dimension, other model)."""


class DriftAlert(RuntimeError):
    """Drift passed the configured threshold. The message carries the numbers."""

    def __init__(self, message: str, results: list[DriftResult]):
        super().__init__(message)
        self.results = results


@dataclass(frozen=True)
class EmbeddingSet:
    """One window of one entity type, embedded by one model.

    ``vectors`` is (N, D) float32, row i belongs to ``ids[i]``. The provenance
    fields say which model produced the vectors, so a reference computed by an
    earlier champion is never silently compared with today's embeddings.
    """

    entity_type: str
    ids: np.ndarray  # (N,) entity ids as str
    vectors: np.ndarray  # (N, D) float32
    model_version: str
    base_model: str
    templates_version: str
    window: str = "window"  # "reference" | "current", for messages

    def __post_init__(self) -> None:
        where = f"{self.window} window of {self.entity_type!r}"
        if self.entity_type not in ENTITY_TYPES:
            raise DriftInputError(f"{where}: entity_type must be one of {list(ENTITY_TYPES)}, got {self.entity_type!r}")
        vectors = np.asarray(self.vectors)
        if vectors.ndim != 2:
            raise DriftInputError(f"{where}: vectors must be a 2-D (N, D) array, got shape {vectors.shape}")
        ids = np.asarray(self.ids, dtype=object).astype(str)
        if len(ids) != len(vectors):
            raise DriftInputError(f"{where}: {len(ids)} ids but {len(vectors)} vectors")
        if not np.issubdtype(vectors.dtype, np.number):
            raise DriftInputError(f"{where}: vectors must be numeric, got dtype {vectors.dtype}")
        vectors = vectors.astype(np.float32, copy=False)
        bad = ~np.isfinite(vectors).all(axis=1)
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise DriftInputError(f"{where}: row {row} (id {str(ids[row])!r}) has a non-finite value (NaN or inf)")
        object.__setattr__(self, "vectors", vectors)
        object.__setattr__(self, "ids", ids)

    def __len__(self) -> int:
        return len(self.vectors)

    @property
    def dimension(self) -> int:
        return int(self.vectors.shape[1])

    def provenance(self) -> dict[str, str]:
        return {k: str(getattr(self, k)) for k in PROVENANCE}

    def sample(self, n: int, seed: int) -> EmbeddingSet:
        """At most ``n`` rows, drawn without replacement (same seed, same rows)."""
        if len(self) <= n:
            return self
        idx = np.sort(np.random.default_rng(seed).choice(len(self), size=n, replace=False))
        return EmbeddingSet(
            self.entity_type,
            self.ids[idx],
            self.vectors[idx],
            self.model_version,
            self.base_model,
            self.templates_version,
            self.window,
        )


# ---- tables <-> embedding sets (how windows travel between pipeline steps) ----------------

FRAME_COLUMNS = ("entity_type", "window", "entity_id", *PROVENANCE, "vector")


def to_frame(sets: list[EmbeddingSet]) -> pd.DataFrame:
    """Long table, one row per entity: entity_type, window, entity_id, provenance, vector (list of D floats)."""
    frames = []
    for s in sets:
        frames.append(
            pd.DataFrame(
                {
                    "entity_type": s.entity_type,
                    "window": s.window,
                    "entity_id": s.ids,
                    **{k: str(getattr(s, k)) for k in PROVENANCE},
                    "vector": list(s.vectors),
                },
                columns=list(FRAME_COLUMNS),
            )
        )
    if not frames:
        return pd.DataFrame(columns=list(FRAME_COLUMNS))
    return pd.concat(frames, ignore_index=True)


def from_frame(df: pd.DataFrame) -> dict[tuple[str, str], EmbeddingSet]:
    """Inverse of :func:`to_frame`: {(entity_type, window): EmbeddingSet}.

    A window whose rows disagree on the provenance (two models mixed in one
    window) is an error naming the column and the values found.
    """
    missing = [c for c in FRAME_COLUMNS if c not in df.columns]
    if missing:
        raise DriftInputError(f"embeddings table: missing column(s) {missing}; expected {list(FRAME_COLUMNS)}")
    out: dict[tuple[str, str], EmbeddingSet] = {}
    for (entity_type, window), g in df.groupby(["entity_type", "window"], sort=False):
        prov = {}
        for k in PROVENANCE:
            values = sorted(set(map(str, g[k])))
            if len(values) != 1:
                raise DriftInputError(
                    f"embeddings table: the {window} window of {entity_type!r} mixes {k} values {values}"
                )
            prov[k] = values[0]
        dims = sorted({len(v) for v in g["vector"]})
        if len(dims) != 1:
            raise DriftInputError(
                f"embeddings table: the {window} window of {entity_type!r} mixes vector dimensions {dims}"
            )
        vectors = np.stack([np.asarray(v, dtype=np.float32) for v in g["vector"]]) if len(g) else np.zeros((0, 0))
        out[(str(entity_type), str(window))] = EmbeddingSet(
            str(entity_type), g["entity_id"].to_numpy(), vectors, window=str(window), **prov
        )
    return out


# ---- checks ----------------------------------------------------------------------------------


def check_comparable(reference: EmbeddingSet, current: EmbeddingSet, min_entities: int = 2) -> None:
    """Raise :class:`DriftInputError` naming what differs between the two windows."""
    for s in (reference, current):
        if len(s) < min_entities:
            what = "is empty (0 entities)" if len(s) == 0 else f"has {len(s)} entities"
            raise DriftInputError(
                f"the {s.window} window of {s.entity_type!r} {what}; at least {min_entities} are needed "
                f"(monitor.min_entities) - widen the window (monitor.current_days / monitor.reference_end)"
            )
    if reference.entity_type != current.entity_type:
        raise DriftInputError(
            f"entity types differ: reference {reference.entity_type!r}, current {current.entity_type!r}"
        )
    if reference.dimension != current.dimension:
        raise DriftInputError(
            f"{reference.entity_type!r}: embeddings of different dimensions: reference {reference.dimension}, "
            f"current {current.dimension}"
        )
    for k in PROVENANCE:
        a, b = str(getattr(reference, k)), str(getattr(current, k))
        if a != b:
            raise DriftInputError(
                f"{reference.entity_type!r}: the windows come from different models: {k} is {a!r} in the reference "
                f"and {b!r} in the current window; re-embed the reference with the current model"
            )


# ---- readable statistics ---------------------------------------------------------------------


@dataclass(frozen=True)
class DriftStats:
    """Numbers a person can read: how far the centres moved, how the norms and similarities spread."""

    centroid_cosine_distance: float  # 1 - cos(mean(reference), mean(current)); 0 = same direction
    reference_norm_quantiles: dict[str, float]  # "p5", "p50", "p95" of ||x||
    current_norm_quantiles: dict[str, float]
    reference_similarity_quantiles: dict[str, float]  # of cos(x, reference centroid), x in reference
    current_similarity_quantiles: dict[str, float]  # of cos(x, reference centroid), x in current


def _quantiles(x: np.ndarray) -> dict[str, float]:
    return {f"p{round(q * 100)}": float(v) for q, v in zip(QUANTILES, np.quantile(x, QUANTILES))}


def _unit(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.maximum(norms, 1e-12)


def embedding_stats(reference: np.ndarray, current: np.ndarray) -> DriftStats:
    """Statistics of two (N, D) and (M, D) arrays (any scale; the cosines normalise)."""
    reference = np.asarray(reference, dtype=np.float64)
    current = np.asarray(current, dtype=np.float64)
    if reference.ndim != 2 or current.ndim != 2 or reference.shape[1] != current.shape[1]:
        raise DriftInputError(
            f"embedding_stats needs (N, D) and (M, D) arrays, got {reference.shape} and {current.shape}"
        )
    if len(reference) == 0 or len(current) == 0:
        raise DriftInputError(f"embedding_stats needs non-empty windows, got {len(reference)} and {len(current)} rows")
    c_ref = reference.mean(axis=0)  # (D,)
    c_cur = current.mean(axis=0)  # (D,)
    cos = float(_unit(c_ref) @ _unit(c_cur))
    u_ref = _unit(c_ref)
    return DriftStats(
        centroid_cosine_distance=float(np.clip(1.0 - cos, 0.0, 2.0)),
        reference_norm_quantiles=_quantiles(np.linalg.norm(reference, axis=1)),
        current_norm_quantiles=_quantiles(np.linalg.norm(current, axis=1)),
        reference_similarity_quantiles=_quantiles(_unit(reference) @ u_ref),
        current_similarity_quantiles=_quantiles(_unit(current) @ u_ref),
    )


# ---- Evidently --------------------------------------------------------------------------------


@dataclass(frozen=True)
class MethodScore:
    method: str  # "model" (ROC AUC) | "mmd" (MMD^2)
    score: float
    threshold: float

    @property
    def drifted(self) -> bool:
        return self.score > self.threshold  # Evidently's own rule: score > threshold

    def describe(self) -> str:
        what = {"model": "classifier ROC AUC", "mmd": "MMD^2"}[self.method]
        sign = ">" if self.drifted else "<="
        return f"{self.method} ({what}) {self.score:.4f} {sign} threshold {self.threshold:g}"


def evidently_method(method: str, cfg: MonitorConfig) -> Any:
    """The Evidently drift method object, with our threshold and bootstrap off (a fixed, stated threshold)."""
    from evidently.metrics.embeddings import MMDDriftMethod, ModelDriftMethod

    if method == "model":
        return ModelDriftMethod(threshold=cfg.model_threshold, bootstrap=False)
    if method == "mmd":
        return MMDDriftMethod(threshold=cfg.mmd_threshold, bootstrap=False)
    raise ValueError(f"monitor.method must be 'model' or 'mmd', got {method!r}")


def _methods(cfg: MonitorConfig) -> list[str]:
    out = [cfg.method]
    if cfg.second_opinion != "none" and cfg.second_opinion != cfg.method:
        out.append(cfg.second_opinion)
    return out


def _threshold(method: str, cfg: MonitorConfig) -> float:
    return cfg.model_threshold if method == "model" else cfg.mmd_threshold


def _frame(vectors: np.ndarray, columns: list[str]) -> pd.DataFrame:
    return pd.DataFrame(vectors.astype(np.float64), columns=columns)


@dataclass
class DriftResult:
    """The verdict for one entity type."""

    entity_type: str
    n_reference: int
    n_current: int
    n_sampled_reference: int
    n_sampled_current: int
    scores: list[MethodScore]  # scores[0] decides the alert; the rest are second opinions
    stats: DriftStats
    provenance: dict[str, str]
    snapshot: Any = field(default=None, repr=False, compare=False)  # the Evidently Snapshot, when rendered

    @property
    def primary(self) -> MethodScore:
        return self.scores[0]

    @property
    def drifted(self) -> bool:
        return self.primary.drifted

    def metrics(self) -> dict[str, float]:
        """Flat numbers for MLflow / ZenML: ``<entity>/<method>``, ``<entity>/centroid_cosine_distance``..."""
        e = self.entity_type
        out = {f"{e}/{s.method}": float(s.score) for s in self.scores}
        out[f"{e}/drifted"] = float(self.drifted)
        out[f"{e}/centroid_cosine_distance"] = self.stats.centroid_cosine_distance
        out[f"{e}/n_reference"] = float(self.n_reference)
        out[f"{e}/n_current"] = float(self.n_current)
        out[f"{e}/current_similarity_p50"] = self.stats.current_similarity_quantiles["p50"]
        out[f"{e}/reference_similarity_p50"] = self.stats.reference_similarity_quantiles["p50"]
        out[f"{e}/current_norm_p50"] = self.stats.current_norm_quantiles["p50"]
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "entity_type": self.entity_type,
            "drifted": self.drifted,
            "n_reference": self.n_reference,
            "n_current": self.n_current,
            "n_sampled_reference": self.n_sampled_reference,
            "n_sampled_current": self.n_sampled_current,
            "scores": [{**asdict(s), "drifted": s.drifted} for s in self.scores],
            "stats": asdict(self.stats),
            "provenance": dict(self.provenance),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DriftResult:
        """Inverse of :meth:`to_dict` (without the Evidently snapshot)."""
        return cls(
            entity_type=d["entity_type"],
            n_reference=int(d["n_reference"]),
            n_current=int(d["n_current"]),
            n_sampled_reference=int(d["n_sampled_reference"]),
            n_sampled_current=int(d["n_sampled_current"]),
            scores=[MethodScore(s["method"], float(s["score"]), float(s["threshold"])) for s in d["scores"]],
            stats=DriftStats(**d["stats"]),
            provenance=dict(d["provenance"]),
        )

    def describe(self) -> str:
        others = "; ".join(s.describe() for s in self.scores[1:])
        return (
            f"{self.entity_type}: {self.primary.describe()}"
            + (f" (second opinion: {others})" if others else "")
            + f"; centroid cosine distance {self.stats.centroid_cosine_distance:.4f}"
            + f"; median similarity to the reference centroid {self.stats.reference_similarity_quantiles['p50']:.3f}"
            f" (reference) vs {self.stats.current_similarity_quantiles['p50']:.3f} (current)"
            + f"; {self.n_reference} reference vs {self.n_current} current entities"
            + f"; model version {self.provenance.get('model_version')}"
        )


def detect_drift(
    reference: EmbeddingSet, current: EmbeddingSet, cfg: MonitorConfig | None = None, report: bool = True
) -> DriftResult:
    """Compare two windows of one entity type.

    With ``report=True`` the scores come from an Evidently ``Report`` of
    ``EmbeddingsDrift`` metrics (one per method), and the snapshot is kept for
    :func:`jude.monitoring.report.render_html` (Evidently also runs a t-SNE of up to 2,500 rows per
    window for its picture, which dominates the time). With ``report=False``
    the same Evidently drift method objects are called directly, without the
    picture: same numbers, a fraction of the time.
    """
    cfg = cfg or MonitorConfig()
    check_comparable(reference, current, cfg.min_entities)
    ref = reference.sample(cfg.sample_size, cfg.seed)
    cur = current.sample(cfg.sample_size, cfg.seed + 1)
    columns = [f"{reference.entity_type}_{i}" for i in range(reference.dimension)]
    methods = _methods(cfg)

    snapshot = None
    values: list[float] = []
    if report:
        from evidently import DataDefinition, Dataset, Report
        from evidently.metrics import EmbeddingsDrift

        definition = DataDefinition(numerical_columns=columns, embeddings={reference.entity_type: columns})
        ref_ds = Dataset.from_pandas(_frame(ref.vectors, columns), data_definition=definition)
        cur_ds = Dataset.from_pandas(_frame(cur.vectors, columns), data_definition=definition)
        metrics = [
            EmbeddingsDrift(embeddings_name=reference.entity_type, drift_method=evidently_method(m, cfg))
            for m in methods
        ]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", category=FutureWarning)
            snapshot = Report(metrics).run(current_data=cur_ds, reference_data=ref_ds)
        values = [float(m["value"]) for m in snapshot.dict()["metrics"]]
        if len(values) != len(methods):
            raise RuntimeError(f"Evidently returned {len(values)} metric values for {len(methods)} methods")
    else:
        for m in methods:
            # A fresh frame per call: Evidently's model method adds a 'target' column in place.
            score, _, _ = evidently_method(m, cfg)(_frame(cur.vectors, columns), _frame(ref.vectors, columns))
            values.append(float(score))

    return DriftResult(
        entity_type=reference.entity_type,
        n_reference=len(reference),
        n_current=len(current),
        n_sampled_reference=len(ref),
        n_sampled_current=len(cur),
        scores=[MethodScore(m, v, _threshold(m, cfg)) for m, v in zip(methods, values)],
        stats=embedding_stats(ref.vectors, cur.vectors),
        provenance=reference.provenance(),
        snapshot=snapshot,
    )


# ---- the alert -------------------------------------------------------------------------------


def check_alert(results: list[DriftResult], cfg: MonitorConfig | None = None) -> list[str]:
    """Raise :class:`DriftAlert` when any entity type drifted (``alert: fail``), or log a warning (``warn``).

    Returns the messages of the drifted entity types (empty when none drifted).
    """
    cfg = cfg or MonitorConfig()
    drifted = [r for r in results if r.drifted]
    messages = [r.describe() for r in drifted]
    if not drifted:
        return []
    text = f"embedding drift detected in {len(drifted)} of {len(results)} entity type(s): " + " | ".join(messages)
    if cfg.alert == "fail":
        raise DriftAlert(text, drifted)
    logger.warning(text)
    warnings.warn(text, stacklevel=2)
    return messages
