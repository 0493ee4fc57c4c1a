"""Time-based split: training pairs, validation and test evaluation sets."""

from typing import Annotated

import pandas as pd
from zenml import log_metadata, step

from jude.config import DataConfig, EvalConfig, TrainConfig
from jude.training.pairs import split_and_pair


@step
def split_pairs(
    jobs: pd.DataFrame,
    members: pd.DataFrame,
    interactions: pd.DataFrame,
    labels: pd.DataFrame,
    data: dict | None = None,
    train: dict | None = None,
    eval: dict | None = None,
) -> tuple[
    Annotated[pd.DataFrame, "training_pairs"],
    Annotated[dict, "val_set"],
    Annotated[dict, "test_set"],
]:
    """Cut the period by time, hold out the test members' labels, build the pairs."""
    data_cfg = DataConfig.model_validate(data or {})
    train_cfg = TrainConfig.model_validate(train or {})
    eval_cfg = EvalConfig.model_validate(eval or {})
    split = split_and_pair(
        jobs,
        members,
        interactions,
        labels,
        data_cfg.val_fraction,
        data_cfg.test_fraction,
        max_queries=eval_cfg.max_queries,
        query_entity=eval_cfg.member_view,
        use_engagement=train_cfg.use_engagement,
        seed=train_cfg.seed,
    )
    log_metadata({"split": split.stats})
    return split.pairs, split.val.to_dict(), split.test.to_dict()
