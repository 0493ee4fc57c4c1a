"""The ranker from its config: rows, models, history, embedding features, evaluation (what the steps call)."""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from jude.config import DataConfig, EvalConfig, ModelConfig, RankerConfig, TrainConfig
from jude.data.schema import Marketplace
from jude.ranker.embeddings import (
    VIEWS,
    change_rows,
    check_versions,
    fill_history,
    read_model,
    time_travel,
    view_features,
)
from jude.ranker.features import RankerError, impression_rows, member_split, standard_features, with_truth
from jude.ranker.metrics import Outcomes, evaluate, interval, member_resamples, metric_names, paired_interval, tiebreak
from jude.ranker.model import FEATURE_SETS, SERVED, feature_columns, fit_ranker, predict, served_columns
from jude.stores.offline import DeltaHistory

# Differences reported with a paired interval: (a, b) reads "a minus b".
COMPARISONS = (
    ("champion", "standard"),  # what the champion's embeddings add to a ranker without embeddings
    ("base", "standard"),
    ("champion", "base"),  # fine-tuning, in business terms
    ("champion_latest", "champion"),  # what time travel does to the offline figure
    (SERVED, "champion"),  # what the time-travel model does when served as of each impression
)


@dataclass(frozen=True)
class EmbeddingModel:
    """One embedding version of the comparison: its model and how the history names it."""

    role: str  # "base" | "champion"
    embedding_version: str
    label: str  # how reports name the model: <name>/<version>, a path, or the base model's name
    model_dir: str | None = None  # a saved model; None: the base model of the model section

    def to_dict(self) -> dict:
        return asdict(self)


# ----------------------------------------------------------------------------- rows


def build_rows(
    jobs: pd.DataFrame,
    members: pd.DataFrame,
    interactions: pd.DataFrame,
    data: DataConfig,
    train: TrainConfig,
    eval: EvalConfig,
    ranker: RankerConfig,
) -> tuple[pd.DataFrame, dict]:
    """Impression rows (train and test) with outcomes, truth grade and the standard features; and their counts."""
    split = member_split(jobs, members, interactions, data, eval, train)
    rows = with_truth(impression_rows(interactions, split), jobs, members)
    feats = standard_features(rows, jobs, members, interactions, ranker.features)
    out = pd.concat([rows, feats], axis=1)
    info: dict = {"t_val": str(split.t_val), "t_test": str(split.t_test)}
    for part in ("train", "test"):
        sub = out[out["split"] == part]
        info |= {
            f"{part}_rows": int(len(sub)),
            f"{part}_members": int(sub["member_id"].nunique()),
            f"{part}_apply_rate": float(sub["applied"].mean()),
        }
    return out, info


# ----------------------------------------------------------------------------- models and history


