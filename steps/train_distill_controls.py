"""Distillation's control rows: the anchor alone, and fine-tuning continued, on the student's own batches."""

import tempfile
from typing import Annotated

import mlflow
import pandas as pd
from zenml import ArtifactConfig, log_metadata, step
from zenml.enums import ArtifactType

from jude.config import DistillConfig, LoRAConfig, ModelConfig, TrainConfig
from jude.modeling.model_dir import ModelDir
from jude.training.distill import DistillInputs, check_controls, train_controls
from zenml_glue.stack import EXPERIMENT_TRACKER


@step(experiment_tracker=EXPERIMENT_TRACKER)
def train_distill_controls(
    jude_embedder: ModelDir,
    jude_embedder_distilled: ModelDir,
    teacher_scores: pd.DataFrame,
    training_pairs: pd.DataFrame,
    jobs: pd.DataFrame,
    members: pd.DataFrame,
    model: dict | None = None,
    lora: dict | None = None,
    train: dict | None = None,
    distill_cfg: dict | None = None,
) -> tuple[
    Annotated[ModelDir, ArtifactConfig(name="jude_embedder_control_anchor", artifact_type=ArtifactType.MODEL)],
    Annotated[ModelDir, ArtifactConfig(name="jude_embedder_control_steps", artifact_type=ArtifactType.MODEL)],
]:
    """``control_anchor`` (the distillation run, KL and MarginMSE off) and ``control_steps`` (InfoNCE with hard
    negatives for the same steps), each from the fine-tuned model with the student's seed, fresh LoRA and
    batch schedule; fails if a control's schedule digest differs from the distilled student's."""
    model_cfg = ModelConfig.model_validate(model or {})
    lora_cfg = LoRAConfig.model_validate(lora or {})
    train_cfg = TrainConfig.model_validate(train or {})
    cfg = DistillConfig.model_validate(distill_cfg or {})
    out = tempfile.mkdtemp(prefix="jude-controls-")
    inputs = DistillInputs(jude_embedder.path, training_pairs, jobs, members, model_cfg, lora_cfg, train_cfg, cfg)
    results = train_controls(
        inputs,
        teacher_scores,
        out,
        log=lambda metrics, step: mlflow.log_metrics(metrics, step=step),
    )
    student = check_controls(jude_embedder_distilled.meta.extra["distill"], results)
    log_metadata({"controls": {run: res.stats for run, res in results.items()}, "batch_schedule_sha256": student})
    return ModelDir(str(results["control_anchor"].model_dir)), ModelDir(str(results["control_steps"].model_dir))
