"""Offline retrieval evaluation: embed every job, exact inner-product search, IR metrics.

The evaluation set is three plain dicts (the sentence-transformers convention),
holding entity *records* rather than texts so each model renders them with its
own templates:

- ``queries``: member_id -> member record (the held-out members of the test period)
- ``corpus``: job_id -> job record (every job)
- ``relevant``: member_id -> {job_id: grade} (judged relevant, or applied in the test period)

Optional, beside them (``jude.evaluation.truths``): ``truths``, other relevance
maps over the same queries and corpus (``truth``: the generator's latent fit,
``applies``: applied in the test period), ``absent``, why a truth is missing
(user data has no latent fit), and ``unseen``, a second evaluation set from a
world the model never saw. Dicts without them (older runs) still load.

Search is exact (FAISS ``IndexFlatIP`` over L2-normalised vectors = cosine);
metrics come from ranx, not from hand-written formulas.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

METRICS = {"ndcg_at_10": "ndcg@10", "recall_at_10": "recall@10", "recall_at_100": "recall@100", "mrr_at_10": "mrr@10"}


class EvaluationError(ValueError):
    pass


@dataclass
class EvalSet:
    queries: dict[str, dict[str, Any]]
    corpus: dict[str, dict[str, Any]]
    relevant: dict[str, dict[str, int]]
    query_entity: str = "profile"
    truths: dict[str, dict[str, dict[str, int]]] = field(default_factory=dict)  # name -> relevant, same queries
    absent: dict[str, str] = field(default_factory=dict)  # truth name -> why it is not there
    unseen: EvalSet | None = None  # the unseen world: its own queries, corpus and (truth) relevant set

    def to_dict(self) -> dict:
        out: dict[str, Any] = {
            "queries": self.queries,
            "corpus": self.corpus,
            "relevant": self.relevant,
            "query_entity": self.query_entity,
        }
        if self.truths:
            out["truths"] = self.truths
        if self.absent:
            out["absent"] = self.absent
        if self.unseen is not None:
            out["unseen"] = self.unseen.to_dict()
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> EvalSet:
        missing = [k for k in ("queries", "corpus", "relevant") if k not in d]
        if missing:
            raise EvaluationError(f"evaluation set is missing {missing}")
        return cls(
            queries=dict(d["queries"]),
            corpus=dict(d["corpus"]),
            relevant=_grades(d["relevant"]),
            query_entity=d.get("query_entity", "profile"),
            truths={name: _grades(rel) for name, rel in (d.get("truths") or {}).items()},
            absent=dict(d.get("absent") or {}),
            unseen=cls.from_dict(d["unseen"]) if d.get("unseen") else None,
        )

    def summary(self) -> dict[str, float]:
        n_rel = [len(r) for r in self.relevant.values()]
        return {
            "queries": len(self.queries),
            "corpus": len(self.corpus),
            "relevant_per_query": float(np.mean(n_rel)) if n_rel else 0.0,
        }


def _grades(relevant: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, int]]:
    return {q: {j: int(g) for j, g in r.items()} for q, r in relevant.items()}


def _jsonable(record: Mapping[str, Any]) -> dict[str, Any]:
    out = {}
    for k, v in record.items():
        if isinstance(v, pd.Timestamp):
            v = v.isoformat()
        elif isinstance(v, np.ndarray):
            v = v.tolist()
        elif isinstance(v, np.generic):
            v = v.item()
        out[k] = v
    return out


def build_eval_set(
    jobs: pd.DataFrame,
    members: pd.DataFrame,
    relevant: Mapping[str, Mapping[str, int]],
    query_entity: str = "profile",
    max_queries: int | None = None,
    seed: int = 0,
) -> EvalSet:
    """Assemble an :class:`EvalSet` from the tables and a relevance map (only queries with >= 1 relevant job)."""
    qids = sorted(q for q, r in relevant.items() if r)
    if max_queries is not None and len(qids) > max_queries:
        rng = np.random.default_rng(seed)
        qids = sorted(rng.choice(qids, size=max_queries, replace=False).tolist())
    if not qids:
        raise EvaluationError("no held-out member has a relevant job: nothing to evaluate")
    members_by_id = members.set_index("member_id", drop=False)
    unknown = [q for q in qids if q not in members_by_id.index]
    if unknown:
        raise EvaluationError(f"relevant set names unknown member(s) {unknown[:5]}")
    queries = {q: _jsonable(members_by_id.loc[q].to_dict()) for q in qids}
    corpus = {r["job_id"]: _jsonable(r) for r in jobs.to_dict("records")}
    rel = {q: {j: int(g) for j, g in relevant[q].items() if j in corpus} for q in qids}
    return EvalSet(queries=queries, corpus=corpus, relevant=rel, query_entity=query_entity)


def search(query_emb: np.ndarray, doc_emb: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact maximum inner-product search. Returns (scores, indices), both (Q, k)."""
    import faiss

    if query_emb.ndim != 2 or doc_emb.ndim != 2 or query_emb.shape[1] != doc_emb.shape[1]:
        raise EvaluationError(f"embedding shapes do not match: queries {query_emb.shape}, docs {doc_emb.shape}")
    index = faiss.IndexFlatIP(doc_emb.shape[1])
    index.add(np.ascontiguousarray(doc_emb, dtype=np.float32))
    k = min(k, doc_emb.shape[0])
    scores, idx = index.search(np.ascontiguousarray(query_emb, dtype=np.float32), k)
    return scores, idx


