"""Model and data directories, and single files, are replaced in one rename, or not at all."""

import pytest

from jude.fsutils import atomic_directory, atomic_write_text


def test_a_finished_directory_replaces_the_old_one(tmp_path):
    target = tmp_path / "model"
    target.mkdir()
    (target / "old.txt").write_text("old")
    with atomic_directory(target) as tmp:
        assert tmp.parent == tmp_path and tmp != target
        (tmp / "new.txt").write_text("new")
    assert sorted(p.name for p in target.iterdir()) == ["new.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]  # no temporary sibling left


def test_a_failure_leaves_the_old_directory_and_no_debris(tmp_path):
    target = tmp_path / "model"
    target.mkdir()
    (target / "old.txt").write_text("old")
    with pytest.raises(RuntimeError, match="disk full"):
        with atomic_directory(target) as tmp:
            (tmp / "half.txt").write_text("half")
            raise RuntimeError("disk full")
    assert (target / "old.txt").read_text() == "old" and not (target / "half.txt").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def test_keep_if_keeps_what_another_process_finished_first(tmp_path):
    target = tmp_path / "data"
    with atomic_directory(target, keep_if="pairs.parquet") as tmp:
        (tmp / "pairs.parquet").write_text("mine")
        target.mkdir()  # another node renamed its copy into place meanwhile
        (target / "pairs.parquet").write_text("theirs")
    assert (target / "pairs.parquet").read_text() == "theirs"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]
    with atomic_directory(tmp_path / "fresh", keep_if="pairs.parquet") as tmp:  # nothing there yet: written
        (tmp / "pairs.parquet").write_text("mine")
    assert (tmp_path / "fresh" / "pairs.parquet").read_text() == "mine"


def test_atomic_write_text_replaces_the_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "cache" / "ab" / "entry.json"  # missing parents are created
    atomic_write_text(target, '{"grade": 1}')
    atomic_write_text(target, '{"grade": 2, "rationale": "Zürich"}')
    assert target.read_text(encoding="utf-8") == '{"grade": 2, "rationale": "Zürich"}'
    assert [p.name for p in target.parent.iterdir()] == ["entry.json"]


def test_atomic_write_text_failure_keeps_the_old_file(tmp_path):
    target = tmp_path / "entry.json"
    target.write_text("old")
    with pytest.raises(UnicodeEncodeError):
        atomic_write_text(target, "half \ud800 written")  # a lone surrogate cannot be encoded: fails mid-write
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["entry.json"]
