"""The job index of one embedding version: an ANN index and an exact one beside it, both kept current.

**Why an inverted file (IVF), not HNSW.** Jobs are created, edited and deleted all day,
and a delete must never be returned once it is applied. FAISS's HNSW cannot remove a
vector: it would need tombstones filtered at query time (a graph that fills with dead
nodes, a ``k`` that must be over-fetched, recall that decays until a rebuild). An IVF
index (``IndexIVFFlat``, or ``IndexIVFScalarQuantizer`` with 8-bit codes) removes a
vector for real (``remove_ids``, O(1) per id with the hash-table direct map), so an
update is a remove plus an add, and a search can never meet a deleted job. Its recall
loss comes only from probing ``nprobe`` of ``nlist`` lists (no graph, no quantisation with
``ivf_flat``), which the bench measures against the exact index. What IVF does not do by
itself is follow a drifting distribution: the lists are trained once, so the index
retrains (:meth:`JobIndex.retrain`, off the write path) when the live count has moved a
factor ``retrain_factor`` from the count it was trained on.

**The exact index** (``IndexIDMap2`` over ``IndexFlatIP``, vectors L2-normalised, so the
score is the cosine) holds the same vectors: it is the oracle that recall is measured
against, the search used before the ANN index is trained (fewer than ``min_train``
jobs) and when a filter leaves the probed lists short of ``k``, and where a retrain
reads its vectors from.

**Last write wins, as in the online store.** Each job keeps the order key of the last
write applied to it, ``(event_time_ms, op, content_hash)`` with a delete above an upsert,
and a write below it is ignored (:mod:`jude.stores.online`'s rule). Feeds are delivered
at least once and out of order across workers; whatever order they arrive in, the
index ends in the state of the maximum write, the online store's. A delete is
remembered as a tombstone order key, so a late, older upsert does not resurrect the job.

**The watermark** is the latest event time the index has applied: a job event at or
before it is in the results (or refused as older than what is there).

**Filters** (remote, location, excluded ids) are applied inside the search through an
``IDSelectorBitmap`` over the internal ids, not by over-fetching and dropping, so ``k``
results come back whenever ``k`` jobs pass the filter.

Thread safety: searches share a read lock, writes and the swap after a retrain take
the write lock (FAISS indexes are not safe to search while they are modified).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import faiss
import numpy as np

INDEX_KINDS = ("ivf_flat", "ivf_sq8", "exact")
_SNAPSHOT_FORMAT = 1


@dataclass(frozen=True)
class IndexUpdate:
    """One job write the index applies (what the nearline processor wrote to the online store).

    ``vector`` is required for an upsert; ``location`` / ``remote`` are the job's filter
    attributes (None: unknown, then only unfiltered searches return the job).
    """

    entity_id: str
    op: Literal["upsert", "delete"]
    event_time_ms: int
    content_hash: str = ""
    vector: np.ndarray | None = None
    location: str | None = None
    remote: bool | None = None

    def order(self) -> tuple[int, int, str]:
        """The online store's write order: event time, then a delete above an upsert, then the content hash."""
        return (int(self.event_time_ms), 1 if self.op == "delete" else 0, self.content_hash or "")


@dataclass(frozen=True)
class Hit:
    job_id: str
    score: float


class _RWLock:
    """Many readers or one writer (writers are not starved: a waiting writer blocks new readers)."""

    def __init__(self):
        self._cond = threading.Condition()
        self._readers = 0
        self._writer = False
        self._waiting = 0

    def read(self):
        return _Held(self, False)

    def write(self):
        return _Held(self, True)

    def _acquire(self, write: bool) -> None:
        with self._cond:
            if write:
                self._waiting += 1
                self._cond.wait_for(lambda: not self._writer and self._readers == 0)
                self._waiting -= 1
                self._writer = True
            else:
                self._cond.wait_for(lambda: not self._writer and self._waiting == 0)
                self._readers += 1

    def _release(self, write: bool) -> None:
        with self._cond:
            if write:
                self._writer = False
            else:
                self._readers -= 1
            self._cond.notify_all()


class _Held:
    def __init__(self, lock: _RWLock, write: bool):
        self.lock, self.write = lock, write

    def __enter__(self):
        self.lock._acquire(self.write)

    def __exit__(self, *exc):
        self.lock._release(self.write)


