"""The generator's truth (graded from the latent fit, never from the judge) and the unseen world."""

import numpy as np
import pandas as pd
import pytest

from jude.config import JudgeErrorConfig, SyntheticConfig
from jude.data import synthetic, vocab
from jude.data.synthetic import (
    TRUTH_PROPENSITY_THRESHOLDS,
    generate_unseen_world,
    pair_features,
    truth_grades,
    truth_propensity,
    truth_relevance,
    unseen_world_vocabulary,
)
from jude.labels import rubric
from jude.labels.rubric import RubricJudge


def _all_pairs(market, n_members=30):
    members = market.members["member_id"].head(n_members)
    jobs = market.jobs["job_id"]
    return pd.DataFrame({"member_id": np.repeat(members, len(jobs)), "job_id": np.tile(jobs, len(members))})


def _judge(market, pairs, judge):
    m = market.members.set_index("member_id", drop=False)
    j = market.jobs.set_index("job_id", drop=False)
    records = [(m.loc[a].to_dict(), j.loc[b].to_dict()) for a, b in zip(pairs["member_id"], pairs["job_id"])]
    return np.array([x.grade for x in judge.grade_pairs(records)])


def test_truth_is_unchanged_when_the_judges_thresholds_and_error_rate_change(small_market, monkeypatch):
    pairs = _all_pairs(small_market, 12)
    truth = truth_grades(small_market.jobs, small_market.members, pairs)
    exact = _judge(small_market, pairs, RubricJudge())
    noisy = _judge(small_market, pairs, RubricJudge(JudgeErrorConfig(rate=0.5, seed=3)))
    monkeypatch.setattr(rubric, "QUALIFIED_SKILL_SHARE", 0.9)
    monkeypatch.setattr(rubric, "SLIGHT_SKILL_SHARE", 0.8)
    monkeypatch.setattr(rubric, "SLIGHT_YEARS_GAP", 0)
    strict = _judge(small_market, pairs, RubricJudge())
    # the judge moved with its thresholds and its error rate ...
    assert (strict != exact).sum() > 0 and (noisy != exact).sum() > 0
    # ... and the truth did not
    np.testing.assert_array_equal(truth_grades(small_market.jobs, small_market.members, pairs), truth)


def test_truth_grades_are_fixed_cuts_of_the_latent_apply_propensity(small_market):
    pairs = _all_pairs(small_market)
    feats = pair_features(small_market.jobs, small_market.members, pairs)
    grades = truth_grades(small_market.jobs, small_market.members, pairs)
    p = truth_propensity(feats)
    lo, mid, hi = TRUTH_PROPENSITY_THRESHOLDS
    np.testing.assert_array_equal(grades, (p >= lo).astype(int) + (p >= mid) + (p >= hi))
    role = feats["role"].to_numpy()
    assert (grades[role == 0] == 0).all()  # a different role is never relevant
    assert (grades[role == 0.5] <= 1).all()  # an adjacent role is at most a weak fit
    assert (grades[feats["location"].to_numpy() == 0] == 0).all()  # a job the member cannot take
    assert set(np.unique(grades)) == {0, 1, 2, 3}
    # the truth is not the judge: they agree on most pairs and differ on some
    judged = _judge(small_market, pairs, RubricJudge())
    assert 0.8 < ((judged >= 2) == (grades >= 2)).mean() < 1.0


def test_truth_relevance_grades_every_job_for_each_member(small_market):
    members = small_market.members["member_id"].head(20).tolist()
    rel = truth_relevance(small_market.jobs, small_market.members, members)
    assert list(rel) == members
    pairs = _all_pairs(small_market, 20)
    grades = truth_grades(small_market.jobs, small_market.members, pairs)
    expected = {
        (m, j): int(g)
        for m, j, g in zip(pairs["member_id"], pairs["job_id"], grades)
        if g >= synthetic.TRUTH_RELEVANT_GRADE
    }
    assert {(m, j): g for m, r in rel.items() for j, g in r.items()} == expected


def test_unseen_world_shares_no_role_family_title_or_city_with_training(small_market):
    jobs, members = generate_unseen_world(SyntheticConfig(seed=1), n_jobs=150, n_members=60)
    trained_titles = set(small_market.jobs["title"]) | set(small_market.members["title"])
    trained_families = {vocab.role_family_of(t) for t in trained_titles}
    trained_cities = {
        c.split(",")[0] for c in set(small_market.jobs["location"]) | set(small_market.members["location"])
    }
    titles = set(jobs["title"]) | set(members["title"])
    families = {vocab.role_family_of(t) for t in titles}
    cities = {c.split(",")[0] for c in set(jobs["location"]) | set(members["location"])}
    assert None not in families and not families & set(vocab.ROLE_FAMILIES) and not families & trained_families
    assert not titles & trained_titles and not cities & trained_cities
    assert not {c.split(",")[0] for c in vocab.CITIES} & cities  # no training city, whatever the seed drew
    names, world_cities = unseen_world_vocabulary(SyntheticConfig())
    assert set(vocab.UNSEEN_ROLE_FAMILIES) <= set(names) and len(world_cities) > len(vocab.SHIFT_CITIES)
    # its ids never collide with the marketplace's, and the truth finds fits in it
    assert not set(jobs["job_id"]) & set(small_market.jobs["job_id"])
    rel = truth_relevance(jobs, members, members["member_id"])
    assert sum(1 for r in rel.values() if r) >= 0.5 * len(members)


def test_unseen_world_is_seeded_and_leaves_the_marketplace_draws_alone():
    cfg = SyntheticConfig(n_jobs=40, n_members=30, days=20, impressions_per_member=5, seed=4)
    before = synthetic.generate_marketplace(cfg)
    a = generate_unseen_world(cfg, n_jobs=50, n_members=20)
    after = synthetic.generate_marketplace(cfg)
    for x, y in zip(
        (before.jobs, before.members, before.interactions), (after.jobs, after.members, after.interactions)
    ):
        pd.testing.assert_frame_equal(x, y)
    b = generate_unseen_world(cfg, n_jobs=50, n_members=20)
    pd.testing.assert_frame_equal(a[0], b[0])
    pd.testing.assert_frame_equal(a[1], b[1])
    other = generate_unseen_world(cfg.model_copy(update={"seed": 5}), n_jobs=50, n_members=20)
    assert not a[0]["title"].equals(other[0]["title"])


@pytest.mark.parametrize("shift", ["roles", "cities", "all"])
def test_unseen_world_of_a_shifted_marketplace_avoids_its_vocabulary(shift):
    trained = synthetic._World.for_shift(shift)
    names, cities = unseen_world_vocabulary(SyntheticConfig(shift=shift))
    assert names and not set(names) & {f.name for f in trained.families}
    assert cities and not {c.split(",")[0] for c in cities} & {c.split(",")[0] for c in trained.cities}
