"""Which entities a bootstrap embeds, as change rows: one per entity (a snapshot) or every row version.

A *change row* has the columns of :data:`ROW_COLUMNS`: entity_type, entity_id, op
(upsert | delete), event_time_ms (int epoch ms: the stores' last-write-wins clock) and
fields (the entity's fields, at least those its template reads).

- :func:`snapshot_rows`: the entity tables as they are now, one upsert per job, profile
  and resume, timed by ``updated_at`` (a nearline event newer than that wins online).
- :func:`history_rows`: every version of every row that naive database change tracking
  emits over the synthetic marketplace's period (``jude.data.changes.row_versions``): the
  historical backfill that gives the offline history an embedding for every past content.
- :func:`select`: narrow rows to entity types, an id list and an ``updated_at`` window.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

from jude.data.changes import ChangeStreamConfig, generate_change_stream, row_versions
from jude.data.schema import ENTITY_TYPES
from jude.data.synthetic import Marketplace
from jude.modeling.templates import REQUIRED_FIELDS

ROW_COLUMNS = ["entity_type", "entity_id", "op", "event_time_ms", "fields"]
# entity type -> (table, id column): a member is two entities, its profile and its resume.
ENTITY_TABLES = {"job": ("jobs", "job_id"), "profile": ("members", "member_id"), "resume": ("members", "member_id")}


class SelectionError(ValueError):
    """A selection the bootstrap refuses before any inference; the message names the field and value."""


def check_entity_types(entity_types: Iterable[str]) -> list[str]:
    """The entity types asked for, each one of ``ENTITY_TYPES`` (``SelectionError`` names an unknown one)."""
    types = list(entity_types)
    if not types:
        raise SelectionError(f"entity_types must name at least one of {list(ENTITY_TYPES)}, got []")
    for t in types:
        if t not in ENTITY_TYPES:
            raise SelectionError(f"entity_types: unknown entity type {t!r}; expected one of {list(ENTITY_TYPES)}")
    return types


def _to_ms(values: pd.Series) -> np.ndarray:
    utc = pd.to_datetime(values, utc=True)
    return ((utc - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(milliseconds=1)).to_numpy(dtype=np.int64)


def snapshot_rows(
    tables: dict[str, pd.DataFrame], entity_types: Sequence[str] = ENTITY_TYPES, table_name: str = "data"
) -> pd.DataFrame:
    """One upsert change row per entity of ``tables`` (``{"jobs": ..., "members": ...}``), timed by ``updated_at``.

    A table without a column that the template (or the selection) reads raises
    :class:`SelectionError` naming the table and the column.
    """
    frames = []
    for etype in check_entity_types(entity_types):
        table, id_col = ENTITY_TABLES[etype]
        df = tables[table]
        needed = [id_col, "updated_at", *REQUIRED_FIELDS[etype]]
        missing = [c for c in needed if c not in df.columns]
        if missing:
            raise SelectionError(
                f"{table_name}: table {table!r} has no column(s) {missing}, which the {etype} template "
                f"and the selection read (it has {list(df.columns)})"
            )
        fields = df[list(REQUIRED_FIELDS[etype])].to_dict("records")
        frames.append(
            pd.DataFrame(
                {
                    "entity_type": etype,
                    "entity_id": df[id_col].astype(str).to_numpy(),
                    "op": "upsert",
                    "event_time_ms": _to_ms(df["updated_at"]),
                    "fields": fields,
                }
            )
        )
    return pd.concat(frames, ignore_index=True)[ROW_COLUMNS]


def history_rows(market: Marketplace, stream: ChangeStreamConfig | None = None) -> pd.DataFrame:
    """Every row version of the marketplace's change stream (``jude.data.changes.row_versions``), as change rows."""
    versions = row_versions(generate_change_stream(market, stream))
    return versions[ROW_COLUMNS].reset_index(drop=True)


def select(
    rows: pd.DataFrame,
    entity_types: Sequence[str] = ENTITY_TYPES,
    ids: Sequence[str] | None = None,
    updated_from: pd.Timestamp | str | None = None,
    updated_to: pd.Timestamp | str | None = None,
) -> pd.DataFrame:
    """The change rows of the asked-for entity types and ids whose event time lies in [from, to).

    Naive times are UTC. A selection that matches nothing raises :class:`SelectionError`
    saying which filter emptied it: a bootstrap that embeds nothing is a mistake, not a success.
    """
    types = check_entity_types(entity_types)
    out = rows[rows["entity_type"].isin(types)]
    what = [f"entity_types={types}"]
    if ids is not None:
        ids = [str(i) for i in ids]
        out = out[out["entity_id"].isin(ids)]
        what.append(f"ids={ids[:5]}{'...' if len(ids) > 5 else ''}")
    for bound, name in ((updated_from, "updated_from"), (updated_to, "updated_to")):
        if bound is None:
            continue
        ms = int(_to_ms(pd.Series([bound]))[0])
        out = out[out["event_time_ms"] >= ms] if name == "updated_from" else out[out["event_time_ms"] < ms]
        what.append(f"{name}={str(bound)!r}")
    if out.empty:
        raise SelectionError(f"the selection matches no entity ({', '.join(what)}; {len(rows)} rows to select from)")
    return out.reset_index(drop=True)
