"""The job index kept by the nearline, on the machine's Redis: the feed, rebuilds, the version flip, crashes.

The model is :class:`HashInference` (a vector per text), so the oracle (the latest event
of each job, embedded) predicts every vector; each index is compared with it.
"""

from __future__ import annotations

import random
import signal
import time

import numpy as np
import pytest

from jude.config import RetrievalConfig
from jude.data.changes import ChangeStreamConfig, generate_change_stream, latest_state, to_events
from jude.nearline.inference import HashInference
from jude.nearline.processor import Processor, Target
from jude.nearline.sources import RedisStreamPublisher, publish_events
from jude.retrieval.build import build_from_history, build_from_store, prepare_version, snapshot_dir
from jude.retrieval.feed import IndexFeed
from jude.retrieval.index import IndexUpdate
from jude.retrieval.service import MemberNotFound, Retriever
from jude.stores.offline import DeltaHistory
from jude.stores.online import OnlineRecord, RedisOnlineStore
from tests.nearline.nearline_support import (
    VERSION,
    FakeSource,
    MemoryHistory,
    job,
    kill,
    redis_backlog,
    start_worker,
    wait_ready,
    worker_config,
)
from tests.retrieval.support import index_mismatches, job_oracle

pytestmark = pytest.mark.services


def queries(n: int = 5, dim: int = 16) -> np.ndarray:
    return np.random.default_rng(0).standard_normal((n, dim)).astype(np.float32)


def retrieval_cfg(prefix: str, tmp_path, **kw) -> RetrievalConfig:
    base = {"prefix": prefix, "min_train": 100, "nprobe": 8, "index_dir": str(tmp_path / "indexes")}
    return RetrievalConfig(**(base | kw))


@pytest.fixture()
def store(redis_client, redis_prefix):
    store = RedisOnlineStore(redis_client, prefix=redis_prefix)
    for t in ("job", "profile", "resume"):
        store.set_active(t, VERSION)
    return store


def test_the_processor_feeds_the_index_and_every_build_path_matches_the_oracle(store, small_market, tmp_path):
    feed = IndexFeed(store.client, prefix=store.prefix)
    model = HashInference()
    history = DeltaHistory(tmp_path / "history")
    source = FakeSource()
    processor = Processor(source, store, history, [Target(VERSION, model)], listeners=[feed])
    stream = generate_change_stream(
        small_market, ChangeStreamConfig(n_events=1500, duplicates=0.05, shuffle_window=8, seed=3)
    )
    events = to_events(stream)
    half = len(events) // 2
    for start in range(0, half, 50):
        processor.process([source.message(e) for e in events[start : start + 50]])
    retriever = Retriever(store, retrieval_cfg(store.prefix, tmp_path), feed)
    assert retriever.load().version == VERSION  # built from the online store, then the feed from its position
    redelivered = events[half : half + 50]
    for start in range(half, len(events), 50):
        processor.process([source.message(e) for e in events[start : start + 50]])
    processor.process([source.message(e) for e in redelivered])  # a redelivery: refused or rewritten, same state
    retriever.catch_up()

    oracle = job_oracle(events, model)
    deleted = {i for (t, i), ev in latest_state(events).items() if t == "job" and ev["op"] == "delete"}
    assert deleted and len(oracle) > 100
    followed = retriever.state.index
    assert followed.uses_ann
    assert index_mismatches(followed, oracle, queries()) == []
    rebuilt, _ = build_from_store(store, feed, VERSION, retriever.cfg)
    assert index_mismatches(rebuilt, oracle, queries()) == []
    from_history = build_from_history(history, VERSION, retriever.cfg)
    assert index_mismatches(from_history, oracle, queries()) == []
    for q in queries(20):
        assert not {h.job_id for h in followed.search(q, 100)} & deleted

    latest = {i: ev for (t, i), ev in latest_state(events).items() if t == "job" and ev["op"] == "upsert"}
    store.write(OnlineRecord("profile", "M1", VERSION, 1, "upsert", queries(1)[0], "p", "hash"))
    rec = retriever.recommend(member_id="M1", k=20, remote=True, exclude=[next(iter(oracle))])
    assert rec.embedding_version == VERSION and rec.watermark_ms == followed.watermark_ms
    assert rec.hits and all(latest[h.job_id]["fields"]["remote"] is True for h in rec.hits)
    city = latest[rec.hits[0].job_id]["fields"]["location"]
    by_city = retriever.recommend(member_id="M1", k=10, location=city.upper())
    assert by_city.hits and all(latest[h.job_id]["fields"]["location"] == city for h in by_city.hits)
    with pytest.raises(MemberNotFound, match="M2"):
        retriever.recommend(member_id="M2")


