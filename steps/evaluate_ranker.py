"""Train the apply model per feature set and score the test period: MLflow metrics, the HTML report."""

from typing import Annotated

import mlflow
import pandas as pd
from zenml import log_metadata, step
from zenml.types import HTMLString

from jude.config import RankerConfig
from jude.ranker.report import calibration_figure, headline, records, render_html
from jude.ranker.run import evaluate_ranker as evaluate
from zenml_glue.stack import EXPERIMENT_TRACKER


@step(experiment_tracker=EXPERIMENT_TRACKER)
def evaluate_ranker(
    ranker_rows: pd.DataFrame,
    embedding_features: pd.DataFrame,
    embedding_feature_stats: dict,
    ranker_history: dict,
    ranker_models: dict,
    ranker: dict | None = None,
) -> tuple[Annotated[dict, "ranker_metrics"], Annotated[HTMLString, "ranker_report"]]:
    """ranker/<set>/{apply_auc, log_loss, qualified_apply_rate_at_k, dismiss_to_apply_at_k} (+ _ci_low/_ci_high)
    for standard, base, champion, champion_latest (and champion_latest_served); the table, the calibration plot
    and the report to MLflow; the report to the dashboard."""
    cfg = RankerConfig.model_validate(ranker or {})
    result = evaluate(ranker_rows, embedding_features, cfg)
    metrics = result.flat_metrics()
    mlflow.log_metrics(metrics)
    mlflow.log_params({f"{role}_embedding_version": m["embedding_version"] for role, m in ranker_models.items()})
    mlflow.log_params({f"{role}_model": m["label"] for role, m in ranker_models.items()})
    figure = calibration_figure(result)
    context = {
        "time_travel": embedding_feature_stats["time_travel"],
        "missing": {k: v for k, v in embedding_feature_stats.items() if k != "time_travel"},
        "history": {k: v for k, v in ranker_history.items() if k != "models"},
        "models": {role: m["embedding_version"] for role, m in ranker_models.items()},
    }
    html = render_html(result, context, figure)
    mlflow.log_text(html, "ranker/report.html")
    mlflow.log_figure(figure, "ranker/calibration.png")
    mlflow.log_table(pd.DataFrame(records(result)), "ranker/table.json")
    first, second = headline(result)
    mlflow.set_tag("mlflow.note.content", f"{first} {second}")
    log_metadata({"metrics": metrics, "context": result.context})
    print(f"jude ranker: {first}\njude ranker: {second}")
    return metrics, HTMLString(html)
