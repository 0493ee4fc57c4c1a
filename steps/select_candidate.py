"""Pick the model to register: the fine-tuned or the distilled one, whichever ranks the validation members best."""

import logging
from typing import Annotated

import mlflow
from zenml import ArtifactConfig, log_metadata, step
from zenml.enums import ArtifactType

from jude.config import EvalConfig, LabelConfig
from jude.evaluation.retrieval import EvalSet
from jude.labels.judges import make_judge
from jude.modeling.model_dir import ModelDir
from jude.training.selection import select_candidate as choose_on_validation
from pipelines.stack import EXPERIMENT_TRACKER

logger = logging.getLogger(__name__)


@step(experiment_tracker=EXPERIMENT_TRACKER)
def select_candidate(
    jude_embedder: ModelDir,
    jude_embedder_distilled: ModelDir,
    val_set: dict,
    labels: dict | None = None,
    eval: dict | None = None,
    teacher_check: dict | None = None,
) -> tuple[
    Annotated[ModelDir, ArtifactConfig(name="jude_embedder_selected", artifact_type=ArtifactType.MODEL)],
    Annotated[str, "selected_variant"],
    Annotated[dict, "selection"],
]:
    """Judge nDCG@10 of both candidates on the validation members (never the test members); the higher one is
    registered (a tie keeps the fine-tuned model). The choice, both scores and the reason go to MLflow (params
    ``select.*``, tags ``selected_candidate`` / ``selection_reason``, metrics ``select/<candidate>/val_ndcg_at_10``)
    and to ZenML metadata."""
    label_cfg = LabelConfig.model_validate(labels or {})
    eval_cfg = EvalConfig.model_validate(eval or {})
    dirs = {"finetuned": jude_embedder, "distilled": jude_embedder_distilled}
    sel = choose_on_validation(
        {name: d.load() for name, d in dirs.items()},
        EvalSet.from_dict(val_set),
        make_judge(label_cfg),
        eval_cfg,
        label_cfg.relevant_grade,
    )
    meaningful = "unknown" if teacher_check is None else str(bool(teacher_check.get("meaningful"))).lower()
    logger.info("registering %s", sel.reason)
    mlflow.log_metrics(sel.metrics())
    mlflow.log_params({"select.variant": sel.variant, "select.val_queries": sel.queries})
    mlflow.set_tags({"selected_candidate": sel.variant, "selection_reason": sel.reason})
    record = {
        "variant": sel.variant,
        "scores": sel.scores,
        "val_queries": sel.queries,
        "pooled": sel.pooled,
        "reason": sel.reason,
        "distillation_meaningful": meaningful,
    }
    log_metadata({"selection": record})
    return ModelDir(dirs[sel.variant].path), sel.variant, record
