"""Paired bootstrap over queries: is one run better than another on the same judgements, beyond query noise?

Two rankings of the same queries are scored per query (nDCG@10 by ranx); the
difference of their means is the observed delta. Resampling the *queries* with
replacement (the same resampled queries for both runs: a paired bootstrap, so the
large per-query variance that both runs share cancels) gives the spread of that
delta; the 2.5th and 97.5th percentiles of 1000 seeded resamples are its 95 %
interval (Efron and Tibshirani, "An Introduction to the Bootstrap", 1993, ch. 13;
for IR, Sakai, "Evaluating evaluation metrics based on the bootstrap", SIGIR 2006).

Distillation's rule (:func:`distillation_vs_controls`): the distilled model counts
as a win only where it beats **both** controls (``control_anchor``, the
distillation run with its teacher terms off, and ``control_steps``, fine-tuning
continued for the same steps) with each interval above zero. One figure per
control: ``distill_vs_<control>_delta``, ``..._ci_low``, ``..._ci_high``, and
``distill_beats_controls`` (1 or 0).

Every variant's own figure gets an interval too (:func:`variant_intervals`): the
mean of its per-query nDCG@10 resampled over queries, so a table of one run says
how much of a difference between rows the test members can resolve.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from jude.evaluation.retrieval import EvaluationError

Run = Mapping[str, Mapping[str, float]]  # query -> {doc: score}
CONTROLS = ("control_anchor", "control_steps")
DISTILLED = "distilled"


@dataclass(frozen=True)
class PairedDifference:
    """mean(a) - mean(b) over the same queries, and its bootstrap interval."""

    delta: float
    ci_low: float
    ci_high: float
    queries: int
    resamples: int
    confidence: float

    @property
    def above_zero(self) -> bool:
        """a beats b beyond query noise: the whole interval is above zero."""
        return self.ci_low > 0


def per_query_scores(run: Run, relevant: Mapping[str, Mapping[str, int]], metric: str = "ndcg@10") -> dict[str, float]:
    """``metric`` (a ranx name) of ``run`` for every query of ``relevant`` that has a relevant document.

    A query the run does not rank scores 0. The mean of the values is what
    ``jude.evaluation.retrieval.ranking_metrics`` reports.
    """
    from ranx import Qrels, evaluate
    from ranx import Run as RanxRun

    qrels_dict = {q: {d: int(g) for d, g in r.items()} for q, r in relevant.items() if r}
    if not qrels_dict:
        raise EvaluationError("per-query scores: no query has a relevant document")
    qrels = Qrels(qrels_dict)
    full = {q: dict(run.get(q, {})) or {"__none__": 0.0} for q in qrels.qrels}
    ranked = RanxRun(full).make_comparable(qrels)
    evaluate(qrels, ranked, metric, make_comparable=False)
    return {str(q): float(v) for q, v in ranked.scores[metric].items()}


def paired_bootstrap(
    a: Mapping[str, float],
    b: Mapping[str, float],
    resamples: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
) -> PairedDifference:
    """mean(a) - mean(b) over their queries, with a percentile bootstrap interval over resampled queries.

    ``a`` and ``b`` are per-query scores of two runs on the *same* queries (a
    different query set is an error: the pairing is the point).
    """
    if set(a) != set(b):
        only_a, only_b = sorted(set(a) - set(b)), sorted(set(b) - set(a))
        raise EvaluationError(
            f"paired bootstrap needs the same queries in both runs; only in the first: {only_a[:5]}, "
            f"only in the second: {only_b[:5]}"
        )
    if not a:
        raise EvaluationError("paired bootstrap: no queries")
    queries = sorted(a)
    diff = np.array([a[q] - b[q] for q in queries], dtype=np.float64)  # (Q,)
    low, high = _percentile_interval(diff, resamples, seed, confidence)
    return PairedDifference(
        delta=float(diff.mean()),
        ci_low=low,
        ci_high=high,
        queries=len(diff),
        resamples=resamples,
        confidence=confidence,
    )


def mean_interval(
    scores: Mapping[str, float], resamples: int = 1000, seed: int = 0, confidence: float = 0.95
) -> tuple[float, float, float]:
    """(mean, low, high): the mean of per-query ``scores`` and its percentile bootstrap interval over resampled
    queries (the spread one would see with another draw of test members of the same kind)."""
    if not scores:
        raise EvaluationError("bootstrap interval: no queries")
    values = np.array([scores[q] for q in sorted(scores)], dtype=np.float64)  # (Q,)
    low, high = _percentile_interval(values, resamples, seed, confidence)
    return float(values.mean()), low, high


def _percentile_interval(values: np.ndarray, resamples: int, seed: int, confidence: float) -> tuple[float, float]:
    """The ``confidence`` percentile interval of the mean of ``values`` (Q,) over ``resamples`` seeded resamples."""
    if resamples <= 0:
        raise ValueError(f"resamples must be > 0, got {resamples}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(values), size=(resamples, len(values)))  # (R, Q) resampled queries
    means = values[idx].mean(axis=1)  # (R,)
    tail = (1 - confidence) / 2
    low, high = np.quantile(means, [tail, 1 - tail])
    return float(low), float(high)


def variant_intervals(
    runs: Mapping[str, Run],
    relevant: Mapping[str, Mapping[str, int]],
    prefix: str = "",
    resamples: int = 1000,
    seed: int = 0,
) -> dict[str, float]:
    """Every run's nDCG@10 interval on ``relevant``, and the fine-tuned model's paired lead over the base model.

    Returns ``{prefix}<variant>/ndcg_at_10_ci_low`` and ``_ci_high`` for each run (the point value is the
    ``<variant>/ndcg_at_10`` the evaluation logs), and, when ``base`` and ``finetuned`` are both in ``runs``,
    ``{prefix}finetuned_vs_base_ndcg_delta`` with its paired ``_ci_low`` / ``_ci_high``: the same resampled
    queries for both, so the per-query variance they share cancels. With a ``base`` run, every other run's
    recall@100 lead over it, paired the same way: ``{prefix}<variant>_vs_base_recall_at_100_delta`` (+ ends); on
    ``applies/`` this is the check that a model hands a ranker no thinner a candidate list than the base model.
    """
    per_query = {variant: per_query_scores(run, relevant) for variant, run in runs.items()}
    out: dict[str, float] = {}
    for variant, scores in per_query.items():
        _, low, high = mean_interval(scores, resamples=resamples, seed=seed)
        out.update({f"{prefix}{variant}/ndcg_at_10_ci_low": low, f"{prefix}{variant}/ndcg_at_10_ci_high": high})
    if "base" in per_query and "finetuned" in per_query:
        d = paired_bootstrap(per_query["finetuned"], per_query["base"], resamples=resamples, seed=seed)
        key = f"{prefix}finetuned_vs_base_ndcg_delta"
        out.update({key: d.delta, f"{key}_ci_low": d.ci_low, f"{key}_ci_high": d.ci_high})
    if "base" in runs:  # recall@100 (the tail a retrieval stage hands on) of every other run, paired against base
        for variant, run in runs.items():
            if variant == "base":
                continue
            d = compare_runs(run, runs["base"], relevant, metric="recall@100", resamples=resamples, seed=seed)
            key = f"{prefix}{variant}_vs_base_recall_at_100_delta"
            out.update({key: d.delta, f"{key}_ci_low": d.ci_low, f"{key}_ci_high": d.ci_high})
    return out


def compare_runs(
    run_a: Run,
    run_b: Run,
    relevant: Mapping[str, Mapping[str, int]],
    metric: str = "ndcg@10",
    resamples: int = 1000,
    seed: int = 0,
) -> PairedDifference:
    """``metric`` of ``run_a`` minus ``run_b`` on ``relevant``, paired over its queries, with its interval."""
    return paired_bootstrap(
        per_query_scores(run_a, relevant, metric),
        per_query_scores(run_b, relevant, metric),
        resamples=resamples,
        seed=seed,
    )


def distillation_vs_controls(
    runs: Mapping[str, Run],
    relevant: Mapping[str, Mapping[str, int]],
    prefix: str = "",
    resamples: int = 1000,
    seed: int = 0,
) -> dict[str, float]:
    """The distilled run against each control run, nDCG@10 paired over the queries of ``relevant``.

    Returns ``{prefix}distill_vs_<control>_delta`` / ``_ci_low`` / ``_ci_high`` for each control in ``runs``
    and ``{prefix}distill_beats_controls``: 1.0 when both controls were scored and the distilled model
    beats each with the interval above zero, else 0.0. Empty when ``runs`` lacks the distilled run or
    both controls (the default chain trains no controls).
    """
    present = [c for c in CONTROLS if c in runs]
    if DISTILLED not in runs or not present:
        return {}
    out: dict[str, float] = {}
    wins = []
    for control in present:
        d = compare_runs(runs[DISTILLED], runs[control], relevant, resamples=resamples, seed=seed)
        key = f"{prefix}distill_vs_{control}"
        out.update({f"{key}_delta": d.delta, f"{key}_ci_low": d.ci_low, f"{key}_ci_high": d.ci_high})
        wins.append(d.above_zero)
    out[f"{prefix}distill_beats_controls"] = float(len(present) == len(CONTROLS) and all(wins))
    return out
