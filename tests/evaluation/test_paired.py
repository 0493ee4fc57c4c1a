"""Paired bootstrap of a metric difference over queries, and distillation's rule against its controls."""

import numpy as np
import pytest

from jude.evaluation.paired import (
    compare_runs,
    distillation_vs_controls,
    mean_interval,
    paired_bootstrap,
    per_query_scores,
    variant_intervals,
)
from jude.evaluation.retrieval import EvaluationError, ranking_metrics

QUERIES = [f"q{i}" for i in range(40)]
DOCS = [f"d{i}" for i in range(30)]
RELEVANT = {q: {DOCS[i % 30]: 2, DOCS[(i + 7) % 30]: 1} for i, q in enumerate(QUERIES)}


def _run(rank_of_relevant: dict[str, int]) -> dict[str, dict[str, float]]:
    """Each query's first relevant document put at the given rank (0 = top), the rest in a fixed order."""
    out = {}
    for q in QUERIES:
        first = next(iter(RELEVANT[q]))
        others = [d for d in DOCS if d != first]
        order = others[: rank_of_relevant[q]] + [first] + others[rank_of_relevant[q] :]
        out[q] = {d: float(len(order) - i) for i, d in enumerate(order)}
    return out


GOOD = _run({q: 0 for q in QUERIES})
BAD = _run({q: 12 for q in QUERIES})
MIXED = _run({q: (0 if i % 2 else 12) for i, q in enumerate(QUERIES)})


def test_per_query_scores_average_to_the_logged_metric():
    scores = per_query_scores(MIXED, RELEVANT)
    assert set(scores) == set(QUERIES)
    assert np.mean(list(scores.values())) == pytest.approx(ranking_metrics(MIXED, RELEVANT)["ndcg_at_10"], abs=1e-9)


def test_a_run_better_on_every_query_has_an_interval_above_zero():
    d = compare_runs(GOOD, BAD, RELEVANT)
    assert d.delta > 0 and d.ci_low > 0 and d.above_zero and d.queries == 40 and d.resamples == 1000
    flipped = compare_runs(BAD, GOOD, RELEVANT)
    assert flipped.delta == pytest.approx(-d.delta) and flipped.ci_high < 0


def test_the_same_run_differs_by_exactly_zero():
    d = compare_runs(MIXED, MIXED, RELEVANT)
    assert (d.delta, d.ci_low, d.ci_high) == (0.0, 0.0, 0.0) and not d.above_zero


def test_the_interval_follows_the_spread_of_the_differences_and_is_seeded():
    rng = np.random.default_rng(3)
    a = {q: float(v) for q, v in zip(QUERIES, rng.normal(0.05, 0.2, len(QUERIES)))}
    b = {q: 0.0 for q in QUERIES}
    d = paired_bootstrap(a, b, resamples=2000, seed=7)
    diffs = np.array(list(a.values()))
    se = diffs.std(ddof=1) / np.sqrt(len(diffs))
    # the percentile interval of the mean is close to the normal one, mean +- 1.96 standard errors
    assert d.delta == pytest.approx(diffs.mean())
    assert d.ci_low == pytest.approx(diffs.mean() - 1.96 * se, abs=0.35 * se)
    assert d.ci_high == pytest.approx(diffs.mean() + 1.96 * se, abs=0.35 * se)
    assert paired_bootstrap(a, b, resamples=2000, seed=7) == d
    assert paired_bootstrap(a, b, resamples=2000, seed=8) != d
    # a constant difference has no spread
    c = paired_bootstrap({q: 0.3 for q in QUERIES}, {q: 0.1 for q in QUERIES})
    assert (c.delta, c.ci_low, c.ci_high) == pytest.approx((0.2, 0.2, 0.2))


def test_the_pairing_needs_the_same_queries():
    with pytest.raises(EvaluationError, match=r"only in the first: \['q0'\]"):
        paired_bootstrap({"q0": 1.0, "q1": 0.0}, {"q1": 0.0})
    with pytest.raises(EvaluationError, match="no queries"):
        paired_bootstrap({}, {})


