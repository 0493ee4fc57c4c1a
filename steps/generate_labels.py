"""Relevance labels from the judge plus engagement labels from interactions, with a report."""

from typing import Annotated

import pandas as pd
from zenml import log_metadata, step
from zenml.types import HTMLString

from jude.config import LabelConfig
from jude.labels.build import build_labels
from jude.labels.report import label_report, label_report_html


@step
def generate_labels(
    jobs: pd.DataFrame,
    members: pd.DataFrame,
    interactions: pd.DataFrame,
    base_candidates: dict,
    labels: dict | None = None,
) -> tuple[
    Annotated[pd.DataFrame, "labels"],
    Annotated[HTMLString, "label_report"],
]:
    """Sample pairs within the budget, grade them with the judge, add engagement labels."""
    cfg = LabelConfig.model_validate(labels or {})
    built = build_labels(jobs, members, interactions, cfg, candidates=base_candidates)
    report = label_report(built.table)
    log_metadata({"labels": built.stats, "label_report": report})
    return built.table, HTMLString(label_report_html(report))
