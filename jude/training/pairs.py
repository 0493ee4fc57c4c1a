"""Time-based split and training pairs.

The period covered by the interactions is cut in three by time::

    |------------- train -------------|---- val ----|---- test ----|
    t0                              t_val         t_test          t1

- **Test queries**: members with an apply in the test period. Their relevant set
  is the jobs they applied to in the test period plus the jobs the judge graded
  relevant for them. None of their relevance labels is trained on.
- **Validation queries**: likewise for the validation period (members not in test).
- **Training pairs**: relevance labels of the other members, plus engagement
  labels whose decisive action happened before ``t_val`` (no future leaks in).
- **A strict time cut**: nothing that happened at or after ``t_val`` reaches training. A job posted at or
  after ``t_val`` is in no training pair (a judged relevance label of a training member about a job posted in
  the validation or test period is dropped, counted in ``stats``), and the training steps see only
  :attr:`SplitData.train_jobs`, the jobs posted before ``t_val``, so no hard negative, teacher group or
  distillation candidate is a job from the future either. The evaluation sets still rank every job.

Pairs are ids plus label, grade and source; the trainer renders the texts with
the model's templates, so the same pairs serve an encoder and a decoder base.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from jude.config import DataConfig, EvalConfig, TrainConfig
from jude.evaluation.retrieval import EvalSet, build_eval_set

PAIR_COLUMNS = ["member_id", "job_id", "label", "grade", "source"]


@dataclass
class SplitData:
    t_val: pd.Timestamp
    t_test: pd.Timestamp
    pairs: pd.DataFrame  # PAIR_COLUMNS: the training pairs (positives and judged negatives)
    val: EvalSet
    test: EvalSet
    stats: dict = field(default_factory=dict)
    train_jobs: pd.DataFrame | None = None  # the jobs posted before t_val: all that training may see


def past_jobs(jobs: pd.DataFrame, t_val: pd.Timestamp) -> pd.DataFrame:
    """The jobs posted before ``t_val`` (the training period's), in their order: what training may see."""
    if "posted_at" not in jobs.columns:
        raise ValueError("jobs has no posted_at column: the time cut needs when each job was posted")
    return jobs[pd.to_datetime(jobs["posted_at"]) < t_val].reset_index(drop=True)


def cut_points(
    interactions: pd.DataFrame, val_fraction: float, test_fraction: float
) -> tuple[pd.Timestamp, pd.Timestamp]:
    t0, t1 = interactions["ts"].min(), interactions["ts"].max()
    span = t1 - t0
    return t0 + span * (1 - val_fraction - test_fraction), t0 + span * (1 - test_fraction)


def _relevant_map(members: set[str], applies: pd.DataFrame, relevance: pd.DataFrame) -> dict[str, dict[str, int]]:
    """member -> {job: grade}: judged relevant (its grade) or applied in the window (grade >= 2)."""
    rel: dict[str, dict[str, int]] = {m: {} for m in members}
    pos = relevance[(relevance["label"] == 1) & relevance["member_id"].isin(members)]
    for m, j, g in zip(pos["member_id"], pos["job_id"], pos["grade"]):
        rel[m][j] = max(int(g), rel[m].get(j, 0))
    for m, j in zip(applies["member_id"], applies["job_id"]):
        if m in rel:
            rel[m][j] = max(2, rel[m].get(j, 0))
    return rel


def split_from_config(
    jobs: pd.DataFrame,
    members: pd.DataFrame,
    interactions: pd.DataFrame,
    labels: pd.DataFrame,
    data: DataConfig,
    eval: EvalConfig,
    train: TrainConfig,
    use_engagement: bool | None = None,
) -> SplitData:
    """:func:`split_and_pair` with the arguments a run config gives it: the one mapping from config to split.

    The train pipeline, the quality benchmarks and the ranker (which must hold out the same test members the
    embedder never trained on) all split through here: ``data.val_fraction``/``test_fraction``,
    ``eval.max_queries``/``member_view``, ``train.seed``, and ``train.use_engagement`` unless
    ``use_engagement`` is given (the ranker splits without labels).
    """
    return split_and_pair(
        jobs,
        members,
        interactions,
        labels,
        data.val_fraction,
        data.test_fraction,
        max_queries=eval.max_queries,
        query_entity=eval.member_view,
        use_engagement=train.use_engagement if use_engagement is None else use_engagement,
        seed=train.seed,
    )


def split_and_pair(
    jobs: pd.DataFrame,
    members: pd.DataFrame,
    interactions: pd.DataFrame,
    labels: pd.DataFrame,
    val_fraction: float,
    test_fraction: float,
    max_queries: int,
    query_entity: str = "profile",
    use_engagement: bool = True,
    seed: int = 0,
) -> SplitData:
    """Cut by time, hold out the test/validation members, and build the training pairs."""
    t_val, t_test = cut_points(interactions, val_fraction, test_fraction)
    applies = interactions[interactions["action"] == "apply"]
    test_applies = applies[applies["ts"] >= t_test]
    val_applies = applies[(applies["ts"] >= t_val) & (applies["ts"] < t_test)]
    rng = np.random.default_rng(seed)

    def pick(ids: list[str], n: int) -> set[str]:
        ids = sorted(set(ids))
        return set(rng.choice(ids, size=n, replace=False).tolist()) if len(ids) > n else set(ids)

    test_members = pick(test_applies["member_id"].tolist(), max_queries)
    val_members = pick([m for m in val_applies["member_id"] if m not in test_members], max(1, max_queries // 2))
    held_out = test_members | val_members

    relevance = labels[labels["source"] == "relevance"]
    engagement = labels[labels["source"] == "engagement"]
    train_jobs = past_jobs(jobs, t_val)
    past = set(train_jobs["job_id"])
    rel_train = relevance[~relevance["member_id"].isin(held_out)]
    future = ~rel_train["job_id"].isin(past)  # judged pairs about jobs posted in the validation or test period
    dropped_future = int(future.sum())
    rel_train = rel_train[~future]
    parts = [rel_train[PAIR_COLUMNS]]
    if use_engagement and len(engagement):
        # an engagement label may be trained on only if its decisive action came before t_val, and never one of a
        # held-out member: the validation members choose the teacher and the registered model, so they are held
        # out like the test members (their pre-t_val engagement once reached fine-tuning, the teacher and the
        # distillation's scored candidates, and the validation scores favoured whatever learnt them)
        decisive = interactions[interactions["action"].isin(["apply", "dismiss"])]
        last = decisive.groupby(["member_id", "job_id"])["ts"].max().rename("decided_at").reset_index()
        eng = engagement.merge(last, on=["member_id", "job_id"], how="inner")
        eng = eng[(eng["decided_at"] < t_val) & ~eng["member_id"].isin(held_out) & eng["job_id"].isin(past)]
        parts.append(eng[PAIR_COLUMNS])
    pairs = pd.concat(parts, ignore_index=True)
    # one row per (member, job): relevance wins over engagement when both exist
    pairs["_rank"] = (pairs["source"] != "relevance").astype(int)
    pairs = pairs.sort_values(["member_id", "job_id", "_rank"]).drop_duplicates(["member_id", "job_id"])
    pairs = pairs.drop(columns="_rank").sample(frac=1.0, random_state=seed).reset_index(drop=True)

    test = build_eval_set(
        jobs, members, _relevant_map(test_members, test_applies, relevance), query_entity=query_entity, seed=seed
    )
    val = build_eval_set(
        jobs, members, _relevant_map(val_members, val_applies, relevance), query_entity=query_entity, seed=seed
    )
    stats = {
        "t_val": str(t_val),
        "t_test": str(t_test),
        "train_pairs": int(len(pairs)),
        "train_positives": int((pairs["label"] == 1).sum()),
        "train_positives_relevance": int(((pairs["label"] == 1) & (pairs["source"] == "relevance")).sum()),
        "train_positives_engagement": int(((pairs["label"] == 1) & (pairs["source"] == "engagement")).sum()),
        "test_queries": len(test.queries),
        "val_queries": len(val.queries),
        "train_jobs": int(len(train_jobs)),
        "train_pairs_dropped_future_jobs": dropped_future,
    }
    return SplitData(t_val=t_val, t_test=t_test, pairs=pairs, val=val, test=test, stats=stats, train_jobs=train_jobs)
