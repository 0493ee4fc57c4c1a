"""The Redis online store: last write wins by event time, atomically; tombstones; versions; batch reads."""

from __future__ import annotations

import random
import threading
from uuid import uuid4

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jude.stores.online import OnlineRecord, RedisOnlineStore, WriteStatus

pytestmark = pytest.mark.services

A, R, N = WriteStatus.APPLIED, WriteStatus.REFUSED, WriteStatus.NEEDS_VECTOR


def rec(entity_id="a", t=10, op="upsert", h="h1", vector=(1.0, 2.0, 3.0), version="v1", entity_type="job", model="3"):
    return OnlineRecord(
        entity_type=entity_type,
        entity_id=entity_id,
        embedding_version=version,
        event_time_ms=t,
        op=op,
        vector=None if vector is None else np.asarray(vector, dtype=np.float32),
        content_hash=h if op == "upsert" else None,
        model_version=model,
    )


@pytest.fixture()
def store(redis_client, redis_prefix):
    return RedisOnlineStore(redis_client, prefix=redis_prefix)


def read_one(store, entity_id="a", version="v1", entity_type="job"):
    got = store.get_embeddings(entity_type, [entity_id], version=version)
    return got.vectors[0], bool(got.found[0]), got.meta.iloc[0]


# ---- last write wins --------------------------------------------------------------------
def test_round_trip_float32_exact(store):
    v = np.random.default_rng(0).standard_normal(384).astype(np.float32)
    assert store.write(rec(vector=v, model="7")) == A
    vec, found, meta = read_one(store)
    assert found and np.array_equal(vec, v)
    assert (meta.content_hash, meta.event_time_ms, meta.model_version, meta.embedding_version) == ("h1", 10, "7", "v1")


def test_older_write_is_refused_newer_applied(store):
    assert store.write_many([rec(t=10), rec(t=5, h="old", vector=[9, 9, 9])]) == [A, R]
    assert store.get_hashes("job", ["a"], "v1") == ["h1"]
    assert store.write(rec(t=11, h="new", vector=[4, 5, 6])) == A
    vec, _, meta = read_one(store)
    assert vec.tolist() == [4, 5, 6] and meta.event_time_ms == 11


def test_same_write_again_is_an_idempotent_overwrite(store):
    assert store.write_many([rec(), rec()]) == [A, A]
    vec, found, _ = read_one(store)
    assert found and vec.tolist() == [1, 2, 3]


@pytest.mark.parametrize("delete_first", [True, False])
def test_tie_a_delete_beats_an_upsert(store, delete_first):
    writes = [rec(t=10, op="delete"), rec(t=10)]
    if not delete_first:
        writes.reverse()
    store.write_many(writes)
    assert not read_one(store)[1]


@pytest.mark.parametrize("order", [("h1", "h2"), ("h2", "h1")])
def test_tie_the_larger_content_hash_wins(store, order):
    vectors = {"h1": [1, 1, 1], "h2": [2, 2, 2]}
    store.write_many([rec(t=10, h=h, vector=vectors[h]) for h in order])
    vec, _, meta = read_one(store)
    assert meta.content_hash == "h2" and vec.tolist() == [2, 2, 2]


def test_tombstone_blocks_a_late_upsert(store):
    assert store.write_many([rec(t=10), rec(t=20, op="delete"), rec(t=15, h="late", vector=[7, 7, 7])]) == [A, A, R]
    vec, found, meta = read_one(store)
    assert not found and not vec.any() and meta.content_hash is None
    assert store.get_hashes("job", ["a"], "v1") == [None]
    assert store.write(rec(t=21, h="back")) == A  # a newer upsert brings it back
    assert read_one(store)[1]


def test_delete_of_an_unknown_entity_leaves_a_tombstone(store):
    assert store.write(rec(t=20, op="delete")) == A
    assert store.write(rec(t=5)) == R


def test_tombstone_ttl_expires_tombstones_only(redis_client, redis_prefix):
    store = RedisOnlineStore(redis_client, prefix=redis_prefix, tombstone_ttl_s=60)
    key = store.key("job", "a", "v1")
    store.write(rec(t=20, op="delete"))
    assert 0 < redis_client.pttl(key) <= 60_000
    store.write(rec(t=30))
    assert redis_client.pttl(key) == -1  # a live record never expires


# ---- touch: an unchanged edit advances the event time without a vector ------------------
def test_touch_advances_the_event_time_of_unchanged_content(store):
    store.write(rec(t=10))
    assert store.write(rec(t=30, vector=None, model="4")) == A
    vec, _, meta = read_one(store)
    assert vec.tolist() == [1, 2, 3] and meta.event_time_ms == 30 and meta.model_version == "4"
    # A delete from between the edits, arriving late, is refused: the touch moved the clock on.
    assert store.write(rec(t=20, op="delete")) == R


