"""Which trained model the train pipeline registers: the candidate that ranks best on the validation members.

The default chain trains two candidates, the fine-tuned embedder and the
distilled one. Choosing on the test members would make the test figures an
optimistic pick of the better of two, so the choice reads only the
**validation** members (``split_pairs``' ``val_set``: members held out of
training, whose judgements and applies fall in the validation period): each
candidate ranks every job for them, the judge grades the pool of both top
``eval.pool_depth`` (as on the test members, so neither is scored against the
other's unjudged jobs), and the higher nDCG@10 wins. A tie goes to the earlier
candidate in ``order`` (the fine-tuned model: fewer steps, no teacher in its
lineage). :func:`select_candidate` takes no test set at all.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from jude.config import EvalConfig
from jude.evaluation.retrieval import EvalSet, retrieve
from jude.evaluation.variants import evaluate_variants

CANDIDATES = ("finetuned", "distilled")  # in tie-break order


@dataclass
class Selection:
    """The chosen candidate, every candidate's validation nDCG@10, and why."""

    variant: str
    scores: dict[str, float]  # candidate -> judge nDCG@10 on the validation members
    queries: int
    pooled: bool
    reason: str

    def metrics(self) -> dict[str, float]:
        """``select/<candidate>/val_ndcg_at_10`` for MLflow."""
        return {f"select/{c}/val_ndcg_at_10": v for c, v in self.scores.items()}


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


def select_candidate(
    candidates: Mapping[str, Any],
    val_set: EvalSet,
    judge: Any,
    eval_cfg: EvalConfig,
    relevant_grade: int,
    order: Sequence[str] = CANDIDATES,
) -> Selection:
    """Rank ``val_set``'s members with every candidate embedder and pick the best by judge nDCG@10.

    ``candidates``: name -> an embedder (anything :func:`jude.evaluation.retrieval.retrieve` takes). With
    ``eval_cfg.qrels == 'pooled'`` the ``judge`` grades both candidates' top ``eval_cfg.pool_depth`` first.
    """
    if not candidates:
        raise ValueError("select_candidate: no candidates")
    runs = {
        name: retrieve(model, val_set, k=max(eval_cfg.pool_depth, 10), batch_size=eval_cfg.batch_size)
        for name, model in candidates.items()
    }
    table = evaluate_variants(runs, val_set, judge if eval_cfg.qrels == "pooled" else None, eval_cfg, relevant_grade)
    scores = {name: table.results[name]["ndcg_at_10"] for name in runs}
    variant, reason = choose(scores, order)
    return Selection(variant=variant, scores=scores, queries=len(val_set.queries), pooled=table.pooled, reason=reason)
