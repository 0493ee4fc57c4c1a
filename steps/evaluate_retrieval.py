"""Offline retrieval evaluation: the base and the fine-tuned model on the same held-out queries."""

from typing import Annotated, Optional

import mlflow
from zenml import log_metadata, step
from zenml.types import HTMLString

from jude.config import EvalConfig, ModelConfig
from jude.evaluation.report import render_html
from jude.evaluation.retrieval import EvalSet, evaluate_embedder, prefixed
from jude.modeling.embedder import Embedder, ModelDir
from pipelines.stack import EXPERIMENT_TRACKER


@step(experiment_tracker=EXPERIMENT_TRACKER)
def evaluate_retrieval(jude_embedder: ModelDir, test_set: dict, model: Optional[dict] = None,
                       eval: Optional[dict] = None) -> tuple[
    Annotated[dict, "metrics"],
    Annotated[HTMLString, "evaluation_report"],
]:
    """nDCG@10, recall@10/100, MRR@10 for base and fine-tuned; prefixed metrics to MLflow."""
    model_cfg = ModelConfig.model_validate(model or {})
    eval_cfg = EvalConfig.model_validate(eval or {})
    eval_set = EvalSet.from_dict(test_set)
    results = {
        "base": evaluate_embedder(Embedder.from_base(model_cfg), eval_set, batch_size=eval_cfg.batch_size,
                                  show_progress=True),
        "finetuned": evaluate_embedder(jude_embedder.load(), eval_set, batch_size=eval_cfg.batch_size,
                                       show_progress=True),
    }
    flat: dict[str, float] = {}
    for variant, m in results.items():
        flat.update(prefixed(variant, m))
    mlflow.log_metrics({k: v for k, v in flat.items()})
    log_metadata({"metrics": flat, "eval_set": eval_set.summary()})
    html = render_html(results, context=eval_set.summary())
    mlflow.log_text(html, "evaluation/report.html")
    return flat, HTMLString(html)
