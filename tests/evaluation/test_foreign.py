"""The foreign evaluation set (jude/data/foreign): loading, its never-seen-by-the-generator property, scoring."""

from __future__ import annotations

import csv
import json
import re
import shutil
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

from jude.data import vocab
from jude.evaluation.foreign import (
    FOREIGN_DIR,
    JOB_FIELDS,
    KINDS,
    NEGATIVE_KINDS,
    PROFILE_FIELDS,
    ForeignSetError,
    embedder_entity_fns,
    engine_entity_fns,
    flat_metrics,
    load_foreign_set,
    paired_foreign,
    score_foreign,
)


@pytest.fixture(scope="module")
def fs():
    return load_foreign_set()


def _rows(name: str) -> list[dict]:
    return [json.loads(line) for line in (FOREIGN_DIR / name).read_text(encoding="utf-8").splitlines() if line]


def _city(location: str) -> str:
    return location.split(",")[0].strip().lower()


# ---- the committed set -------------------------------------------------------------------------
def test_the_committed_set_loads_and_is_small(fs):
    assert fs.path == FOREIGN_DIR
    assert len(fs.profiles) >= 100 and len(fs.jobs) >= 4 * 100
    assert len(fs.members) == len(fs.profiles)
    size = sum(p.stat().st_size for p in FOREIGN_DIR.iterdir())
    assert size < 1_000_000, f"the set is {size} bytes"
    readme = (FOREIGN_DIR / "README.md").read_text()
    assert "never trained on" in readme and "2011/833/EU" in readme and "CC BY 4.0" in readme


def test_every_pair_kind_is_present_for_most_members(fs):
    kinds = defaultdict(set)
    for member, _, kind, _ in fs.pairs:
        kinds[member].add(kind)
    complete = sum(kinds[m] == set(KINDS) for m in fs.profiles)
    assert complete >= 0.9 * len(fs.profiles)
    assert {kind for _, _, kind, _ in fs.pairs} == set(KINDS)


def test_ids_are_unique():
    jobs, profiles = _rows("jobs.jsonl"), _rows("profiles.jsonl")
    assert len({r["job_id"] for r in jobs}) == len(jobs)
    assert len({r["member_id"] for r in profiles}) == len(profiles)
    with open(FOREIGN_DIR / "pairs.csv", newline="") as f:
        pairs = [(r["member_id"], r["job_id"]) for r in csv.DictReader(f)]
    assert len(set(pairs)) == len(pairs)


def test_every_record_is_a_valid_serving_entity(fs):
    from jude.modeling.templates import REQUIRED_FIELDS
    from jude.serving.schemas import JobEntity, ProfileEntity

    assert set(JOB_FIELDS) == set(JobEntity.model_fields) == set(REQUIRED_FIELDS["job"])
    assert set(PROFILE_FIELDS) == set(ProfileEntity.model_fields) == set(REQUIRED_FIELDS["profile"])
    for entity in fs.job_entities(sorted(fs.jobs)):
        JobEntity.model_validate(entity)
    for entity in fs.profile_entities(sorted(fs.profiles)):
        ProfileEntity.model_validate(entity)


def test_no_title_or_city_of_the_set_was_ever_seen_by_the_generator(fs):
    """The property the set exists for: occupations and places the generator never draws."""
    from jude.data.synthetic import unseen_world_vocabulary

    generator_titles = {t.lower() for f in vocab.ALL_ROLE_FAMILIES.values() for t in f.titles}
    titles = {r["title"] for r in (*fs.jobs.values(), *fs.profiles.values())}
    for title in titles:
        low = title.lower()
        assert low not in generator_titles, title
        assert vocab.role_family_of(title) is None, title
        for known in generator_titles:  # neither contains the other, whole words
            assert not re.search(rf"(?<![\w-]){re.escape(known)}(?![\w-])", low), (title, known)
            assert not re.search(rf"(?<![\w-]){re.escape(low)}(?![\w-])", known), (title, known)

    generator_cities = {_city(c) for c in (*vocab.CITIES, *vocab.SHIFT_CITIES, *unseen_world_vocabulary()[1])}
    generator_countries = {c.rsplit(",", 1)[-1].strip().lower() for c in (*vocab.CITIES, *vocab.SHIFT_CITIES)}
    places = {r["location"] for r in (*fs.jobs.values(), *fs.profiles.values())}
    for place in places:
        assert _city(place) not in generator_cities, place
        assert place.rsplit(",", 1)[-1].strip().lower() not in generator_countries, place


