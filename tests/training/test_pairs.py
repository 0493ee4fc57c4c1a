"""The time split holds the test members out of training and lets no future label in."""

import pandas as pd

from jude.training.pairs import cut_points, split_and_pair


def test_cut_points_follow_the_fractions(small_market):
    t_val, t_test = cut_points(small_market.interactions, 0.15, 0.2)
    t0, t1 = small_market.interactions["ts"].min(), small_market.interactions["ts"].max()
    assert abs((t_test - t0) / (t1 - t0) - 0.8) < 1e-6
    assert abs((t_val - t0) / (t1 - t0) - 0.65) < 1e-6


def test_test_members_relevance_labels_are_not_trained_on(small_market, small_labels):
    m = small_market
    split = split_and_pair(m.jobs, m.members, m.interactions, small_labels, 0.15, 0.2, max_queries=50)
    test_members = set(split.test.queries)
    assert test_members, "the small market must have test-period applies"
    trained = split.pairs[split.pairs["source"] == "relevance"]
    assert not (set(trained["member_id"]) & test_members)
    assert not (set(trained["member_id"]) & set(split.val.queries))


def test_no_held_out_member_is_in_any_training_pair(small_market, small_labels):
    """Validation members choose the teacher and the registered model: like the test members, no training pair
    of either source (relevance or engagement) may be theirs, so nothing trained on them, distillation's scored
    candidates included (those are the training pairs' members)."""
    m = small_market
    split = split_and_pair(m.jobs, m.members, m.interactions, small_labels, 0.15, 0.2, max_queries=50)
    held_out = set(split.val.queries) | set(split.test.queries)
    assert split.val.queries and split.test.queries
    # the small market's validation members do have engagement before t_val: the rule has something to exclude
    applies = m.interactions[(m.interactions["action"] == "apply") & (m.interactions["ts"] < split.t_val)]
    assert set(applies["member_id"]) & set(split.val.queries)
    assert not set(split.pairs["member_id"]) & held_out


def test_engagement_pairs_decided_after_t_val_are_excluded(small_market, small_labels):
    m = small_market
    split = split_and_pair(m.jobs, m.members, m.interactions, small_labels, 0.15, 0.2, max_queries=50)
    eng = split.pairs[split.pairs["source"] == "engagement"]
    decisive = m.interactions[m.interactions["action"].isin(["apply", "dismiss"])]
    last = decisive.groupby(["member_id", "job_id"])["ts"].max()
    when = pd.Series([last[(a, b)] for a, b in zip(eng["member_id"], eng["job_id"])], dtype="datetime64[ns]")
    assert len(eng) > 0 and (when < split.t_val).all()


def test_relevant_sets_include_test_period_applies(small_market, small_labels):
    m = small_market
    split = split_and_pair(m.jobs, m.members, m.interactions, small_labels, 0.15, 0.2, max_queries=50)
    applies = m.interactions[(m.interactions["action"] == "apply") & (m.interactions["ts"] >= split.t_test)]
    for member, job in zip(applies["member_id"], applies["job_id"]):
        if member in split.test.relevant:
            assert split.test.relevant[member][job] >= 2


def test_no_duplicate_training_pairs(small_market, small_labels):
    m = small_market
    split = split_and_pair(m.jobs, m.members, m.interactions, small_labels, 0.15, 0.2, max_queries=50)
    assert not split.pairs.duplicated(["member_id", "job_id"]).any()
