"""The test-period metrics: scikit-learn's figures, top-k per member, paired bootstrap intervals over members."""

import numpy as np
import pytest
from sklearn.metrics import log_loss, roc_auc_score

from jude.ranker.metrics import Outcomes, evaluate, interval, member_resamples, metric_names, paired_interval


@pytest.fixture()
def data():
    rng = np.random.default_rng(3)
    n = 400
    member = np.repeat([f"m{i:03d}" for i in range(80)], 5)
    applied = rng.random(n) < 0.2
    scores = np.clip(0.2 + 0.3 * applied + rng.normal(0, 0.2, n), 0.01, 0.99).round(2)  # ties on purpose
    rows = Outcomes.build(member, applied, ~applied & (rng.random(n) < 0.3), rng.integers(0, 4, n))
    return rows, scores


def test_auc_and_log_loss_are_scikit_learns_for_the_members_and_each_resample(data):
    rows, scores = data
    resamples = member_resamples(rows.n_members, 50, seed=1)
    got = evaluate(scores, rows, [3], resamples)
    assert got["apply_auc"][0] == pytest.approx(roc_auc_score(rows.applied, scores))
    assert got["log_loss"][0] == pytest.approx(log_loss(rows.applied, scores))
    for b in (0, 17, 49):
        w = resamples[b][rows.member]
        assert got["apply_auc"][b + 1] == pytest.approx(roc_auc_score(rows.applied, scores, sample_weight=w))
        assert got["log_loss"][b + 1] == pytest.approx(log_loss(rows.applied, scores, sample_weight=w))


def test_top_k_keeps_each_members_best_scored_impressions():
    #                 member a: 4 impressions          member b: 2
    member = ["a", "a", "a", "a", "b", "b"]
    scores = np.array([0.9, 0.1, 0.5, 0.7, 0.2, 0.3])
    applied = np.array([True, True, False, False, False, True])
    dismissed = np.array([False, False, True, True, True, False])
    grade = np.array([3, 3, 0, 0, 0, 1])  # b's apply is not qualified
    rows = Outcomes.build(member, applied, dismissed, grade, qualified_grade=2)
    got = evaluate(scores, rows, [2, 10])
    # top 2: a -> 0.9 (qualified apply), 0.7 (dismiss); b -> both (an unqualified apply, a dismiss)
    assert got["qualified_apply_rate_at_2"][0] == pytest.approx(1 / 4)
    assert got["dismiss_to_apply_at_2"][0] == pytest.approx(2 / 2)
    assert got["qualified_apply_rate_at_10"][0] == pytest.approx(2 / 6)
    assert got["dismiss_to_apply_at_10"][0] == pytest.approx(3 / 3)
    assert metric_names([2, 10]) == [
        "apply_auc",
        "log_loss",
        "qualified_apply_rate_at_2",
        "dismiss_to_apply_at_2",
        "qualified_apply_rate_at_10",
        "dismiss_to_apply_at_10",
    ]


def test_intervals_are_seeded_cover_the_point_and_pair_the_sets(data):
    rows, scores = data
    resamples = member_resamples(rows.n_members, 300, seed=0)
    assert np.array_equal(resamples, member_resamples(rows.n_members, 300, seed=0))
    assert (resamples.sum(axis=1) == rows.n_members).all()
    a = evaluate(scores, rows, [3], resamples)
    low, high = interval(a["apply_auc"][1:])
    assert low < a["apply_auc"][0] < high and high - low < 0.3
    assert paired_interval(a["apply_auc"], a["apply_auc"]) == (0.0, 0.0, 0.0)
    noisy = evaluate(scores + np.random.default_rng(1).normal(0, 0.3, len(scores)), rows, [3], resamples)
    diff, dlow, dhigh = paired_interval(a["apply_auc"], noisy["apply_auc"])
    assert diff > 0 and dlow <= diff <= dhigh
