"""Which (member, job) pairs the relevance judge sees, and judging them.

The judge is the expensive part (an LLM call per pair), so ``cfg.budget`` pairs
are chosen on purpose, from three sources:

- ``retrieved``: the base model's top-``cfg.retrieve_k`` jobs per member (supplied
  by the caller). These are the pairs the embedder already finds plausible, so
  they hold most positives and the hard negatives that teach the most.
- ``interacted``: pairs the member saw or acted on; they tie relevance to the
  engagement labels and let the report measure how far the two agree.
- ``random``: uniform pairs; mostly easy negatives, and an unbiased sample of the
  grade distribution.

Each source gets its ``cfg.*_fraction`` of the budget. A source that runs out
(no candidates supplied, few interactions) hands its shortfall to the other
sources with a positive fraction, and the returned table says so in
``df.attrs["notes"]``. No pair is chosen twice; the first source to claim a pair
(retrieved, then interacted, then random) names its origin.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from jude.config import LabelConfig
from jude.data.schema import LABELS
from jude.labels.judges import Judge, JudgeError

log = logging.getLogger(__name__)

ORIGINS = ("retrieved", "interacted", "random")
_PERMUTE_MAX = 2_000_000  # below this many possible pairs, random pairs come from a full permutation


def _split_budget(budget: int, fractions: Mapping[str, float]) -> dict[str, int]:
    """Largest-remainder rounding of ``budget`` by ``fractions`` (normalised to sum 1);
    the integer shares sum exactly to ``budget``."""
    total = sum(fractions.values())
    raw = {k: budget * f / total for k, f in fractions.items()}
    out = {k: int(np.floor(v)) for k, v in raw.items()}
    rest = budget - sum(out.values())
    for k in sorted(raw, key=lambda k: (-(raw[k] - out[k]), ORIGINS.index(k)))[:rest]:
        out[k] += 1
    return out


def _ids(df: pd.DataFrame, col: str, table: str) -> list[str]:
    if col not in df.columns:
        raise ValueError(f"table '{table}': missing column '{col}'")
    ids = df[col].astype(str).tolist()
    if len(ids) == 0:
        raise ValueError(f"table '{table}' is empty (0 rows)")
    return ids


def _retrieved_pool(
    candidates: Mapping[str, Sequence[str]] | None,
    k: int,
    member_set: set[str],
    job_set: set[str],
    rng: np.random.Generator,
) -> list[tuple[str, str]]:
    """Rank-major order: every member's rank-1 candidate (members shuffled), then rank 2, ...

    So a partial budget covers many members at their best ranks instead of a few
    members down to rank k.
    """
    if not candidates:
        return []
    members = sorted(candidates)
    for m in members:
        if m not in member_set:
            raise ValueError(f"candidates: unknown member_id {m!r} (not in the members table)")
    order = [members[i] for i in rng.permutation(len(members))]
    pool: list[tuple[str, str]] = []
    for rank in range(k):
        for m in order:
            ranked = candidates[m]
            if rank < len(ranked):
                job = str(ranked[rank])
                if job not in job_set:
                    raise ValueError(f"candidates[{m!r}][{rank}]: unknown job_id {job!r} (not in the jobs table)")
                pool.append((m, job))
    return pool


def _interacted_pool(
    interactions: pd.DataFrame | None, member_set: set[str], job_set: set[str], rng: np.random.Generator
) -> list[tuple[str, str]]:
    """Distinct (member, job) pairs with any interaction, in a seeded random order."""
    if interactions is None or len(interactions) == 0:
        return []
    for col in ("member_id", "job_id"):
        if col not in interactions.columns:
            raise ValueError(f"table 'interactions': missing column '{col}'")
    pairs = interactions[["member_id", "job_id"]].astype(str)
    for col, known, what in (("member_id", member_set, "member"), ("job_id", job_set, "job")):
        bad = ~pairs[col].isin(known).to_numpy()
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise ValueError(
                f"table 'interactions': column '{col}', row {row}: unknown {what} (value: {pairs[col].iloc[row]!r})"
            )
    uniq = pairs.drop_duplicates().sort_values(["member_id", "job_id"]).to_numpy()
    return [(str(m), str(j)) for m, j in uniq[rng.permutation(len(uniq))]]


def _random_pairs(member_ids: list[str], job_ids: list[str], rng: np.random.Generator) -> Iterator[tuple[str, str]]:
    """Uniform random pairs without repetition (a permutation when small, rejection when large)."""
    n_m, n_j = len(member_ids), len(job_ids)
    total = n_m * n_j
    if total <= _PERMUTE_MAX:
        for flat in rng.permutation(total):
            yield member_ids[flat // n_j], job_ids[flat % n_j]
        return
    seen: set[int] = set()
    while len(seen) < total:  # in practice the budget is tiny next to total
        for flat in rng.integers(0, total, size=4096):
            if int(flat) not in seen:
                seen.add(int(flat))
                yield member_ids[flat // n_j], job_ids[flat % n_j]


def sample_pairs(
    jobs: pd.DataFrame,
    members: pd.DataFrame,
    interactions: pd.DataFrame | None,
    cfg: LabelConfig,
    candidates: Mapping[str, Sequence[str]] | None = None,
    rng_seed: int | None = None,
) -> pd.DataFrame:
    """Choose ``cfg.budget`` distinct (member, job) pairs for the relevance judge.

    ``candidates`` maps member_id -> job_ids ranked by the base model (best first);
    the first ``cfg.retrieve_k`` of each count. ``rng_seed`` defaults to ``cfg.seed``;
    the same inputs and seed give the same table.

    Returns a DataFrame with columns member_id, job_id, origin (retrieved,
    interacted, random). ``df.attrs`` holds ``requested`` (the planned split),
    ``counts`` (the actual split) and ``notes`` (why they differ, if they do).
    Raises ValueError on unknown ids, or when no source can supply a single pair.
    """
    member_ids = _ids(members, "member_id", "members")
    job_ids = _ids(jobs, "job_id", "jobs")
    member_set, job_set = set(member_ids), set(job_ids)
    rng = np.random.default_rng(cfg.seed if rng_seed is None else rng_seed)

    fractions = {
        "retrieved": cfg.retrieved_fraction,
        "interacted": cfg.interacted_fraction,
        "random": cfg.random_fraction,
    }
    budget = cfg.budget
    notes: list[str] = []
    possible = len(member_set) * len(job_set)
    if budget > possible:
        notes.append(f"budget {budget} exceeds the {possible} possible pairs; capped at {possible}")
        budget = possible
    requested = _split_budget(budget, fractions)
    quota = dict(requested)

    pools: dict[str, Iterator[tuple[str, str]]] = {
        "retrieved": iter(_retrieved_pool(candidates, cfg.retrieve_k, member_set, job_set, rng)),
        "interacted": iter(_interacted_pool(interactions, member_set, job_set, rng)),
        "random": _random_pairs(member_ids, job_ids, rng),
    }
    if candidates is None and fractions["retrieved"] > 0:
        notes.append("no retrieved candidates were supplied")
    exhausted: set[str] = set()
    chosen: dict[tuple[str, str], str] = {}
    taken = dict.fromkeys(ORIGINS, 0)

    # Fill each source up to its quota; move what a dry source could not fill to the
    # others (in proportion to their fractions) and go round again.
    while True:
        for origin in ORIGINS:
            while taken[origin] < quota[origin] and origin not in exhausted:
                pair = next(pools[origin], None)
                if pair is None:
                    exhausted.add(origin)
                elif pair not in chosen:
                    chosen[pair] = origin
                    taken[origin] += 1
        short = {o: quota[o] - taken[o] for o in ORIGINS if quota[o] > taken[o]}
        missing = sum(short.values())
        receivers = {o: fractions[o] for o in ORIGINS if o not in exhausted and fractions[o] > 0}
        if missing == 0 or not receivers:
            break
        for o, n in short.items():
            notes.append(
                f"source '{o}' had only {taken[o]} pairs for its share of {quota[o]}; {n} moved to {sorted(receivers)}"
            )
            quota[o] = taken[o]
        for o, n in _split_budget(missing, receivers).items():
            quota[o] += n
    if len(chosen) < budget:
        notes.append(f"only {len(chosen)} of {budget} pairs could be sampled")
    if not chosen:
        raise ValueError(
            "sample_pairs: no pairs could be sampled (no candidates, no interactions, "
            f"and random_fraction={cfg.random_fraction}); supply candidates or change the fractions"
        )

    out = pd.DataFrame([(m, j, o) for (m, j), o in chosen.items()], columns=["member_id", "job_id", "origin"])
    out.attrs["requested"] = requested
    out.attrs["counts"] = {o: int(taken[o]) for o in ORIGINS}
    out.attrs["notes"] = notes
    for note in notes:
        log.warning("sample_pairs: %s", note)
    return out


def _records(df: pd.DataFrame, key: str, table: str) -> dict[str, dict[str, Any]]:
    if key not in df.columns:
        raise ValueError(f"table '{table}': missing column '{key}'")
    return {str(r[key]): r for r in df.to_dict("records")}


def judge_pairs(
    judge: Judge, pairs: pd.DataFrame, jobs: pd.DataFrame, members: pd.DataFrame, relevant_grade: int
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Grade ``pairs`` (member_id, job_id[, origin]) and turn the grades into relevance labels.

    Returns ``(labels, stats)``: ``labels`` has the LABELS columns (member_id, job_id,
    label = grade >= relevant_grade, grade, source = "relevance", rationale) and
    leaves out every pair the judge failed on; ``stats`` counts pairs, labels,
    failures (with the first few errors), positives, the grade histogram, the
    origins, and the judge's own counters. Raises :class:`JudgeError` when every
    pair failed (an unreachable endpoint must not look like "no labels").
    """
    if not 1 <= relevant_grade <= 3:
        raise ValueError(f"relevant_grade must be 1-3, got {relevant_grade}")
    for col in ("member_id", "job_id"):
        if col not in pairs.columns:
            raise ValueError(f"pairs: missing column '{col}'")
    member_by_id = _records(members, "member_id", "members")
    job_by_id = _records(jobs, "job_id", "jobs")
    batch = []
    for row, (m, j) in enumerate(zip(pairs["member_id"].astype(str), pairs["job_id"].astype(str))):
        if m not in member_by_id:
            raise ValueError(f"pairs: row {row}: unknown member_id {m!r}")
        if j not in job_by_id:
            raise ValueError(f"pairs: row {row}: unknown job_id {j!r}")
        batch.append((member_by_id[m], job_by_id[j]))

    judgements = judge.grade_pairs(batch)
    if len(judgements) != len(batch):
        raise JudgeError(f"{type(judge).__name__} returned {len(judgements)} judgements for {len(batch)} pairs")
    ok = [i for i, jd in enumerate(judgements) if jd.ok]
    errors = [judgements[i].error for i in range(len(judgements)) if not judgements[i].ok]
    if batch and not ok:
        raise JudgeError(f"the judge failed on all {len(batch)} pairs; first error: {errors[0]}")

    grades = [int(judgements[i].grade) for i in ok]  # type: ignore[arg-type]
    labels = pd.DataFrame(
        {
            "member_id": pairs["member_id"].astype(str).to_numpy()[ok],
            "job_id": pairs["job_id"].astype(str).to_numpy()[ok],
            "label": [int(g >= relevant_grade) for g in grades],
            "grade": grades,
            "source": "relevance",
            "rationale": [judgements[i].rationale for i in ok],
        },
        columns=LABELS.column_names,
    )
    if len(labels):
        labels = LABELS.validate(labels, where="relevance labels")

    stats: dict[str, Any] = {
        "judge": judge.name,
        "pairs": len(batch),
        "labels": len(labels),
        "failed": len(errors),
        "errors": errors[:5],
        "positives": int(labels["label"].sum()) if len(labels) else 0,
        "grades": {str(g): int(grades.count(g)) for g in range(4)},
        "judge_stats": judge.stats.as_dict(),
    }
    if "origin" in pairs.columns:
        stats["origins"] = {str(k): int(v) for k, v in pairs["origin"].value_counts().items()}
    if errors:
        log.warning(
            "judge_pairs: %d of %d pairs failed and were left out; first error: %s", len(errors), len(batch), errors[0]
        )
    return labels, stats
