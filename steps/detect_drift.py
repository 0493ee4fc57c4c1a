"""Compare the windows with Evidently, per entity type; the HTML report, scores to MLflow."""

from typing import Annotated

import pandas as pd
from zenml import log_metadata, step
from zenml.types import HTMLString

from jude.config import MonitorConfig, RegistryConfig
from jude.monitoring import drift as drift_lib
from jude.monitoring.report import render_html
from jude.monitoring.tracking import log_drift_run


@step
def detect_drift(
    window_embeddings: pd.DataFrame, monitor: dict | None = None, registry: dict | None = None
) -> tuple[
    Annotated[HTMLString, "drift_report"],
    Annotated[dict, "drift_results"],
]:
    """Evidently EmbeddingsDrift (model-based by default, MMD second opinion) plus readable statistics.

    Never raises on drift itself: the report must be stored first; ``alert_on_drift`` decides.
    """
    monitor_cfg = MonitorConfig.model_validate(monitor or {})
    registry_cfg = RegistryConfig.model_validate(registry or {})
    sets = drift_lib.from_frame(window_embeddings)
    results = []
    for entity_type in monitor_cfg.entity_types:
        pair = [sets.get((entity_type, w)) for w in ("reference", "current")]
        if None in pair:
            raise drift_lib.DriftInputError(
                f"window_embeddings has no {'reference' if pair[0] is None else 'current'} window for {entity_type!r}"
            )
        results.append(drift_lib.detect_drift(pair[0], pair[1], monitor_cfg, report=True))
    html = render_html(results)
    run_id = log_drift_run(results, registry_cfg, monitor_cfg, html)
    scores = {}
    for r in results:
        scores.update(r.metrics())
    log_metadata({"drift": scores, "drifted": [r.entity_type for r in results if r.drifted], "mlflow_run_id": run_id})
    return HTMLString(html), {"mlflow_run_id": run_id, "results": [r.to_dict() for r in results]}
