"""Pick the model to register: of the fine-tuned and the distilled model, the best that passes the promotion rule
against the base model on the validation members (or none)."""

import logging
from typing import Annotated

import mlflow
from zenml import ArtifactConfig, log_metadata, step
from zenml.enums import ArtifactType

from jude.config import EvalConfig, LabelConfig, ModelConfig, PromotionConfig
from jude.evaluation.retrieval import EvalSet
from jude.labels.judges import make_judge
from jude.modeling.embedder import Embedder
from jude.modeling.model_dir import ModelDir
from jude.training.selection import select_candidate as choose_on_validation
from zenml_glue.stack import EXPERIMENT_TRACKER

logger = logging.getLogger(__name__)


@step(experiment_tracker=EXPERIMENT_TRACKER)
def select_candidate(
    jude_embedder: ModelDir,
    jude_embedder_distilled: ModelDir,
    val_set: dict,
    model: dict | None = None,
    labels: dict | None = None,
    eval: dict | None = None,
    promotion: dict | None = None,
    teacher_check: dict | None = None,
) -> tuple[
    Annotated[ModelDir, ArtifactConfig(name="jude_embedder_selected", artifact_type=ArtifactType.MODEL)],
    Annotated[str, "selected_variant"],
    Annotated[dict, "selection"],
]:
    """Judge nDCG@10 and recall@100 of the base model and both candidates on the validation members (never the
    test members), apply the promotion rule to each candidate against the base model, and keep the best that
    passes (``jude.training.selection``). With none passing, ``selected_variant`` is ``"none"`` and the
    register step registers nothing. The figures and the reason go to MLflow (``select/*`` metrics, tags
    ``selected_candidate`` / ``selection_reason``) and to ZenML metadata."""
    label_cfg = LabelConfig.model_validate(labels or {})
    eval_cfg = EvalConfig.model_validate(eval or {})
    dirs = {"finetuned": jude_embedder, "distilled": jude_embedder_distilled}
    sel = choose_on_validation(
        {name: d.load() for name, d in dirs.items()},
        EvalSet.from_dict(val_set),
        make_judge(label_cfg),
        eval_cfg,
        label_cfg.relevant_grade,
        PromotionConfig.model_validate(promotion or {}),
        base=Embedder.from_base(ModelConfig.model_validate(model or {})),
    )
    variant = sel.variant or "none"
    meaningful = "unknown" if teacher_check is None else str(bool(teacher_check.get("meaningful"))).lower()
    logger.info("selection: %s", sel.reason)
    mlflow.log_metrics(sel.metrics())
    mlflow.log_params({"select.variant": variant, "select.val_queries": sel.queries})
    mlflow.set_tags({"selected_candidate": variant, "selection_reason": sel.reason[:5000]})
    record = {**sel.to_dict(), "variant": variant, "distillation_meaningful": meaningful}
    log_metadata({"selection": record})
    # with none passing, the fine-tuned directory stands in as the artifact; register_embedder registers nothing
    return ModelDir(dirs.get(variant, jude_embedder).path), variant, record
