"""The entity tables every part of jude shares, and their validation.

Four tables (pandas in memory, parquet on disk):

- ``jobs``: job_id, title, company, location, remote, seniority, min_years,
  skills, description, posted_at, updated_at
- ``members``: member_id, headline, title, location, years_experience, skills,
  summary, resume_text, updated_at
- ``interactions``: member_id, job_id, ts, action (impression, view, apply, dismiss)
- ``labels``: member_id, job_id, label, grade, source (relevance | engagement),
  rationale

The columns of ``jobs`` and ``members`` (types, bounds, vocabularies) are derived from
the entity contract, ``jude.entities`` (:func:`entity_table`); the vocabularies
(``SENIORITIES``, ``ENTITY_TYPES``, ``MEMBER_VIEWS``) are re-exported from it.

:class:`Marketplace` holds the first three together. ``skills`` is a list of
strings in memory. Validation errors name the table (or file), the column, the
row and the offending value.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from jude.entities import ENTITY_TYPES as ENTITY_TYPES  # the vocabularies are the contract's, re-exported
from jude.entities import MEMBER_VIEWS as MEMBER_VIEWS
from jude.entities import SENIORITIES as SENIORITIES
from jude.entities import Job, Member, Record, fields_of

ACTIONS = ("impression", "view", "apply", "dismiss")
LABEL_SOURCES = ("relevance", "engagement")


class DataValidationError(ValueError):
    """A table does not match its schema. The message names where and what."""


@dataclass(frozen=True)
class Column:
    name: str
    kind: str  # "str" | "bool" | "int" | "float" | "datetime" | "list[str]"
    allowed: tuple[str, ...] | None = None
    min_value: float | None = None
    nullable: bool = False
    max_value: float | None = None
    min_length: int | None = None  # of a "str" value


@dataclass(frozen=True)
class TableSchema:
    name: str
    key: tuple[str, ...]
    columns: tuple[Column, ...] = field(default_factory=tuple)

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    def validate(self, df: pd.DataFrame, where: str | None = None) -> pd.DataFrame:
        """Check ``df`` against the schema and return it with canonical dtypes.

        ``where`` names the origin (a file path) in error messages; it defaults
        to the table name. Raises :class:`DataValidationError`.
        """
        where = where or f"table '{self.name}'"
        if not isinstance(df, pd.DataFrame):
            raise DataValidationError(f"{where}: expected a pandas DataFrame, got {type(df).__name__}")
        missing = [c for c in self.column_names if c not in df.columns]
        if missing:
            raise DataValidationError(f"{where}: missing column(s) {missing}; expected columns {self.column_names}")
        if len(df) == 0:
            raise DataValidationError(f"{where}: the table is empty (0 rows)")
        out = df.reset_index(drop=True)
        for col in self.columns:
            out[col.name] = _coerce(out[col.name], col, where)
        dup = out.duplicated(list(self.key), keep="first")
        if dup.any():
            row = int(np.flatnonzero(dup.to_numpy())[0])
            value = {k: out.iloc[row][k] for k in self.key}
            raise DataValidationError(f"{where}: row {row}: duplicate key {value}")
        return out.reset_index(drop=True)


def _fail(where: str, col: str, row: int, value: Any, why: str) -> None:
    raise DataValidationError(f"{where}: column '{col}', row {row}: {why} (value: {value!r})")


def _first_bad(mask: np.ndarray) -> int:
    return int(np.flatnonzero(mask)[0])


def _coerce(s: pd.Series, col: Column, where: str) -> pd.Series:
    values = s.reset_index(drop=True)
    null = values.isna().to_numpy() if col.kind != "list[str]" else values.map(_is_null).to_numpy()
    if null.any() and not col.nullable:
        row = _first_bad(null)
        _fail(where, col.name, row, values.iloc[row], "missing value")

    if col.kind == "str":
        bad = ~values.map(lambda v: v is None or isinstance(v, str) or _is_null(v)).to_numpy()
        if bad.any():
            row = _first_bad(bad)
            _fail(where, col.name, row, values.iloc[row], "expected text")
        if col.allowed is not None:
            bad = ~values.isin(col.allowed).to_numpy() & ~null
            if bad.any():
                row = _first_bad(bad)
                _fail(where, col.name, row, values.iloc[row], f"expected one of {list(col.allowed)}")
        if col.min_length:
            bad = (values.map(lambda v: len(v) if isinstance(v, str) else col.min_length) < col.min_length).to_numpy()
            if bad.any():
                row = _first_bad(bad)
                _fail(where, col.name, row, values.iloc[row], f"expected at least {col.min_length} character(s)")
        return values.astype(object)
    if col.kind == "bool":
        mapping = {
            True: True,
            False: False,
            "true": True,
            "false": False,
            "True": True,
            "False": False,
            "1": True,
            "0": False,
            "yes": True,
            "no": False,
        }
        out = values.map(lambda v: mapping.get(v, None) if not isinstance(v, float) or not np.isnan(v) else None)
        bad = out.isna().to_numpy()
        if bad.any():
            row = _first_bad(bad)
            _fail(where, col.name, row, values.iloc[row], "expected a boolean (true/false)")
        return out.astype(bool)
    if col.kind in ("int", "float"):
        num = pd.to_numeric(values, errors="coerce")
        bad = num.isna().to_numpy() & ~null
        if bad.any():
            row = _first_bad(bad)
            _fail(where, col.name, row, values.iloc[row], f"expected a number ({col.kind})")
        if col.min_value is not None:
            bad = (num < col.min_value).to_numpy()
            if bad.any():
                row = _first_bad(bad)
                _fail(where, col.name, row, values.iloc[row], f"must be >= {col.min_value}")
        if col.max_value is not None:
            bad = (num > col.max_value).to_numpy()
            if bad.any():
                row = _first_bad(bad)
                _fail(where, col.name, row, values.iloc[row], f"must be <= {col.max_value}")
        if col.kind == "int":
            frac = (num % 1 != 0).to_numpy() & ~null
            if frac.any():
                row = _first_bad(frac)
                _fail(where, col.name, row, values.iloc[row], "expected a whole number")
            return num.astype("int64")
        return num.astype("float64")
    if col.kind == "datetime":
        ts = pd.to_datetime(values, errors="coerce", utc=True, format="mixed")
        bad = ts.isna().to_numpy() & ~null
        if bad.any():
            row = _first_bad(bad)
            _fail(where, col.name, row, values.iloc[row], "expected a timestamp")
        return ts.dt.tz_convert(None)
    if col.kind == "list[str]":
        return pd.Series([_as_str_list(v, where, col.name, i) for i, v in enumerate(values)], dtype=object)
    raise AssertionError(f"unknown column kind {col.kind}")


def _is_null(v: Any) -> bool:
    if v is None:
        return True
    if isinstance(v, float) and np.isnan(v):
        return True
    return False


def _as_str_list(v: Any, where: str, col: str, row: int) -> list[str]:
    """Skills arrive as a list (parquet) or as 'a; b; c' text (CSV)."""
    if isinstance(v, str):
        return [p.strip() for p in v.replace("|", ";").split(";") if p.strip()]
    if isinstance(v, (list, tuple, np.ndarray)):
        if not all(isinstance(x, str) for x in v):
            _fail(where, col, row, v, "expected a list of strings")
        return [str(x) for x in v]
    _fail(where, col, row, v, "expected a list of strings or 'a; b; c' text")
    return []  # unreachable


def entity_table(record: type[Record]) -> TableSchema:
    """The table of an entity record of the contract (``jude.entities.Job``, ``Member``): a column per field."""
    columns = tuple(
        Column(
            f.name,
            f.kind,
            allowed=f.choices,
            min_value=f.ge,
            nullable=f.nullable,
            max_value=f.le,
            min_length=f.min_length,
        )
        for f in fields_of(record)
    )
    return TableSchema(name=record.table, key=record.key, columns=columns)


JOBS = entity_table(Job)
MEMBERS = entity_table(Member)

INTERACTIONS = TableSchema(
    name="interactions",
    key=("member_id", "job_id", "ts", "action"),
    columns=(
        Column("member_id", "str"),
        Column("job_id", "str"),
        Column("ts", "datetime"),
        Column("action", "str", allowed=ACTIONS),
    ),
)

LABELS = TableSchema(
    name="labels",
    key=("member_id", "job_id", "source"),
    columns=(
        Column("member_id", "str"),
        Column("job_id", "str"),
        Column("label", "int", min_value=0),
        Column("grade", "int", min_value=0),
        Column("source", "str", allowed=LABEL_SOURCES),
        Column("rationale", "str", nullable=True),
    ),
)

SCHEMAS = {s.name: s for s in (JOBS, MEMBERS, INTERACTIONS, LABELS)}


def check_references(
    interactions: pd.DataFrame, jobs: pd.DataFrame, members: pd.DataFrame, where: str = "table 'interactions'"
) -> None:
    """Every interaction must point at a known job and a known member."""
    for col, known in (("job_id", jobs["job_id"]), ("member_id", members["member_id"])):
        bad = ~interactions[col].isin(set(known)).to_numpy()
        if bad.any():
            row = _first_bad(bad)
            _fail(where, col, row, interactions[col].iloc[row], f"unknown {col.split('_')[0]}")


@dataclass
class Marketplace:
    """The three entity tables of one marketplace (the schemas above)."""

    jobs: pd.DataFrame
    members: pd.DataFrame
    interactions: pd.DataFrame

    def summary(self) -> dict:
        """Row counts, time range and action counts (JSON-serialisable, for logs and metadata)."""
        actions = self.interactions["action"].value_counts()
        counts = {a: int(actions.get(a, 0)) for a in ACTIONS}
        ts = pd.to_datetime(self.interactions["ts"])
        return {
            "jobs": int(len(self.jobs)),
            "members": int(len(self.members)),
            "interactions": int(len(self.interactions)),
            "time_range": [str(ts.min()), str(ts.max())] if len(ts) else [None, None],
            "actions": counts,
            "apply_rate": counts["apply"] / counts["impression"] if counts["impression"] else 0.0,
            "remote_share": float(self.jobs["remote"].mean()) if len(self.jobs) else 0.0,
        }
