"""The Milvus adapter (``jude.retrieval.milvus``) on a real Milvus Lite instance, against the FAISS index as oracle."""

from __future__ import annotations

import random

import numpy as np
import pytest

from jude.retrieval.index import IndexUpdate, JobIndex
from tests.retrieval.test_index import clustered, oracle, stream

pytest.importorskip("milvus_lite", reason="milvus-lite is not installed (pip install milvus-lite)")
pytestmark = pytest.mark.services

DIM = 16


@pytest.fixture()
def milvus(tmp_path):
    from jude.retrieval.milvus import MilvusJobIndex

    index = MilvusJobIndex(str(tmp_path / "milvus.db"), "v1", DIM, index_type="FLAT")
    yield index
    index.close()


def test_milvus_applies_the_same_writes_to_the_same_state_as_the_faiss_index(milvus, tmp_path):
    events = stream(120, 500, seed=21)
    shuffled = events[:]
    random.Random(1).shuffle(shuffled)
    faiss_index = JobIndex("v1", DIM, "exact")
    for start in range(0, len(shuffled), 40):
        milvus.apply(shuffled[start : start + 40])
        faiss_index.apply(shuffled[start : start + 40])
    state = oracle(events)
    live = {i for i, u in state.items() if u.op == "upsert"}
    assert set(milvus.live_ids()) == live == set(faiss_index.live_ids())
    assert milvus.watermark_ms == faiss_index.watermark_ms
    deleted = {i for i, u in state.items() if u.op == "delete"}
    for q in clustered(10, seed=22):
        got = milvus.search(q, 10, exact=True)
        want = faiss_index.search(q, 10, exact=True)
        np.testing.assert_allclose([h.score for h in got], [h.score for h in want], atol=1e-4)
        assert not {h.job_id for h in milvus.search(q, 50)} & deleted
        filtered = milvus.search(q, 10, remote=True, location="PARIS", exclude=[want[0].job_id])
        want_f = faiss_index.search(q, 10, remote=True, location="paris", exclude=[want[0].job_id], exact=True)
        assert [h.job_id for h in filtered] == [h.job_id for h in want_f]


def test_a_late_older_upsert_does_not_resurrect_a_deleted_job_in_milvus(milvus):
    v = clustered(1, seed=3)[0]
    milvus.apply([IndexUpdate("j1", "upsert", 10, "a", v, "Berlin", True)])
    milvus.apply([IndexUpdate("j1", "delete", 20)])
    milvus.apply([IndexUpdate("j1", "upsert", 15, "b", v)])
    assert not milvus.contains("j1") and milvus.search(v, 5) == []
    milvus.apply([IndexUpdate("j1", "upsert", 30, "c", v)])
    assert milvus.search(v, 1)[0].job_id == "j1"
