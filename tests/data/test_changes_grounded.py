"""The change stream over a grounded marketplace: its edits draw only on the grounded world's vocabulary.

The small world's stream is pinned byte for byte in ``test_changes.py``; the consumers (nearline, bootstrap,
ranker) take a grounded stream in ``tests/nearline``, ``tests/bootstrap`` and ``tests/ranker``.
"""

from __future__ import annotations

import difflib

import pandas as pd
import pytest

from jude.config import SyntheticConfig
from jude.data import vocab
from jude.data.changes import UPDATE_KINDS, ChangeStreamConfig, generate_change_stream, stream_summary
from jude.data.grounded import styles
from jude.data.grounded.taxonomy import grounded_occupation_of, load_taxonomy, role_of, role_title
from jude.data.synthetic import generate_marketplace
from jude.modeling.templates import render
from jude.nearline.events import event_text, parse_event

GROUNDED = dict(
    world="grounded", occupations=30, areas=10, n_jobs=120, n_members=90, days=30, impressions_per_member=20
)
EVENTS = 3000
EDITS = ("job_text_edit", "profile_edit", "resume_edit")
SMALL_WORLD_FALLBACKS = ("public speaking", "teamwork", "delivering projects")  # the small world's edit fallbacks


@pytest.fixture(scope="module")
def market():
    return generate_marketplace(SyntheticConfig(seed=1, **GROUNDED))


@pytest.fixture(scope="module")
def stream(market):
    return generate_change_stream(market, ChangeStreamConfig(n_events=EVENTS, apply_edit_share=0.3))


def _edits(stream: pd.DataFrame):
    """(kind, entity type, entity id, fields before, fields after) of every text-changing update."""
    before: dict[tuple[str, str], dict] = {}
    for row in stream[stream["op"] == "upsert"].itertuples():
        key = (row.entity_type, row.entity_id)
        if key in before and row.text_changed:
            yield row.kind, row.entity_type, row.entity_id, before[key], row.fields
        before[key] = row.fields


def _added_text(old: str, new: str) -> str:
    """What an edit wrote into a text field: appended text, or the lines it inserted or changed."""
    if new.startswith(old):
        return new[len(old) :]
    diff = difflib.ndiff(old.split("\n"), new.split("\n"))
    return "\n".join(line[2:] for line in diff if line.startswith("+ "))


def test_a_grounded_stream_follows_the_contract_and_is_seeded(market, stream):
    for event in stream[stream["op"] == "upsert"].head(400).to_dict("records"):
        event_text(parse_event(event))
    again = generate_change_stream(market, ChangeStreamConfig(n_events=EVENTS, apply_edit_share=0.3))
    pd.testing.assert_frame_equal(stream, again)
    summary = stream_summary(stream)
    assert all(summary["kinds"].get(k, 0) > 20 for k in (*EDITS, "profile_tailored")), summary["kinds"]
    assert 2.5 < summary["inference_reduction"] < 4.5


def test_every_edit_changes_the_templated_text(stream):
    last: dict[tuple[str, str], str] = {}
    for row in stream[stream["op"] == "upsert"].itertuples():
        text = render(row.entity_type, row.fields)
        assert (last.get((row.entity_type, row.entity_id)) != text) == row.text_changed
        last[(row.entity_type, row.entity_id)] = text
        if row.kind in UPDATE_KINDS:
            assert row.text_changed == UPDATE_KINDS[row.kind][1], row.kind


def test_titles_stay_real_variants_of_the_entitys_own_occupation(market, stream):
    first = dict(zip(market.jobs["job_id"], market.jobs["title"]))
    jobs = stream[(stream["entity_type"] == "job") & (stream["op"] == "upsert")]
    retitled = 0
    for row in jobs.itertuples():
        title = row.fields["title"]
        original = first[row.entity_id.removesuffix("-R")]
        assert vocab.role_family_of(title) is None, title
        assert role_of(title) == grounded_occupation_of(original) is not None, (original, title)
        retitled += title != original
    assert retitled > 5
    for row in stream[(stream["entity_type"] == "profile") & (stream["op"] == "upsert")].itertuples():
        assert grounded_occupation_of(row.fields["title"]) is not None


def test_edits_draw_skills_places_and_roles_from_the_grounded_vocabulary(market, stream):
    tax = load_taxonomy()
    skills = {s for o in tax.occupations.values() for s in o.skills}
    metros = set(tax.areas["location"])
    small_cities = {c.split(",")[0] for c in vocab.CITIES} - {m.split(",")[0] for m in metros}
    places = set(market.jobs["location"]) | set(market.members["location"])
    member_titles = dict(zip(market.members["member_id"], market.members["title"]))
    near: dict[str, set[str]] = {}  # occupation -> its own skills and those of its SOC minor / ISCO unit group
    added, on_topic, moves, written = 0, 0, 0, []
    for kind, etype, eid, old, new in _edits(stream):
        code = grounded_occupation_of(member_titles[eid] if etype == "resume" else new["title"])
        assert code is not None
        if code not in near:
            occ = tax.occupations[code]
            group = [o for o in tax.occupations.values() if o.minor == occ.minor or (occ.isco and o.isco == occ.isco)]
            near[code] = {s for o in group for s in o.skills}
        if "skills" in new and new["skills"] != old["skills"]:
            extra = [s for s in new["skills"] if s not in old["skills"]]
            assert set(extra) <= skills, extra  # never a small-world skill
            if kind != "profile_tailored":  # a tailored profile takes the applied job's skills
                added += len(extra)
                on_topic += sum(s in near[code] for s in extra)
        if etype == "profile":
            assert new["location"] in metros and new["location"] in places
            moves += new["location"] != old["location"]
            sentence = _added_text(old["summary"], new["summary"])
            if sentence.startswith(" Looking for "):
                assert sentence == f" Looking for {role_title(code, '')} roles.", sentence
            if sentence.startswith(" Open to relocating to "):
                assert sentence.removeprefix(" Open to relocating to ").removesuffix(".") in places
        for name in ("description", "summary", "resume_text", "headline"):
            if name in new and new[name] != old[name]:
                written.append(_added_text(old[name], new[name]))
    assert added > 50 and on_topic > 0.9 * added, (added, on_topic)
    assert moves > 0
    text = "\n".join(written)
    assert [w for w in SMALL_WORLD_FALLBACKS if w in text] == []
    assert [c for c in small_cities if c in text] == []


def test_resume_edits_use_the_occupations_duties_under_the_grounded_headings(market, stream):
    tax = load_taxonomy()
    titles = dict(zip(market.members["member_id"], market.members["title"]))
    heads = {"experience", "work history", "employment", "professional experience"}
    bullets, under_heading = 0, 0
    for kind, _, member, old, new in _edits(stream):
        if kind != "resume_edit":
            continue
        added = _added_text(old["resume_text"], new["resume_text"])
        assert [w for w in SMALL_WORLD_FALLBACKS if w in added] == []
        if not added.startswith("- "):  # a skill added to the skills line
            continue
        bullets += 1
        duties = {
            styles.duty_past(d).rstrip(".") for d in tax.occupations[grounded_occupation_of(titles[member])].duties
        }
        duty, _, skill = added[2:].rpartition(" (")
        assert duty in duties and skill.removesuffix(").") in {s for o in tax.occupations.values() for s in o.skills}
        lines = new["resume_text"].split("\n")
        at = lines.index(added)
        under_heading += at >= 2 and lines[at - 2].strip().lower() in heads
    assert bullets > 5 and under_heading > 0.8 * bullets, (bullets, under_heading)
