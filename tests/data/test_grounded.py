"""The grounded world (jude/data/grounded/): seeded, foreign-free, taxonomy adjacency, varied styles, skills, truth."""

from __future__ import annotations

import json
import re
from importlib import resources

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from jude.config import SyntheticConfig
from jude.data import vocab
from jude.data.grounded import styles
from jude.data.grounded.taxonomy import (
    grounded_occupation_of,
    load_taxonomy,
    normalise_title,
    role_fit,
    role_of,
    roles_confusable,
)
from jude.data.synthetic import generate_marketplace, truth_grades
from jude.labels.rubric import rubric_grade

TINY = dict(world="grounded", occupations=20, areas=8, n_jobs=150, n_members=80, days=30, impressions_per_member=15)


@pytest.fixture(scope="module")
def market():
    return generate_marketplace(SyntheticConfig(seed=3, **TINY))


def _foreign_records() -> list[dict]:
    root = resources.files("jude.data") / "foreign"
    return [json.loads(line) for n in ("jobs.jsonl", "profiles.jsonl") for line in (root / n).read_text().splitlines()]


def test_same_seed_gives_identical_tables_and_another_seed_does_not():
    a = generate_marketplace(SyntheticConfig(seed=5, **TINY))
    b = generate_marketplace(SyntheticConfig(seed=5, **TINY))
    c = generate_marketplace(SyntheticConfig(seed=6, **TINY))
    for name in ("jobs", "members", "interactions"):
        pd.testing.assert_frame_equal(getattr(a, name), getattr(b, name))
    assert not a.jobs["description"].equals(c.jobs["description"])


def test_every_generated_title_is_a_grounded_occupation_and_never_a_small_world_one(market):
    occ = load_taxonomy().occupations
    for title in pd.concat([market.jobs["title"], market.members["title"]]):
        assert vocab.role_family_of(title) is None, title
        assert grounded_occupation_of(title) in occ, title


def test_the_foreign_sets_occupations_places_and_titles_are_never_in_the_grounded_world(market):
    tax = load_taxonomy()
    foreign = _foreign_records()
    onet = {r["onet_soc"] for r in foreign if r.get("onet_soc")}
    esco = {r["esco_uri"].rsplit("/", 1)[-1] for r in foreign if r.get("esco_uri")}
    isco = {str(r["isco_group"]) for r in foreign if r.get("isco_group")}
    assert onet and esco and isco  # the foreign set carries its provenance
    for o in tax.occupations.values():
        assert o.code not in onet and o.detailed not in {c[:7] for c in onet}, o.code
        assert not (o.isco and o.isco in isco), o.code
    uris = {u for s in pd.read_csv(resources.files("jude.data.grounded") / "occupations.csv", dtype=str)["esco_uris"]
            .fillna("") for u in s.split(";") if u}  # fmt: skip
    assert not uris & esco
    for r in foreign:  # a foreign title never resolves to a grounded occupation
        assert grounded_occupation_of(r["title"]) is None, r["title"]
    assert not market.jobs["location"].str.contains("New Zealand").any()
    assert not market.jobs["description"].str.contains("you will", case=False).any()  # the foreign set's voice
    assert not market.members["summary"].str.contains(r"\bI (?:have|am|live)\b").any()  # its first-person profiles


def test_adjacency_comes_from_the_soc_and_isco_hierarchy():
    occ = sorted(load_taxonomy().occupations.values(), key=lambda o: o.code)
    same_broad = next((a, b) for a in occ for b in occ if a.code < b.code and a.broad == b.broad)
    assert role_fit(same_broad[0].code, same_broad[1].code) == 0.5
    look = next(
        (a, b)
        for a in occ
        for b in occ
        if a.minor == b.minor and a.broad != b.broad and not (a.isco and a.isco == b.isco)
    )
    assert role_fit(look[0].code, look[1].code) == 0.0 and roles_confusable(look[0].code, look[1].code)
    far = next(
        (a, b) for a in occ for b in occ if a.major != b.major and not (a.isco and b.isco and a.isco[:3] == b.isco[:3])
    )
    assert role_fit(far[0].code, far[1].code) == 0.0 and not roles_confusable(far[0].code, far[1].code)
    assert role_fit(occ[0].code, occ[0].code) == 1.0
    isco_pair = next((a, b) for a in occ for b in occ if a.isco and a.isco == b.isco and a.broad != b.broad)
    assert role_fit(isco_pair[0].code, isco_pair[1].code) == 0.5


def test_titles_resolve_through_prefixes_suffixes_and_abbreviations():
    tax = load_taxonomy()
    title, code = next((t, c) for t, c in tax.title_to_code.items() if t.endswith(" manager"))
    assert normalise_title(f"Sr. {title.title()} II")[0] == "senior"
    assert role_of(f"Sr. {title[: -len('manager')]}Mgr") == code
    assert role_of(f"Lead {title.upper()} (m/f/d)") == code
    assert role_of("Data Engineer") == "data_engineer"  # the small world still resolves first
    assert role_of("Underwater Basket Weaver") is None