@pytest.mark.parametrize("stored", ["other content", "deleted", "missing"])
def test_touch_needs_a_vector_when_the_stored_content_differs(store, stored):
    if stored == "other content":
        store.write(rec(t=10, h="h0"))
    elif stored == "deleted":
        store.write(rec(t=10, op="delete"))
    assert store.write(rec(t=30, vector=None)) == N
    assert store.get_hashes("job", ["a"], "v1") == (["h0"] if stored == "other content" else [None])


def test_touch_older_than_the_stored_write_is_refused(store):
    store.write(rec(t=10))
    assert store.write(rec(t=5, vector=None)) == R


# ---- races ------------------------------------------------------------------------------
def test_last_write_wins_under_racing_writers(redis_client, redis_connect, redis_prefix):
    """Two writers (own connections, started together) stream interleaved event times for the
    same keys, roughly in time order, in small shuffled batches, so both send their newest
    writes at the same moment; every key ends at its maximum event time, with that write's
    vector. (A read-then-write from Python loses about every key here once a round trip
    separates the read from the write.)"""
    keys = [f"e{i}" for i in range(20)]
    start = threading.Barrier(2)

    def writer(client, parity: int, seed: int) -> None:
        store = RedisOnlineStore(client, prefix=redis_prefix)
        records = [
            rec(entity_id=k, t=t, h=f"h{t:04d}", vector=[t, t]) for t in range(1, 201) if t % 2 == parity for k in keys
        ]
        rng = random.Random(seed)
        start.wait()
        for i in range(0, len(records), 20):
            batch = records[i : i + 20]
            rng.shuffle(batch)
            store.write_many(batch)

    threads = [threading.Thread(target=writer, args=(redis_connect(), p, p + 1)) for p in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    got = RedisOnlineStore(redis_client, prefix=redis_prefix).get_embeddings("job", keys, version="v1")
    assert got.found.all()
    assert got.meta.event_time_ms.tolist() == [200] * len(keys)
    assert (got.vectors == 200).all()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    writes=st.lists(
        st.tuples(
            st.sampled_from(["a", "b"]),
            st.integers(0, 4),  # few times: many ties
            st.sampled_from(["upsert", "upsert", "delete"]),
            st.sampled_from(["h1", "h2", "h3"]),
        ),
        min_size=1,
        max_size=12,
    ),
    seed=st.integers(0, 2**16),
)
def test_any_arrival_order_converges_to_the_maximum_write(redis_client, writes, seed):
    """Redelivered, duplicated and reordered writes leave one state: the maximum by
    (event time, delete over upsert, content hash), whatever order they arrive in."""
    prefix = f"jude-test:{uuid4().hex}:"
    try:
        store = RedisOnlineStore(redis_client, prefix=prefix)
        records = [rec(entity_id=e, t=t, op=op, h=h, vector=[t, int(h[1])]) for e, t, op, h in writes]
        shuffled = records + random.Random(seed).sample(records, len(records))  # every write twice, reordered
        random.Random(seed + 1).shuffle(shuffled)
        store.write_many(shuffled)
        got = store.get_embeddings("job", ["a", "b"], version="v1")
        for i, entity_id in enumerate(["a", "b"]):
            mine = [w for w in writes if w[0] == entity_id]
            if not mine:
                assert not got.found[i]
                continue
            _, t, op, h = max(mine, key=lambda w: (w[1], w[2] == "delete", w[3] if w[2] == "upsert" else ""))
            assert bool(got.found[i]) == (op == "upsert")
            if op == "upsert":
                assert got.vectors[i].tolist() == [t, int(h[1])] and got.meta.content_hash[i] == h
    finally:
        keys = list(redis_client.scan_iter(match=prefix + "*"))
        if keys:
            redis_client.delete(*keys)


# ---- reads ------------------------------------------------------------------------------
def test_batch_read_follows_the_ids_and_marks_the_missing(store):
    store.write_many([rec(entity_id=e, vector=[i, i, i]) for i, e in enumerate(["x", "y", "z"])])
    store.write(rec(entity_id="y", t=11, op="delete"))
    got = store.get_embeddings("job", ["z", "nope", "x", "y", "z"], version="v1")
    assert got.found.tolist() == [True, False, True, False, True]
    assert got.vectors.shape == (5, 3) and got.vectors.dtype == np.float32
    assert got.vectors[:, 0].tolist() == [2, 0, 0, 0, 2]
    assert got.meta.entity_id.tolist() == ["z", "nope", "x", "y", "z"]
    assert store.get_hashes("job", ["x", "y", "nope"], "v1") == ["h1", None, None]


