"""Record a drift check in MLflow: one run named ``monitor`` in the project's experiment.

Metrics are ``drift/<entity>/<method>`` (``model`` = classifier ROC AUC,
``mmd`` = MMD^2), ``drift/<entity>/centroid_cosine_distance`` and friends, so
the scores of successive checks line up in the MLflow UI. The HTML report is
attached as ``monitor/drift_report.html``.
"""

from __future__ import annotations

import os
import tempfile

from jude.config import MonitorConfig, RegistryConfig
from jude.monitoring.drift import DriftResult

RUN_NAME = "monitor"


def log_drift_run(
    results: list[DriftResult], registry: RegistryConfig, monitor: MonitorConfig, html: str | None = None
) -> str:
    """Log the scores (and the report) to a new MLflow run; returns its run id."""
    import mlflow

    from jude.registry.mlflow_registry import configure

    configure(registry.tracking_uri, registry.experiment)
    prov = results[0].provenance if results else {}
    with mlflow.start_run(run_name=RUN_NAME) as run:
        mlflow.set_tags(
            {
                "jude.kind": "monitor",
                "jude.model_version": prov.get("model_version", ""),
                "jude.drifted": ",".join(r.entity_type for r in results if r.drifted) or "none",
            }
        )
        mlflow.log_params(
            {
                "method": monitor.method,
                "second_opinion": monitor.second_opinion,
                "model_threshold": monitor.model_threshold,
                "mmd_threshold": monitor.mmd_threshold,
                "current_days": monitor.current_days,
                "sample_size": monitor.sample_size,
                "synthetic_shift": monitor.synthetic_shift,
                **{f"model.{k}": v for k, v in prov.items()},
            }
        )
        metrics = {}
        for r in results:
            metrics.update({f"drift/{k}": v for k, v in r.metrics().items()})
        mlflow.log_metrics(metrics)
        for r in results:
            mlflow.log_dict(r.to_dict(), f"monitor/{r.entity_type}.json")
        if html is not None:
            with tempfile.TemporaryDirectory() as tmp:
                path = os.path.join(tmp, "drift_report.html")
                with open(path, "w", encoding="utf-8") as f:
                    f.write(html)
                mlflow.log_artifact(path, artifact_path="monitor")
        return run.info.run_id
