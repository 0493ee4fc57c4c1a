"""Paired bootstrap of a metric difference over queries, and distillation's rule against its controls."""

import numpy as np
import pytest

from jude.evaluation.paired import (
    compare_runs,
    distillation_vs_controls,
    paired_bootstrap,
    per_query_scores,
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
