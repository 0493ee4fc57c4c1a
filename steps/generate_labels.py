"""Relevance labels from the judge plus engagement labels from interactions, with a report."""

from typing import Annotated, Optional

import pandas as pd
from zenml import log_metadata, step
from zenml.types import HTMLString

from jude.config import LabelConfig
from jude.labels.engagement import engagement_labels
from jude.labels.judges import make_judge
from jude.labels.report import label_report, label_report_html
from jude.labels.sampling import judge_pairs, sample_pairs


@step
def generate_labels(jobs: pd.DataFrame, members: pd.DataFrame, interactions: pd.DataFrame,
                    base_candidates: dict, labels: Optional[dict] = None) -> tuple[
    Annotated[pd.DataFrame, "labels"],
    Annotated[HTMLString, "label_report"],
]:
    """Sample pairs within the budget, grade them with the judge, add engagement labels."""
    cfg = LabelConfig.model_validate(labels or {})
    pairs = sample_pairs(jobs, members, interactions, cfg, candidates=base_candidates, rng_seed=cfg.seed)
    relevance, judge_stats = judge_pairs(make_judge(cfg), pairs, jobs, members, cfg.relevant_grade)
    engagement = engagement_labels(interactions, cfg)
    table = pd.concat([relevance, engagement], ignore_index=True)
    report = label_report(table)
    log_metadata({"labels": {"judge": cfg.judge, "pairs_sampled": len(pairs), **judge_stats,
                             "relevance": len(relevance), "engagement": len(engagement)},
                  "label_report": report})
    return table, HTMLString(label_report_html(report))
