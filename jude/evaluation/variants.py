"""Every variant on the same held-out queries and judgements: the evaluation table of the train pipeline.

The caller ranks the test queries with each variant (base, fine-tuned, loss variants, distilled, the teacher
reranking the fine-tuned top-k) and hands the runs here. With ``eval.qrels='pooled'`` the judge first grades
the top ``eval.pool_depth`` of every run (``jude.evaluation.pooling``) and every variant is scored on those
judgements; the scores on the labelled judgements alone are kept beside them. The pooled set is what the
promotion gate later re-scores on, so it is returned too.

Beside the judge, every variant is scored on the truths the evaluation set carries (``jude.evaluation.truths``):
``truth`` (the generator's latent fit, exhaustive), ``applies`` (test-period applies) and ``unseen`` (the
unseen world, from runs the caller made on it). The distillation gap closure is a share of the teacher's lead,
so it is defined only on a truth where the teacher is ahead of the fine-tuned model (by ``MIN_TEACHER_LEAD``);
the raw deltas are logged on every truth, and :meth:`VariantTable.closure_notes` says why a closure is missing.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from jude.config import EvalConfig
from jude.evaluation.pooling import PoolResult, Run, pooled_relevance
from jude.evaluation.retrieval import EvalSet, EvaluationError, prefixed, ranking_metrics, retrieve

Metrics = dict[str, float]  # metric name (retrieval.METRICS) -> value
JUDGE = "judge"  # the name of the judge's own truth in closure notes (its metric keys carry no prefix)
# The smallest teacher lead over the fine-tuned model (nDCG@10) the gap closure is taken over. Below it the ratio
# divides by noise: a lead of 0.001 turned a distilled - fine-tuned difference of -0.02 into a "closure" of -20
# (make train, data seed 0), while the per-query bootstrap interval of a 300-member nDCG@10 is about +-0.04 wide.
MIN_TEACHER_LEAD = 0.01


def gap_closure(finetuned: float, distilled: float, teacher: float) -> float:
    """(distilled - finetuned) / (teacher - finetuned): the share of the teacher's lead that distillation
    recovers (JUDE reports 0.5). NaN when the teacher leads the fine-tuned model by less than
    ``MIN_TEACHER_LEAD``."""
    gap = teacher - finetuned
    return (distilled - finetuned) / gap if gap >= MIN_TEACHER_LEAD else float("nan")


@dataclass
class VariantTable:
    """The scores of every variant, on the judged set and on the labelled one."""

    results: dict[str, Metrics]  # variant -> metrics on ``judged`` (the figures the pipeline reports)
    labelled: dict[str, Metrics]  # variant -> metrics on ``eval_set.relevant`` (the label budget's judgements)
    eval_set: EvalSet  # as given: the labelled judgements
    judged: EvalSet  # what ``results`` were scored on and the promotion gate gets: pooled, or ``eval_set``
    pool: PoolResult | None = None  # the pooling stats; None when not pooled
    truths: dict[str, dict[str, Metrics]] = field(default_factory=dict)  # truth -> variant -> metrics
    truth_queries: dict[str, int] = field(default_factory=dict)  # truth -> queries with >= 1 relevant job
    absent: dict[str, str] = field(default_factory=dict)  # truth -> why it was not scored

    @property
    def pooled(self) -> bool:
        return self.pool is not None

    def by_truth(self) -> dict[str, dict[str, Metrics]]:
        """Every scored truth, the judge's first (name ``judge``): truth -> variant -> metrics."""
        return {JUDGE: self.results, **self.truths}

    def closure_notes(self) -> dict[str, str]:
        """Per truth (``judge`` first) where the distilled and teacher rows exist: the gap closure with the two
        deltas it is made of, or why it is undefined (the teacher does not lead the fine-tuned model by
        ``MIN_TEACHER_LEAD`` there)."""
        notes = {}
        for truth, results in self.by_truth().items():
            c = _closure(results)
            if c is None:
                continue
            deltas = (
                f"teacher - fine-tuned nDCG@10 {c['teacher_vs_finetuned_delta']:+.3f}; "
                f"distilled - fine-tuned {c['distill_vs_finetuned_delta']:+.3f}"
            )
            if "distill_gap_closure" in c:
                notes[truth] = f"gap closure {c['distill_gap_closure']:.2f} (nDCG@10; {deltas})"
            else:
                notes[truth] = (
                    f"gap closure undefined: the teacher does not lead the fine-tuned model by "
                    f"{MIN_TEACHER_LEAD} ({deltas})"
                )
        return notes

    def flat_metrics(self) -> dict[str, float]:
        """The metrics the pipeline logs, as one flat dict.

        ``<variant>/<metric>`` for every variant; ``labelled/<variant>/<metric>`` when pooled;
        ``<truth>/<variant>/<metric>`` for every other truth scored (``truth/``, ``applies/``, ``unseen/``);
        when ``finetuned``, ``distilled`` and ``teacher`` were all scored, per truth (no prefix for the judge's):
        ``distill_vs_finetuned_delta`` and ``teacher_vs_finetuned_delta`` (nDCG@10), and ``distill_gap_closure``
        where the teacher leads the fine-tuned model by at least ``MIN_TEACHER_LEAD``; ``finetuned_vs_base_ndcg_ratio``
        when ``base`` and ``finetuned`` were and base nDCG@10 > 0, and its ``labelled/`` and per-truth twins.
        """
        flat: dict[str, float] = {}
        for variant, m in self.results.items():
            flat.update(prefixed(variant, m))
        if self.pooled:
            for variant, m in self.labelled.items():
                flat.update(prefixed(f"labelled/{variant}", m))
        for truth, results in self.truths.items():
            for variant, m in results.items():
                flat.update(prefixed(f"{truth}/{variant}", m))
        for truth, results in self.by_truth().items():
            prefix = "" if truth == JUDGE else f"{truth}/"
            flat.update({prefix + k: v for k, v in (_closure(results) or {}).items()})
        ratio = _finetuned_vs_base(self.results)
        if ratio is not None:
            flat["finetuned_vs_base_ndcg_ratio"] = ratio
        labelled_ratio = _finetuned_vs_base(self.labelled) if self.pooled else None
        if labelled_ratio is not None:
            flat["labelled/finetuned_vs_base_ndcg_ratio"] = labelled_ratio
        for truth, results in self.truths.items():
            truth_ratio = _finetuned_vs_base(results)
            if truth_ratio is not None:
                flat[f"{truth}/finetuned_vs_base_ndcg_ratio"] = truth_ratio
        return flat


