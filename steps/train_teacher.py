"""Train the cross-encoder teacher on the fine-tuned model's hard negatives; check it on the validation members."""

import logging
import tempfile
from typing import Annotated

import mlflow
import pandas as pd
from zenml import ArtifactConfig, log_metadata, step
from zenml.enums import ArtifactType

from jude.config import AblationConfig, EvalConfig, LabelConfig, ModelConfig, TeacherConfig
from jude.evaluation.retrieval import EvalSet
from jude.labels.judges import make_judge
from jude.modeling.cross_encoder import CrossEncoderTeacher
from jude.modeling.model_dir import ModelDir
from jude.training.teacher import check_teacher, finetuned_top_k, train_cross_encoder
from zenml_glue.stack import EXPERIMENT_TRACKER

logger = logging.getLogger(__name__)


@step(experiment_tracker=EXPERIMENT_TRACKER)
def train_teacher(
    training_pairs: pd.DataFrame,
    jobs: pd.DataFrame,
    members: pd.DataFrame,
    jude_embedder: ModelDir,
    val_set: dict,
    teacher: dict | None = None,
    model: dict | None = None,
    labels: dict | None = None,
    eval: dict | None = None,
    ablation: dict | None = None,
) -> tuple[
    Annotated[ModelDir, ArtifactConfig(name="jude_teacher", artifact_type=ArtifactType.MODEL)],
    Annotated[dict, "teacher_check"],
]:
    """Sequence-pair scorer over (member text, job text), trained on groups whose negatives come from the
    fine-tuned model's top ``teacher.hard_negatives_k``; then, on the validation members, the teacher
    reranking the fine-tuned top ``ablation.rerank_k`` against the fine-tuned ranking (judge nDCG@10).
    A teacher that does not win is said so (log line, metadata, MLflow tag ``distillation_meaningful``);
    distillation still runs and the evaluation table marks it."""
    cfg = TeacherConfig.model_validate(teacher or {})
    model_cfg = ModelConfig.model_validate(model or {})
    label_cfg = LabelConfig.model_validate(labels or {})
    eval_cfg = EvalConfig.model_validate(eval or {})
    abl = AblationConfig.model_validate(ablation or {})
    mlflow.log_params({f"teacher.{k}": v for k, v in cfg.model_dump().items()})
    finetuned = jude_embedder.load()
    mined = finetuned_top_k(finetuned, training_pairs, jobs, members, cfg.hard_negatives_k)
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
        mined=mined,
    )
    check = check_teacher(
        finetuned,
        CrossEncoderTeacher.load(res.model_dir),
        EvalSet.from_dict(val_set),
        make_judge(label_cfg),
        eval_cfg,
        label_cfg.relevant_grade,
        abl.rerank_k,
    )
    (logger.info if check.meaningful else logger.warning)(check.summary())
    mlflow.log_metrics(check.metrics())
    mlflow.set_tag("distillation_meaningful", str(check.meaningful).lower())
    record = {**check.metrics(), "meaningful": check.meaningful, "queries": check.queries, "summary": check.summary()}
    log_metadata({"teacher": res.stats, "teacher_check": record})
    return ModelDir(str(res.model_dir)), record
