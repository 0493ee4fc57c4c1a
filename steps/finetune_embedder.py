"""Fine-tune the two-tower embedder (LoRA) on the training pairs."""

import tempfile
from typing import Annotated

import mlflow
import pandas as pd
from zenml import ArtifactConfig, log_metadata, step
from zenml.enums import ArtifactType

from jude.config import LoRAConfig, LossConfig, ModelConfig, ScaleConfig, TrainConfig
from jude.evaluation.retrieval import EvalSet
from jude.modeling.model_dir import ModelDir
from jude.training.fit import fit
from zenml_glue.stack import EXPERIMENT_TRACKER


@step(experiment_tracker=EXPERIMENT_TRACKER)
def finetune_embedder(
    training_pairs: pd.DataFrame,
    jobs: pd.DataFrame,
    members: pd.DataFrame,
    val_set: dict,
    model: dict | None = None,
    lora: dict | None = None,
    train: dict | None = None,
    loss: dict | None = None,
    scale: dict | None = None,
) -> Annotated[ModelDir, ArtifactConfig(name="jude_embedder", artifact_type=ArtifactType.MODEL)]:
    """LoRA on the shared base with the configured loss suite and curriculum; parameters, the ``train/*`` curves
    and the ``val/*`` curve (every ``train.eval_every_steps`` steps, on the validation set) to MLflow."""
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
    result = fit(  # the HF Trainer (DeepSpeed) when scale.deepspeed is set, else the plain loop
        training_pairs,
        jobs,
        members,
        model_cfg,
        lora_cfg,
        train_cfg,
        out,
        loss_cfg=loss_cfg,
        scale=scale_cfg,
        val_set=EvalSet.from_dict(val_set),
        log=lambda metrics, step: mlflow.log_metrics(metrics, step=step),
    )
    validations = [h for h in result.history if any(k.startswith("val/") for k in h)]
    log_metadata(
        {
            "training": result.stats,
            "final_loss": result.final_loss,  # the last training step's loss (validation records are skipped)
            "validation": {"points": len(validations), "last": validations[-1] if validations else None},
        }
    )
    return ModelDir(str(result.model_dir))
