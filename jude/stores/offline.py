"""The offline store: every embedding ever published, as an append-only Delta Lake history.

One row per write (``HISTORY_SCHEMA``): entity_type, entity_id, event_time and
processed_at (int epoch milliseconds, like the online store), embedding_version,
content_hash, op (``upsert`` | ``delete``) and vector (list<float32>; null for a
delete). Rows are never updated: the history is what a ranker's training set is
joined against, and it must say what the embedding of an entity *was* at any time.
The table is partitioned by (entity_type, embedding_version), the unit every read
asks for, so a read opens only that partition's files.

**Point-in-time read.** For each (entity_id, ts) query, the row with the latest
``event_time <= ts`` for the given entity type and version; if that row is a delete
(or there is none), the entity is missing at ts. Rows with an equal event time are
ordered by the online store's tie rule (``jude.stores.online``): a delete above an
upsert, then the larger content hash; so the history and the online store agree on
which write is the latest. The join is DuckDB's ``ASOF JOIN`` over the partition's
parquet files (``DeltaTable.file_uris``), after the ties are resolved.

At-least-once delivery appends duplicates (a redelivered event writes its row again);
duplicates are identical and change no read. ``compact()`` merges the small files that
micro-batched appends leave.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
from deltalake import DeltaTable, write_deltalake

from jude.data.schema import ENTITY_TYPES
from jude.stores.online import check_version

PARTITION_BY = ["entity_type", "embedding_version"]
HISTORY_SCHEMA = pa.schema(
    [
        pa.field("entity_type", pa.string(), nullable=False),
        pa.field("entity_id", pa.string(), nullable=False),
        pa.field("event_time", pa.int64(), nullable=False),  # epoch ms
        pa.field("processed_at", pa.int64(), nullable=False),  # epoch ms, when the row was written
        pa.field("embedding_version", pa.string(), nullable=False),
        pa.field("content_hash", pa.string()),  # null for a delete
        pa.field("op", pa.string(), nullable=False),
        pa.field("vector", pa.list_(pa.float32())),  # null for a delete
    ]
)
_DATA_COLUMNS = [f.name for f in HISTORY_SCHEMA if f.name not in PARTITION_BY]
PIT_COLUMNS = ["found", "event_time", "processed_at", "content_hash", "vector"]


class HistoryError(ValueError):
    """Rows that do not match the history schema; the message names the row, column and value."""


class DeltaHistory:
    """Append-only embedding history in a Delta table at ``uri`` (a path or an object-store URI).

    The table is created by the first ``append``. ``storage_options`` go to deltalake
    (credentials for object storage). Reads go through DuckDB over the table's files;
    a remote table needs DuckDB's ``httpfs`` extension and credentials on that side too.
    """

    def __init__(self, uri: str, storage_options: dict[str, str] | None = None):
        self.uri = str(uri)
        self.storage_options = storage_options

    # ---- writes -------------------------------------------------------------------------
    def append(self, rows: pd.DataFrame | Iterable[Mapping[str, Any]]) -> int:
        """Validate ``rows`` against the history schema and append them; returns the count.

        ``processed_at`` may be left out: it is set to now. Nothing is written if any
        row is bad (:class:`HistoryError` names the first one).
        """
        table = to_history_table(rows)
        if table.num_rows == 0:
            return 0
        write_deltalake(
            self.uri,
            table,
            mode="append",
            partition_by=PARTITION_BY,
            storage_options=self.storage_options,
        )
        return table.num_rows

    def compact(self) -> dict:
        """Merge small files (one per micro-batch) into fewer; returns deltalake's metrics."""
        table = self._table()
        return {} if table is None else table.optimize.compact()

    # ---- reads --------------------------------------------------------------------------
    def read(
        self,
        entity_type: str | None = None,
        version: str | None = None,
        entity_ids: Iterable[str] | None = None,
    ) -> pd.DataFrame:
        """History rows (all columns), optionally for one entity type, version and set of ids.

        Sorted by entity_type, embedding_version, entity_id, event_time, processed_at.
        """
        table = self._table()
        parts = [] if table is None else table.partitions()
        parts = [
            p
            for p in parts
            if (entity_type is None or p["entity_type"] == entity_type)
            and (version is None or p["embedding_version"] == version)
        ]
        ids = None if entity_ids is None else sorted(set(entity_ids))
        frames = []
        con = duckdb.connect()
        for p in parts:
            files = self._files(table, p["entity_type"], p["embedding_version"])
            if not files:
                continue
            where = "" if ids is None else "WHERE entity_id IN (SELECT UNNEST($ids))"
            params = {"files": files, "et": p["entity_type"], "ver": p["embedding_version"]}
            if ids is not None:
                params["ids"] = ids
            sql = (
                "SELECT $et::VARCHAR AS entity_type, entity_id, event_time, processed_at, "
                "$ver::VARCHAR AS embedding_version, content_hash, op, vector "
                f"FROM read_parquet($files, hive_partitioning = false) {where}"
            )
            frames.append(con.sql(sql, params=params).to_arrow_table().cast(HISTORY_SCHEMA))
        out = pa.concat_tables(frames) if frames else HISTORY_SCHEMA.empty_table()
        df = out.to_pandas()
        keys = ["entity_type", "embedding_version", "entity_id", "event_time", "processed_at"]
        return df.sort_values(keys, kind="stable").reset_index(drop=True)

    def versions(self, entity_type: str | None = None) -> list[str]:
        """The embedding versions the history holds (for ``entity_type``, or for any), sorted; [] without a table."""
        table = self._table()
        parts = [] if table is None else table.partitions()
        return sorted({p["embedding_version"] for p in parts if entity_type in (None, p["entity_type"])})

    def point_in_time(self, entity_type: str, version: str, queries: pd.DataFrame) -> pd.DataFrame:
        """For each (entity_id, ts) query, the embedding the entity had at ts under ``version``.

        ``queries`` has ``entity_id`` (str) and ``ts``: int epoch ms, or datetimes
        (naive ones are UTC, as the entity tables store them); other columns are kept.
        Returns ``queries`` (same rows, same order) with ``found``, ``event_time``,
        ``processed_at``, ``content_hash`` (of the row that was current at ts) and
        ``vector`` (float32 array, or None when the entity is missing or deleted at ts).
        """
        if entity_type not in ENTITY_TYPES:
            raise ValueError(f"entity_type must be one of {list(ENTITY_TYPES)}, got {entity_type!r}")
        check_version(version)
        ts_ms = _query_times(queries)
        table = self._table()
        files = [] if table is None else self._files(table, entity_type, version)

        q = pa.table(
            {
                "_row": pa.array(np.arange(len(queries), dtype=np.int64)),
                "entity_id": pa.array(queries["entity_id"].tolist(), pa.string()),
                "_ts": pa.array(ts_ms, pa.int64()),
            }
        )
        if files:
            con = duckdb.connect()
            con.register("q", q)
            # Ties in event_time are resolved first (ASOF picks an arbitrary one among equals):
            # a delete above an upsert, then the larger content hash, as the online store does.
            sql = """
                WITH hist AS (
                    SELECT entity_id, event_time, processed_at, content_hash, op, vector
                    FROM read_parquet($files, hive_partitioning = false)
                    WHERE entity_id IN (SELECT entity_id FROM q)
                    QUALIFY row_number() OVER (
                        PARTITION BY entity_id, event_time
                        ORDER BY (op = 'delete') DESC, content_hash DESC NULLS LAST
                    ) = 1
                )
                SELECT q._row, h.op, h.event_time, h.processed_at, h.content_hash, h.vector
                FROM q ASOF LEFT JOIN hist h ON q.entity_id = h.entity_id AND q._ts >= h.event_time
                ORDER BY q._row
            """
            hit = con.sql(sql, params={"files": files}).to_arrow_table()
            con.close()
            op = hit["op"].to_pylist()
            found = np.array([o == "upsert" for o in op], dtype=bool)
            event_time = hit["event_time"].to_pylist()
            processed_at = hit["processed_at"].to_pylist()
            hashes = hit["content_hash"].to_pylist()
            vectors = hit["vector"].to_numpy(zero_copy_only=False)
        else:
            found = np.zeros(len(queries), dtype=bool)
            event_time = processed_at = hashes = [None] * len(queries)
            vectors = [None] * len(queries)

        out = queries.copy()
        out["found"] = found
        out["event_time"] = pd.array([t if f else None for t, f in zip(event_time, found)], dtype="Int64")
        out["processed_at"] = pd.array([t if f else None for t, f in zip(processed_at, found)], dtype="Int64")
        out["content_hash"] = [h if f else None for h, f in zip(hashes, found)]
        out["vector"] = [np.asarray(v, dtype=np.float32) if f else None for v, f in zip(vectors, found)]
        return out

    # ---- internals ----------------------------------------------------------------------
    def _table(self) -> DeltaTable | None:
        if not DeltaTable.is_deltatable(self.uri, storage_options=self.storage_options):
            return None
        return DeltaTable(self.uri, storage_options=self.storage_options)

    @staticmethod
    def _files(table: DeltaTable, entity_type: str, version: str) -> list[str]:
        pred = [("entity_type", "=", entity_type), ("embedding_version", "=", version)]
        return table.file_uris(file_pruning_predicate=pred)


