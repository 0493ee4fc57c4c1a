"""Loading the user's tables (parquet or CSV) with clear errors, and saving atomically."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from support import SMALL_MARKET_SEED

from jude.config import DataConfig
from jude.data.io import load_marketplace, marketplace_from_config, save_marketplace
from jude.data.schema import DataValidationError, Marketplace


def _assert_same(a: Marketplace, b: Marketplace) -> None:
    for table in ("jobs", "members", "interactions"):
        pd.testing.assert_frame_equal(getattr(a, table), getattr(b, table))


@pytest.fixture()
def csv_dir(small_market, tmp_path) -> Path:
    """The small marketplace as hand-written CSV files (skills as 'a; b; c', booleans as text)."""
    jobs = small_market.jobs.copy()
    jobs["skills"] = jobs["skills"].map("; ".join)
    jobs["remote"] = jobs["remote"].map({True: "true", False: "false"})
    members = small_market.members.copy()
    members["skills"] = members["skills"].map("; ".join)
    jobs.to_csv(tmp_path / "jobs.csv", index=False)
    members.to_csv(tmp_path / "members.csv", index=False)
    small_market.interactions.head(20).to_csv(tmp_path / "interactions.csv", index=False)
    return tmp_path


def test_parquet_round_trip(small_market, tmp_path):
    save_marketplace(small_market, tmp_path / "market")
    assert sorted(p.name for p in (tmp_path / "market").iterdir()) == [
        "interactions.parquet",
        "jobs.parquet",
        "members.parquet",
    ]  # no temp files left behind
    _assert_same(load_marketplace(tmp_path / "market"), small_market)


def test_csv_round_trip(small_market, tmp_path):
    save_marketplace(small_market, tmp_path, fmt="csv")
    _assert_same(load_marketplace(tmp_path), small_market)


def test_hand_written_csv_loads(small_market, csv_dir):
    m = load_marketplace(csv_dir)
    pd.testing.assert_frame_equal(m.jobs, small_market.jobs)
    assert m.jobs["skills"].iloc[0] == small_market.jobs["skills"].iloc[0]
    assert len(m.interactions) == 20


def test_missing_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match="marketplace directory not found"):
        load_marketplace(tmp_path / "nope")


def test_missing_file_names_the_table_and_both_file_names(csv_dir):
    (csv_dir / "members.csv").unlink()
    with pytest.raises(FileNotFoundError) as e:
        load_marketplace(csv_dir)
    msg = str(e.value)
    assert "'members'" in msg and "members.parquet" in msg and "members.csv" in msg


def test_missing_column_names_file_and_column(csv_dir):
    jobs = pd.read_csv(csv_dir / "jobs.csv", dtype=str).drop(columns=["location"])
    jobs.to_csv(csv_dir / "jobs.csv", index=False)
    with pytest.raises(DataValidationError, match=r"jobs\.csv: missing column\(s\) \['location'\]"):
        load_marketplace(csv_dir)


def test_bad_action_names_file_column_row_and_value(csv_dir):
    it = pd.read_csv(csv_dir / "interactions.csv", dtype=str)
    it.loc[3, "action"] = "click"
    it.to_csv(csv_dir / "interactions.csv", index=False)
    with pytest.raises(DataValidationError) as e:
        load_marketplace(csv_dir)
    msg = str(e.value)
    assert str(csv_dir / "interactions.csv") in msg
    assert "column 'action', row 3" in msg and "'click'" in msg and "line r + 2" in msg


def test_bad_value_in_parquet_names_file_column_row_and_value(small_market, tmp_path):
    save_marketplace(small_market, tmp_path)
    members = pd.read_parquet(tmp_path / "members.parquet")
    members.loc[5, "years_experience"] = -2.0
    members.to_parquet(tmp_path / "members.parquet", index=False)
    with pytest.raises(DataValidationError) as e:
        load_marketplace(tmp_path)
    msg = str(e.value)
    assert "members.parquet: column 'years_experience', row 5" in msg and "-2.0" in msg
    assert "line r + 2" not in msg  # the CSV hint only for CSV files


def test_empty_table_is_an_error(csv_dir):
    header = (csv_dir / "jobs.csv").read_text().splitlines()[0]
    (csv_dir / "jobs.csv").write_text(header + "\n")
    with pytest.raises(DataValidationError, match=r"jobs\.csv: the table is empty"):
        load_marketplace(csv_dir)
    (csv_dir / "jobs.csv").write_text("")
    with pytest.raises(DataValidationError, match=r"jobs\.csv: the file is empty"):
        load_marketplace(csv_dir)


def test_unreadable_parquet_names_the_file(small_market, tmp_path):
    save_marketplace(small_market, tmp_path)
    (tmp_path / "jobs.parquet").write_bytes(b"not a parquet file")
    with pytest.raises(DataValidationError, match=r"jobs\.parquet: cannot read as parquet"):
        load_marketplace(tmp_path)


def test_unknown_job_reference(csv_dir):
    it = pd.read_csv(csv_dir / "interactions.csv", dtype=str)
    it.loc[7, "job_id"] = "J99999"
    it.to_csv(csv_dir / "interactions.csv", index=False)
    with pytest.raises(DataValidationError) as e:
        load_marketplace(csv_dir)
    msg = str(e.value)
    assert "interactions.csv" in msg and "column 'job_id', row 7" in msg and "'J99999'" in msg


def test_ids_stay_text_in_csv(small_market, csv_dir):
    """An id that looks like a number ('007') is kept as text, not turned into 7."""
    for name, col in (("jobs", "job_id"), ("interactions", "job_id")):
        df = pd.read_csv(csv_dir / f"{name}.csv", dtype=str)
        df[col] = df[col].replace({small_market.jobs["job_id"].iloc[0]: "007"})
        df.to_csv(csv_dir / f"{name}.csv", index=False)
    assert load_marketplace(csv_dir).jobs["job_id"].iloc[0] == "007"


def test_save_validates_everything_before_writing(small_market, tmp_path):
    bad = Marketplace(small_market.jobs, small_market.members, small_market.interactions.assign(action="click"))
    with pytest.raises(DataValidationError, match="column 'action', row 0"):
        save_marketplace(bad, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_save_refuses_to_mix_formats(small_market, tmp_path):
    save_marketplace(small_market, tmp_path)
    with pytest.raises(FileExistsError, match="jobs.parquet"):
        save_marketplace(small_market, tmp_path, fmt="csv")
    save_marketplace(small_market, tmp_path)  # overwriting the same format is fine


def test_marketplace_from_config(small_market, tmp_path, small):
    save_marketplace(small_market, tmp_path)
    _assert_same(marketplace_from_config(DataConfig(source="files", path=str(tmp_path))), small_market)
    generated = marketplace_from_config(DataConfig(synthetic=dict(seed=SMALL_MARKET_SEED, **small)))
    _assert_same(generated, small_market)
