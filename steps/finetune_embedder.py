"""Fine-tune the two-tower embedder (LoRA) on the training pairs."""

import tempfile
from typing import Annotated, Optional

import mlflow
import pandas as pd
from zenml import ArtifactConfig, log_metadata, step
from zenml.enums import ArtifactType

from jude.config import LossConfig, LoRAConfig, ModelConfig, ScaleConfig, TrainConfig
from jude.evaluation.retrieval import EvalSet
from jude.modeling.embedder import ModelDir
from jude.training.hf_trainer import train_with_hf_trainer
from jude.training.trainer import train_embedder
from pipelines.stack import EXPERIMENT_TRACKER


@step(experiment_tracker=EXPERIMENT_TRACKER)
def finetune_embedder(training_pairs: pd.DataFrame, jobs: pd.DataFrame, members: pd.DataFrame, val_set: dict,
                      model: Optional[dict] = None, lora: Optional[dict] = None, train: Optional[dict] = None,
                      loss: Optional[dict] = None, scale: Optional[dict] = None,
                      ) -> Annotated[ModelDir, ArtifactConfig(name="jude_embedder", artifact_type=ArtifactType.MODEL)]:
    """LoRA on the shared base with the configured loss suite and curriculum; losses and parameters to MLflow."""
    model_cfg = ModelConfig.model_validate(model or {})
    lora_cfg = LoRAConfig.model_validate(lora or {})
    train_cfg = TrainConfig.model_validate(train or {})
    loss_cfg = LossConfig.model_validate(loss or {})
    scale_cfg = ScaleConfig.model_validate(scale or {})
    mlflow.log_params({f"model.{k}": v for k, v in model_cfg.model_dump().items()})
    mlflow.log_params({f"lora.{k}": v for k, v in lora_cfg.model_dump().items()})
    mlflow.log_params({f"train.{k}": v for k, v in train_cfg.model_dump().items()})
    mlflow.log_params({f"loss.{k}": v for k, v in loss_cfg.model_dump().items()})
    mlflow.log_params({f"scale.{k}": v for k, v in scale_cfg.model_dump().items()})
    out = tempfile.mkdtemp(prefix="jude-model-") + "/model"
    if scale_cfg.deepspeed:  # the HF Trainer path (DeepSpeed ZeRO, torchrun); InfoNCE only
        result = train_with_hf_trainer(training_pairs, jobs, members, model_cfg, lora_cfg, train_cfg, out,
                                       deepspeed_config=scale_cfg.deepspeed, loss_cfg=loss_cfg, scale=scale_cfg)
    else:
        result = train_embedder(training_pairs, jobs, members, model_cfg, lora_cfg, train_cfg, out,
                                loss_cfg=loss_cfg, val_set=EvalSet.from_dict(val_set), scale=scale_cfg,
                                log=lambda metrics, step: mlflow.log_metrics(metrics, step=step))
    log_metadata({"training": result.stats, "final_loss": result.history[-1].get("train/loss", float("nan"))
                  if result.history else float("nan")})
    return ModelDir(str(result.model_dir))
