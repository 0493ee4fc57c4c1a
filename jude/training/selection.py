"""Which trained model the train pipeline registers: the best candidate that passes the promotion rule.

The default chain trains two candidates, the fine-tuned embedder and the distilled one. The choice reads only
the **validation** members (``split_pairs``' ``val_set``: members held out of training, whose judgements and
applies fall in the validation period), never the test members, whose figures would otherwise be an optimistic
pick of the better of two.

Each candidate, and the base model it was trained from, ranks every job for the validation members; the judge
grades the pool of all their top ``eval.pool_depth`` (as on the test members, so no model is scored against
another's unjudged jobs). Then the **promotion rule** (:func:`jude.evaluation.rule.decide`, the rule of the deploy
pipeline's gate: the nDCG@10 gain and the recall@100 guard) is applied to each candidate against the base model.
Among the candidates that pass, the higher nDCG@10 wins (a tie goes to the earlier candidate in ``order``: the
fine-tuned model, fewer steps and no teacher in its lineage). When none passes, nothing is chosen and the
selection says why with every figure: the pipeline registers nothing rather than a model the gate would refuse.
:func:`select_candidate` takes no test set at all.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from jude.config import EvalConfig, PromotionConfig
from jude.evaluation.retrieval import EvalSet, retrieve
from jude.evaluation.rule import RULE_METRICS, decide, judged_queries
from jude.evaluation.variants import evaluate_variants

CANDIDATES = ("finetuned", "distilled")  # in tie-break order
BASE = "base"


@dataclass
class Selection:
    """The chosen candidate (None: none passes the rule), every model's validation figures, and why."""

    variant: str | None
    scores: dict[str, float]  # model (candidates and 'base') -> judge nDCG@10 on the validation members
    queries: int  # validation queries with judgements
    pooled: bool
    reason: str
    recall: dict[str, float] = field(default_factory=dict)  # model -> judge recall@100 on the validation members
    verdicts: dict[str, tuple[bool, str]] = field(default_factory=dict)  # candidate -> the rule against base

    @property
    def passing(self) -> list[str]:
        return [c for c, (ok, _) in self.verdicts.items() if ok]

    def metrics(self) -> dict[str, float]:
        """``select/<model>/val_ndcg_at_10``, ``select/<model>/val_recall_at_100`` and
        ``select/<candidate>/passes_rule`` (1 or 0) for MLflow."""
        out = {f"select/{c}/val_ndcg_at_10": v for c, v in self.scores.items()}
        out.update({f"select/{c}/val_recall_at_100": v for c, v in self.recall.items()})
        out.update({f"select/{c}/passes_rule": float(ok) for c, (ok, _) in self.verdicts.items()})
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "variant": self.variant,
            "scores": self.scores,
            "recall_at_100": self.recall,
            "verdicts": {c: {"passes": ok, "why": why} for c, (ok, why) in self.verdicts.items()},
            "val_queries": self.queries,
            "pooled": self.pooled,
            "reason": self.reason,
        }


def choose(scores: Mapping[str, float], order: Sequence[str] = CANDIDATES) -> tuple[str, str]:
    """The candidate with the highest score (ties: the first in ``order``) and a one-line reason."""
    ranked = [c for c in order if c in scores] + sorted(c for c in scores if c not in order)
    if not ranked:
        raise ValueError("choose: no candidates")
    best = ranked[0]
    for c in ranked[1:]:
        if scores[c] > scores[best]:
            best = c
    figures = ", ".join(f"{c} {scores[c]:.4f}" for c in ranked)
    others = [c for c in ranked if c != best]
    tie = any(scores[c] == scores[best] for c in others)
    why = "tie, the first candidate kept" if tie else "highest"
    return best, f"{best}: {why} validation nDCG@10 ({figures})"


def apply_rule(
    results: Mapping[str, Mapping[str, float]],
    queries: int,
    promotion: PromotionConfig,
    order: Sequence[str] = CANDIDATES,
) -> tuple[str | None, str, dict[str, tuple[bool, str]]]:
    """The promotion rule for every candidate in ``results`` against ``results['base']``, then the choice.

    ``results``: model -> unprefixed metrics (``ndcg_at_10``, ``recall_at_100``) on the same validation queries.
    Returns (the chosen candidate or None, the reason, candidate -> (passes, why)).
    """
    if BASE not in results:
        raise ValueError(f"apply_rule: no '{BASE}' row to compare the candidates with (got {sorted(results)})")
    candidates = [c for c in results if c != BASE]
    if not candidates:
        raise ValueError("apply_rule: no candidates")
    verdicts = {
        c: decide(results[c], results[BASE], promotion, queries, against="base model", where="validation")
        for c in candidates
    }
    passing = {c: results[c]["ndcg_at_10"] for c, (ok, _) in verdicts.items() if ok}
    if not passing:
        why = "; ".join(f"{c}: {v}" for c, (_, v) in verdicts.items())
        return None, f"no candidate passes the promotion rule against the base model on validation ({why})", verdicts
    variant, reason = choose(passing, order)
    refused = [c for c in candidates if c not in passing]
    if refused:
        reason += "; refused by the promotion rule: " + "; ".join(f"{c}: {verdicts[c][1]}" for c in refused)
    return variant, reason, verdicts


def select_candidate(
    candidates: Mapping[str, Any],
    val_set: EvalSet,
    judge: Any,
    eval_cfg: EvalConfig,
    relevant_grade: int,
    promotion: PromotionConfig,
    base: Any,
    order: Sequence[str] = CANDIDATES,
) -> Selection:
    """Rank ``val_set``'s members with ``base`` and every candidate, apply the promotion rule against the base.

    ``candidates``: name -> an embedder (anything :func:`jude.evaluation.retrieval.retrieve` takes); ``base``:
    the un-fine-tuned model. With ``eval_cfg.qrels == 'pooled'`` the ``judge`` grades every model's top
    ``eval_cfg.pool_depth`` first. Every model ranks its top 100, so recall@100 (the rule's guard) is measured.
    """
    if not candidates:
        raise ValueError("select_candidate: no candidates")
    if BASE in candidates:
        raise ValueError(f"select_candidate: '{BASE}' names the base model, not a candidate")
    models = {BASE: base, **candidates}
    k = max(eval_cfg.pool_depth, 100)
    runs = {name: retrieve(model, val_set, k=k, batch_size=eval_cfg.batch_size) for name, model in models.items()}
    table = evaluate_variants(runs, val_set, judge if eval_cfg.qrels == "pooled" else None, eval_cfg, relevant_grade)
    results = {name: {m: table.results[name][m] for m in RULE_METRICS} for name in runs}
    queries = judged_queries(table.judged.relevant)
    variant, reason, verdicts = apply_rule(results, queries, promotion, order)
    return Selection(
        variant=variant,
        scores={name: r["ndcg_at_10"] for name, r in results.items()},
        recall={name: r["recall_at_100"] for name, r in results.items()},
        queries=queries,
        pooled=table.pooled,
        reason=reason,
        verdicts=verdicts,
    )
