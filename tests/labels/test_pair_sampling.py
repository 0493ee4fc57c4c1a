"""sample_pairs: the budget split, redistribution, no duplicates, determinism."""

from __future__ import annotations

import pandas as pd
import pytest

from jude.config import LabelConfig
from jude.labels.rubric import RubricJudge
from jude.labels.sampling import judge_pairs, sample_pairs


def tables(n_members=20, n_jobs=30, n_interacted=60):
    members = pd.DataFrame({"member_id": [f"m{i}" for i in range(n_members)]})
    jobs = pd.DataFrame({"job_id": [f"j{i}" for i in range(n_jobs)]})
    rows = [
        (f"m{i % n_members}", f"j{(i * 7) % n_jobs}", pd.Timestamp("2024-01-01") + pd.Timedelta(hours=i), "view")
        for i in range(n_interacted)
    ]
    interactions = pd.DataFrame(rows, columns=["member_id", "job_id", "ts", "action"])
    candidates = {f"m{i}": [f"j{(i + r) % n_jobs}" for r in range(25)] for i in range(n_members)}
    return jobs, members, interactions, candidates


def cfg(**kw):
    return LabelConfig(**({"budget": 100, "retrieve_k": 5} | kw))


def test_budget_is_split_by_fractions_without_duplicates():
    jobs, members, inter, cands = tables()
    out = sample_pairs(jobs, members, inter, cfg(), candidates=cands, rng_seed=1)
    assert len(out) == 100
    assert list(out.columns) == ["member_id", "job_id", "origin"]
    assert out["origin"].value_counts().to_dict() == {"retrieved": 50, "interacted": 30, "random": 20}
    assert not out.duplicated(["member_id", "job_id"]).any()
    assert out.attrs["notes"] == []
    # retrieved pairs come from the first retrieve_k candidates; interacted pairs have an interaction
    r = out[out["origin"] == "retrieved"]
    assert all(j in cands[m][:5] for m, j in zip(r["member_id"], r["job_id"]))
    seen = set(zip(inter["member_id"], inter["job_id"]))
    assert all(p in seen for p in zip(*[out[out["origin"] == "interacted"][c] for c in ("member_id", "job_id")]))


def test_retrieved_pairs_take_top_ranks_first():
    jobs, members, inter, cands = tables()
    out = sample_pairs(
        jobs,
        members,
        inter,
        cfg(budget=40, retrieved_fraction=1.0, random_fraction=0.0, interacted_fraction=0.0),
        candidates=cands,
    )
    # 20 members x ranks 1 and 2
    assert sorted(zip(out["member_id"], out["job_id"])) == sorted((m, c[r]) for m, c in cands.items() for r in range(2))


def test_same_seed_same_pairs_other_seed_other_pairs():
    jobs, members, inter, cands = tables()
    a = sample_pairs(jobs, members, inter, cfg(), candidates=cands, rng_seed=3)
    b = sample_pairs(jobs, members, inter, cfg(), candidates=cands, rng_seed=3)
    c = sample_pairs(jobs, members, inter, cfg(), candidates=cands, rng_seed=4)
    pd.testing.assert_frame_equal(a, b)
    assert not a.equals(c)
    d = sample_pairs(jobs, members, inter, cfg(seed=3), candidates=cands)  # rng_seed defaults to cfg.seed
    pd.testing.assert_frame_equal(a, d)


def test_shortfall_moves_to_the_other_sources_and_is_noted():
    jobs, members, inter, _ = tables(n_interacted=10)  # only 10 distinct interacted pairs for a share of 30
    out = sample_pairs(jobs, members, inter, cfg(), candidates=None)
    counts = out["origin"].value_counts().to_dict()
    assert len(out) == 100 and counts == {"interacted": 10, "random": 90}
    assert out.attrs["requested"] == {"retrieved": 50, "interacted": 30, "random": 20}
    assert out.attrs["counts"] == {"retrieved": 0, "interacted": 10, "random": 90}
    notes = " | ".join(out.attrs["notes"])
    assert "no retrieved candidates" in notes
    assert "source 'retrieved' had only 0 pairs for its share of 50" in notes
    assert "source 'interacted' had only 10 pairs" in notes


def test_shortfall_goes_in_proportion_to_fractions():
    jobs, members, _, cands = tables()
    out = sample_pairs(
        jobs,
        members,
        None,
        cfg(budget=100, retrieved_fraction=0.2, random_fraction=0.4, interacted_fraction=0.4),
        candidates=cands,
    )
    # interacted (40) is empty: its 40 go to retrieved:random in 0.2:0.4 -> 13 + 27
    assert out.attrs["counts"] == {"retrieved": 33, "interacted": 0, "random": 67}


def test_budget_larger_than_all_pairs_is_capped():
    jobs, members, inter, cands = tables(n_members=3, n_jobs=4, n_interacted=5)
    out = sample_pairs(jobs, members, inter, cfg(budget=50), candidates=cands)
    assert len(out) == 12 and not out.duplicated(["member_id", "job_id"]).any()
    assert any("exceeds the 12 possible pairs" in n for n in out.attrs["notes"])


def test_nothing_to_sample_is_an_error():
    jobs, members, _, _ = tables()
    with pytest.raises(ValueError, match="no pairs could be sampled"):
        sample_pairs(jobs, members, None, cfg(retrieved_fraction=0.7, random_fraction=0.0, interacted_fraction=0.3))


def test_unknown_ids_are_named():
    jobs, members, inter, cands = tables()
    with pytest.raises(ValueError, match=r"candidates\['m1'\]\[0\]: unknown job_id 'nope'"):
        sample_pairs(jobs, members, inter, cfg(), candidates=cands | {"m1": ["nope"]})
    bad = pd.concat(
        [
            inter,
            pd.DataFrame([{"member_id": "ghost", "job_id": "j1", "ts": pd.Timestamp("2024-02-01"), "action": "apply"}]),
        ],
        ignore_index=True,
    )
    with pytest.raises(ValueError, match=r"column 'member_id', row 60: unknown member \(value: 'ghost'\)"):
        sample_pairs(jobs, members, bad, cfg(), candidates=cands)


def test_judge_pairs_with_the_rubric_judge():
    members = pd.DataFrame(
        [
            dict(
                member_id="m0",
                headline="h",
                title="Data Engineer",
                location="Berlin, Germany",
                years_experience=6.0,
                skills=["Python", "SQL"],
                summary="s",
                resume_text="r",
            )
        ]
    )
    jobs = pd.DataFrame(
        [
            dict(
                job_id=f"j{i}",
                title=t,
                company="c",
                location="Berlin, Germany",
                remote=False,
                seniority="mid",
                min_years=y,
                skills=["Python", "SQL"],
                description="d",
            )
            for i, (t, y) in enumerate([("Data Engineer", 3), ("Data Engineer", 7), ("Recruiter", 1)])
        ]
    )
    pairs = pd.DataFrame({"member_id": ["m0"] * 3, "job_id": ["j0", "j1", "j2"]})
    labels, stats = judge_pairs(RubricJudge(), pairs, jobs, members, relevant_grade=2)
    assert labels["grade"].tolist() == [3, 2, 0]
    assert labels["label"].tolist() == [1, 1, 0]
    assert stats["positives"] == 2 and stats["failed"] == 0 and stats["judge"] == "rubric"
    with pytest.raises(ValueError, match="pairs: row 0: unknown job_id 'jx'"):
        judge_pairs(RubricJudge(), pd.DataFrame({"member_id": ["m0"], "job_id": ["jx"]}), jobs, members, 2)
