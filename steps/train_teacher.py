"""Train the cross-encoder teacher on the labelled training pairs."""

import tempfile
from typing import Annotated

import mlflow
import pandas as pd
from zenml import ArtifactConfig, log_metadata, step
from zenml.enums import ArtifactType

from jude.config import ModelConfig, TeacherConfig
from jude.modeling.model_dir import ModelDir
from jude.training.teacher import train_cross_encoder
from pipelines.stack import EXPERIMENT_TRACKER


@step(experiment_tracker=EXPERIMENT_TRACKER)
def train_teacher(
    training_pairs: pd.DataFrame,
    jobs: pd.DataFrame,
    members: pd.DataFrame,
    teacher: dict | None = None,
    model: dict | None = None,
) -> Annotated[ModelDir, ArtifactConfig(name="jude_teacher", artifact_type=ArtifactType.MODEL)]:
    """Sequence-pair scorer over (member text, job text), same base family as the embedder."""
    cfg = TeacherConfig.model_validate(teacher or {})
    model_cfg = ModelConfig.model_validate(model or {})
    mlflow.log_params({f"teacher.{k}": v for k, v in cfg.model_dump().items()})
    out = tempfile.mkdtemp(prefix="jude-teacher-") + "/teacher"
    res = train_cross_encoder(
        training_pairs,
        jobs,
        members,
        cfg,
        out,
        template_style=model_cfg.template_style,
        log=lambda metrics, step: mlflow.log_metrics(
            {f"teacher/{k.split('/')[-1]}": v for k, v in metrics.items()}, step=step
        ),
    )
    log_metadata({"teacher": res.stats})
    return ModelDir(str(res.model_dir))
