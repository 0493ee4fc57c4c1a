"""Impression rows, their split and outcomes, and standard features that see only the past."""

import numpy as np
import pandas as pd
import pytest

from jude.config import RANKER_STANDARD_FEATURES, DataConfig, EvalConfig, RankerConfig, TrainConfig
from jude.ranker.features import (
    MemberSplit,
    RankerError,
    events_before,
    impression_rows,
    member_split,
    standard_features,
)


def test_test_members_are_the_training_pipelines(ranker_rows, split):
    """The same split function with the same arguments: the test rows are the held-out members' test period."""
    test, train = ranker_rows[ranker_rows["split"] == "test"], ranker_rows[ranker_rows["split"] == "train"]
    assert set(test["member_id"]) <= set(split.test.queries) and len(set(test["member_id"])) >= 5
    assert (test["ts"] >= split.t_test).all() and (train["ts"] < split.t_test).all()
    assert not set(train["member_id"]) & set(split.test.queries)


def test_outcomes_are_what_followed_the_impression(ranker_rows, small_market):
    it = small_market.interactions
    for action, column in (("apply", "applied"), ("dismiss", "dismissed"), ("view", "viewed")):
        done = set(zip(*(it.loc[it["action"] == action, c] for c in ("member_id", "job_id"))))
        expected = [pair in done for pair in zip(ranker_rows["member_id"], ranker_rows["job_id"])]
        assert ranker_rows[column].tolist() == expected, column
    assert ranker_rows.groupby("split")["applied"].sum().min() > 0


def test_an_outcome_belongs_to_the_latest_impression_before_it():
    t = pd.Timestamp("2026-01-01")

    def day(d: float) -> pd.Timestamp:
        return t + pd.Timedelta(days=d)

    it = pd.DataFrame(
        [  # m sees j twice (a training member), n is a test member
            ("m", "j", day(0), "impression"),
            ("m", "j", day(1), "dismiss"),
            ("m", "j", day(3), "impression"),
            ("m", "j", day(3.01), "apply"),
            ("n", "j", day(5), "impression"),
            ("n", "j", day(5.01), "apply"),
        ],
        columns=["member_id", "job_id", "ts", "action"],
    )
    split = MemberSplit(t_val=day(2), t_test=day(4), test_members=frozenset({"n"}))
    rows = impression_rows(it, split)
    assert rows[["member_id", "split", "applied", "dismissed"]].values.tolist() == [
        ["m", "train", False, True],
        ["m", "train", True, False],
        ["n", "test", True, False],
    ]
    with pytest.raises(RankerError, match=r"the train rows \(impressions before .*\) have no applies"):
        impression_rows(it.drop(index=3), split)


def test_standard_features_use_only_events_before_each_impression(ranker_rows, small_market):
    """A feature computed from every event equals the one computed from the events before the impression alone."""
    m = small_market
    full = standard_features(ranker_rows, m.jobs, m.members, m.interactions)
    rng = np.random.default_rng(0)
    for i in rng.choice(len(ranker_rows), size=40, replace=False):
        row = ranker_rows.iloc[[i]]
        past = m.interactions[m.interactions["ts"] < row["ts"].iloc[0]]
        alone = standard_features(row, m.jobs, m.members, past)
        pd.testing.assert_series_equal(full.iloc[i], alone.iloc[0], check_names=False)
    assert full["job_views_before"].max() > 0 and full["job_applies_before"].max() > 0


def test_popularity_counts_events_strictly_before_and_by_anyone():
    t = pd.Timestamp("2026-01-01 12:00")
    it = pd.DataFrame(
        {
            "member_id": ["a", "b", "c", "d"],
            "job_id": ["j", "j", "j", "k"],
            "ts": [t - pd.Timedelta(hours=1), t, t + pd.Timedelta(seconds=1), t - pd.Timedelta(hours=2)],
            "action": ["view"] * 4,
        }
    )
    got = events_before(it, "view", pd.Series(["j", "j", "k", "x"]), pd.Series([t, t + pd.Timedelta(days=1), t, t]))
    assert got.tolist() == [1.0, 3.0, 1.0, 0.0]  # the view at t itself is not before t


def test_standard_features_are_computed_from_the_tables(ranker_rows, small_market):
    m = small_market
    feats = standard_features(ranker_rows, m.jobs, m.members, m.interactions)
    assert list(feats.columns) == list(RANKER_STANDARD_FEATURES)
    row = ranker_rows.iloc[0]
    job = m.jobs.set_index("job_id").loc[row["job_id"]]
    member = m.members.set_index("member_id").loc[row["member_id"]]
    assert feats["years_minus_min"].iloc[0] == pytest.approx(member["years_experience"] - job["min_years"])
    overlap = {s.lower() for s in job["skills"]} & {s.lower() for s in member["skills"]}
    assert feats["skill_overlap"].iloc[0] == len(overlap)
    assert feats["job_age_days"].iloc[0] == pytest.approx((row["ts"] - job["posted_at"]) / pd.Timedelta(days=1))
    assert set(feats["same_city_or_remote"].unique()) <= {0.0, 1.0} and feats.notna().all().all()


def test_a_feature_that_does_not_exist_is_named():
    with pytest.raises(ValueError, match="unknown feature 'skil_overlap' \\(did you mean 'skill_overlap'\\?\\)"):
        RankerConfig(features=["skil_overlap"])
    with pytest.raises(ValueError, match="unknown feature 'cosin'"):
        RankerConfig(embedding_features=["cosin"])
    with pytest.raises(RankerError, match="unknown standard feature\\(s\\) \\['nope'\\]"):
        standard_features(pd.DataFrame(), pd.DataFrame(), pd.DataFrame(), pd.DataFrame(), ["nope"])


def test_a_test_period_without_applies_is_named(small_market):
    from jude.training.pairs import cut_points

    m = small_market
    _, t_test = cut_points(m.interactions, 0.15, 0.2)
    no_late_applies = m.interactions[~((m.interactions["action"] == "apply") & (m.interactions["ts"] >= t_test))]
    with pytest.raises(RankerError, match="the test period \\(from .*\\) has no applies"):
        member_split(
            m.jobs,
            m.members,
            no_late_applies,
            DataConfig(val_fraction=0.15, test_fraction=0.2),
            EvalConfig(max_queries=30),
            TrainConfig(),
        )
