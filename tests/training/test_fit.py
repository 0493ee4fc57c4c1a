"""fit() picks the trainer: the Hugging Face Trainer when scale.deepspeed is set, the plain loop otherwise."""

from pathlib import Path

import pandas as pd
import pytest

import jude.training.fit as fit_module
from jude.config import LoRAConfig, LossConfig, ModelConfig, ScaleConfig, TrainConfig
from jude.evaluation.retrieval import EvalSet
from jude.training.trainer import TrainResult

EMPTY = pd.DataFrame()
VAL = EvalSet(queries={}, corpus={}, relevant={})


@pytest.fixture
def calls(monkeypatch):
    """Replace both trainers with recorders: which one ran, with which keyword arguments."""
    seen: list[tuple[str, dict]] = []

    def recorder(name):
        def train(*args, **kwargs):
            seen.append((name, kwargs))
            return TrainResult(model_dir=Path(args[6]))

        return train

    monkeypatch.setattr(fit_module, "train_embedder", recorder("plain"))
    monkeypatch.setattr(fit_module, "train_with_hf_trainer", recorder("hf"))
    return seen


def _fit(scale: ScaleConfig | None, **kwargs):
    return fit_module.fit(
        EMPTY, EMPTY, EMPTY, ModelConfig(), LoRAConfig(), TrainConfig(), "out", LossConfig(), scale, **kwargs
    )


def test_without_deepspeed_the_plain_loop_runs_with_validation_and_logging(calls):
    log = print
    res = _fit(ScaleConfig(bf16=True), val_set=VAL, log=log)
    [(name, kwargs)] = calls
    assert name == "plain" and res.model_dir == Path("out")
    assert kwargs["val_set"] is VAL and kwargs["log"] is log and kwargs["scale"].bf16


def test_no_scale_section_is_the_plain_loop(calls):
    _fit(None)
    assert [name for name, _ in calls] == ["plain"]


def test_deepspeed_runs_the_hf_trainer_with_that_config(calls):
    _fit(ScaleConfig(deepspeed="configs/deepspeed_zero1.json"), val_set=VAL)
    [(name, kwargs)] = calls
    assert name == "hf" and kwargs["deepspeed_config"] == "configs/deepspeed_zero1.json"
    assert kwargs["scale"].deepspeed == "configs/deepspeed_zero1.json"