def test_batch_read_of_nothing_found_has_zero_columns(store):
    got = store.get_embeddings("job", ["a", "b"], version="v1")
    assert got.vectors.shape == (2, 0) and not got.found.any()


def test_float16_round_trip(redis_client, redis_prefix):
    v = np.random.default_rng(1).standard_normal(64).astype(np.float32)
    half = RedisOnlineStore(redis_client, prefix=redis_prefix, dtype="float16")
    half.write(rec(vector=v))
    assert len(redis_client.hget(half.key("job", "a", "v1"), "vec")) == 64 * 2
    vec, found, _ = read_one(half)
    assert found and vec.dtype == np.float32
    assert np.array_equal(vec, v.astype(np.float16).astype(np.float32))
    # Each record carries its dtype: a float32 store reads it the same.
    full = RedisOnlineStore(redis_client, prefix=redis_prefix)
    assert np.array_equal(read_one(full)[0], vec)


# ---- versions ---------------------------------------------------------------------------
def test_versions_never_mix(store):
    store.write_many([rec(version="v1", vector=[1, 1, 1]), rec(version="v2", vector=[2, 2, 2, 2], h="h2")])
    assert store.write(rec(version="v2", t=5, vector=[9, 9, 9, 9])) == R  # ordered within its own version
    store.write(rec(version="v1", t=20, op="delete"))
    assert read_one(store, version="v2")[0].tolist() == [2, 2, 2, 2]
    assert not read_one(store, version="v1")[1]
    assert store.get_hashes("job", ["a"], "v2") == ["h2"]
    assert not read_one(store, entity_type="profile", version="v2")[1]


def test_active_pointer_flips_readers(store):
    with pytest.raises(LookupError, match="job"):
        store.get_embeddings("job", ["a"])
    store.write_many([rec(version="v1", vector=[1, 1, 1]), rec(version="v2", vector=[2, 2])])
    assert store.set_active("job", "v1") is None
    assert store.get_embeddings("job", ["a"]).vectors.tolist() == [[1, 1, 1]]
    store.add_live_version("job", "v2")  # a bootstrap fills v2 while v1 serves
    assert store.live_versions("job") == ["v1", "v2"]
    assert store.set_active("job", "v2") == "v1"
    got = store.get_embeddings("job", ["a"])
    assert got.vectors.tolist() == [[2, 2]] and got.meta.embedding_version[0] == "v2"
    assert store.active_version("job") == "v2" and store.active_version("profile") is None


def test_retire_version(store):
    store.write_many([rec(version="v1"), rec(version="v2"), rec(version="v1", entity_type="profile")])
    store.set_active("job", "v1")
    store.set_active("job", "v2")
    with pytest.raises(ValueError, match="'v2' is the active job version"):
        store.retire_version("job", "v2")
    assert store.retire_version("job", "v1", purge=True) == 1
    assert store.live_versions("job") == ["v2"]
    assert not read_one(store, version="v1")[1]
    assert read_one(store, version="v2")[1]
    assert read_one(store, entity_type="profile", version="v1")[1]  # another entity type's v1 stays


# ---- validation -------------------------------------------------------------------------
@pytest.mark.parametrize(
    "bad, match",
    [
        (rec(version="v1:job"), "embedding_version"),
        (rec(entity_type="company"), "entity_type"),
        (rec(entity_id=""), "entity_id"),
        (rec(h=""), "content_hash"),
        (rec(vector=[]), "vector"),
        (rec(op="update"), "op"),
        (OnlineRecord("job", "a", "v1", event_time_ms=1.5, content_hash="h"), "event_time_ms"),
    ],
)
def test_a_bad_record_is_named_and_nothing_is_written(store, bad, match):
    with pytest.raises(ValueError, match=match) as info:
        store.write_many([rec(entity_id="ok"), bad])
    assert "record 1" in str(info.value)
    assert store.get_hashes("job", ["ok"], "v1") == [None]


def test_a_decoding_client_is_refused(redis_connect):
    with pytest.raises(ValueError, match="decode_responses=False"):
        RedisOnlineStore(redis_connect(decode_responses=True))


def test_bad_store_settings_are_named(redis_client):
    with pytest.raises(ValueError, match="dtype"):
        RedisOnlineStore(redis_client, dtype="int8")
    with pytest.raises(ValueError, match="tombstone_ttl_s"):
        RedisOnlineStore(redis_client, tombstone_ttl_s=0)