def test_writing_styles_vary_within_each_field(market):
    desc = market.jobs["description"]
    kinds = {
        "listing": desc.str.startswith("Position:").sum(),
        "terse": desc.str.contains(r"\nREQ: ", regex=True).sum(),
        "sections": desc.str.contains(r"^(?:About the role|The role|Overview)\n", regex=True).sum(),
        "prose": desc.str.contains("The work includes").sum(),
    }
    assert all(v > 0 for v in kinds.values()), kinds
    assert 0 < desc.str.contains(r"\$").mean() < 1  # the pay line is sometimes missing
    assert desc.str.contains(r"\byrs\b").any()  # abbreviations
    heads = market.members["resume_text"].map(lambda t: t.split("\n\n")[1].split("\n")[0] if "\n\n" in t else "")
    assert heads.nunique() >= 4
    assert market.members["summary"].str.len().std() > 20  # lengths vary
    assert market.jobs["title"].str.contains(r"\b(?:Mgr|Tech|Asst\.|Rep|Coord|Spec|Admin|Supv\.|Dir\.|Eng)\b").any()


def test_typos_change_words_but_never_the_structured_fields(market):
    rng = np.random.default_rng(0)
    text = "Maintain inventory records and coordinate shipments with suppliers."
    assert styles.add_typos(rng, text, 2) != text
    occ = load_taxonomy().occupations
    for skills, title in zip(market.jobs["skills"], market.jobs["title"]):
        code = grounded_occupation_of(title)
        own = set(occ[code].skills)
        assert sum(s in own for s in skills) >= 3, (title, skills)


def test_skills_attach_to_every_occupation_as_the_build_measured():
    tax = load_taxonomy()
    built = json.loads((resources.files("jude.data.grounded") / "build.json").read_text())
    assert built["occupations"] == len(tax.occupations)
    assert built["skills_rows"] == sum(len(o.skills) for o in tax.occupations.values())
    assert all(len(o.skills) >= 3 for o in tax.occupations.values())
    assert 0.3 < built["skill_coverage"]["share"] <= 1.0
    assert built["areas"] >= 200 and len(tax.areas) == built["areas"]
    # a skill is a real ESCO label that shares a word stem with its occupation's own texts
    hits = 0
    for o in tax.occupations.values():
        text = " ".join(o.duties).lower() + " " + o.name.lower()
        hits += any(any(w[:5] in text for w in s.split() if len(w) >= 5) for s in o.skills)
    assert hits / len(tax.occupations) > 0.9


def test_places_are_weighted_by_employment_and_pay_fits_the_place():
    from jude.data.grounded.world import grounded_world

    w = grounded_world(150, 150)
    ny = w.locations.index("New York, NY")
    assert w.area_p[:, ny].mean() > 1 / len(w.locations)  # the largest area gets more than a uniform share
    assert np.all(np.isfinite(w.wage)) and (w.wage > 10000).all()
    assert np.allclose(w.area_p.sum(axis=1), 1.0)


def _hard_negatives(market):
    """(true match, other city, under-qualified, look-alike) job rows for members that have a grade-3 job."""
    jobs, members = market.jobs, market.members
    occ = load_taxonomy().occupations
    pairs = pd.DataFrame(
        {"member_id": np.repeat(members["member_id"], len(jobs)), "job_id": np.tile(jobs["job_id"], len(members))}
    )
    grades = truth_grades(jobs, members, pairs)
    best = pairs[grades == 3].drop_duplicates("member_id").head(15)
    assert len(best) >= 5, "too few true matches in the tiny market"
    rows = []
    for m_id, j_id in zip(best["member_id"], best["job_id"]):
        m = members.set_index("member_id").loc[m_id]
        j = jobs.set_index("job_id").loc[j_id].to_dict()
        code = grounded_occupation_of(m["title"])
        look = next(
            (o for o in occ.values() if roles_confusable(code, o.code)), None
        )  # a look-alike occupation by the hierarchy
        other = next(loc for loc in load_taxonomy().areas["location"] if loc != m["location"])
        variants = {
            "match": j,
            "other_city": {**j, "location": other, "remote": False},
            "under_qualified": {**j, "min_years": int(m["years_experience"]) + 5},
        }
        if look is not None:
            variants["look_alike"] = {**j, "title": look.title.title()}
        for kind, v in variants.items():
            rows.append({**v, "job_id": f"{j_id}-{m_id}-{kind}", "kind": kind, "member_id": m_id})
    return pd.DataFrame(rows), members


def test_truth_and_rubric_grade_the_hard_negatives_below_the_true_match(market):
    hard, members = _hard_negatives(market)
    jobs = hard.drop(columns=["kind", "member_id"])
    grades = truth_grades(jobs, members, hard[["member_id", "job_id"]])
    hard = hard.assign(grade=grades)
    assert (hard[hard["kind"] == "match"]["grade"] == 3).all()
    for kind in ("other_city", "under_qualified", "look_alike"):
        sub = hard[hard["kind"] == kind]
        assert len(sub) > 0 and (sub["grade"] <= 1).all(), (kind, sub["grade"].tolist())
    m = members.set_index("member_id")
    for r in hard.to_dict("records"):
        g = rubric_grade(m.loc[r["member_id"]].to_dict(), r).grade
        assert (g >= 2) if r["kind"] == "match" else (g <= 1), (r["kind"], g)


def test_grounded_world_refuses_a_shift():
    with pytest.raises(ValidationError, match="data.synthetic.shift"):
        SyntheticConfig(world="grounded", shift="roles")


def test_committed_titles_are_unique_and_clean():
    titles = pd.read_csv(resources.files("jude.data.grounded") / "titles.csv", dtype=str)
    assert not titles["title"].duplicated().any()
    assert titles["title"].map(lambda t: bool(re.fullmatch(r"[a-z][a-z '/&-]*", t))).all()
