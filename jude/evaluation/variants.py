"""Every variant on the same held-out queries and judgements: the evaluation table of the train pipeline.

The caller ranks the test queries with each variant (base, fine-tuned, loss variants, distilled, the teacher
reranking the fine-tuned top-k) and hands the runs here. With ``eval.qrels='pooled'`` the judge first grades
the top ``eval.pool_depth`` of every run (``jude.evaluation.pooling``) and every variant is scored on those
judgements; the scores on the labelled judgements alone are kept beside them. The pooled set is what the
promotion gate later re-scores on, so it is returned too.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from jude.config import EvalConfig
from jude.evaluation.pooling import PoolResult, Run, pooled_relevance
from jude.evaluation.retrieval import EvalSet, EvaluationError, prefixed, ranking_metrics

Metrics = dict[str, float]  # metric name (retrieval.METRICS) -> value


def gap_closure(finetuned: float, distilled: float, teacher: float) -> float:
    """(distilled - finetuned) / (teacher - finetuned): the share of the teacher's lead that distillation
    recovers (JUDE reports 0.5). NaN when the teacher is not ahead of the fine-tuned model."""
    gap = teacher - finetuned
    return (distilled - finetuned) / gap if gap > 0 else float("nan")


@dataclass
class VariantTable:
    """The scores of every variant, on the judged set and on the labelled one."""

    results: dict[str, Metrics]  # variant -> metrics on ``judged`` (the figures the pipeline reports)
    labelled: dict[str, Metrics]  # variant -> metrics on ``eval_set.relevant`` (the label budget's judgements)
    eval_set: EvalSet  # as given: the labelled judgements
    judged: EvalSet  # what ``results`` were scored on and the promotion gate gets: pooled, or ``eval_set``
    pool: PoolResult | None = None  # the pooling stats; None when not pooled

    @property
    def pooled(self) -> bool:
        return self.pool is not None

    def flat_metrics(self) -> dict[str, float]:
        """The metrics the pipeline logs, as one flat dict.

        ``<variant>/<metric>`` for every variant; ``labelled/<variant>/<metric>`` when pooled;
        ``distill_gap_closure`` (nDCG@10) when ``finetuned``, ``distilled`` and ``teacher`` were all scored;
        ``finetuned_vs_base_ndcg_ratio`` when ``base`` and ``finetuned`` were and base nDCG@10 > 0, and its
        ``labelled/`` twin when pooled.
        """
        flat: dict[str, float] = {}
        for variant, m in self.results.items():
            flat.update(prefixed(variant, m))
        if self.pooled:
            for variant, m in self.labelled.items():
                flat.update(prefixed(f"labelled/{variant}", m))
        ndcg = {variant: m["ndcg_at_10"] for variant, m in self.results.items()}
        if {"finetuned", "distilled", "teacher"} <= ndcg.keys():
            flat["distill_gap_closure"] = gap_closure(ndcg["finetuned"], ndcg["distilled"], ndcg["teacher"])
        ratio = _finetuned_vs_base(self.results)
        if ratio is not None:
            flat["finetuned_vs_base_ndcg_ratio"] = ratio
        labelled_ratio = _finetuned_vs_base(self.labelled) if self.pooled else None
        if labelled_ratio is not None:
            flat["labelled/finetuned_vs_base_ndcg_ratio"] = labelled_ratio
        return flat


def _finetuned_vs_base(results: Mapping[str, Metrics]) -> float | None:
    if "base" not in results or "finetuned" not in results or results["base"]["ndcg_at_10"] <= 0:
        return None
    return results["finetuned"]["ndcg_at_10"] / results["base"]["ndcg_at_10"]


def evaluate_variants(
    runs: Mapping[str, Run], eval_set: EvalSet, judge: Any, eval_cfg: EvalConfig, relevant_grade: int
) -> VariantTable:
    """Score every run in ``runs`` (variant -> ``{query: {job: score}}``) on ``eval_set``.

    ``judge`` (a :class:`jude.labels.judges.Judge`) grades the pool when ``eval_cfg.qrels == 'pooled'``, with
    ``relevant_grade`` as the relevance threshold; with ``'labels'`` it is not used and may be None. Variants
    keep the order of ``runs``.
    """
    if not runs:
        raise EvaluationError("no runs to evaluate: pass at least one variant's ranking")
    labelled = {variant: ranking_metrics(run, eval_set.relevant) for variant, run in runs.items()}
    if eval_cfg.qrels != "pooled":
        return VariantTable(results=labelled, labelled=labelled, eval_set=eval_set, judged=eval_set)
    if judge is None:
        raise ValueError("eval.qrels='pooled' needs a judge to grade the pool; pass one or set eval.qrels='labels'")
    pool = pooled_relevance(eval_set, runs, judge, eval_cfg.pool_depth, relevant_grade)
    judged = pool.eval_set(eval_set)
    results = {variant: ranking_metrics(run, judged.relevant) for variant, run in runs.items()}
    return VariantTable(results=results, labelled=labelled, eval_set=eval_set, judged=judged, pool=pool)
