"""The job index against a brute-force oracle: updates, deletes, out-of-order writes, filters, retrains, snapshots."""

from __future__ import annotations

import random

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jude.config import RetrievalConfig
from jude.retrieval.build import build_from_history, latest_rows
from jude.retrieval.index import IndexUpdate, JobIndex, normalized

DIM = 16
CITIES = ["Berlin", "Paris", "Lisbon"]


def clustered(n: int, seed: int = 0, dim: int = DIM, clusters: int = 20) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, dim))
    return (centres[rng.integers(0, clusters, n)] + 0.3 * rng.standard_normal((n, dim))).astype(np.float32)


def stream(n_jobs: int, n_events: int, seed: int = 0) -> list[IndexUpdate]:
    """Upserts, edits and deletes of ``n_jobs`` jobs, each event at its own time (some ties)."""
    rng = random.Random(seed)
    vecs = clustered(n_events, seed)
    out = []
    for e in range(n_events):
        job = f"j{rng.randrange(n_jobs)}"
        ts = 1000 + e // 2  # pairs of events share a time: the tie rule decides
        if rng.random() < 0.2:
            out.append(IndexUpdate(job, "delete", ts))
        else:
            out.append(IndexUpdate(job, "upsert", ts, f"h{e:05d}", vecs[e], rng.choice(CITIES), rng.random() < 0.5))
    return out


def oracle(updates: list[IndexUpdate]) -> dict[str, IndexUpdate]:
    """Per job, the maximum write by (event time, delete above upsert, hash): the online store's end state."""
    best: dict[str, IndexUpdate] = {}
    for u in updates:
        if u.entity_id not in best or u.order() >= best[u.entity_id].order():
            best[u.entity_id] = u
    return best


def brute_force(state: dict[str, IndexUpdate], q: np.ndarray, k: int, keep=lambda u: True) -> list[tuple[str, float]]:
    live = [u for u in state.values() if u.op == "upsert" and keep(u)]
    if not live:
        return []
    x = normalized(np.stack([u.vector for u in live]))
    scores = x @ normalized(q)[0]
    order = np.argsort(-scores, kind="stable")[:k]
    return [(live[i].entity_id, float(scores[i])) for i in order]


def same_ranking(got, want, atol=1e-5) -> bool:
    """The same scores rank by rank, and the same ids, except among scores tied within ``atol`` (any order)."""
    if len(got) != len(want) or any(abs(g[1] - w[1]) > atol for g, w in zip(got, want)):
        return False
    scores = [w[1] for w in want]
    tied = any(abs(a - b) <= atol for a, b in zip(scores, scores[1:]))
    return tied or [g[0] for g in got] == [w[0] for w in want]


def test_any_arrival_order_ends_in_the_oracle_state_and_deletes_are_never_returned():
    events = stream(200, 1500)
    state = oracle(events)
    for seed in range(3):
        shuffled = events[:]
        random.Random(seed).shuffle(shuffled)
        index = JobIndex("v1", DIM, "ivf_flat", min_train=100, nprobe=4)
        for start in range(0, len(shuffled), 37):  # feed-sized batches, out of order
            index.apply(shuffled[start : start + 37])
            if start == 370:
                index.retrain()  # trained mid-stream: later writes go to both indexes
        assert index.uses_ann
        live = {i for i, u in state.items() if u.op == "upsert"}
        deleted = {i for i, u in state.items() if u.op == "delete"}
        assert set(index.live_ids()) == live and len(index) == len(live)
        for job in deleted:
            assert not index.contains(job)
        q = clustered(20, seed=9)
        for row in q:
            for exact in (False, True):
                got = index.search(row, 50, exact=exact)
                assert not {h.job_id for h in got} & deleted
            exact_hits = [(h.job_id, h.score) for h in index.search(row, 10, exact=True)]
            assert same_ranking(exact_hits, brute_force(state, row, 10))
        assert index.watermark_ms == max(u.event_time_ms for u in events)


def test_an_older_write_after_a_delete_does_not_resurrect_and_an_update_moves_the_vector():
    index = JobIndex("v1", DIM, "exact")
    a, b = clustered(2, seed=1)
    index.apply([IndexUpdate("j1", "upsert", 10, "x", a)])
    assert index.search(a, 1)[0].job_id == "j1"
    index.apply([IndexUpdate("j1", "delete", 20)])
    index.apply([IndexUpdate("j1", "upsert", 15, "y", a)])  # late, older than the delete
    assert index.search(a, 5) == [] and not index.contains("j1")
    index.apply([IndexUpdate("j1", "upsert", 30, "z", b)])  # a newer upsert re-creates it with the new vector
    hit = index.search(b, 1)[0]
    assert hit.job_id == "j1" and hit.score == pytest.approx(1.0, abs=1e-5)
    assert len(index) == 1 and index.watermark_ms == 30


def test_filters_are_applied_inside_the_search_and_equal_brute_force():
    events = [u for u in stream(400, 800, seed=2)]
    state = oracle(events)
    index = JobIndex("v1", DIM, "ivf_flat", min_train=100, nprobe=2)
    index.apply(events)
    index.retrain()
    excluded = sorted(i for i, u in state.items() if u.op == "upsert")[:30]
    for row in clustered(10, seed=5):
        got = index.search(row, 20, remote=True, location="berlin", exclude=excluded)
        keep = lambda u: u.remote and u.location == "Berlin" and u.entity_id not in excluded  # noqa: E731
        want = brute_force(state, row, 20, keep)
        assert {h.job_id for h in got} <= {u.entity_id for u in state.values() if u.op == "upsert" and keep(u)}
        assert len(got) == len(want)  # the ANN's probed lists fall short: it goes on in the exact index
        exact = index.search(row, 20, remote=True, location="BERLIN", exclude=excluded, exact=True)
        assert same_ranking([(h.job_id, h.score) for h in exact], want)
    assert index.search(clustered(1)[0], 5, location="Atlantis") == []


