"""Time-based split: training pairs, validation and test evaluation sets."""

from typing import Annotated

import pandas as pd
from zenml import log_metadata, step

from jude.config import DataConfig, EvalConfig, TrainConfig
from jude.evaluation.truths import attach_truths
from jude.training.pairs import split_from_config


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
    Annotated[pd.DataFrame, "train_jobs"],
]:
    """Cut the period by time, hold out the test members' labels, build the pairs.

    ``train_jobs`` are the jobs posted before ``t_val``: the training steps see only them (the strict time cut,
    ``jude.training.pairs``); the evaluation sets rank every job.

    The test set also carries the truths beside the judge's (``jude.evaluation.truths``): the generator's truth
    over every job (synthetic data), the test-period applies, and the unseen world (``eval.unseen``).
    """
    data_cfg = DataConfig.model_validate(data or {})
    train_cfg = TrainConfig.model_validate(train or {})
    eval_cfg = EvalConfig.model_validate(eval or {})
    split = split_from_config(jobs, members, interactions, labels, data_cfg, eval_cfg, train_cfg)
    test = attach_truths(split.test, jobs, members, interactions, split.t_test, data_cfg, eval_cfg)
    truth_stats = {name: sum(1 for r in rel.values() if r) for name, rel in test.truths.items()}
    if test.unseen is not None:
        truth_stats["unseen"] = len(test.unseen.queries)
    log_metadata({"split": split.stats, "truth_queries": truth_stats, "truths_absent": test.absent})
    return split.pairs, split.val.to_dict(), test.to_dict(), split.train_jobs
