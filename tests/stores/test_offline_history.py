"""The Delta Lake history: validated appends, reads, and point-in-time reads checked against a brute-force oracle."""

from __future__ import annotations

import tempfile

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jude.stores.offline import DeltaHistory, HistoryError


def row(entity_id="a", t=10, op="upsert", h="h1", vector=(1.0, 1.0), version="v1", entity_type="job", processed=None):
    out = {
        "entity_type": entity_type,
        "entity_id": entity_id,
        "event_time": t,
        "embedding_version": version,
        "content_hash": h if op == "upsert" else None,
        "op": op,
        "vector": list(vector) if op == "upsert" else None,
    }
    if processed is not None:
        out["processed_at"] = processed
    return out


@pytest.fixture()
def history(tmp_path):
    return DeltaHistory(str(tmp_path / "history"))


def oracle(rows: list[dict], entity_type: str, version: str, queries: pd.DataFrame) -> list[tuple | None]:
    """Brute force: per query, the latest row at or before ts (ties: delete, then larger hash); None if missing."""
    out = []
    for entity_id, ts in zip(queries.entity_id, queries.ts):
        mine = [
            r
            for r in rows
            if r["entity_type"] == entity_type
            and r["embedding_version"] == version
            and r["entity_id"] == entity_id
            and r["event_time"] <= ts
        ]
        if not mine:
            out.append(None)
            continue
        latest = max(mine, key=lambda r: (r["event_time"], r["op"] == "delete", r["content_hash"] or ""))
        out.append(
            None if latest["op"] == "delete" else (latest["event_time"], latest["content_hash"], latest["vector"])
        )
    return out


def as_tuples(result: pd.DataFrame) -> list[tuple | None]:
    return [
        (int(t), h, [float(x) for x in v]) if f else None
        for f, t, h, v in zip(result.found, result.event_time, result.content_hash, result.vector)
    ]


# ---- a small case, by hand --------------------------------------------------------------
def test_point_in_time_small_case(history):
    history.append(
        [
            row(t=10, h="h1", vector=[1, 1]),
            row(t=20, op="delete"),
            row(t=30, h="h3", vector=[3, 3]),
            row(t=30, h="h2", vector=[2, 2]),  # tie: the larger hash (h3) wins
            row(entity_id="b", t=15, h="hb", vector=[5, 5]),
            row(entity_id="b", t=15, op="delete"),  # tie: the delete wins
            row(t=5, h="hv2", vector=[9, 9, 9], version="v2"),  # another version
            row(t=5, h="hp", vector=[8, 8], entity_type="profile"),  # another entity type
        ]
    )
    queries = pd.DataFrame({"entity_id": ["a", "a", "a", "a", "a", "b", "c"], "ts": [5, 10, 19, 25, 30, 100, 50]})
    queries["tag"] = range(len(queries))
    got = history.point_in_time("job", "v1", queries)
    assert got.found.tolist() == [False, True, True, False, True, False, False]
    assert got.content_hash.tolist() == [None, "h1", "h1", None, "h3", None, None]
    assert got.event_time.tolist() == [pd.NA, 10, 10, pd.NA, 30, pd.NA, pd.NA]
    assert got.vector[4].tolist() == [3, 3] and got.vector[4].dtype == np.float32
    assert got.vector[0] is None
    assert got.tag.tolist() == list(range(7)) and got.entity_id.tolist() == queries.entity_id.tolist()
    v2 = history.point_in_time("job", "v2", queries.head(1))
    assert v2.vector[0].tolist() == [9, 9, 9]


def test_datetime_queries_read_like_epoch_ms(history):
    t = pd.Timestamp("2024-05-01T12:00:00Z")
    ms = t.value // 1_000_000
    history.append([row(t=ms, h="then"), row(t=ms + 1000, h="later")])
    naive = pd.DataFrame(
        {"entity_id": ["a", "a"], "ts": [t.tz_localize(None), t.tz_localize(None) + pd.Timedelta("999ms")]}
    )
    aware = naive.assign(ts=naive.ts.dt.tz_localize("UTC").dt.tz_convert("Europe/Berlin"))
    ints = naive.assign(ts=[ms, ms + 999])
    for q in (naive, aware, ints):
        assert history.point_in_time("job", "v1", q).content_hash.tolist() == ["then", "then"]


def test_an_empty_history_finds_nothing(history):
    got = history.point_in_time("job", "v1", pd.DataFrame({"entity_id": ["a"], "ts": [1]}))
    assert got.found.tolist() == [False] and got.vector.tolist() == [None]
    assert len(history.read()) == 0


def test_duplicate_appends_change_no_read(history):
    rows = [row(t=10, h="h1"), row(t=20, op="delete"), row(t=30, h="h3")]
    queries = pd.DataFrame({"entity_id": ["a"] * 4, "ts": [10, 20, 30, 40]})
    history.append(rows)
    once = history.point_in_time("job", "v1", queries)
    history.append(rows)  # a redelivered batch
    twice = history.point_in_time("job", "v1", queries)
    assert as_tuples(once) == as_tuples(twice)


