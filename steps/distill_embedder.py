"""Score the fine-tuned model's candidates with the teacher, then distil those scores into it."""

import tempfile
from typing import Annotated, Optional

import mlflow
import pandas as pd
from zenml import ArtifactConfig, log_metadata, step
from zenml.enums import ArtifactType

from jude.config import DistillConfig, LoRAConfig, ModelConfig, TrainConfig
from jude.evaluation.retrieval import top_k_candidates
from jude.modeling.cross_encoder import CrossEncoderTeacher, score_candidates
from jude.modeling.embedder import ModelDir
from jude.training.distill import distill_embedder as distill
from pipelines.stack import EXPERIMENT_TRACKER


@step(experiment_tracker=EXPERIMENT_TRACKER)
def distill_embedder(jude_embedder: ModelDir, jude_teacher: ModelDir, training_pairs: pd.DataFrame,
                     jobs: pd.DataFrame, members: pd.DataFrame, model: Optional[dict] = None,
                     lora: Optional[dict] = None, train: Optional[dict] = None, distill_cfg: Optional[dict] = None,
                     ) -> tuple[
    Annotated[pd.DataFrame, "teacher_scores"],
    Annotated[ModelDir, ArtifactConfig(name="jude_embedder_distilled", artifact_type=ArtifactType.MODEL)],
]:
    """Teacher scores of the student's top-k jobs per training member (kept), then MarginMSE/KL distillation."""
    model_cfg = ModelConfig.model_validate(model or {})
    lora_cfg = LoRAConfig.model_validate(lora or {})
    train_cfg = TrainConfig.model_validate(train or {})
    cfg = DistillConfig.model_validate(distill_cfg or {})
    mlflow.log_params({f"distill.{k}": v for k, v in cfg.model_dump().items()})
    student = jude_embedder.load()
    train_members = members[members["member_id"].isin(set(training_pairs["member_id"]))]
    candidates = top_k_candidates(student, jobs, train_members, k=cfg.candidates_k, show_progress=True)
    scores = score_candidates(CrossEncoderTeacher.load(jude_teacher.path), candidates, jobs, members)
    out = tempfile.mkdtemp(prefix="jude-distilled-") + "/model"
    res = distill(jude_embedder.path, scores, jobs, members, model_cfg, lora_cfg, train_cfg, cfg, out,
                  pairs=training_pairs,
                  log=lambda metrics, step: mlflow.log_metrics(
                      {f"distill/{k.split('/')[-1]}": v for k, v in metrics.items()}, step=step))
    log_metadata({"distillation": res.stats, "teacher_scores": len(scores)})
    return scores, ModelDir(str(res.model_dir))
