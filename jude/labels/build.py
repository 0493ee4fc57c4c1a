"""The label recipe, written once: sample pairs, judge them, add engagement labels.

Every path from a marketplace to training labels (the ZenML ``generate_labels``
step, ``jude train-hf``, the quality benchmarks, the test fixtures) calls
:func:`build_labels`, so a change to the recipe reaches all of them at once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from jude.config import LabelConfig
from jude.labels.engagement import engagement_labels
from jude.labels.judges import Judge, make_judge
from jude.labels.sampling import judge_pairs, sample_pairs


@dataclass(frozen=True)
class LabelSet:
    """The label table and what it took to build it.

    ``table`` has the LABELS columns (member_id, job_id, label, grade, source,
    rationale): the judged relevance labels first, then the engagement labels.
    ``stats`` holds ``judge``, ``pairs_sampled``, the judge's statistics
    (:func:`jude.labels.sampling.judge_pairs`), and the ``relevance`` and
    ``engagement`` row counts.
    """

    table: pd.DataFrame
    stats: dict[str, Any]

    @property
    def relevance(self) -> pd.DataFrame:
        """The judged rows of :attr:`table` (``source == "relevance"``), in judging order."""
        return self.table[self.table["source"] == "relevance"]


def build_labels(
    jobs: pd.DataFrame,
    members: pd.DataFrame,
    interactions: pd.DataFrame,
    cfg: LabelConfig,
    candidates: Mapping[str, Sequence[str]] | None = None,
    judge: Judge | None = None,
) -> LabelSet:
    """Sample ``cfg.budget`` pairs, grade them with the judge, and append the engagement labels.

    ``candidates`` (member_id -> job_ids ranked by the base model) feed the
    ``retrieved`` share of the budget; sampling is seeded by ``cfg.seed``.
    ``judge`` defaults to the one ``cfg.judge`` names (:func:`make_judge`).
    """
    sampled = sample_pairs(jobs, members, interactions, cfg, candidates=candidates, rng_seed=cfg.seed)
    relevance, judge_stats = judge_pairs(judge or make_judge(cfg), sampled, jobs, members, cfg.relevant_grade)
    engagement = engagement_labels(interactions, cfg)
    table = pd.concat([relevance, engagement], ignore_index=True)
    stats = {
        "judge": cfg.judge,
        "pairs_sampled": len(sampled),
        **judge_stats,
        "relevance": len(relevance),
        "engagement": len(engagement),
    }
    return LabelSet(table=table, stats=stats)
