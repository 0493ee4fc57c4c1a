"""Semi-hard negative mining: positives never returned, reproducible, margin respected."""

from __future__ import annotations

import numpy as np
import pytest

from jude.training.negatives import mine_hard_negatives


def _normed(rng: np.random.Generator, n: int, d: int = 16) -> np.ndarray:
    x = rng.standard_normal((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    docs = _normed(rng, 300)
    queries = _normed(rng, 20)
    # each query's positives: its 3 nearest docs (hard case: they sit right at the top)
    top = np.argsort(-(queries @ docs.T), axis=1)
    positives = [set(map(int, top[i, :3])) for i in range(20)]
    return queries, docs, positives


def test_positives_and_excluded_are_never_returned(data):
    queries, docs, positives = data
    exclude = [{(i * 7) % 300, (i * 11) % 300} for i in range(20)]
    neg = mine_hard_negatives(queries, docs, positives, k=8, margin=0.05, seed=0, exclude=exclude)
    assert neg.shape == (20, 8) and neg.dtype == np.int64
    for i in range(20):
        assert not set(neg[i].tolist()) & (positives[i] | exclude[i])
        assert len(set(neg[i].tolist())) == 8  # no duplicates


def test_reproducible_with_a_seed_and_different_with_another(data):
    queries, docs, positives = data
    a = mine_hard_negatives(queries, docs, positives, k=5, margin=0.05, seed=42)
    b = mine_hard_negatives(queries, docs, positives, k=5, margin=0.05, seed=42)
    c = mine_hard_negatives(queries, docs, positives, k=5, margin=0.05, seed=43)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)
    # a query's negatives do not depend on the other queries in the call
    again = mine_hard_negatives(queries[:8], docs, positives[:8], k=5, margin=0.05, seed=42)
    assert np.array_equal(again, a[:8])


@pytest.mark.parametrize("margin", [0.0, 0.1, 0.3])
def test_semi_hard_margin_is_respected_and_negatives_are_hard(data, margin):
    queries, docs, positives = data
    neg = mine_hard_negatives(queries, docs, positives, k=6, margin=margin, seed=1, band=12)
    scores = queries @ docs.T  # (Q, N)
    for i in range(20):
        ceiling = scores[i, sorted(positives[i])].min() - margin
        got = scores[i, neg[i]]
        assert (got <= ceiling + 1e-6).all()
        # from the top band under the ceiling: all within the 12 best allowed candidates
        allowed = np.array([j for j in range(300) if j not in positives[i] and scores[i, j] <= ceiling])
        band = set(allowed[np.argsort(-scores[i, allowed])][:12].tolist())
        assert set(neg[i].tolist()) <= band


def test_band_equal_to_k_is_deterministic_top_k(data):
    queries, docs, positives = data
    neg = mine_hard_negatives(queries, docs, positives, k=4, margin=0.0, seed=0, band=4)
    other = mine_hard_negatives(queries, docs, positives, k=4, margin=0.0, seed=99, band=4)
    assert np.array_equal(neg, other)


def test_falls_back_to_random_non_positives_when_too_few_are_semi_hard():
    rng = np.random.default_rng(3)
    docs = _normed(rng, 30)
    q = docs[:1] * 1.0
    positives = [{0}]  # the query is its positive exactly: score 1, so a margin of 1.5 leaves nothing
    neg = mine_hard_negatives(q, docs, positives, k=5, margin=1.5, seed=0)
    assert len(set(neg[0].tolist())) == 5 and 0 not in neg[0]
    assert np.array_equal(neg, mine_hard_negatives(q, docs, positives, k=5, margin=1.5, seed=0))


def test_faiss_path_agrees_with_numpy_path(data):
    queries, docs, positives = data
    a = mine_hard_negatives(queries, docs, positives, k=5, margin=0.05, seed=7, use_faiss=False)
    b = mine_hard_negatives(queries, docs, positives, k=5, margin=0.05, seed=7, use_faiss=True)
    assert np.array_equal(a, b)


def test_faiss_searches_deeper_when_the_ceiling_cuts_the_top():
    rng = np.random.default_rng(5)
    docs = _normed(rng, 400)
    queries = _normed(rng, 4)
    scores = queries @ docs.T
    # positives ranked ~100th: the first ~100 results are above the ceiling
    positives = [{int(np.argsort(-scores[i])[100])} for i in range(4)]
    a = mine_hard_negatives(queries, docs, positives, k=3, margin=0.0, seed=0, band=3, use_faiss=True)
    b = mine_hard_negatives(queries, docs, positives, k=3, margin=0.0, seed=0, band=3, use_faiss=False)
    assert np.array_equal(a, b)
    for i in range(4):
        assert (scores[i, a[i]] <= scores[i, list(positives[i])[0]] + 1e-6).all()


def test_bad_input_is_named():
    docs = np.eye(4, dtype=np.float32)
    with pytest.raises(ValueError, match="one set per query"):
        mine_hard_negatives(docs[:2], docs, [set()], k=1, margin=0.0, seed=0)
    with pytest.raises(ValueError, match=r"positives\[0\].*out of range"):
        mine_hard_negatives(docs[:1], docs, [{9}], k=1, margin=0.0, seed=0)
    with pytest.raises(ValueError, match="query 0: only 1 documents"):
        mine_hard_negatives(docs[:1], docs, [{0, 1, 2}], k=2, margin=0.0, seed=0)
    with pytest.raises(ValueError, match="dimension"):
        mine_hard_negatives(np.ones((1, 3)), docs, [set()], k=1, margin=0.0, seed=0)
