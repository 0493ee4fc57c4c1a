"""Pooled relevance judgements for the held-out queries (TREC-style pooling).

Why: the labelled relevant set of a test member is what the label budget happened
to judge, and half of that budget is drawn from the *base* model's top-k
(``labels.retrieved_fraction``). A fine-tuned model that ranks a relevant job the
budget never judged is scored as if the job were irrelevant, so the labelled set
favours the model it was sampled from (the pooling bias of Buckley & Voorhees,
"Retrieval evaluation with incomplete information", SIGIR 2004).

The fix IR evaluation has used since TREC: judge the union ("pool") of the top
``depth`` results of every system being compared, with the same judge, and score
every system on those judgements. With ``depth >= 10`` nDCG@10, recall@10 and
MRR@10 of every pooled system are computed on fully judged top-10s; recall@100
counts the relevant jobs found by any pooled system (its denominator grows with
the pool, as in TREC).

Pairs already known relevant are not sent again; an LLM judge's on-disk cache
makes a repeated evaluation free. The judge never sees a test member's labels
during training: pooling only touches the evaluation.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from jude.evaluation.retrieval import EvalSet, EvaluationError

Run = Mapping[str, Mapping[str, float]]  # query -> {doc: score}


@dataclass
class PoolResult:
    relevant: dict[str, dict[str, int]]  # the labelled relevant set plus what the pool judged relevant
    stats: dict[str, Any] = field(default_factory=dict)
    # the pooled pairs the judge failed on, query -> jobs: neither relevant nor judged irrelevant
    # (jude.registry.promotion leaves them out of every ranking it compares: condensed lists)
    unjudged: dict[str, set[str]] = field(default_factory=dict)

    @property
    def counts(self) -> dict[str, float]:
        """The numeric stats (depth, judged, failed, added, relevant per query), for metrics and metadata."""
        return {k: v for k, v in self.stats.items() if k != "pooled_runs"}

    def eval_set(self, base: EvalSet) -> EvalSet:
        """``base`` with the pooled relevant set (queries and corpus unchanged)."""
        return EvalSet(queries=base.queries, corpus=base.corpus, relevant=self.relevant, query_entity=base.query_entity)


def pool_pairs(
    runs: Mapping[str, Run], depth: int, skip: Mapping[str, Mapping[str, int]] | None = None
) -> list[tuple[str, str]]:
    """The (query, doc) pairs in the top ``depth`` of any run, minus those in ``skip``, in a stable order."""
    if depth <= 0:
        raise ValueError(f"pool depth must be > 0, got {depth}")
    if not runs:
        raise EvaluationError("no runs to pool: pass at least one system's ranking")
    skip = skip or {}
    seen: set[tuple[str, str]] = set()
    out: list[tuple[str, str]] = []
    for name in sorted(runs):
        for q, docs in runs[name].items():
            top = sorted(docs.items(), key=lambda kv: (-kv[1], kv[0]))[:depth]
            for d, _ in top:
                if (q, d) not in seen and d not in skip.get(q, {}):
                    seen.add((q, d))
                    out.append((q, d))
    return out


def pooled_relevance(
    eval_set: EvalSet, runs: Mapping[str, Run], judge: Any, depth: int, relevant_grade: int
) -> PoolResult:
    """Judge the pool of ``runs`` with ``judge`` and add its relevant pairs to ``eval_set.relevant``.

    ``judge`` is a :class:`jude.labels.judges.Judge` (``grade_pairs`` on
    (member record, job record) tuples). A pair the judge fails on (an LLM's
    malformed answer) stays unjudged, i.e. counts as not relevant here, is counted
    in the stats and listed in ``unjudged`` (so a comparison can leave it out of
    every ranking instead, as the promotion gate does). Raises
    :class:`EvaluationError` when a run names a query or a job the evaluation
    set does not have, or when the judge fails on every pair.
    """
    if not 1 <= relevant_grade <= 3:
        raise ValueError(f"relevant_grade must be 1-3, got {relevant_grade}")
    for name, run in runs.items():
        unknown_q = [q for q in run if q not in eval_set.queries]
        if unknown_q:
            raise EvaluationError(f"run {name!r} ranks unknown query(ies) {unknown_q[:5]}")
        unknown_d = sorted({d for docs in run.values() for d in docs if d not in eval_set.corpus})
        if unknown_d:
            raise EvaluationError(f"run {name!r} ranks unknown job(s) {unknown_d[:5]}")
    pairs = pool_pairs(runs, depth, skip=eval_set.relevant)
    judgements = judge.grade_pairs([(eval_set.queries[q], eval_set.corpus[d]) for q, d in pairs]) if pairs else []
    if len(judgements) != len(pairs):
        raise EvaluationError(f"{type(judge).__name__} returned {len(judgements)} judgements for {len(pairs)} pairs")
    failed = [i for i, jd in enumerate(judgements) if not jd.ok]
    if pairs and len(failed) == len(pairs):
        raise EvaluationError(
            f"the judge failed on all {len(pairs)} pooled pairs; first error: {judgements[failed[0]].error}"
        )
    relevant = {q: dict(r) for q, r in eval_set.relevant.items()}
    added = 0
    for (q, d), jd in zip(pairs, judgements):
        if jd.ok and int(jd.grade) >= relevant_grade:
            relevant.setdefault(q, {})[d] = int(jd.grade)
            added += 1
    before = [len(r) for r in eval_set.relevant.values()]
    after = [len(relevant.get(q, {})) for q in eval_set.relevant]
    stats = {
        "pool_depth": depth,
        "pooled_runs": sorted(runs),
        "judged_pairs": len(pairs),
        "failed": len(failed),
        "relevant_added": added,
        "relevant_per_query_labelled": float(np.mean(before)) if before else 0.0,
        "relevant_per_query_pooled": float(np.mean(after)) if after else 0.0,
    }
    unjudged: dict[str, set[str]] = {}
    for i in failed:
        q, d = pairs[i]
        unjudged.setdefault(q, set()).add(d)
    return PoolResult(relevant=relevant, stats=stats, unjudged=unjudged)