def base_version(model: ModelConfig) -> str:
    """``base-<model name>-<8 hex of the model section>``: another max length or pooling is another version."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", Path(model.base_model).name or "model").strip("-._") or "model"
    digest = hashlib.sha1(model.model_dump_json().encode()).hexdigest()[:8]
    return f"base-{name[:100]}-{digest}"


def resolve_models(
    ranker: RankerConfig, model: ModelConfig, tracking_uri: str | None = None
) -> dict[str, EmbeddingModel]:
    """The champion (``ranker.model_uri``, resolved and downloaded pinned) and the base model (``model``)."""
    from jude.registry.mlflow_registry import download_model
    from jude.registry.uri import ModelNotFoundError, NoChampionError, resolve

    try:
        resolved = resolve(ranker.model_uri, tracking_uri)
    except NoChampionError as e:
        raise RankerError(f"ranker.model_uri={ranker.model_uri!r}: {e}") from None
    except ModelNotFoundError as e:
        raise RankerError(
            f"ranker.model_uri={ranker.model_uri!r} does not resolve: {e}. Run `make train` first (it registers "
            f"the champion), or set ranker.model_uri to a models:/ URI, a model directory or 'minilm'"
        ) from None
    version = ranker.champion_embedding_version or (
        f"{resolved.name}-{resolved.version}" if resolved.registered else None
    )
    if version is None:
        raise RankerError(
            f"ranker.champion_embedding_version must be set for a model outside the registry, got None "
            f"(model_uri={ranker.model_uri!r})"
        )
    model_dir = str(download_model(resolved, tracking_uri=tracking_uri))
    base = ranker.base_embedding_version or base_version(model)
    if base == version:
        raise RankerError(f"the base and champion embedding versions must differ, both are {version!r}")
    return {
        "base": EmbeddingModel("base", base, model.base_model, None),
        "champion": EmbeddingModel("champion", version, resolved.label, model_dir),
    }


def history_path(ranker: RankerConfig) -> str:
    """``ranker.history_path``, else ``.jude/ranker/history`` under ``$JUDE_HOME`` (or the working directory)."""
    if ranker.history_path:
        return ranker.history_path
    return str(Path(os.environ.get("JUDE_HOME", os.getcwd())).resolve() / ".jude" / "ranker" / "history")


class _LazyEngine:
    """The bulk engine of one model, loaded on the first text it must embed (a filled history loads nothing)."""

    def __init__(self, model: EmbeddingModel, model_cfg: ModelConfig, ranker: RankerConfig):
        self.model, self.model_cfg, self.ranker = model, model_cfg, ranker
        self._encoder = None

    def _load(self):
        if self._encoder is None:
            from jude.bootstrap.bulk import BulkEncoder, BulkOptions
            from jude.modeling.embedder import Embedder

            options = BulkOptions(token_budget=self.ranker.token_budget, threads=self.ranker.threads)
            embedder = (
                Embedder.load(self.model.model_dir) if self.model.model_dir else Embedder.from_base(self.model_cfg)
            )
            self._encoder = BulkEncoder(embedder, options)
        return self._encoder

    @property
    def inferences(self) -> int:
        return 0 if self._encoder is None else self._encoder.inferences

    @property
    def dimension(self) -> int:
        return self._load().dimension

    def encode(self, texts: list[str], entity_type: str | None = None) -> np.ndarray:
        return self._load().encode(texts, entity_type)


def template_style(model: EmbeddingModel, model_cfg: ModelConfig) -> str:
    """The template style the model was trained with (its ``jude.json``; the model section for the base)."""
    if model.model_dir is None:
        return model_cfg.template_style
    from jude.modeling.model_dir import META_FILE, ModelDir

    if not (Path(model.model_dir) / META_FILE).exists():  # a plain sentence-transformers directory
        return "plain"
    return ModelDir(model.model_dir).meta.template_style


def fill(
    ranker: RankerConfig,
    models: dict[str, EmbeddingModel],
    market: Marketplace,
    model_cfg: ModelConfig,
    member_entity: str = "profile",
) -> dict:
    """Backfill the history of every model from the change stream (``ranker.build_history``), or check that the
    history holds them; returns what was done, per model."""
    history = DeltaHistory(history_path(ranker))
    entity_types = [member_entity, "job"]
    summary: dict = {"history_path": history.uri, "built": ranker.build_history, "models": {}}
    if ranker.build_history:
        rows = change_rows(market, entity_types, ranker.stream_events, ranker.stream_seed, ranker.apply_edit_share)
        summary["change_rows"] = int(len(rows))
        for role, m in models.items():
            engine = _LazyEngine(m, model_cfg, ranker)
            report = fill_history(
                rows,
                engine,
                history,
                m.embedding_version,
                m.label,
                template_style(m, model_cfg),
                ranker.chunk_size,
            )
            summary["models"][role] = {
                "embedding_version": m.embedding_version,
                **{k: report[k] for k in ("distinct_texts", "inferences", "reused_from_history", "history_rows")},
                "seconds": report["seconds"],
            }
    check_versions(history, {r: m.embedding_version for r, m in models.items()}, entity_types)
    return summary


# ----------------------------------------------------------------------------- features


def embedding_features(
    rows: pd.DataFrame, ranker: RankerConfig, models: dict[str, EmbeddingModel], member_entity: str = "profile"
) -> tuple[pd.DataFrame, dict]:
    """Every view's embedding features (``jude.ranker.embeddings.VIEWS``) for the rows, and their statistics."""
    history = DeltaHistory(history_path(ranker))
    check_versions(history, {r: m.embedding_version for r, m in models.items()}, [member_entity, "job"])
    reads = {role: read_model(history, m.embedding_version, rows, member_entity) for role, m in models.items()}
    frames, stats = [], {}
    for view, spec in VIEWS.items():
        frame, st = view_features(rows, reads[spec.model], view, ranker.embedding_features, ranker.projection_dim)
        frames.append(frame)
        stats[view] = st
    stats["time_travel"] = time_travel(reads["champion"], rows)
    return pd.concat(frames, axis=1), stats


