"""The bootstrap report: HTML in the ZenML dashboard, the counts in MLflow."""

from typing import Annotated

import mlflow
from zenml import step
from zenml.types import HTMLString

from jude.bootstrap.report import bootstrap_html
from zenml_glue.stack import EXPERIMENT_TRACKER

COUNTS = ("rows", "entities", "distinct_texts", "inferences", "reused_from_history", "skipped_stored")


@step(experiment_tracker=EXPERIMENT_TRACKER)
def report_bootstrap(bootstrap_summary: dict) -> Annotated[HTMLString, "bootstrap_report_html"]:
    """Print and log what the run did (entities, distinct texts, inferences, skipped, throughput)."""
    s = bootstrap_summary
    mlflow.log_metrics({f"bootstrap/{k}": float(s[k]) for k in (*COUNTS, "entities_per_s", "inferences_per_s")})
    mlflow.log_params({"embedding_version": s["embedding_version"], "flipped": s["flipped"]})
    print(
        f"jude bootstrap: {s['entities']} entities -> {s['embedding_version']}: {s['rows']} rows, "
        f"{s['distinct_texts']} distinct texts, {s['inferences']} inferences, {s['skipped_stored']} skipped as "
        f"stored, {s['entities_per_s']:.1f} entities/s, flipped={s['flipped']}"
    )
    return HTMLString(bootstrap_html(s))