def _closure(results: Mapping[str, Metrics]) -> dict[str, float] | None:
    """The two raw nDCG@10 deltas over the fine-tuned model on ``results``, and ``distill_gap_closure`` where the
    teacher leads it by at least ``MIN_TEACHER_LEAD``; None without the fine-tuned, distilled and teacher rows."""
    ndcg = {variant: m["ndcg_at_10"] for variant, m in results.items()}
    if not {"finetuned", "distilled", "teacher"} <= ndcg.keys():
        return None
    out = {
        "distill_vs_finetuned_delta": ndcg["distilled"] - ndcg["finetuned"],
        "teacher_vs_finetuned_delta": ndcg["teacher"] - ndcg["finetuned"],
    }
    closure = gap_closure(ndcg["finetuned"], ndcg["distilled"], ndcg["teacher"])
    if math.isfinite(closure):
        out["distill_gap_closure"] = closure
    return out


def _finetuned_vs_base(results: Mapping[str, Metrics]) -> float | None:
    if "base" not in results or "finetuned" not in results or results["base"]["ndcg_at_10"] <= 0:
        return None
    return results["finetuned"]["ndcg_at_10"] / results["base"]["ndcg_at_10"]


def rank_variants(
    models: Mapping[str, Any], eval_set: EvalSet, k: int = 100, batch_size: int = 64, show_progress: bool = False
) -> tuple[dict[str, Run], dict[str, Run]]:
    """(runs, unseen_runs): each embedder's top ``k`` for the test queries and, when ``eval_set`` carries an
    unseen world, for the unseen world's members over its jobs (what :func:`evaluate_variants` scores)."""
    runs: dict[str, Run] = {}
    unseen_runs: dict[str, Run] = {}
    for variant, embedder in models.items():
        runs[variant] = retrieve(embedder, eval_set, k=k, batch_size=batch_size, show_progress=show_progress)
        if eval_set.unseen is not None:
            unseen_runs[variant] = retrieve(embedder, eval_set.unseen, k=k, batch_size=batch_size)
    return runs, unseen_runs