def test_ann_recall_at_10_against_exact_on_clustered_vectors():
    x = clustered(6000, seed=3, dim=32, clusters=60)
    index = JobIndex("v1", 32, "ivf_flat", nprobe=16, min_train=1000)
    index.apply(IndexUpdate(f"j{i}", "upsert", i, f"h{i}", v) for i, v in enumerate(x))
    assert index.needs_retrain() and index.retrain()
    q = clustered(200, seed=4, dim=32, clusters=60)
    _, ann = index.search_many(q, 10)
    _, exact = index.search_many(q, 10, exact=True)
    recall = np.mean([len(set(a) & set(e)) / 10 for a, e in zip(ann, exact)])
    assert recall >= 0.9, recall
    assert index.bytes_per_vector() < 32 * 4 + 64


def test_writes_during_a_retrain_are_replayed_onto_the_new_lists(monkeypatch):
    x = clustered(3000, seed=6)
    index = JobIndex("v1", DIM, "ivf_flat", min_train=1000, nprobe=64)
    index.apply(IndexUpdate(f"j{i}", "upsert", i, f"h{i}", v) for i, v in enumerate(x))
    original = JobIndex._train
    late = clustered(1, seed=7)[0]

    def train_while_writing(self, vecs):
        out = original(self, vecs)
        self.apply([IndexUpdate("j0", "delete", 10_000), IndexUpdate("new", "upsert", 10_001, "n", late)])
        return out

    monkeypatch.setattr(JobIndex, "_train", train_while_writing)
    assert index.retrain()
    assert index.uses_ann and not index.contains("j0")
    assert "j0" not in {h.job_id for h in index.search(x[0], 50)}
    assert index.search(late, 1)[0].job_id == "new"
    assert index.ann.ntotal == index.exact.ntotal == 3000


def test_a_snapshot_loads_to_the_same_index(tmp_path):
    events = stream(300, 900, seed=8)
    index = JobIndex("v1", DIM, "ivf_sq8", min_train=100)
    index.apply(events)
    index.retrain()
    index.save(tmp_path / "v1", extra={"feed_position": "5-0"})
    loaded, state = JobIndex.load(tmp_path / "v1")
    assert state["feed_position"] == "5-0" and loaded.kind == "ivf_sq8"
    assert sorted(loaded.live_ids()) == sorted(index.live_ids()) and loaded.watermark_ms == index.watermark_ms
    for row in clustered(5, seed=3):
        assert index.search(row, 10, remote=False) == loaded.search(row, 10, remote=False)
    late = [IndexUpdate(i, "upsert", 1, "old", clustered(1)[0]) for i in index.live_ids()[:5]]
    loaded.apply(late)  # older than what the snapshot holds: refused, as before the save
    assert loaded.search(late[0].vector, 10) == index.search(late[0].vector, 10)


def test_the_history_build_is_the_point_in_time_oracle():
    events = stream(150, 600, seed=11)
    rows = pd.DataFrame(
        {
            "entity_type": "job",
            "entity_id": [u.entity_id for u in events],
            "event_time": [u.event_time_ms for u in events],
            "embedding_version": "v1",
            "content_hash": [u.content_hash if u.op == "upsert" else None for u in events],
            "op": [u.op for u in events],
            "vector": [u.vector for u in events],
        }
    )
    cut = 1150
    index = build_from_history(rows, "v1", RetrievalConfig(index="exact"), as_of_ms=cut)
    state = oracle([u for u in events if u.event_time_ms <= cut])
    assert sorted(index.live_ids()) == sorted(i for i, u in state.items() if u.op == "upsert")
    assert len(latest_rows(rows, cut)) == len(state)
    row = clustered(1, seed=12)[0]
    assert same_ranking([(h.job_id, h.score) for h in index.search(row, 10)], brute_force(state, row, 10))


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(1, 80),
    k=st.integers(1, 30),
    seed=st.integers(0, 2**16),
    deletes=st.integers(0, 20),
)
def test_property_the_exact_index_returns_brute_force_top_k(n, k, seed, deletes):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 8)).astype(np.float32)
    index = JobIndex("v1", 8, "exact")
    ups = [IndexUpdate(f"j{i}", "upsert", i, f"h{i}", x[i]) for i in range(n)]
    dels = [IndexUpdate(f"j{i}", "delete", n + i) for i in rng.choice(n, min(deletes, n), replace=False)]
    index.apply(ups + dels)
    q = rng.standard_normal(8).astype(np.float32)
    got = [(h.job_id, h.score) for h in index.search(q, k)]
    assert same_ranking(got, brute_force(oracle(ups + dels), q, k))


def test_bad_writes_and_queries_name_what_is_wrong():
    index = JobIndex("v1", DIM)
    with pytest.raises(ValueError, match="upsert needs a vector"):
        index.apply([IndexUpdate("j1", "upsert", 1, "h")])
    with pytest.raises(ValueError, match="dimension 16"):
        index.apply([IndexUpdate("j1", "upsert", 1, "h", np.ones(3))])
    with pytest.raises(ValueError, match="k must be >= 1"):
        index.search(np.ones(DIM), 0)
    with pytest.raises(ValueError, match="retrieval.index must be one of"):
        JobIndex("v1", DIM, "hnsw")