def normalized(vectors: np.ndarray) -> np.ndarray:
    """Rows as contiguous float32, L2-normalised (a zero row stays zero)."""
    x = np.ascontiguousarray(np.asarray(vectors, dtype=np.float32))
    if x.ndim == 1:
        x = x[None, :]
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return np.ascontiguousarray(x / np.maximum(norms, 1e-12), dtype=np.float32)


def auto_nlist(n: int) -> int:
    """4 x sqrt(n) lists, at most n / 39 (FAISS warns below 39 training points per list), at least 1."""
    return int(max(1, min(4 * np.sqrt(max(n, 1)), n // 39)))


class JobIndex:
    """The jobs of one embedding version: ANN + exact, updates and deletes, filters, watermark (module docstring)."""

    def __init__(
        self,
        version: str,
        dim: int,
        kind: str = "ivf_flat",
        *,
        nlist: int | None = None,
        nprobe: int = 32,
        min_train: int = 2048,
        retrain_factor: float = 2.0,
    ):
        if kind not in INDEX_KINDS:
            raise ValueError(f"retrieval.index must be one of {list(INDEX_KINDS)}, got {kind!r}")
        if not isinstance(dim, (int, np.integer)) or dim <= 0:
            raise ValueError(f"dim must be a positive int, got {dim!r}")
        if nprobe < 1:
            raise ValueError(f"retrieval.nprobe must be >= 1, got {nprobe}")
        self.version = version
        self.dim = int(dim)
        self.kind = kind
        self.nlist = nlist
        self.nprobe = nprobe
        self.min_train = max(1, int(min_train))
        self.retrain_factor = float(retrain_factor)
        self.exact = faiss.IndexIDMap2(faiss.IndexFlatIP(self.dim))
        self.ann: faiss.Index | None = None  # None until trained (kind 'exact': never)
        self.trained_on = 0
        self.watermark_ms: int | None = None
        self._lock = _RWLock()
        self._ids: dict[str, int] = {}
        self._names: list[str] = []
        self._order: list[tuple[int, int, str] | None] = []
        self._alive = np.zeros(0, dtype=bool)
        self._remote = np.zeros(0, dtype=np.int8)  # -1 unknown, 0 on site, 1 remote
        self._loc = np.zeros(0, dtype=np.int32)  # -1 unknown, else a code of _loc_codes
        self._loc_codes: dict[str, int] = {}
        self._touched: set[int] | None = None  # ids changed while a retrain builds (replayed at the swap)
        self._retrain_lock = threading.Lock()

    # ---- state ---------------------------------------------------------------------------
    def __len__(self) -> int:
        """Live (not deleted) jobs."""
        return int(self.exact.ntotal)

    @property
    def uses_ann(self) -> bool:
        return self.ann is not None

    def contains(self, job_id: str) -> bool:
        i = self._ids.get(job_id)
        return i is not None and bool(self._alive[i])

    def live_ids(self) -> list[str]:
        return [self._names[i] for i in np.flatnonzero(self._alive)]

    def order_of(self, job_id: str) -> tuple[int, int, str] | None:
        i = self._ids.get(job_id)
        return None if i is None else self._order[i]

    def stats(self) -> dict:
        return {
            "embedding_version": self.version,
            "kind": self.kind,
            "jobs": len(self),
            "known_ids": len(self._names),
            "dimension": self.dim,
            "ann_trained": self.uses_ann,
            "trained_on": self.trained_on,
            "nlist": int(self.ann.nlist) if self.ann is not None else None,
            "nprobe": self.nprobe,
            "watermark_ms": self.watermark_ms,
            "bytes_per_vector": self.bytes_per_vector(),
        }

    def bytes_per_vector(self) -> float:
        """The ANN index's memory per live vector: codes, ids, the direct map and the centroids, amortised.

        The exact index beside it adds ``4 x dim + 8`` bytes per vector (it is the oracle;
        a deployment that trusts the measured recall can drop it).
        """
        n = max(len(self), 1)
        if self.ann is None:
            return float(4 * self.dim + 8)
        code = self.ann.code_size
        return float(code + 8 + 16 + self.ann.nlist * self.dim * 4 / n)  # + the hash-table direct map entry

    # ---- writes --------------------------------------------------------------------------
    def apply(self, updates: Iterable[IndexUpdate]) -> int:
        """Apply writes (last write wins per job, see the module docstring); returns how many changed the index."""
        updates = list(updates)
        if not updates:
            return 0
        for u in updates:
            if u.op == "upsert":
                if u.vector is None:
                    raise ValueError(f"index update for job {u.entity_id!r}: an upsert needs a vector")
                if np.asarray(u.vector).shape != (self.dim,):
                    raise ValueError(
                        f"index update for job {u.entity_id!r}: vector shape {np.asarray(u.vector).shape}, "
                        f"the {self.version!r} index holds dimension {self.dim}"
                    )
            elif u.op != "delete":
                raise ValueError(f"index update for job {u.entity_id!r}: op must be upsert or delete, got {u.op!r}")
        # the maximum write per job in this batch: applying only it gives the same end state
        best: dict[str, IndexUpdate] = {}
        for u in updates:
            cur = best.get(u.entity_id)
            if cur is None or u.order() >= cur.order():
                best[u.entity_id] = u
        with self._lock.write():
            return self._apply_locked(list(best.values()))

    def _apply_locked(self, updates: list[IndexUpdate]) -> int:
        remove: list[int] = []
        add_ids: list[int] = []
        add_vecs: list[np.ndarray] = []
        changed = 0
        for u in updates:
            i = self._ids.get(u.entity_id)
            if i is None:
                i = self._new_id(u.entity_id)
            stored = self._order[i]
            if stored is not None and u.order() < stored:
                continue  # older than what is applied: the online store refused it too
            same_content = stored is not None and u.op == "upsert" and stored[1] == 0 and stored[2] == u.order()[2]
            self._order[i] = u.order()
            self.watermark_ms = max(self.watermark_ms or u.event_time_ms, u.event_time_ms)
            if u.op == "upsert":
                self._set_attrs(i, u.location, u.remote)
            if same_content and self._alive[i]:
                continue  # a touch or a redelivery: the vector is the stored one
            changed += 1
            if self._alive[i]:
                remove.append(i)
            if u.op == "delete":
                self._alive[i] = False
            else:
                self._alive[i] = True
                add_ids.append(i)
                add_vecs.append(np.asarray(u.vector, dtype=np.float32))
        if remove:
            sel = np.asarray(remove, dtype=np.int64)
            self.exact.remove_ids(sel)
            if self.ann is not None:
                self.ann.remove_ids(sel)
        if add_ids:
            ids = np.asarray(add_ids, dtype=np.int64)
            vecs = normalized(np.stack(add_vecs))
            self.exact.add_with_ids(vecs, ids)
            if self.ann is not None:
                self.ann.add_with_ids(vecs, ids)
        if self._touched is not None:
            self._touched.update(remove)
            self._touched.update(add_ids)
        return changed

    def _new_id(self, job_id: str) -> int:
        i = len(self._names)
        self._ids[job_id] = i
        self._names.append(job_id)
        self._order.append(None)
        if i >= self._alive.shape[0]:
            grow = max(1024, self._alive.shape[0])
            self._alive = np.concatenate([self._alive, np.zeros(grow, dtype=bool)])
            self._remote = np.concatenate([self._remote, np.full(grow, -1, dtype=np.int8)])
            self._loc = np.concatenate([self._loc, np.full(grow, -1, dtype=np.int32)])
        return i

    def _set_attrs(self, i: int, location: str | None, remote: bool | None) -> None:
        if location is not None:
            key = location.strip().lower()
            self._loc[i] = self._loc_codes.setdefault(key, len(self._loc_codes))
        if remote is not None:
            self._remote[i] = 1 if remote else 0

    # ---- training ------------------------------------------------------------------------
    def needs_retrain(self) -> bool:
        """Untrained with enough jobs, or the live count moved ``retrain_factor`` from the trained count."""
        if self.kind == "exact":
            return False
        n = len(self)
        if self.ann is None:
            return n >= self.min_train
        return n > self.trained_on * self.retrain_factor or n * self.retrain_factor < self.trained_on

    def retrain(self) -> bool:
        """Train a new ANN index on the current vectors and swap it in; returns whether it did.

        Searches and writes go on meanwhile (the vectors are copied under the read lock,
        the training runs unlocked); writes made during training are replayed onto the
        new index under the write lock at the swap.
        """
        if self.kind == "exact":
            return False
        with self._retrain_lock:
            with self._lock.write():
                self._touched = set()
                ids, vecs = self._exact_contents()
            try:
                if len(ids) < max(self.min_train, 1):
                    return False
                new = self._train(vecs)
                new.add_with_ids(vecs, ids)
            except BaseException:
                with self._lock.write():
                    self._touched = None
                raise
            with self._lock.write():
                touched = np.asarray(sorted(self._touched), dtype=np.int64)
                self._touched = None
                if touched.size:
                    new.remove_ids(touched)
                    alive = touched[self._alive[touched]]
                    if alive.size:
                        new.add_with_ids(np.stack([self.exact.reconstruct(int(i)) for i in alive]), alive)
                self.ann = new
                self.trained_on = len(ids)
            return True

    def _exact_contents(self) -> tuple[np.ndarray, np.ndarray]:
        n = self.exact.ntotal
        ids = faiss.vector_to_array(self.exact.id_map).astype(np.int64)
        vecs = faiss.rev_swig_ptr(faiss.downcast_index(self.exact.index).get_xb(), n * self.dim)
        return ids.copy(), np.array(vecs, dtype=np.float32).reshape(n, self.dim)

    def _train(self, vecs: np.ndarray) -> faiss.Index:
        nlist = self.nlist or auto_nlist(len(vecs))
        nlist = max(1, min(nlist, len(vecs)))
        quantizer = faiss.IndexFlatIP(self.dim)
        if self.kind == "ivf_sq8":
            ann = faiss.IndexIVFScalarQuantizer(
                quantizer, self.dim, nlist, faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT
            )
        else:
            ann = faiss.IndexIVFFlat(quantizer, self.dim, nlist, faiss.METRIC_INNER_PRODUCT)
        ann.own_fields = True
        quantizer.this.disown()  # the IVF owns its quantizer
        ann.cp.seed = 1234
        sample = vecs
        if len(vecs) > nlist * 256:  # FAISS samples 256 points per list anyway; do it here, seeded
            sample = vecs[np.random.default_rng(0).choice(len(vecs), nlist * 256, replace=False)]
        ann.train(sample)
        ann.set_direct_map_type(faiss.DirectMap.Hashtable)  # O(1) remove_ids by id
        ann.nprobe = self.nprobe
        return ann

    # ---- search --------------------------------------------------------------------------
    def search(
        self,
        query: np.ndarray,
        k: int,
        *,
        remote: bool | None = None,
        location: str | None = None,
        exclude: Sequence[str] = (),
        exact: bool = False,
    ) -> list[Hit]:
        """The top ``k`` live jobs by cosine to ``query`` that pass the filters (fewer if fewer pass).

        ``exact=True`` searches the exact index (the oracle); otherwise the ANN index once
        trained. ``location`` compares case-insensitively; an unknown location matches nothing.
        """
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        q = normalized(query)
        if q.shape != (1, self.dim):
            raise ValueError(f"query has dimension {q.shape[1]}, the {self.version!r} index holds {self.dim}")
        with self._lock.read():
            n_known = len(self._names)
            mask = None
            if remote is not None or location is not None or exclude:
                mask = self._alive[:n_known].copy()
                if remote is not None:
                    mask &= self._remote[:n_known] == (1 if remote else 0)
                if location is not None:
                    code = self._loc_codes.get(location.strip().lower())
                    mask &= self._loc[:n_known] == (-2 if code is None else code)
                for job_id in exclude:
                    i = self._ids.get(job_id)
                    if i is not None:
                        mask[i] = False
                passing = int(mask.sum())
                if passing == 0:
                    return []
                k_eff = min(k, passing)
            else:
                k_eff = min(k, len(self))
                if k_eff == 0:
                    return []
            use_ann = self.ann is not None and not exact
            scores, ids = self._search(self.ann if use_ann else self.exact, q, k_eff, mask, use_ann)
            if use_ann and int((ids >= 0).sum()) < k_eff:  # the probed lists held fewer than k passing jobs
                scores, ids = self._search(self.exact, q, k_eff, mask, False)
            out = []
            for s, i in zip(scores[0], ids[0]):
                if i >= 0 and self._alive[i]:  # removed from FAISS already; checked again, cheaply
                    out.append(Hit(self._names[i], float(s)))
            return out

    def _search(self, index, q: np.ndarray, k: int, mask: np.ndarray | None, ivf: bool):
        if mask is None:
            if ivf:
                return index.search(q, k, params=faiss.SearchParametersIVF(nprobe=self.nprobe))
            return index.search(q, k)
        bits = np.packbits(mask, bitorder="little")
        sel = faiss.IDSelectorBitmap(len(mask), faiss.swig_ptr(bits))
        params = faiss.SearchParametersIVF(sel=sel, nprobe=self.nprobe) if ivf else faiss.SearchParameters(sel=sel)
        return index.search(q, k, params=params)

    def search_many(self, queries: np.ndarray, k: int, exact: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """Unfiltered batch search -> (scores (Q, k), internal ids (Q, k); -1 where fewer); for benchmarks."""
        q = normalized(queries)
        with self._lock.read():
            k = min(k, max(len(self), 1))
            if self.ann is not None and not exact:
                return self.ann.search(q, k, params=faiss.SearchParametersIVF(nprobe=self.nprobe))
            return self.exact.search(q, k)

    def name_of(self, internal_id: int) -> str:
        return self._names[int(internal_id)]

    # ---- snapshots -----------------------------------------------------------------------
    def save(self, directory: str | Path, extra: dict | None = None) -> Path:
        """Write the index (both FAISS indexes and the per-job state) to ``directory`` atomically."""
        from jude.fsutils import atomic_directory

        directory = Path(directory)
        with self._lock.read(), atomic_directory(directory) as tmp:
            tmp = Path(tmp)
            faiss.write_index(self.exact, str(tmp / "exact.faiss"))
            if self.ann is not None:
                faiss.write_index(self.ann, str(tmp / "ann.faiss"))
            n = len(self._names)
            order = self._order
            np.savez(
                tmp / "jobs.npz",
                alive=self._alive[:n],
                remote=self._remote[:n],
                loc=self._loc[:n],
                ts=np.asarray([o[0] if o else -1 for o in order], dtype=np.int64),
                rank=np.asarray([o[1] if o else -1 for o in order], dtype=np.int8),
            )
            state = {
                "format": _SNAPSHOT_FORMAT,
                "embedding_version": self.version,
                "dim": self.dim,
                "kind": self.kind,
                "nlist": self.nlist,
                "nprobe": self.nprobe,
                "min_train": self.min_train,
                "retrain_factor": self.retrain_factor,
                "trained_on": self.trained_on,
                "watermark_ms": self.watermark_ms,
                "names": self._names,
                "hashes": [o[2] if o else None for o in order],
                "locations": sorted(self._loc_codes, key=self._loc_codes.get),
                **(extra or {}),
            }
            (tmp / "state.json").write_text(json.dumps(state))
        return directory

    @classmethod
    def load(cls, directory: str | Path) -> tuple[JobIndex, dict]:
        """An index saved by :meth:`save` and the state it was saved with (``extra`` included)."""
        directory = Path(directory)
        state = json.loads((directory / "state.json").read_text())
        if state.get("format") != _SNAPSHOT_FORMAT:
            raise ValueError(f"{directory / 'state.json'}: format {state.get('format')!r}, expected {_SNAPSHOT_FORMAT}")
        index = cls(
            state["embedding_version"],
            state["dim"],
            state["kind"],
            nlist=state["nlist"],
            nprobe=state["nprobe"],
            min_train=state["min_train"],
            retrain_factor=state["retrain_factor"],
        )
        index.exact = faiss.read_index(str(directory / "exact.faiss"))
        if (directory / "ann.faiss").exists():
            index.ann = faiss.read_index(str(directory / "ann.faiss"))
            index.ann.nprobe = index.nprobe
        index.trained_on = state["trained_on"]
        index.watermark_ms = state["watermark_ms"]
        jobs = np.load(directory / "jobs.npz")
        index._names = list(state["names"])
        index._ids = {name: i for i, name in enumerate(index._names)}
        index._order = [
            None if t < 0 else (int(t), int(r), h) for t, r, h in zip(jobs["ts"], jobs["rank"], state["hashes"])
        ]
        index._alive, index._remote, index._loc = jobs["alive"].copy(), jobs["remote"].copy(), jobs["loc"].copy()
        index._loc_codes = {name: i for i, name in enumerate(state["locations"])}
        if int(index._alive.sum()) != index.exact.ntotal:
            raise ValueError(
                f"{directory}: {int(index._alive.sum())} live jobs but {index.exact.ntotal} vectors; rebuild it"
            )
        return index, state