def test_the_pairs_follow_their_definitions(fs):
    for member_id, job_id, kind, grade in fs.pairs:
        m, j = fs.profiles[member_id], fs.jobs[job_id]
        same_occupation = m["esco_uri"] == j["esco_uri"]
        shared = {s.lower() for s in m["skills"]} & {s.lower() for s in j["skills"]}
        if kind == "match":
            assert same_occupation and (j["remote"] or j["location"] == m["location"])
            assert j["min_years"] <= m["years_experience"] and shared and grade in (2, 3)
        elif kind == "other_city":
            assert same_occupation and not j["remote"] and j["location"] != m["location"] and grade == 1
        elif kind == "under_qualified":
            assert same_occupation and not j["remote"] and j["location"] == m["location"]
            assert j["min_years"] >= m["years_experience"] + 3 and grade == 1
        else:
            assert kind == "look_alike" and not same_occupation and j["title"] != m["title"]
            assert j["location"] == m["location"] and j["relation"] and grade == 0
            assert (m["isco_group"] and j["isco_group"] and m["isco_group"][:3] == j["isco_group"][:3]) or (
                m["onet_soc"] and j["onet_soc"] and m["onet_soc"][:4] == j["onet_soc"][:4]
            )


def test_the_training_side_never_reads_the_set():
    """A guard, not a tuning set: nothing that trains or selects a model imports it."""
    root = Path(__file__).resolve().parents[2]
    for folder in ("jude/training", "jude/registry", "steps", "pipelines"):
        for path in (root / folder).rglob("*.py"):
            text = path.read_text()
            assert "evaluation.foreign" not in text and "data/foreign" not in text, path


# ---- bad files ---------------------------------------------------------------------------------
def _copy(tmp_path: Path) -> Path:
    out = tmp_path / "set"
    shutil.copytree(FOREIGN_DIR, out)
    return out


def _edit_jsonl(path: Path, row: int, change) -> None:
    lines = path.read_text(encoding="utf-8").splitlines()
    lines[row - 1] = change(lines[row - 1])
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _set_field(field: str, value):
    def change(line: str) -> str:
        rec = json.loads(line)
        rec[field] = value
        return json.dumps(rec)

    return change


def _drop_field(field: str):
    def change(line: str) -> str:
        rec = json.loads(line)
        del rec[field]
        return json.dumps(rec)

    return change


@pytest.mark.parametrize(
    "file, row, change, field",
    [
        ("jobs.jsonl", 3, _set_field("min_years", "three"), "min_years"),
        ("jobs.jsonl", 7, _set_field("min_years", 120), "min_years"),
        ("jobs.jsonl", 2, _set_field("seniority", "principal"), "seniority"),
        ("jobs.jsonl", 5, _set_field("remote", "yes"), "remote"),
        ("jobs.jsonl", 4, _drop_field("description"), "description"),
        ("jobs.jsonl", 6, _set_field("skills", []), "skills"),
        ("jobs.jsonl", 2, _set_field("job_id", "FJ0001"), "job_id"),
        ("profiles.jsonl", 9, _set_field("years_experience", -1), "years_experience"),
        ("profiles.jsonl", 4, _set_field("summary", "  "), "summary"),
        ("profiles.jsonl", 3, _set_field("skills", ["welding", 3]), "skills"),
    ],
)
def test_a_bad_record_names_its_file_row_and_field(tmp_path, file, row, change, field):
    root = _copy(tmp_path)
    _edit_jsonl(root / file, row, change)
    with pytest.raises(ForeignSetError) as err:
        load_foreign_set(root)
    msg = str(err.value)
    assert isinstance(err.value, ValueError)
    assert file in msg and f"row {row}" in msg and f"'{field}'" in msg, msg


def test_a_line_that_is_not_json_names_its_file_and_row(tmp_path):
    root = _copy(tmp_path)
    _edit_jsonl(root / "profiles.jsonl", 12, lambda line: line[:-5])
    with pytest.raises(ValueError, match=r"profiles\.jsonl: row 12: not valid JSON"):
        load_foreign_set(root)


