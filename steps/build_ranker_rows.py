"""The ranker's rows: impressions with their outcomes, split as the training pipeline splits members."""

from typing import Annotated

import pandas as pd
from zenml import log_metadata, step

from jude.config import DataConfig, EvalConfig, RankerConfig, TrainConfig
from jude.ranker.run import build_rows


@step
def build_ranker_rows(
    jobs: pd.DataFrame,
    members: pd.DataFrame,
    interactions: pd.DataFrame,
    ranker: dict | None = None,
    data: dict | None = None,
    train: dict | None = None,
    eval: dict | None = None,
) -> Annotated[pd.DataFrame, "ranker_rows"]:
    """Train rows (before the test period, other members) and test rows (held-out members, test period), each
    with its outcome, truth grade and standard features (only events before the impression)."""
    rows, info = build_rows(
        jobs,
        members,
        interactions,
        DataConfig.model_validate(data or {}),
        TrainConfig.model_validate(train or {}),
        EvalConfig.model_validate(eval or {}),
        RankerConfig.model_validate(ranker or {}),
    )
    log_metadata({"rows": info})
    return rows
