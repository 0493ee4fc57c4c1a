"""The synthetic marketplace: determinism, schema, the latent engagement model, hard cases, shift."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from support import SMALL_MARKET_SEED

from jude.config import SyntheticConfig
from jude.data import schema, vocab
from jude.data.schema import Marketplace
from jude.data.synthetic import engagement_probabilities, generate_marketplace, pair_features


def _impression_features(m: Marketplace) -> pd.DataFrame:
    """Latent features of every impression plus whether it led to an apply."""
    it = m.interactions
    imp = it[it["action"] == "impression"][["member_id", "job_id"]].reset_index(drop=True)
    applied = set(map(tuple, it[it["action"] == "apply"][["member_id", "job_id"]].to_numpy()))
    f = pair_features(m.jobs, m.members, imp)
    f["apply"] = [(a, b) in applied for a, b in imp.to_numpy()]
    return f


# --------------------------------------------------------------------------- determinism and schema


def test_same_seed_gives_identical_frames(small_market, small):
    again = generate_marketplace(SyntheticConfig(seed=SMALL_MARKET_SEED, **small))
    for table in ("jobs", "members", "interactions"):
        pd.testing.assert_frame_equal(getattr(small_market, table), getattr(again, table))


def test_another_seed_gives_different_frames(small_market, small):
    other = generate_marketplace(SyntheticConfig(seed=7, **small))
    assert not small_market.jobs["description"].equals(other.jobs["description"])
    assert not small_market.members["resume_text"].equals(other.members["resume_text"])
    assert not small_market.interactions.equals(other.interactions)


def test_tables_match_the_schemas(small_market):
    m = small_market
    for table, s in (("jobs", schema.JOBS), ("members", schema.MEMBERS), ("interactions", schema.INTERACTIONS)):
        df = getattr(m, table)
        assert list(df.columns) == s.column_names
        pd.testing.assert_frame_equal(s.validate(df), df)  # already canonical
    schema.check_references(m.interactions, m.jobs, m.members)


def test_summary_counts(small_market, small):
    s = small_market.summary()
    assert s["jobs"] == small["n_jobs"] and s["members"] == small["n_members"]
    assert s["interactions"] == len(small_market.interactions) == sum(s["actions"].values())
    assert s["actions"]["impression"] == small["n_members"] * small["impressions_per_member"]
    assert s["time_range"][0] < s["time_range"][1]


def test_start_sets_the_period_and_aware_starts_are_converted(small):
    m = generate_marketplace(SyntheticConfig(seed=3, **small), start="2025-06-01T00:00:00+02:00")
    start = pd.Timestamp("2025-05-31")  # 2025-05-31 22:00 UTC, normalised to its day
    end = start + pd.Timedelta(days=small["days"])
    assert m.jobs["posted_at"].min() >= start and m.jobs["updated_at"].max() <= end
    assert m.interactions["ts"].min() >= start and m.interactions["ts"].max() <= end


# --------------------------------------------------------------------------- jobs and members


def test_job_titles_seniority_and_min_years_agree(default_market):
    jobs = default_market.jobs
    for row in jobs.itertuples():
        assert vocab.seniority_of_title(row.title) == row.seniority, row.title
        lo, hi = vocab.MIN_YEARS_BY_SENIORITY[row.seniority]
        assert lo <= row.min_years <= hi
        fam = vocab.ROLE_FAMILIES[vocab.role_family_of(row.title)]
        core = sum(s in fam.core_skills for s in row.skills)
        assert core >= 4 and core > len(row.skills) - core  # mostly core skills
        assert str(row.min_years) in row.description or row.min_years == 0
    assert 0.15 <= jobs["remote"].mean() <= 0.25
    assert (jobs["updated_at"] >= jobs["posted_at"]).all()
    assert jobs["description"].str.count("\n\n").ge(2).all()  # three paragraphs
    assert set(jobs["seniority"]) == set(schema.SENIORITIES)
    # spread over the period, not bunched
    days = (jobs["posted_at"] - jobs["posted_at"].min()).dt.days
    assert days.max() >= 80 and days.median() >= 25


def test_members_titles_follow_years_and_some_change_careers(default_market):
    members = default_market.members
    changers = 0
    for row in members.itertuples():
        assert vocab.seniority_of_title(row.title) == vocab.seniority_for_years(row.years_experience)
        fam = vocab.role_family_of(row.title)
        assert fam in vocab.ROLE_FAMILIES
        assert row.title in row.resume_text and "Education" in row.resume_text
        lines = row.resume_text.splitlines()
        experience = lines[lines.index("Experience") + 1 : lines.index("Education")]
        positions = [line for line in experience if line and not line.startswith("- ")]
        assert 2 <= len(positions) <= 4, row.resume_text
        history = {vocab.role_family_of(p.split(",")[0]) for p in positions}
        changers += bool(history - {fam})
    assert 0.05 * len(members) <= changers <= 0.3 * len(members)


# --------------------------------------------------------------------------- interactions


def test_interaction_funnel_and_timing(small_market, small):
    it = small_market.interactions
    per_action = {a: it[it["action"] == a].set_index(["member_id", "job_id"])["ts"] for a in schema.ACTIONS}
    imp, view = per_action["impression"], per_action["view"]
    assert imp.index.is_unique  # a member sees a job at most once
    assert imp.groupby(level="member_id").size().eq(small["impressions_per_member"]).all()
    assert view.index.isin(imp.index).all() and (view > imp.loc[view.index]).all()
    for follow in ("apply", "dismiss"):
        after = per_action[follow]
        assert after.index.isin(view.index).all() and (after > view.loc[after.index]).all()
    assert not per_action["apply"].index.isin(per_action["dismiss"].index).any()
    posted = small_market.jobs.set_index("job_id")["posted_at"]
    assert (imp.to_numpy() > posted.loc[imp.index.get_level_values("job_id")].to_numpy()).all()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_apply_rate_is_a_few_percent(seed):
    s = generate_marketplace(SyntheticConfig(seed=seed, n_jobs=300, n_members=200)).summary()
    assert 0.03 <= s["apply_rate"] <= 0.08


def test_fitting_pairs_apply_far_more_than_mismatched(default_market):
    f = _impression_features(default_market)
    fitting = f[f["fit"] >= 0.6]["apply"].mean()
    mismatched = f[f["role"] == 0]["apply"].mean()
    related = f[f["role"] == 0.5]["apply"].mean()
    assert (f["fit"] >= 0.6).sum() > 100 and (f["role"] == 0).sum() > 1000
    assert fitting > 8 * mismatched
    assert mismatched < related < fitting  # an adjacent family is a weak fit


def test_hard_cases_exist_and_are_rarely_applied(default_market):
    f = _impression_features(default_market)
    same = f["role"] == 1
    good = f[same & (f["location"] == 1) & (f["years_gap"] >= 0)]
    elsewhere = f[same & (f["location"] == 0)]  # same role in another city
    underqualified = f[same & (f["location"] == 1) & (f["years_gap"] < -1)]  # same city, too junior
    confusable = f[f["confusable"]]  # similar words, other role
    for hard in (elsewhere, underqualified, confusable):
        assert len(hard) >= 300
        assert hard["apply"].mean() < good["apply"].mean() / 3


def test_remote_jobs_fit_every_location(default_market):
    jobs, members = default_market.jobs, default_market.members
    remote = jobs[jobs["remote"]]["job_id"].to_numpy()[:20]
    pairs = pd.DataFrame(
        [(m, j) for m in members["member_id"].to_numpy()[:50] for j in remote], columns=["member_id", "job_id"]
    )
    f = pair_features(jobs, members, pairs)
    assert (f["location"] == 1).all()
    onsite = jobs[~jobs["remote"]].iloc[0]
    others = members[members["location"] != onsite["location"]]["member_id"].to_numpy()[:20]
    f = pair_features(jobs, members, pd.DataFrame({"member_id": others, "job_id": onsite["job_id"]}))
    assert (f["location"] == 0).all() and (f["fit"] == 0).all()


def test_engagement_probabilities_follow_the_documented_model():
    feats = pd.DataFrame(
        {
            "role": [1.0, 1.0, 0.0, 0.0],
            "confusable": [False, False, True, False],
            "location": [1.0, 1.0, 1.0, 1.0],
            "fit": [1.0, 0.2, 0.0, 0.0],
        }
    )
    p = engagement_probabilities(feats, popularity=np.zeros(4))
    assert p["apply"][0] > 0.8 > 0.1 > p["apply"][1] > p["apply"][3]
    assert p["dismiss"][0] < p["dismiss"][1] < p["dismiss"][3]
    assert p["view"][2] > p["view"][3]  # a confusable title attracts views by its words
    hot = engagement_probabilities(feats, popularity=np.full(4, 1.2))
    assert (hot["apply"] > p["apply"]).all()  # popular jobs get more applies regardless of fit


# --------------------------------------------------------------------------- distribution shift


def _titles_and_cities(m: Marketplace) -> tuple[set[str], set[str]]:
    return set(m.jobs["title"]) | set(m.members["title"]), set(m.jobs["location"]) | set(m.members["location"])


def test_roles_shift_uses_only_new_families(small_market, small):
    shifted = generate_marketplace(SyntheticConfig(seed=0, shift="roles", **small))
    titles, cities = _titles_and_cities(shifted)
    base_titles, base_cities = _titles_and_cities(small_market)
    assert not titles & base_titles
    assert {vocab.role_family_of(t) for t in titles} <= set(vocab.SHIFT_ROLE_FAMILIES)
    assert cities <= set(vocab.CITIES)


def test_cities_shift_uses_a_disjoint_set_of_cities(small_market, small):
    shifted = generate_marketplace(SyntheticConfig(seed=0, shift="cities", **small))
    titles, cities = _titles_and_cities(shifted)
    assert cities <= set(vocab.SHIFT_CITIES) and not cities & _titles_and_cities(small_market)[1]
    assert {vocab.role_family_of(t) for t in titles} <= set(vocab.ROLE_FAMILIES)


def test_style_shift_changes_the_writing(small_market, small):
    shifted = generate_marketplace(SyntheticConfig(seed=0, shift="style", **small))
    headers = r"^(?:ABOUT US|WHO WE ARE|COMPANY):"
    assert shifted.jobs["description"].str.contains(headers).all()
    assert not small_market.jobs["description"].str.contains(headers).any()
    assert shifted.members["resume_text"].str.contains("\nEXPERIENCE\n").all()
    assert not small_market.members["resume_text"].str.contains("\nEXPERIENCE\n").any()
    assert _titles_and_cities(shifted)[1] <= set(vocab.CITIES)


def test_all_shift_combines_the_three(small):
    m = generate_marketplace(SyntheticConfig(seed=0, shift="all", **small))
    titles, cities = _titles_and_cities(m)
    assert {vocab.role_family_of(t) for t in titles} <= set(vocab.SHIFT_ROLE_FAMILIES)
    assert cities <= set(vocab.SHIFT_CITIES)
    assert m.members["resume_text"].str.contains("\nEXPERIENCE\n").all()


def _tvd(a: pd.Series, b: pd.Series) -> float:
    """Total variation distance between two categorical distributions."""
    pa, pb = a.value_counts(normalize=True), b.value_counts(normalize=True)
    return 0.5 * float(pa.subtract(pb, fill_value=0).abs().sum())


def test_unshifted_seeds_look_alike():
    a = generate_marketplace(SyntheticConfig(seed=11, n_jobs=400, n_members=300, impressions_per_member=10))
    b = generate_marketplace(SyntheticConfig(seed=12, n_jobs=400, n_members=300, impressions_per_member=10))
    fam = lambda df: df["title"].map(vocab.role_family_of)  # noqa: E731
    assert _tvd(fam(a.jobs), fam(b.jobs)) < 0.15
    assert _tvd(a.jobs["location"], b.jobs["location"]) < 0.2
    assert _tvd(a.jobs["seniority"], b.jobs["seniority"]) < 0.1
    assert abs(a.members["years_experience"].mean() - b.members["years_experience"].mean()) < 1.0
    assert abs(a.jobs["description"].str.len().mean() / b.jobs["description"].str.len().mean() - 1) < 0.05
    assert abs(a.summary()["apply_rate"] - b.summary()["apply_rate"]) < 0.03


def test_tiny_marketplace_is_still_valid():
    m = generate_marketplace(SyntheticConfig(seed=5, n_jobs=1, n_members=2, impressions_per_member=5))
    imp = m.interactions[m.interactions["action"] == "impression"]
    assert len(imp) == 2  # one job: each member sees it once
    schema.check_references(m.interactions, m.jobs, m.members)


def test_pair_features_rejects_unknown_ids(small_market):
    pairs = pd.DataFrame({"member_id": [small_market.members["member_id"].iloc[0]], "job_id": ["J-nope"]})
    with pytest.raises(ValueError, match="column 'job_id', row 0: not in jobs"):
        pair_features(small_market.jobs, small_market.members, pairs)


def test_seeds_share_the_world_but_not_the_draw(small_market, small):
    """Employers and cities are fixed for every seed (so seeds look alike); who posts what is not."""
    other = generate_marketplace(SyntheticConfig(seed=7, **small))
    shared = set(small_market.jobs["company"]) & set(other.jobs["company"])
    assert len(shared) >= 0.2 * small_market.jobs["company"].nunique()
    assert not small_market.jobs["company"].equals(other.jobs["company"])