def ranking_metrics(
    run: Mapping[str, Mapping[str, float]], relevant: Mapping[str, Mapping[str, int]]
) -> dict[str, float]:
    """nDCG@10, recall@10, recall@100, MRR@10 with ranx (graded relevance for nDCG)."""
    from ranx import Qrels, Run, evaluate

    qrels = Qrels({q: {d: int(g) for d, g in r.items()} for q, r in relevant.items() if r})
    # ranx wants every qrels query present in the run.
    full_run = {q: dict(run.get(q, {})) or {"__none__": 0.0} for q in qrels.qrels}
    scores = evaluate(qrels, Run(full_run), list(METRICS.values()), make_comparable=True)
    return {name: float(scores[m]) for name, m in METRICS.items()}


def retrieve(
    embedder: Any, eval_set: EvalSet, k: int = 100, batch_size: int = 64, show_progress: bool = False
) -> dict[str, dict[str, float]]:
    """Embed the corpus and the queries with ``embedder``; top-k jobs per query as a ranx-style run."""
    job_ids = list(eval_set.corpus)
    q_ids = list(eval_set.queries)
    doc_emb = embedder.encode_entities(
        "job", [eval_set.corpus[j] for j in job_ids], batch_size=batch_size, show_progress=show_progress
    )
    q_emb = embedder.encode_entities(
        eval_set.query_entity, [eval_set.queries[q] for q in q_ids], batch_size=batch_size, show_progress=show_progress
    )
    scores, idx = search(q_emb, doc_emb, k)
    return {q: {job_ids[j]: float(s) for j, s in zip(idx[i], scores[i])} for i, q in enumerate(q_ids)}


def evaluate_embedder(
    embedder: Any, eval_set: EvalSet, k: int = 100, batch_size: int = 64, show_progress: bool = False
) -> dict[str, float]:
    """The four retrieval metrics of ``embedder`` on ``eval_set`` (unprefixed names)."""
    run = retrieve(embedder, eval_set, k=k, batch_size=batch_size, show_progress=show_progress)
    return ranking_metrics(run, eval_set.relevant)


def prefixed(variant: str, metrics: Mapping[str, float]) -> dict[str, float]:
    """``{"ndcg_at_10": x}`` -> ``{"<variant>/ndcg_at_10": x}`` (the architecture's metric names)."""
    return {f"{variant}/{k}": float(v) for k, v in metrics.items()}


def top_k_candidates(
    embedder: Any,
    jobs: pd.DataFrame,
    members: pd.DataFrame,
    k: int,
    member_view: str = "profile",
    batch_size: int = 64,
    show_progress: bool = False,
) -> dict[str, list[str]]:
    """member_id -> the ``k`` jobs the model ranks highest (e.g. the base model, to pick pairs to judge)."""
    job_emb = embedder.encode_entities("job", jobs, batch_size=batch_size, show_progress=show_progress)
    mem_emb = embedder.encode_entities(member_view, members, batch_size=batch_size, show_progress=show_progress)
    _, idx = search(mem_emb, job_emb, k)
    job_ids = jobs["job_id"].tolist()
    return {m: [job_ids[j] for j in row] for m, row in zip(members["member_id"], idx)}