def test_distilled_wins_only_when_it_beats_both_controls_beyond_noise():
    runs = {"distilled": GOOD, "control_anchor": BAD, "control_steps": BAD}
    flat = distillation_vs_controls(runs, RELEVANT, prefix="truth/")
    for control in ("control_anchor", "control_steps"):
        key = f"truth/distill_vs_{control}"
        assert flat[f"{key}_ci_low"] <= flat[f"{key}_delta"] <= flat[f"{key}_ci_high"]
        assert flat[f"{key}_ci_low"] > 0
    assert flat["truth/distill_beats_controls"] == 1.0
    # level with one control: no win, whatever the other says
    tied = distillation_vs_controls({**runs, "control_steps": GOOD}, RELEVANT)
    assert tied["distill_vs_control_steps_delta"] == 0.0 and tied["distill_beats_controls"] == 0.0
    # ahead on average but within noise: no win either
    other = _run(
        {q: (0 if i % 2 == 0 and i % 10 else 12) for i, q in enumerate(QUERIES)}
    )  # the control wins 16 queries, loses 20
    noisy = distillation_vs_controls({"distilled": MIXED, "control_anchor": other, "control_steps": other}, RELEVANT)
    assert noisy["distill_vs_control_anchor_delta"] > 0 and noisy["distill_vs_control_anchor_ci_low"] < 0
    assert noisy["distill_beats_controls"] == 0.0
    # one control missing: the rule cannot be met
    assert (
        distillation_vs_controls({"distilled": GOOD, "control_anchor": BAD}, RELEVANT)["distill_beats_controls"] == 0.0
    )
    # no controls (the default chain): nothing to log
    assert distillation_vs_controls({"distilled": GOOD, "finetuned": BAD}, RELEVANT) == {}


def test_a_variant_interval_brackets_its_logged_metric_and_widens_with_the_spread_over_queries():
    out = variant_intervals({"base": BAD, "finetuned": MIXED, "teacher": GOOD}, RELEVANT, prefix="truth/")
    for variant, run in (("base", BAD), ("finetuned", MIXED), ("teacher", GOOD)):
        logged = ranking_metrics(run, RELEVANT)["ndcg_at_10"]
        assert out[f"truth/{variant}/ndcg_at_10_ci_low"] <= logged <= out[f"truth/{variant}/ndcg_at_10_ci_high"]

    # GOOD and BAD place the first relevant job alike on every query; MIXED puts it at the top on half the
    # queries and at rank 13 on the others: the widest spread over queries, the widest interval
    def width(v):
        return out[f"truth/{v}/ndcg_at_10_ci_high"] - out[f"truth/{v}/ndcg_at_10_ci_low"]

    assert width("finetuned") > 2 * max(width("teacher"), width("base"))
    # the fine-tuned lead over base is paired: the delta of the means, its interval above zero here
    delta = ranking_metrics(MIXED, RELEVANT)["ndcg_at_10"] - ranking_metrics(BAD, RELEVANT)["ndcg_at_10"]
    assert out["truth/finetuned_vs_base_ndcg_delta"] == pytest.approx(delta, abs=1e-9)
    lead = "truth/finetuned_vs_base_ndcg_delta"
    assert 0 < out[f"{lead}_ci_low"] < delta < out[f"{lead}_ci_high"]


def test_without_a_base_run_there_is_no_lead_over_base():
    out = variant_intervals({"finetuned": MIXED}, RELEVANT)
    assert set(out) == {"finetuned/ndcg_at_10_ci_low", "finetuned/ndcg_at_10_ci_high"}


def test_a_mean_interval_is_seeded_and_refuses_nothing_to_resample():
    scores = per_query_scores(MIXED, RELEVANT)
    assert mean_interval(scores, seed=3) == mean_interval(scores, seed=3)
    assert mean_interval(scores, seed=3) != mean_interval(scores, seed=4)
    with pytest.raises(EvaluationError, match="no queries"):
        mean_interval({})


def test_every_run_gets_its_recall_at_100_lead_over_base_paired():
    # a run cut to its top 5 hands on a thinner list than the full one: recall@100 below base, the interval too
    thin = {q: dict(sorted(r.items(), key=lambda x: -x[1])[:5]) for q, r in MIXED.items()}
    out = variant_intervals({"base": GOOD, "finetuned": thin, "distilled": GOOD}, RELEVANT, prefix="applies/")
    delta = ranking_metrics(thin, RELEVANT)["recall_at_100"] - ranking_metrics(GOOD, RELEVANT)["recall_at_100"]
    key = "applies/finetuned_vs_base_recall_at_100_delta"
    assert delta < 0 and out[key] == pytest.approx(delta, abs=1e-9)
    assert out[f"{key}_ci_low"] <= delta <= out[f"{key}_ci_high"] < 0
    same = "applies/distilled_vs_base_recall_at_100_delta"
    assert (out[same], out[f"{same}_ci_low"], out[f"{same}_ci_high"]) == (0.0, 0.0, 0.0)
    assert "applies/base_vs_base_recall_at_100_delta" not in out