# ---- random histories against the oracle ------------------------------------------------
def _random_row(entity_id, t, op, h, version, entity_type):
    # Equal content hash, equal vector (as in production: the hash is of the text that was embedded).
    vector = (float(h[1]), float("abc".index(entity_id)), float(version == "v2"))
    return row(entity_id=entity_id, t=t, op=op, h=h, vector=vector, version=version, entity_type=entity_type)


_rows = st.lists(
    st.builds(
        _random_row,
        entity_id=st.sampled_from(["a", "b", "c"]),
        t=st.integers(0, 6),  # a narrow range: many equal event times
        op=st.sampled_from(["upsert", "upsert", "delete"]),
        h=st.sampled_from(["h1", "h2", "h3"]),
        version=st.sampled_from(["v1", "v1", "v2"]),
        entity_type=st.sampled_from(["job", "job", "profile"]),
    ),
    min_size=1,
    max_size=25,
)


@settings(max_examples=30, deadline=None)
@given(batches=st.lists(_rows, min_size=1, max_size=3), query_ts=st.lists(st.integers(-1, 8), min_size=1, max_size=8))
def test_point_in_time_matches_the_brute_force_oracle(batches, query_ts):
    rows = [r for batch in batches for r in batch]
    queries = pd.DataFrame(
        [(e, t) for e in ["a", "b", "c", "d"] for t in query_ts], columns=["entity_id", "ts"]
    ).sample(frac=1.0, random_state=len(rows))
    with tempfile.TemporaryDirectory() as tmp:
        history = DeltaHistory(tmp + "/h")
        for batch in batches:  # several appends: several files per partition
            history.append(batch)
        for entity_type, version in (("job", "v1"), ("job", "v2"), ("profile", "v1")):
            got = history.point_in_time(entity_type, version, queries)
            assert as_tuples(got) == oracle(rows, entity_type, version, queries)


# ---- append and read --------------------------------------------------------------------
def test_read_filters_and_sorts(history):
    history.append(
        pd.DataFrame(
            [
                row(entity_id="b", t=2, processed=100),
                row(entity_id="a", t=3, processed=100),
                row(entity_id="a", t=1, op="delete", processed=100),
                row(entity_id="a", t=1, version="v2", processed=100),
                row(entity_id="a", t=1, entity_type="resume", processed=100),
            ]
        )
    )
    everything = history.read()
    assert len(everything) == 5
    assert list(everything.columns) == [
        "entity_type",
        "entity_id",
        "event_time",
        "processed_at",
        "embedding_version",
        "content_hash",
        "op",
        "vector",
    ]
    job_v1 = history.read("job", "v1")
    assert list(zip(job_v1.entity_id, job_v1.event_time, job_v1.op)) == [
        ("a", 1, "delete"),
        ("a", 3, "upsert"),
        ("b", 2, "upsert"),
    ]
    assert history.read("job", "v1", entity_ids=["b"]).entity_id.tolist() == ["b"]
    assert history.read(version="v2").entity_type.tolist() == ["job"]
    assert history.read("resume").processed_at.tolist() == [100]


def test_processed_at_defaults_to_now(history):
    import time

    before = int(time.time() * 1000)
    history.append([row()])
    assert history.read().processed_at[0] >= before


@pytest.mark.parametrize(
    "bad, column",
    [
        (row(op="update"), "op"),
        (row(entity_type="company"), "entity_type"),
        (row(entity_id=""), "entity_id"),
        (row(t=1.5), "event_time"),
        (row(t="2024-05-01"), "event_time"),
        (row(version="v1:job"), "embedding_version"),
        (row(h=None), "content_hash"),
        ({**row(), "vector": None}, "vector"),
        (row(vector=[1.0, float("nan")]), "vector"),
        (row(vector=[1.0, 2.0, 3.0]), "vector"),  # another dimension than row 0's
    ],
)
def test_a_bad_row_is_named_and_nothing_is_written(history, bad, column):
    with pytest.raises(HistoryError) as info:
        history.append([row(), bad])
    assert f"history row 1: column '{column}'" in str(info.value)
    assert len(history.read()) == 0


def test_unknown_and_missing_columns_are_named(history):
    with pytest.raises(HistoryError, match=r"unknown column\(s\) \['note'\]"):
        history.append([{**row(), "note": "x"}])
    with pytest.raises(HistoryError, match=r"missing column\(s\) \['op'\]"):
        history.append([{k: v for k, v in row().items() if k != "op"}])


def test_bad_queries_are_named(history):
    with pytest.raises(ValueError, match="missing column"):
        history.point_in_time("job", "v1", pd.DataFrame({"entity_id": ["a"]}))
    with pytest.raises(ValueError, match="row 1: expected a str"):
        history.point_in_time("job", "v1", pd.DataFrame({"entity_id": ["a", 7], "ts": [1, 2]}))
    with pytest.raises(ValueError, match="'ts', row 0: missing"):
        history.point_in_time("job", "v1", pd.DataFrame({"entity_id": ["a"], "ts": [pd.NaT]}))
    with pytest.raises(ValueError, match="entity_type"):
        history.point_in_time("company", "v1", pd.DataFrame({"entity_id": ["a"], "ts": [1]}))


def test_compact_keeps_every_row(history):
    for t in range(4):
        history.append([row(t=t, h=f"h{t}")])
    before = history.read()
    history.compact()
    pd.testing.assert_frame_equal(history.read(), before)
