"""Helpers of the retrieval tests: the oracle of the job index, built from the change events alone."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np

from jude.data.changes import latest_state
from jude.nearline.events import event_text, parse_event
from jude.nearline.inference import HashInference
from jude.retrieval.index import JobIndex, normalized


def job_oracle(events: Iterable[Mapping], model: HashInference) -> dict[str, np.ndarray]:
    """Live job id -> the vector its latest event embeds to (deleted jobs are absent)."""
    out = {}
    for (t, i), ev in latest_state(list(events)).items():
        if t == "job" and ev["op"] == "upsert":
            out[i] = model.vector(event_text(parse_event(dict(ev)), model.info.template_style))
    return out


def index_mismatches(index: JobIndex, oracle: dict[str, np.ndarray], queries: np.ndarray, k: int = 10) -> list[str]:
    """Where the index differs from the oracle: its live jobs, their vectors, and exact top-k against brute force."""
    bad = []
    live = set(index.live_ids())
    if live != set(oracle):
        bad.append(f"live jobs: {len(live - set(oracle))} extra, {len(set(oracle) - live)} missing")
        return bad
    for job_id, vec in oracle.items():
        got = index.exact.reconstruct(index._ids[job_id])
        if not np.allclose(got, normalized(vec)[0], atol=1e-5):
            bad.append(f"{job_id}: vector differs")
    ids = list(oracle)
    x = normalized(np.stack([oracle[i] for i in ids]))
    for q in queries:
        scores = x @ normalized(q)[0]
        want = sorted(scores, reverse=True)[:k]
        got = [h.score for h in index.search(q, k, exact=True)]
        if not np.allclose(got, want, atol=1e-5):
            bad.append("exact top-k scores differ from brute force")
    return bad