def evaluate_variants(
    runs: Mapping[str, Run],
    eval_set: EvalSet,
    judge: Any,
    eval_cfg: EvalConfig,
    relevant_grade: int,
    unseen_runs: Mapping[str, Run] | None = None,
) -> VariantTable:
    """Score every run in ``runs`` (variant -> ``{query: {job: score}}``) on ``eval_set``.

    ``judge`` (a :class:`jude.labels.judges.Judge`) grades the pool when ``eval_cfg.qrels == 'pooled'``, with
    ``relevant_grade`` as the relevance threshold; with ``'labels'`` it is not used and may be None. Variants
    keep the order of ``runs``. The same runs are scored on every truth in ``eval_set.truths``;
    ``unseen_runs`` (variant -> run over ``eval_set.unseen``) on the unseen world's truth.
    """
    if not runs:
        raise EvaluationError("no runs to evaluate: pass at least one variant's ranking")
    truths, counts, absent = _truth_metrics(runs, eval_set, unseen_runs)
    labelled = {variant: ranking_metrics(run, eval_set.relevant) for variant, run in runs.items()}
    extra = {"truths": truths, "truth_queries": counts, "absent": absent}
    if eval_cfg.qrels != "pooled":
        return VariantTable(results=labelled, labelled=labelled, eval_set=eval_set, judged=eval_set, **extra)
    if judge is None:
        raise ValueError("eval.qrels='pooled' needs a judge to grade the pool; pass one or set eval.qrels='labels'")
    pool = pooled_relevance(eval_set, runs, judge, eval_cfg.pool_depth, relevant_grade)
    judged = pool.eval_set(eval_set)
    results = {variant: ranking_metrics(run, judged.relevant) for variant, run in runs.items()}
    return VariantTable(results=results, labelled=labelled, eval_set=eval_set, judged=judged, pool=pool, **extra)


def _truth_metrics(
    runs: Mapping[str, Run], eval_set: EvalSet, unseen_runs: Mapping[str, Run] | None
) -> tuple[dict[str, dict[str, Metrics]], dict[str, int], dict[str, str]]:
    """(truth -> variant -> metrics, truth -> scored queries, truth -> why absent) for the truths of ``eval_set``."""
    truths: dict[str, dict[str, Metrics]] = {}
    counts: dict[str, int] = {}
    absent = dict(eval_set.absent)
    for truth, relevant in eval_set.truths.items():
        counts[truth] = sum(1 for r in relevant.values() if r)
        if counts[truth] == 0:
            absent[truth] = "no test member has a relevant job under this truth"
            continue
        truths[truth] = {variant: ranking_metrics(run, relevant) for variant, run in runs.items()}
    if unseen_runs:
        if eval_set.unseen is None:
            raise EvaluationError("unseen-world runs were given but the evaluation set has no unseen world")
        unseen = eval_set.unseen
        for variant, run in unseen_runs.items():
            unknown = [q for q in run if q not in unseen.queries]
            if unknown:
                raise EvaluationError(f"unseen run {variant!r} ranks unknown query(ies) {unknown[:5]}")
        truths["unseen"] = {variant: ranking_metrics(run, unseen.relevant) for variant, run in unseen_runs.items()}
        counts["unseen"] = sum(1 for r in unseen.relevant.values() if r)
    elif eval_set.unseen is not None:
        absent.setdefault("unseen", "no variant was ranked on the unseen world")
    return truths, counts, absent