@pytest.mark.parametrize(
    "column, value, field",
    [
        ("kind", "maybe", "kind"),
        ("grade", "7", "grade"),
        ("job_id", "FJ9999", "job_id"),
        ("member_id", "X", "member_id"),
    ],
)
def test_a_bad_pair_names_its_row_and_field(tmp_path, column, value, field):
    root = _copy(tmp_path)
    with open(root / "pairs.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    rows[4][column] = value  # row 5 after the header
    with open(root / "pairs.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["member_id", "job_id", "kind", "grade"], lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
    with pytest.raises(ForeignSetError, match=rf"pairs\.csv: row 5, field '{field}'"):
        load_foreign_set(root)


def test_a_missing_file_is_named(tmp_path):
    root = _copy(tmp_path)
    (root / "pairs.csv").unlink()
    with pytest.raises(ForeignSetError, match=r"pairs\.csv: no such file"):
        load_foreign_set(root)


# ---- scoring ---------------------------------------------------------------------------------
def _oracle(fs, sign: float = 1.0):
    """Embeddings built so that each member's match scores above its negatives (sign=-1: below)."""
    members = sorted(fs.profiles)
    axis = {m: i for i, m in enumerate(members)}
    job_key = {json.dumps(e, sort_keys=True): j for j, e in zip(sorted(fs.jobs), fs.job_entities(sorted(fs.jobs)))}
    profile_key = {json.dumps(e, sort_keys=True): m for m, e in zip(members, fs.profile_entities(members))}
    job_vec = defaultdict(lambda: np.zeros(len(members)))
    for m, j, kind, _ in fs.pairs:
        job_vec[j][axis[m]] += sign * (1.0 if kind == "match" else -1.0)

    def jobs(records):
        return np.stack([job_vec[job_key[json.dumps(r, sort_keys=True)]] for r in records])

    def profiles(records):
        return np.stack([np.eye(len(members))[axis[profile_key[json.dumps(r, sort_keys=True)]]] for r in records])

    return jobs, profiles


def test_an_embedding_that_ranks_matches_first_scores_one_and_its_reverse_zero(fs):
    good = score_foreign(*_oracle(fs), fs, resamples=200)
    bad = score_foreign(*_oracle(fs, sign=-1.0), fs, resamples=200)
    assert good["pairwise_accuracy"] == 1.0 and (good["ci_low"], good["ci_high"]) == (1.0, 1.0)
    assert bad["pairwise_accuracy"] == 0.0
    for kind in NEGATIVE_KINDS:
        assert good["per_kind"][kind]["pairwise_accuracy"] == 1.0
        assert bad["per_kind"][kind]["pairwise_accuracy"] == 0.0
    assert set(good["per_member"]) == set(fs.profiles) and good["pairs"] == 3 * len(fs.profiles)
    d = paired_foreign(good, bad, resamples=200)
    assert d["delta"] == 1.0 and d["ci_low"] == 1.0 and d["per_kind"]["look_alike"]["delta"] == 1.0
    assert paired_foreign(good, good, resamples=200)["delta"] == 0.0
    flat = flat_metrics(good)
    assert flat["foreign/pairwise_accuracy"] == 1.0 and "foreign/look_alike/pairwise_accuracy_ci_low" in flat


def test_a_constant_embedding_scores_one_half(fs):
    const = lambda records: np.ones((len(records), 4))  # noqa: E731
    assert score_foreign(const, const, fs, resamples=50)["pairwise_accuracy"] == 0.5


def test_a_wrong_shape_is_refused(fs):
    with pytest.raises(ValueError, match="job embedding function returned shape"):
        score_foreign(lambda r: np.ones((1, 4)), lambda r: np.ones((len(r), 4)), fs)


# ---- the base model through both paths --------------------------------------------------------
@pytest.fixture(scope="module")
def minilm_scores(minilm, fs):
    from jude.serving.engine import InferenceEngine

    engine = InferenceEngine.from_embedder(minilm, model_uri="minilm", model_name="all-MiniLM-L6-v2")
    by_embedder = score_foreign(*embedder_entity_fns(minilm), fs, resamples=300)
    by_engine = score_foreign(*engine_entity_fns(engine), fs, resamples=300)
    return by_embedder, by_engine


def test_the_base_minilm_is_better_than_chance_and_not_perfect(minilm_scores):
    by_embedder, _ = minilm_scores
    assert 0.5 < by_embedder["pairwise_accuracy"] < 1.0


def test_the_serving_path_gives_the_embedder_paths_cosines(minilm_scores):
    by_embedder, by_engine = minilm_scores
    a, b = by_embedder["cosines"], by_engine["cosines"]
    assert a.keys() == b.keys()
    assert max(abs(a[k] - b[k]) for k in a) < 1e-4
    assert by_embedder["per_member"].keys() == by_engine["per_member"].keys()
    assert max(abs(by_embedder["per_member"][m] - by_engine["per_member"][m]) for m in by_engine["per_member"]) < 1e-4
