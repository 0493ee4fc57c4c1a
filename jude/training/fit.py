"""Fine-tune the two-tower embedder with the trainer the scale section calls for.

Two loops train the same model on the same pairs with the same objective:

- the plain loop (``jude.training.trainer.train_embedder``): one device, the
  whole loss suite, the curriculum, GradCache;
- the Hugging Face ``Trainer`` (``jude.training.hf_trainer.train_with_hf_trainer``):
  DeepSpeed ZeRO, torchrun, multi-node; one phase, no distillation losses.

``scale.deepspeed`` picks the second; everything else runs the first. Callers
(the ``finetune_embedder`` step, benchmarks) call :func:`fit` and never choose.

Not exported from ``jude.training``: importing this module imports torch, and
``jude.training.pairs`` has light importers (monitoring) that must not pay for it.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from jude.config import LoRAConfig, LossConfig, ModelConfig, ScaleConfig, TrainConfig
from jude.evaluation.retrieval import EvalSet
from jude.optim import LogFn
from jude.training.hf_trainer import train_with_hf_trainer
from jude.training.trainer import TrainResult, train_embedder


def fit(
    pairs: pd.DataFrame,
    jobs: pd.DataFrame,
    members: pd.DataFrame,
    model_cfg: ModelConfig,
    lora_cfg: LoRAConfig,
    train_cfg: TrainConfig,
    out_dir: str | Path,
    loss_cfg: LossConfig | None = None,
    scale: ScaleConfig | None = None,
    val_set: EvalSet | None = None,
    log: LogFn | None = None,
    show_progress: bool = True,
) -> TrainResult:
    """Fine-tune ``model_cfg.base_model`` with LoRA on the labelled pairs and save it to ``out_dir``.

    Either loop validates on ``val_set`` every ``train_cfg.eval_every_steps`` optimiser
    steps and at the end (the plain loop also at the end of each curriculum phase),
    and hands every record (``train/*``, ``val/*``) to ``log``.
    """
    scale = scale or ScaleConfig()
    if scale.deepspeed:
        return train_with_hf_trainer(
            pairs,
            jobs,
            members,
            model_cfg,
            lora_cfg,
            train_cfg,
            out_dir,
            deepspeed_config=scale.deepspeed,
            loss_cfg=loss_cfg,
            scale=scale,
            show_progress=show_progress,
            val_set=val_set,
            log=log,
        )
    return train_embedder(
        pairs,
        jobs,
        members,
        model_cfg,
        lora_cfg,
        train_cfg,
        out_dir,
        loss_cfg=loss_cfg,
        val_set=val_set,
        log=log,
        show_progress=show_progress,
        scale=scale,
    )
