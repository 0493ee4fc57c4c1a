"""Register the selected model in MLflow (alias challenger; champion if it is the first and beats the base model)
and the ZenML Model, or register nothing when no candidate passed the promotion rule on validation."""

import logging
from typing import Annotated

import mlflow
from zenml import get_step_context, log_metadata, step

from jude.config import PromotionConfig, RegistryConfig
from jude.modeling.model_dir import ModelDir
from jude.registry.champion import training_outcome
from jude.registry.descriptions import data_summary
from jude.registry.mlflow_registry import PROMOTION_TAG, get_version, log_model_version
from jude.registry.promotion import first_version_verdict
from jude.serving.onnx_backend import export_for_serving
from zenml_glue.model_stages import sync_model_stages
from zenml_glue.stack import EXPERIMENT_TRACKER

logger = logging.getLogger(__name__)


@step(experiment_tracker=EXPERIMENT_TRACKER)
def register_embedder(
    jude_embedder: ModelDir,
    metrics: dict,
    test_set: dict,
    registry: dict | None = None,
    promotion: dict | None = None,
    variant: str = "finetuned",
    selection: dict | None = None,
) -> Annotated[dict, "registered_version"]:
    """Log the model with its jude.json and held-out set, register a version with its description and headline
    tags, set aliases, and bring the ZenML Model versions' stages in line with them.

    ``variant`` names the registered model's figures in ``metrics`` ('finetuned' or 'distilled'): a first
    version becomes champion only when they beat the ``base/`` figures by the promotion rule. ``variant``
    'none' (the selection found no candidate that passes the rule on validation) registers nothing; the
    returned record's ``outcome`` says why, with the figures (``run.py`` prints it as its last line).
    """
    cfg = RegistryConfig.model_validate(registry or {})
    if variant == "none":
        reason = (selection or {}).get("reason", "no candidate passed the promotion rule on validation")
        record = {"registered": False, "name": cfg.model_name, "reason": reason}
        record["outcome"] = training_outcome(record)
        mlflow.set_tag("registered", "false")
        log_metadata({"registration": record})
        logger.warning(record["outcome"])
        return record
    # the ONNX export the CPU server runs (backend auto), made and checked against torch now, logged with the model
    onnx_export = export_for_serving(jude_embedder.path)
    logger.info("ONNX export for serving: %s", onnx_export)
    beats_base = first_version_verdict(metrics, test_set, variant, PromotionConfig.model_validate(promotion or {}))
    context = get_step_context()
    data = (context.pipeline_run.config.parameters or {}).get("data")  # the run's data section, for the description
    info = log_model_version(
        jude_embedder.path,
        cfg.model_name,
        metrics=metrics,
        eval_set=test_set,
        tags={"zenml_run": context.pipeline_run.name},
        first_champion=beats_base,
        variant=variant,
        data=data_summary(data or {}),
    )
    tag = mlflow.tracking.MlflowClient().get_model_version(info.name, info.version).tags.get(PROMOTION_TAG, "")
    champion = get_version(info.name, "champion")  # this version, an earlier one, or none
    record = {
        "registered": True,
        "name": info.name,
        "version": info.version,
        "variant": variant,
        "run_id": info.run_id,
        "aliases": info.aliases,
        "uri": info.uri,
        "promotion": tag,
        "champion": champion.version if champion else None,
        "onnx": onnx_export,
    }
    record["outcome"] = training_outcome(record)
    log_metadata({"mlflow_model": record, **{k.replace("/", "_"): v for k, v in metrics.items()}})
    # the same numbers on the ZenML Model version that this pipeline run produces
    log_metadata({"mlflow_model": record, "metrics": metrics}, infer_model=True)
    # its stage (and that of the version that was challenger before) follows the MLflow aliases
    changes = sync_model_stages(cfg.model_name, mlflow.get_tracking_uri(), known={str(context.model.id): info.version})
    for change in changes:
        print(f"register_embedder: {change}")
    return record
