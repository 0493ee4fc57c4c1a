"""Semi-hard negative mining with the current model's embeddings.

For each query (member) we want negatives (jobs) that the model finds *close*,
because those teach the most, but not *too* close: a job scoring above the
member's own positive is as likely an unlabelled positive (a false negative)
as a real negative. So, per query:

1. score every job by inner product with the query (cosine for normalised
   embeddings);
2. drop the query's positives and anything in ``exclude``;
3. keep the candidates scoring at most ``min(positive scores) - margin``: the
   *ceiling*. The minimum over positives is the conservative choice: every
   negative is at least ``margin`` below every known positive of the query.
   (This is the "positive-aware" ceiling of Moreira et al., NV-Retriever, 2024.)
4. from the ``band`` highest-scoring candidates under the ceiling, sample ``k``
   without replacement, with a generator seeded by ``(seed, query index)``, so
   the result is reproducible and a query's negatives do not depend on the
   other queries in the call;
5. if fewer than ``k`` candidates lie under the ceiling, fill up with random
   non-positive, non-excluded jobs (also seeded).

Search: below ``FAISS_MIN_DOCS`` documents, a chunked numpy matrix product is
exact and fast enough; above it we use a faiss ``IndexFlatIP`` (exact inner
product, multi-threaded, no full (Q, N) score matrix): it returns the top ``S``
per query, and ``S`` doubles for the queries whose top ``S`` had too few
candidates under their ceiling.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

FAISS_MIN_DOCS = 50_000  # below this, numpy's exact (chunk, N) product is as fast and simpler


def mine_hard_negatives(
    query_emb: np.ndarray,
    doc_emb: np.ndarray,
    positives: Sequence[set[int]],
    k: int,
    margin: float,
    seed: int,
    exclude: Sequence[set[int]] | None = None,
    band: int | None = None,
    use_faiss: bool | None = None,
    show_progress: bool = False,
) -> np.ndarray:
    """Return (Q, k) int64 document indices: semi-hard negatives per query.

    Args:
        query_emb: (Q, D) query embeddings from the current model.
        doc_emb: (N, D) document embeddings, same model and space.
        positives: per query, the set of doc indices that are its positives.
            They are never returned. A query without positives has no ceiling.
        k: negatives per query.
        margin: a negative scores at most ``min(positive scores) - margin``
            (unless it comes from the random fallback).
        seed: the sampling seed.
        exclude: per query, doc indices that must not be returned either
            (e.g. jobs with an unlabelled interaction).
        band: how many of the best candidates under the ceiling to sample
            from; default ``4 * k``. ``band = k`` is deterministic top-k.
        use_faiss: force (True) or forbid (False) the faiss search; default
            picks faiss from ``FAISS_MIN_DOCS`` documents up.
        show_progress: a tqdm bar over query chunks.

    Raises ValueError naming the query when it has fewer than ``k`` documents
    that are neither positives nor excluded.
    """
    q = _as_matrix(query_emb, "query_emb")
    docs = _as_matrix(doc_emb, "doc_emb")
    Q, N = q.shape[0], docs.shape[0]
    if q.shape[1] != docs.shape[1]:
        raise ValueError(f"query_emb and doc_emb must share the dimension D, got {q.shape[1]} and {docs.shape[1]}")
    if len(positives) != Q:
        raise ValueError(f"positives must have one set per query ({Q}), got {len(positives)}")
    if exclude is not None and len(exclude) != Q:
        raise ValueError(f"exclude must have one set per query ({Q}), got {len(exclude)}")
    if k <= 0:
        raise ValueError(f"k must be > 0, got {k}")
    if not np.isfinite(margin):
        raise ValueError(f"margin must be finite, got {margin}")
    band = 4 * k if band is None else band
    if band < k:
        raise ValueError(f"band must be >= k ({k}), got {band}")
    banned = [
        _check_ids(positives[i], N, f"positives[{i}]")
        | (_check_ids(exclude[i], N, f"exclude[{i}]") if exclude is not None else set())
        for i in range(Q)
    ]
    for i in range(Q):
        if N - len(banned[i]) < k:
            raise ValueError(
                f"query {i}: only {N - len(banned[i])} documents are neither positives nor excluded, need k={k}"
            )

    # The ceiling per query: min positive score - margin (+inf without positives).
    ceiling = np.full(Q, np.inf, dtype=np.float64)
    for i in range(Q):
        if positives[i]:
            pos = np.fromiter(positives[i], dtype=np.int64)
            ceiling[i] = float((docs[pos] @ q[i]).min()) - margin

    if use_faiss is None:
        use_faiss = N >= FAISS_MIN_DOCS
    search = _faiss_candidates if use_faiss else _numpy_candidates
    out = np.empty((Q, k), dtype=np.int64)
    for i, ranked in search(q, docs, ceiling, banned, band, show_progress):
        out[i] = _pick(ranked, banned[i], N, k, seed, i)
    return out


def _as_matrix(x: np.ndarray, name: str) -> np.ndarray:
    arr = np.ascontiguousarray(np.asarray(x, dtype=np.float32))
    if arr.ndim != 2 or arr.shape[0] == 0:
        raise ValueError(f"{name} must be a non-empty (rows, D) matrix, got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or inf (row {int(np.argwhere(~np.isfinite(arr))[0, 0])})")
    return arr


def _check_ids(ids: set[int], n: int, name: str) -> set[int]:
    ids = {int(i) for i in ids}
    bad = sorted(i for i in ids if not 0 <= i < n)
    if bad:
        raise ValueError(f"{name}: doc indices {bad[:5]} out of range [0, {n})")
    return ids


def _pick(ranked: np.ndarray, banned: set[int], n: int, k: int, seed: int, query: int) -> np.ndarray:
    """Sample k from the best `band` candidates (ranked best first); fill randomly if short."""
    rng = np.random.default_rng([seed, query])
    if len(ranked) >= k:
        chosen = np.sort(rng.choice(len(ranked), size=k, replace=False))  # keep best-first order
        return ranked[chosen]
    # Too few semi-hard candidates: random non-positive, non-excluded documents.
    taken = banned | {int(i) for i in ranked}
    pool = np.setdiff1d(np.arange(n), np.fromiter(taken, dtype=np.int64, count=len(taken)), assume_unique=True)
    fill = rng.choice(pool, size=k - len(ranked), replace=False)
    return np.concatenate([ranked, fill]).astype(np.int64)


def _select(idx: np.ndarray, scores: np.ndarray, ceiling: float, banned: set[int], band: int) -> np.ndarray:
    """From candidates sorted by score (desc), the first `band` allowed ones under the ceiling."""
    keep = [int(j) for j, s in zip(idx, scores) if j >= 0 and s <= ceiling and int(j) not in banned]
    return np.asarray(keep[:band], dtype=np.int64)


def _progress(it, total: int, on: bool, desc: str):
    if not on:
        return it
    from tqdm.auto import tqdm

    return tqdm(it, total=total, desc=desc, unit="chunk")


def _numpy_candidates(q, docs, ceiling, banned, band, show_progress, chunk: int = 256):
    """Exact scores for a chunk of queries at a time: (chunk, N) floats in memory."""
    Q = q.shape[0]
    starts = range(0, Q, chunk)
    for s in _progress(starts, len(starts), show_progress, "mine negatives"):
        scores = q[s : s + chunk] @ docs.T  # (c, N)
        scores = np.where(scores <= ceiling[s : s + chunk, None], scores, -np.inf)
        for r in range(scores.shape[0]):
            i = s + r
            row = scores[r]
            need = min(band + len(banned[i]), row.shape[0])
            top = np.argpartition(-row, need - 1)[:need] if need < row.shape[0] else np.arange(row.shape[0])
            top = top[np.lexsort((top, -row[top]))]  # by score desc, ties by index: stable across backends
            top = top[np.isfinite(row[top])]
            yield i, _select(top, row[top], ceiling[i], banned[i], band)


def _faiss_candidates(q, docs, ceiling, banned, band, show_progress):
    """faiss exact inner-product search, deepening only for queries that came up short."""
    import faiss

    index = faiss.IndexFlatIP(docs.shape[1])
    index.add(docs)
    N = docs.shape[0]
    pending = np.arange(q.shape[0])
    depth = min(N, 2 * band + max(len(b) for b in banned) + 16)
    while len(pending):
        scores, idx = index.search(q[pending], depth)  # (P, depth) each, best first
        short = []
        for r, i in enumerate(_progress(pending, len(pending), show_progress, f"mine negatives (depth {depth})")):
            # ties by index, like the numpy path
            order = np.lexsort((idx[r], -scores[r]))
            picked = _select(idx[r][order], scores[r][order], ceiling[i], banned[i], band)
            if len(picked) < band and depth < N:
                short.append(i)  # too few under the ceiling in the top `depth`: search deeper
            else:
                yield int(i), picked
        pending = np.asarray(short, dtype=np.int64)
        depth = min(N, depth * 4)