# ----------------------------------------------------------------------------- evaluation


@dataclass
class RankerResult:
    """What the evaluation found: per-set values with intervals, paired differences, test scores."""

    names: list[str]  # metric names (metric_names(top_k))
    values: dict[str, dict[str, tuple[float, float, float]]]  # set -> metric -> (value, low, high)
    deltas: dict[str, dict[str, tuple[float, float, float]]]  # "a_vs_b" -> metric -> (difference, low, high)
    scores: dict[str, np.ndarray]  # set -> P(apply) of each test row
    applied: np.ndarray  # (test rows,) the outcome
    context: dict = field(default_factory=dict)

    def flat_metrics(self) -> dict[str, float]:
        """The MLflow metrics: ranker/<set>/<metric> with _ci_low/_ci_high, ranker/delta/<a>_vs_<b>/<metric>."""
        out = {}
        for group, table in (("", self.values), ("delta/", self.deltas)):
            for name, metrics in table.items():
                for metric, (value, low, high) in metrics.items():
                    key = f"ranker/{group}{name}/{metric}"
                    out |= {key: value, f"{key}_ci_low": low, f"{key}_ci_high": high}
        return {k: float(v) for k, v in out.items() if np.isfinite(v)}


def evaluate_ranker(rows: pd.DataFrame, features: pd.DataFrame, ranker: RankerConfig) -> RankerResult:
    """Train one apply model per feature set on the training rows; score the test rows; bootstrap the members."""
    train = (rows["split"] == "train").to_numpy()
    test = ~train
    X = pd.concat([rows[list(ranker.features)], features], axis=1)
    y = rows["applied"].to_numpy(bool)
    tested = rows[test]
    test_rows = Outcomes.build(
        tested["member_id"], tested["applied"], tested["dismissed"], tested["truth_grade"], ranker.qualified_grade
    )
    resamples = member_resamples(test_rows.n_members, ranker.bootstrap_samples, ranker.seed)
    ties = tiebreak(int(test.sum()), ranker.seed)

    scores: dict[str, np.ndarray] = {}
    for feature_set in FEATURE_SETS:
        cols = feature_columns(feature_set, ranker.features, features.columns)
        model = fit_ranker(X.loc[train, cols], y[train], ranker.gbm, ranker.seed)
        scores[feature_set] = predict(model, X.loc[test, cols], ranker.gbm.threads)
        if feature_set == "champion_latest":  # the same model, fed what production holds at each impression
            served = feature_columns(SERVED, ranker.features, features.columns)
            scored = served_columns(X.loc[test, served], SERVED, feature_set)[cols]
            scores[SERVED] = predict(model, scored, ranker.gbm.threads)

    names = metric_names(ranker.top_k)
    samples = {s: evaluate(p, test_rows, ranker.top_k, resamples, ties) for s, p in scores.items()}
    values = {
        s: {n: (float(v[n][0]), *interval(v[n][1:], ranker.confidence)) for n in names} for s, v in samples.items()
    }
    deltas = {
        f"{a}_vs_{b}": {n: paired_interval(samples[a][n], samples[b][n], ranker.confidence) for n in names}
        for a, b in COMPARISONS
    }
    kept = {
        f"top_{k}_share_of_test_rows": float(
            np.minimum(np.bincount(test_rows.member), k).sum() / max(len(test_rows.member), 1)
        )
        for k in ranker.top_k
    }
    context = {
        "test_members": test_rows.n_members,
        "test_applies": int(test_rows.applied.sum()),
        "test_qualified_applies": int(test_rows.qualified.sum()),
        "bootstrap_samples": ranker.bootstrap_samples,
        "confidence": ranker.confidence,
        **kept,
    }
    return RankerResult(names, values, deltas, scores, test_rows.applied, context)
