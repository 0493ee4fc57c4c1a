"""The backfill into both stores: dedup counts, resumption after a kill, the version flip, bad input."""

import threading

import numpy as np
import pytest

from jude.bootstrap.backfill import BootstrapError, backfill
from jude.bootstrap.engines import LocalEngine
from jude.bootstrap.selection import select
from jude.stores.offline import DeltaHistory
from jude.stores.online import RedisOnlineStore

pytestmark = pytest.mark.services
VERSION = "boot-1"


class Killed(RuntimeError):
    pass


class CountingEngine(LocalEngine):
    """The local engine, remembering every text it embedded."""

    def __init__(self, model_dir):
        super().__init__(model_dir)
        self.seen: list[str] = []

    def encode(self, texts, entity_type=None):
        self.seen += texts
        return super().encode(texts, entity_type)


@pytest.fixture()
def stores(redis_client, redis_prefix, tmp_path):
    def make(name="h"):
        return RedisOnlineStore(redis_client, prefix=redis_prefix + name + ":"), DeltaHistory(str(tmp_path / name))

    return make


def online_state(store, rows):
    out = {}
    for etype, group in rows.groupby("entity_type"):
        ids = sorted(set(group["entity_id"]))
        emb = store.get_embeddings(etype, ids, VERSION)
        for i, meta, vec in zip(ids, emb.meta.itertuples(), emb.vectors):
            out[(etype, i)] = (meta.found, meta.content_hash, meta.event_time_ms, vec.tobytes() if meta.found else b"")
    return out


def history_state(history):
    df = history.read(version=VERSION).drop(columns=["processed_at"])
    df["vector"] = [None if v is None else np.asarray(v).tobytes() for v in df["vector"]]
    return df.sort_values(["entity_type", "entity_id", "event_time", "op"]).reset_index(drop=True)


@pytest.fixture(scope="module")
def some_history(history):
    """The row versions of 40 jobs and 30 members (with their counter re-saves)."""
    jobs = sorted(set(history.loc[history["entity_type"] == "job", "entity_id"]))[:40]
    members = sorted(set(history.loc[history["entity_type"] != "job", "entity_id"]))[:30]
    return select(history, ids=jobs + members)


def test_dedup_embeds_each_distinct_text_once(tiny_model_dir, stores, some_history):
    online, hist = stores()
    engine = CountingEngine(tiny_model_dir)
    report = backfill(some_history, engine, online, hist, VERSION, chunk_size=25)
    assert report.inferences == report.distinct_texts == len(set(engine.seen)) == len(engine.seen)
    assert report.rows == len(some_history) > 2 * report.inferences  # counter re-saves render the same text
    again = backfill(some_history, engine, online, hist, VERSION, chunk_size=25)
    assert again.inferences == 0 and again.history_rows == 0
    assert again.skipped_stored == again.entities == report.entities


def test_a_killed_run_resumes_without_embedding_twice(tiny_model_dir, stores, some_history):
    whole_online, whole_hist = stores("whole")
    whole = CountingEngine(tiny_model_dir)
    backfill(some_history, whole, whole_online, whole_hist, VERSION, chunk_size=20)

    online, hist = stores("killed")
    first = CountingEngine(tiny_model_dir)

    def kill(k):
        if k == 1:
            raise Killed("after chunk 1")

    with pytest.raises(Killed):
        backfill(some_history, first, online, hist, VERSION, chunk_size=20, after_chunk=kill)
    second = CountingEngine(tiny_model_dir)
    report = backfill(some_history, second, online, hist, VERSION, chunk_size=20)

    assert first.seen and second.seen and not set(first.seen) & set(second.seen)
    assert sorted(first.seen + second.seen) == sorted(whole.seen)
    assert report.skipped_stored > 0
    assert online_state(online, some_history) == online_state(whole_online, some_history)
    assert history_state(hist).equals(history_state(whole_hist))


def test_flip_moves_readers_at_once_and_never_mixes(tiny_model_dir, stores, snapshot, redis_client):
    online, hist = stores()
    rows = select(snapshot, ["job"])
    old = {"v": "old-1"}
    backfill(rows, LocalEngine(tiny_model_dir), online, hist, "old-1", flip=True)
    stop, seen = threading.Event(), []
    ids = sorted(set(rows["entity_id"]))

    def reader():
        while not stop.is_set():
            emb = online.get_embeddings("job", ids)  # the active version, whichever it is
            seen.append(set(emb.meta["embedding_version"]))
            assert emb.found.all()

    t = threading.Thread(target=reader)
    t.start()
    try:
        report = backfill(rows, LocalEngine(tiny_model_dir), online, hist, VERSION, chunk_size=50, flip=True)
    finally:
        stop.set()
        t.join()
    assert report.flipped and report.previous_active == {"job": old["v"]}
    assert online.active_version("job") == VERSION
    assert all(len(s) == 1 for s in seen) and {"old-1"} in seen
    assert sorted(online.live_versions("job")) == sorted(["old-1", VERSION])


def test_bad_template_input_fails_before_any_write(tiny_model_dir, stores, snapshot):
    online, hist = stores()
    rows = select(snapshot, ["job"]).copy()
    online.set_active("job", "old-1")
    bad = dict(rows.at[3, "fields"])
    del bad["description"]
    rows.at[3, "fields"] = bad
    engine = CountingEngine(tiny_model_dir)
    with pytest.raises(BootstrapError, match=rf"job '{rows.at[3, 'entity_id']}'.*description"):
        backfill(rows, engine, online, hist, VERSION, flip=True)
    assert engine.seen == []
    assert hist.read().empty
    assert online.active_version("job") == "old-1"
