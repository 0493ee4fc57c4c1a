"""The promotion gate: the challenger replaces the champion only when it is better.

Both versions are evaluated on the *same* held-out set (the one logged with the
challenger's training run), so the comparison does not depend on what each
run happened to report. That set's relevance judgements were pooled from the
challenger's side of the train pipeline only, so the champion's own top results
may never have been judged, which would favour the challenger. The gate therefore
pools again (``promotion.pool_depth``, default 20; see ``jude.evaluation.pooling``):
the judge of ``promotion.labels`` (use the one the models were trained with) grades
the unjudged pairs in both models' top ``pool_depth``, and both are scored on
those judgements. The challenger is promoted when

- there is no champion yet (a first model), or
- nDCG@10 improves by at least ``min_ndcg_gain`` **and** recall@100 falls by at
  most ``max_recall_drop``.

Promotion moves ``champion`` to the challenger and ``previous`` to the old
champion. The decision and its numbers are logged to MLflow (a run named
``promotion``) and returned for ZenML metadata.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import mlflow

from jude.config import PromotionConfig
from jude.evaluation.pooling import pooled_relevance
from jude.evaluation.retrieval import EvalSet, ranking_metrics, retrieve
from jude.registry import mlflow_registry as reg

Run = dict[str, dict[str, float]]  # query -> {job: score}


class PromotionError(RuntimeError):
    pass


@dataclass
class PromotionDecision:
    promoted: bool
    reason: str
    model_name: str
    challenger_version: str
    champion_version: str | None  # the champion after the decision
    previous_version: str | None = None
    challenger_metrics: dict[str, float] = field(default_factory=dict)
    champion_metrics: dict[str, float] = field(default_factory=dict)
    pool: dict[str, Any] = field(default_factory=dict)  # what the gate's own pooling judged (empty: none)

    @property
    def model_uri(self) -> str:
        return f"models:/{self.model_name}@champion"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "model_uri": self.model_uri}


def decide(challenger: Mapping[str, float], champion: Mapping[str, float], cfg: PromotionConfig) -> tuple[bool, str]:
    """The rule itself, on two metric dicts (unprefixed names)."""
    gain = challenger["ndcg_at_10"] - champion["ndcg_at_10"]
    drop = champion["recall_at_100"] - challenger["recall_at_100"]
    if gain < cfg.min_ndcg_gain:
        return False, (f"nDCG@10 gain {gain:+.4f} ({challenger['ndcg_at_10']:.4f} vs {champion['ndcg_at_10']:.4f}) "
                       f"is below the required {cfg.min_ndcg_gain:.4f}")
    if drop > cfg.max_recall_drop:
        return False, (f"recall@100 falls by {drop:.4f} ({challenger['recall_at_100']:.4f} vs "
                       f"{champion['recall_at_100']:.4f}), more than the allowed {cfg.max_recall_drop:.4f}")
    return True, f"nDCG@10 {gain:+.4f} (>= {cfg.min_ndcg_gain:.4f}) and recall@100 {-drop:+.4f}"


def _rank_version(version: reg.ModelVersionInfo, eval_set: EvalSet, cfg: PromotionConfig) -> Run:
    from jude.modeling.embedder import Embedder

    return retrieve(Embedder.load(reg.download_model(version.uri)), eval_set, k=100, batch_size=cfg.batch_size)


def promote_challenger(model_name: str, cfg: PromotionConfig,
                       rank: Callable[[reg.ModelVersionInfo, EvalSet, PromotionConfig], Run] = _rank_version,
                       judge: Any = None) -> PromotionDecision:
    """Gate the ``challenger`` against the ``champion``; move the aliases when it wins.

    ``rank`` (a version's top-100 run on the held-out set) and ``judge`` (default:
    ``make_judge(cfg.labels)``, used when ``cfg.pool_depth > 0``) are injectable so
    the rule can be tested with known rankings.
    """
    challenger = reg.get_version(model_name, "challenger")
    if challenger is None:
        raise PromotionError(f"registered model {model_name!r} has no 'challenger' version at "
                             f"{reg.resolve_tracking_uri()}: run `python run.py --pipeline train` first")
    champion = reg.get_version(model_name, "champion")
    if champion is None:
        reg.set_alias(model_name, "champion", challenger.version)
        decision = PromotionDecision(True, "no champion yet: the first model is promoted", model_name,
                                     challenger.version, challenger.version)
    elif champion.version == challenger.version:
        decision = PromotionDecision(False, f"version {challenger.version} is already the champion", model_name,
                                     challenger.version, champion.version)
    else:
        eval_set = EvalSet.from_dict(reg.load_eval_set(challenger))
        runs = {"challenger": rank(challenger, eval_set, cfg), "champion": rank(champion, eval_set, cfg)}
        relevant, pool_stats = eval_set.relevant, {}
        if cfg.pool_depth > 0:
            if judge is None:
                from jude.labels.judges import make_judge

                judge = make_judge(cfg.labels)
            pool = pooled_relevance(eval_set, runs, judge, cfg.pool_depth, cfg.labels.relevant_grade)
            relevant, pool_stats = pool.relevant, pool.counts
        ch_metrics = ranking_metrics(runs["challenger"], relevant)
        cp_metrics = ranking_metrics(runs["champion"], relevant)
        promoted, reason = decide(ch_metrics, cp_metrics, cfg)
        if promoted:
            reg.set_alias(model_name, "previous", champion.version)
            reg.set_alias(model_name, "champion", challenger.version)
        decision = PromotionDecision(promoted, reason, model_name, challenger.version,
                                     challenger.version if promoted else champion.version,
                                     previous_version=champion.version if promoted else None,
                                     challenger_metrics=ch_metrics, champion_metrics=cp_metrics, pool=pool_stats)
    _log(decision)
    return decision


def _log(decision: PromotionDecision) -> None:
    with mlflow.start_run(run_name="promotion", nested=mlflow.active_run() is not None):
        mlflow.log_params({"challenger_version": decision.challenger_version,
                           "champion_version": decision.champion_version, "promoted": decision.promoted})
        mlflow.log_metrics({f"challenger/{k}": v for k, v in decision.challenger_metrics.items()})
        mlflow.log_metrics({f"champion/{k}": v for k, v in decision.champion_metrics.items()})
        mlflow.log_metrics({f"pool/{k}": float(v) for k, v in decision.pool.items()})
        mlflow.set_tag("decision", decision.reason)
    client = mlflow.tracking.MlflowClient()
    client.set_model_version_tag(decision.model_name, decision.challenger_version, "promotion",
                                 ("promoted: " if decision.promoted else "rejected: ") + decision.reason)