def test_the_bootstrap_snapshot_then_the_flip_never_mixes_versions(store, tmp_path):
    v1, v2 = VERSION, "hash-2"
    m1, m2 = HashInference(16), HashInference(24, model="hash-24")  # different dimensions: a mix cannot go unseen
    for t in ("job", "profile"):
        store.add_live_version(t, v2)
    feed = IndexFeed(store.client, prefix=store.prefix)
    source = FakeSource()
    processor = Processor(store=store, source=source, history=MemoryHistory(), targets=[Target(v1, m1), Target(v2, m2)])
    processor.listeners = [feed]
    first = [job(f"J{i}", 1000 + i, title=f"Engineer {i}", remote=i % 2 == 0) for i in range(40)]
    profile = {
        "entity_type": "profile",
        "entity_id": "M1",
        "op": "upsert",
        "event_time": "2024-01-01T00:00:00Z",
        "fields": {
            "headline": "Backend engineer",
            "title": "Engineer",
            "location": "Berlin",
            "years_experience": 5,
            "skills": ["python"],
            "summary": "Builds services.",
        },
    }
    processor.process([source.message(e) for e in [*first, profile]])
    cfg = retrieval_cfg(store.prefix, tmp_path, min_train=10)
    retriever = Retriever(store, cfg, feed)
    assert retriever.load().version == v1
    assert retriever.recommend(member_id="M1", k=5).embedding_version == v1

    report = prepare_version(store, v2, cfg)  # what flip_active does before it flips
    assert report["jobs"] == 40 and (snapshot_dir(cfg, v2) / "state.json").exists()
    later = [job("J0", 5000, title="Nurse"), {**job("J1", 5001), "op": "delete", "fields": {}}, job("J99", 5002)]
    processor.process([source.message(e) for e in later])  # after the snapshot: only in v2's feed
    store.set_active("job", v2)
    store.write(OnlineRecord("profile", "OLD", v1, 1, "upsert", np.ones(16), "o", "hash"))  # a v1-only member
    assert retriever.check_active()
    assert retriever.state.version == v2 and retriever.state.index.dim == 24
    oracle = job_oracle(first + later, m2)
    assert index_mismatches(retriever.state.index, oracle, queries(3, 24)) == []
    rec = retriever.recommend(member_id="M1", k=50, exact=True)  # the member's v2 vector, v2's jobs
    assert (
        rec.embedding_version == v2
        and "J1" not in {h.job_id for h in rec.hits}
        and "J99" in {h.job_id for h in rec.hits}
    )
    with pytest.raises(MemberNotFound, match="version 'hash-2'"):
        retriever.recommend(member_id="OLD")  # its v1 vector is never searched against v2's jobs


def test_a_follower_whose_feed_position_was_trimmed_rebuilds(store, tmp_path):
    feed = IndexFeed(store.client, prefix=store.prefix)
    vec = queries(3)
    feed.publish(VERSION, [IndexUpdate("A", "upsert", 1, "a", vec[0])])
    store.write(OnlineRecord("job", "A", VERSION, 1, "upsert", vec[0], "a", "hash"))
    retriever = Retriever(store, retrieval_cfg(store.prefix, tmp_path, active_check_s=0.001), feed)
    retriever.load()
    # B reaches the store and the feed, then the feed is trimmed past the follower's position
    store.write(OnlineRecord("job", "B", VERSION, 2, "upsert", vec[1], "b", "hash"))
    feed.publish(VERSION, [IndexUpdate("B", "upsert", 2, "b", vec[1])])
    feed.publish(VERSION, [IndexUpdate("C", "upsert", 3, "c", vec[2])])
    store.client.xtrim(feed.stream(VERSION), minid=feed.last_id(VERSION), approximate=False)
    assert feed.trimmed_past(VERSION, retriever.state.position)
    time.sleep(0.01)
    retriever.follow_once()
    assert retriever.state.index.contains("B")  # from the rebuild: the feed no longer had it


def test_crash_test_the_followed_and_rebuilt_indexes_match_the_oracle_after_sigkills(
    redis_client, redis_prefix, small_market, tmp_path
):
    """kill -9 nearline workers mid-stream while a server's follower applies the feed; restart, rebuild, compare."""
    stream = generate_change_stream(
        small_market, ChangeStreamConfig(n_events=1500, duplicates=0.03, shuffle_window=8, seed=5)
    )
    events = to_events(stream)
    publish_events(events, RedisStreamPublisher(redis_client, prefix=redis_prefix))
    store = RedisOnlineStore(redis_client, prefix=redis_prefix)
    feed = IndexFeed(redis_client, prefix=redis_prefix)
    cfg = retrieval_cfg(redis_prefix, tmp_path, feed_block_ms=50)
    follower = Retriever(store, cfg, feed)
    follower.start()  # loads once the first worker set `active`, then follows the feed through the kills
    log, rng = tmp_path / "workers.log", random.Random(11)
    for i in range(5):
        wcfg = worker_config(redis_prefix, tmp_path / "history")
        proc = start_worker(wcfg, log, embed_delay=0.02)
        wait_ready(proc, wcfg["metrics_port"], log)
        if i < 4:
            time.sleep(rng.uniform(0.3, 1.0))
            assert kill(proc) == -signal.SIGKILL
    deadline = time.monotonic() + 120
    while redis_backlog(redis_client, redis_prefix, VERSION) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert kill(proc, signal.SIGTERM) == 0, log.read_text()[-3000:]
    assert redis_backlog(redis_client, redis_prefix, VERSION) == 0
    time.sleep(0.3)
    follower.stop()
    applied_live = follower.state.applied  # feed entries applied while the workers ran and were killed
    follower.catch_up()
    assert applied_live > 0

    oracle = job_oracle(events, HashInference())
    assert index_mismatches(follower.state.index, oracle, queries()) == []
    restarted = Retriever(store, cfg, feed)  # a server (re)started after the crashes: rebuilt from the store
    restarted.load()
    assert index_mismatches(restarted.state.index, oracle, queries()) == []
    history = build_from_history(DeltaHistory(tmp_path / "history"), VERSION, cfg)
    assert index_mismatches(history, oracle, queries()) == []