def _query_times(queries: pd.DataFrame) -> np.ndarray:
    """``queries.ts`` as int64 epoch ms (ints as they are; datetimes, naive = UTC)."""
    if not isinstance(queries, pd.DataFrame):
        raise ValueError(f"queries must be a DataFrame with columns entity_id and ts, got {type(queries).__name__}")
    missing = [c for c in ("entity_id", "ts") if c not in queries.columns]
    if missing:
        raise ValueError(f"queries: missing column(s) {missing}; expected entity_id and ts")
    clash = [c for c in PIT_COLUMNS if c in queries.columns]
    if clash:
        raise ValueError(f"queries: column(s) {clash} would be overwritten by the result; rename them")
    bad = [i for i, v in enumerate(queries["entity_id"].tolist()) if not isinstance(v, str)]
    if bad:
        value = queries["entity_id"].iloc[bad[0]]
        raise ValueError(f"queries: column 'entity_id', row {bad[0]}: expected a str (value: {value!r})")
    ts = queries["ts"]
    if ts.isna().any():
        row = int(np.flatnonzero(ts.isna().to_numpy())[0])
        raise ValueError(f"queries: column 'ts', row {row}: missing timestamp")
    if pd.api.types.is_integer_dtype(ts):
        return ts.to_numpy(dtype=np.int64)
    if pd.api.types.is_datetime64_any_dtype(ts):
        utc = pd.to_datetime(ts, utc=True)
        return ((utc - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(milliseconds=1)).to_numpy(dtype=np.int64)
    raise ValueError(f"queries: column 'ts' must hold int epoch ms or datetimes, got dtype {ts.dtype}")


def to_history_table(rows: pd.DataFrame | Iterable[Mapping[str, Any]]) -> pa.Table:
    """Validate history rows and build the Arrow table to append (``HistoryError`` names a bad row).

    ``processed_at`` may be left out (set to now, for every row).
    """
    records = rows.to_dict("records") if isinstance(rows, pd.DataFrame) else [dict(r) for r in rows]
    names = HISTORY_SCHEMA.names
    now = int(time.time() * 1000)
    dims: dict[tuple[str, str], tuple[int, int]] = {}  # (entity_type, version) -> (dimension, first row)
    columns: dict[str, list] = {c: [] for c in names}
    for i, r in enumerate(records):
        r.setdefault("processed_at", now)
        missing = [c for c in names if c not in r]
        extra = [c for c in r if c not in names]
        if missing or extra:
            what = ", ".join(
                f"{label} column(s) {cols}" for label, cols in (("missing", missing), ("unknown", extra)) if cols
            )
            raise HistoryError(f"history row {i}: {what}; expected {names}")
        vec = _check_row(i, r)
        if vec is not None:
            key = (r["entity_type"], r["embedding_version"])
            dim, first = dims.setdefault(key, (vec.size, i))
            if dim != vec.size:
                raise HistoryError(
                    f"history row {i}: column 'vector': dimension {vec.size} differs from row {first}'s {dim} for {key}"
                )
        for c in names:
            columns[c].append(r[c])
        columns["event_time"][-1] = int(r["event_time"])
        columns["processed_at"][-1] = int(r["processed_at"])
        columns["content_hash"][-1] = r["content_hash"] if isinstance(r["content_hash"], str) else None
        columns["vector"][-1] = vec
    return pa.Table.from_pydict(columns, schema=HISTORY_SCHEMA)


def _check_row(i: int, r: dict) -> np.ndarray | None:
    """Check one history row; returns its vector (None for a delete)."""

    def fail(col: str, why: str) -> HistoryError:
        return HistoryError(f"history row {i}: column '{col}': {why} (value: {_short(r[col])})")

    if r["entity_type"] not in ENTITY_TYPES:
        raise fail("entity_type", f"expected one of {list(ENTITY_TYPES)}")
    if not isinstance(r["entity_id"], str) or not r["entity_id"]:
        raise fail("entity_id", "expected a non-empty str")
    for col in ("event_time", "processed_at"):
        # A whole float is accepted: a pandas int column with a gap in it turns float.
        value = r[col]
        whole = isinstance(value, (float, np.floating)) and np.isfinite(value) and float(value).is_integer()
        if isinstance(value, bool) or not (isinstance(value, (int, np.integer)) or whole):
            raise fail(col, "expected an int (epoch ms)")
    try:
        check_version(r["embedding_version"])
    except ValueError as exc:
        raise fail("embedding_version", str(exc)) from None
    if r["op"] not in ("upsert", "delete"):
        raise fail("op", "expected 'upsert' or 'delete'")
    if r["op"] == "delete":
        h = r["content_hash"]
        if not (h is None or isinstance(h, str) or (isinstance(h, float) and np.isnan(h))):
            raise fail("content_hash", "expected a str or None")
        return None
    if not isinstance(r["content_hash"], str) or not r["content_hash"]:
        raise fail("content_hash", "an upsert needs a content hash")
    try:
        vec = np.asarray(r["vector"], dtype=np.float32)
    except (TypeError, ValueError):
        raise fail("vector", "an upsert needs a 1-d vector of numbers") from None
    if vec.ndim != 1 or vec.size == 0:
        raise fail("vector", "an upsert needs a non-empty 1-d vector")
    if not np.isfinite(vec).all():
        raise fail("vector", "non-finite values")
    return vec


def _short(value: Any, limit: int = 200) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."
