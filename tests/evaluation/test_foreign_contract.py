"""The foreign set's records are checked against the entity contract (jude.entities), strictly."""

import json
import re
import shutil

import pytest

from jude.evaluation.foreign import FOREIGN_DIR, ForeignSetError, load_foreign_set


def _with(tmp_path, file: str, row: int, field: str, value):
    """A copy of the committed set whose ``file`` has ``field`` = ``value`` on ``row`` (1-based)."""
    root = tmp_path / "foreign"
    shutil.copytree(FOREIGN_DIR, root)
    lines = (root / file).read_text(encoding="utf-8").splitlines()
    rec = json.loads(lines[row - 1])
    rec[field] = value
    lines[row - 1] = json.dumps(rec)
    (root / file).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root


def test_a_fractional_min_years_is_refused_with_file_row_field_and_value(tmp_path):
    root = _with(tmp_path, "jobs.jsonl", 4, "min_years", 3.5)
    with pytest.raises(ForeignSetError) as err:
        load_foreign_set(root)
    msg = str(err.value)
    assert "jobs.jsonl: row 4, field 'min_years': expected a whole number from 0 to 80" in msg, msg
    assert msg.endswith("(value: 3.5)"), msg


@pytest.mark.parametrize(
    "file, field, value, expected",
    [
        ("jobs.jsonl", "min_years", "3", "a whole number from 0 to 80"),  # no coercion from text
        ("jobs.jsonl", "remote", 1, "a boolean"),
        ("jobs.jsonl", "seniority", "principal", "one of ['junior', 'mid', 'senior', 'lead']"),
        ("profiles.jsonl", "years_experience", 81, "a number from 0 to 80"),
        ("profiles.jsonl", "headline", "caf\ud800", "text"),  # a lone surrogate is not text
    ],
)
def test_the_contracts_types_and_bounds_are_what_is_checked(tmp_path, file, field, value, expected):
    root = _with(tmp_path, file, 2, field, value)
    with pytest.raises(ForeignSetError, match=re.escape(f"row 2, field '{field}': expected {expected}")):
        load_foreign_set(root)


def test_a_fractional_years_of_experience_is_a_valid_profile(tmp_path):
    root = _with(tmp_path, "profiles.jsonl", 2, "years_experience", 4.5)
    fs = load_foreign_set(root)
    assert 4.5 in {p["years_experience"] for p in fs.profiles.values()}
