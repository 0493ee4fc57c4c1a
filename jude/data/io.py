"""Load and save a marketplace: the user's own tables, or a generated one.

A marketplace on disk is a directory with three tables, each as parquet or CSV::

    <path>/jobs.parquet          or  <path>/jobs.csv
    <path>/members.parquet       or  <path>/members.csv
    <path>/interactions.parquet  or  <path>/interactions.csv

Columns are those of :mod:`jude.data.schema`; extra columns are ignored. In
CSV files ``skills`` is ``"a; b; c"`` text and booleans are ``true``/``false``.
When both formats exist, parquet wins.

Loading validates every table against its schema and checks that interactions
point at known jobs and members. Errors name the file, the column, the row
(counted from 0, as in pandas; in a CSV file row r is on line r + 2) and the
offending value, e.g.::

    data/interactions.csv: column 'action', row 3: expected one of [...] (value: 'click')

Saving validates all three tables first and writes each file to a temporary
name in the same directory before renaming it, so a failure never leaves a
half-written table behind.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Literal

import pandas as pd

from jude.config import DataConfig
from jude.data import schema
from jude.data.schema import DataValidationError, Marketplace
from jude.data.synthetic import generate_marketplace

TABLES = {"jobs": schema.JOBS, "members": schema.MEMBERS, "interactions": schema.INTERACTIONS}
FORMATS = ("parquet", "csv")


def find_table(path: str | Path, table: str) -> Path:
    """The file holding ``table`` under ``path`` (parquet preferred), or a FileNotFoundError saying what is missing."""
    root = Path(path)
    for fmt in FORMATS:
        f = root / f"{table}.{fmt}"
        if f.is_file():
            return f
    raise FileNotFoundError(
        f"{root}: table '{table}' not found: neither {root / (table + '.parquet')} nor {root / (table + '.csv')} "
        f"exists (a marketplace directory holds {', '.join(TABLES)} as .parquet or .csv)"
    )


def read_table(file: str | Path, table: str) -> pd.DataFrame:
    """Read one table file and validate it; errors name the file, column, row and value."""
    file = Path(file)
    if table not in TABLES:
        raise ValueError(f"unknown table {table!r}; expected one of {list(TABLES)}")
    try:
        if file.suffix == ".parquet":
            raw = pd.read_parquet(file)
        elif file.suffix == ".csv":
            # Everything as text, so ids like '007' stay text; only empty cells are missing values
            # (a description reading "NA" is still a description). The schema converts the types.
            raw = pd.read_csv(file, dtype=str, keep_default_na=False, na_values=[""])
        else:
            raise DataValidationError(f"{file}: unsupported file type {file.suffix!r}; expected .parquet or .csv")
    except pd.errors.EmptyDataError:
        raise DataValidationError(f"{file}: the file is empty (no header and no rows)") from None
    except (DataValidationError, FileNotFoundError):
        raise
    except Exception as e:  # pyarrow / parser errors: say which file could not be read
        raise DataValidationError(f"{file}: cannot read as {file.suffix.lstrip('.')}: {e}") from e
    schema_ = TABLES[table]
    try:
        df = schema_.validate(raw, where=str(file))
    except DataValidationError as e:
        if file.suffix == ".csv" and "row " in str(e):
            raise DataValidationError(f"{e} [in a CSV file, row r is on line r + 2]") from None
        raise
    return df[schema_.column_names]


def load_marketplace(path: str | Path) -> Marketplace:
    """Read, validate and cross-check the three tables under ``path`` (see the module docstring)."""
    root = Path(path)
    if not root.is_dir():
        raise FileNotFoundError(f"marketplace directory not found: {root}")
    files = {t: find_table(root, t) for t in TABLES}  # fail early, before reading anything
    frames = {t: read_table(f, t) for t, f in files.items()}
    schema.check_references(frames["interactions"], frames["jobs"], frames["members"], where=str(files["interactions"]))
    return Marketplace(jobs=frames["jobs"], members=frames["members"], interactions=frames["interactions"])


def _to_csv_frame(df: pd.DataFrame, table: str) -> pd.DataFrame:
    """Skills as 'a; b; c' text; a skill containing ';' or '|' cannot round-trip and is an error."""
    out = df.copy()
    if "skills" in out.columns:
        for row, skills in enumerate(out["skills"]):
            for s in skills:
                if ";" in s or "|" in s:
                    raise DataValidationError(
                        f"table '{table}': column 'skills', row {row}: a skill may not contain ';' or '|' "
                        f"in CSV (value: {s!r})"
                    )
        out["skills"] = out["skills"].map("; ".join)
    return out


def save_marketplace(m: Marketplace, path: str | Path, fmt: Literal["parquet", "csv"] = "parquet") -> None:
    """Write the three tables under ``path`` as ``<table>.parquet`` (or ``.csv``).

    All tables are validated before anything is written; each file is written
    to a temporary name in the same directory and renamed into place.
    """
    if fmt not in FORMATS:
        raise ValueError(f"fmt must be one of {list(FORMATS)}, got {fmt!r}")
    frames = {t: s.validate(getattr(m, t))[s.column_names] for t, s in TABLES.items()}
    schema.check_references(frames["interactions"], frames["jobs"], frames["members"])
    if fmt == "csv":
        frames = {t: _to_csv_frame(df, t) for t, df in frames.items()}
    root = Path(path)
    other = "csv" if fmt == "parquet" else "parquet"
    stale = [str(root / f"{t}.{other}") for t in TABLES if (root / f"{t}.{other}").exists()]
    if stale:  # load_marketplace prefers parquet, so a mix of formats would load the wrong tables
        raise FileExistsError(
            f"{root}: refusing to write .{fmt} tables next to existing {stale}; "
            f"remove them or save to another directory"
        )
    root.mkdir(parents=True, exist_ok=True)
    temps: dict[str, str] = {}
    try:
        for table, df in frames.items():
            fd, tmp = tempfile.mkstemp(prefix=f".{table}.", suffix=f".{fmt}.tmp", dir=root)
            os.close(fd)
            temps[table] = tmp
            if fmt == "parquet":
                df.to_parquet(tmp, index=False)
            else:
                df.to_csv(tmp, index=False)
        for table, tmp in temps.items():
            os.replace(tmp, root / f"{table}.{fmt}")
    finally:
        for tmp in temps.values():
            if os.path.exists(tmp):
                os.unlink(tmp)


def marketplace_from_config(cfg: DataConfig) -> Marketplace:
    """The marketplace a pipeline works on: generated (``source='synthetic'``) or loaded (``'files'``)."""
    if cfg.source == "synthetic":
        return generate_marketplace(cfg.synthetic)
    return load_marketplace(cfg.path)
