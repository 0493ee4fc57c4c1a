"""Score the fine-tuned model's candidates with the teacher, then distil those scores into it."""

import tempfile
from typing import Annotated

import mlflow
import pandas as pd
from zenml import ArtifactConfig, log_metadata, step
from zenml.enums import ArtifactType

from jude.config import DistillConfig, LoRAConfig, ModelConfig, TrainConfig
from jude.modeling.model_dir import ModelDir
from jude.training.distill import DistillInputs, distill_from_teacher
from zenml_glue.stack import EXPERIMENT_TRACKER


@step(experiment_tracker=EXPERIMENT_TRACKER)
def distill_embedder(
    jude_embedder: ModelDir,
    jude_teacher: ModelDir,
    training_pairs: pd.DataFrame,
    jobs: pd.DataFrame,
    members: pd.DataFrame,
    model: dict | None = None,
    lora: dict | None = None,
    train: dict | None = None,
    distill_cfg: dict | None = None,
) -> tuple[
    Annotated[pd.DataFrame, "teacher_scores"],
    Annotated[ModelDir, ArtifactConfig(name="jude_embedder_distilled", artifact_type=ArtifactType.MODEL)],
]:
    """Teacher scores of the student's top-k jobs per training member (kept), then MarginMSE/KL distillation.

    The stats (ZenML metadata, MLflow params) record the batch schedule's and the fresh LoRA's digests, which
    the control rows (``train_distill_controls``) must match."""
    model_cfg = ModelConfig.model_validate(model or {})
    lora_cfg = LoRAConfig.model_validate(lora or {})
    train_cfg = TrainConfig.model_validate(train or {})
    cfg = DistillConfig.model_validate(distill_cfg or {})
    mlflow.log_params({f"distill.{k}": v for k, v in cfg.model_dump().items()})
    out = tempfile.mkdtemp(prefix="jude-distilled-") + "/model"
    inputs = DistillInputs(jude_embedder.path, training_pairs, jobs, members, model_cfg, lora_cfg, train_cfg, cfg)
    res = distill_from_teacher(
        inputs,
        jude_teacher.path,
        out,
        log=lambda metrics, step: mlflow.log_metrics(
            {f"distill/{k.split('/')[-1]}": v for k, v in metrics.items()}, step=step
        ),
    )
    stats = res.result.stats
    mlflow.log_params({k: stats[k] for k in ("batch_schedule_sha256", "lora_init_sha256")})
    log_metadata({"distillation": stats, "teacher_scores": len(res.teacher_scores)})
    return res.teacher_scores, ModelDir(str(res.result.model_dir))
