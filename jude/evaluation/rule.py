"""The promotion rule: one function that says whether a model may replace another, used everywhere a model is chosen.

The train pipeline's selection applies it on the **validation** members, each candidate against the base model
(:mod:`jude.training.selection`); the registration applies it on the held-out test set against the base model
(:func:`jude.registry.promotion.first_version_verdict`); the deploy pipeline's gate applies it on the same held-out
set against the champion (:func:`jude.registry.promotion.promote_challenger`). So a candidate that selection
registers is one that the gate's conditions pass on validation, and no second rule can disagree with the first.

The challenger passes only when all of these hold:

- every compared metric is a finite number (NaN or inf never passes);
- at least ``min_queries`` queries have judgements;
- nDCG@10 improves by at least ``min_ndcg_gain``;
- recall@100 falls by at most ``max_recall_drop`` (candidate retrieval needs the tail, not only the head).

Beside it, a guard: :func:`foreign_veto`. A model that loses to the base model on the foreign set (job and
profile texts from sources and writing the generator never uses, ``jude/data/foreign``) beyond the paired 95 %
interval is never made champion. The foreign set vetoes; it never chooses: selection does not read it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from jude.config import PromotionConfig

RULE_METRICS = ("ndcg_at_10", "recall_at_100")


def judged_queries(relevant: Mapping[str, Mapping[str, int]]) -> int:
    """The queries with at least one relevant judgement: those the ranking metrics average over."""
    return sum(1 for r in relevant.values() if r)


def decide(
    challenger: Mapping[str, float],
    reference: Mapping[str, float],
    cfg: PromotionConfig,
    queries: int,
    against: str = "champion",
    where: str = "held-out",
) -> tuple[bool, str]:
    """The rule itself, on two metric dicts (unprefixed names) scored on ``queries`` judged queries.

    ``against`` names the reference in the reason ("champion v3", "base model"), ``where`` the queries
    ("held-out", "validation"). Fails closed: a metric that is NaN or infinite, or fewer than
    ``cfg.min_queries`` queries, never passes.
    """
    broken = [
        f"{side}'s {m} is {values[m]}"
        for side, values in (("the challenger", challenger), (against, reference))
        for m in RULE_METRICS
        if not math.isfinite(values[m])
    ]
    if broken:
        return False, f"{', '.join(broken)}: a metric that is not a finite number never promotes"
    if queries < cfg.min_queries:
        return False, (
            f"only {queries} {where} queries have judgements, fewer than promotion.min_queries={cfg.min_queries}: "
            "too few to tell the models apart"
        )
    ch_ndcg, ref_ndcg = challenger["ndcg_at_10"], reference["ndcg_at_10"]
    ch_recall, ref_recall = challenger["recall_at_100"], reference["recall_at_100"]
    gain, drop = ch_ndcg - ref_ndcg, ref_recall - ch_recall
    scores = f"nDCG@10 {ch_ndcg:.4f} vs {against} {ref_ndcg:.4f} on {queries} {where} queries"
    if gain < cfg.min_ndcg_gain:
        return False, f"{scores}: the gain {gain:+.4f} is below the required {cfg.min_ndcg_gain:.4f}"
    if drop > cfg.max_recall_drop:
        return False, (
            f"{scores}, but recall@100 falls by {drop:.4f} ({ch_recall:.4f} vs {ref_recall:.4f}), "
            f"more than the allowed {cfg.max_recall_drop:.4f}"
        )
    return True, f"{scores}: {gain:+.4f} (>= {cfg.min_ndcg_gain:.4f}), recall@100 {ch_recall - ref_recall:+.4f}"


def foreign_veto(metrics: Mapping[str, float], variant: str) -> str | None:
    """Why ``variant`` may not be champion by the foreign set, or None.

    ``metrics`` holds the train run's ``foreign/<variant>_vs_base_delta`` and its ``_ci_high``
    (:func:`jude.evaluation.foreign.foreign_metrics`); a run without them (logged before the set existed) is
    not vetoed. The veto holds when the whole paired interval is below zero: the model loses to the untouched
    base model on writing it was never trained on, beyond the spread over members.
    """
    key = f"foreign/{variant}_vs_base_delta"
    if key not in metrics or f"{key}_ci_high" not in metrics:
        return None
    delta, low, high = metrics[key], metrics.get(f"{key}_ci_low", float("nan")), metrics[f"{key}_ci_high"]
    if math.isfinite(high) and high < 0:
        return (
            f"it loses to the base model on the foreign set: pairwise accuracy {delta:+.4f} [{low:+.4f}, "
            f"{high:+.4f}] (paired 95 % interval over members, wholly below zero)"
        )
    return None
