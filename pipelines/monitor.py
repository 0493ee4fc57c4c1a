"""The monitor pipeline: embed reference and current windows with the champion, detect drift, alert."""

from zenml import pipeline
from zenml.enums import ExecutionMode

from steps.alert_on_drift import alert_on_drift
from steps.detect_drift import detect_drift
from steps.embed_windows import embed_windows
from steps.load_marketplace import load_marketplace
from zenml_glue.stop import before_each_step


@pipeline(execution_mode=ExecutionMode.FAIL_FAST, on_start=before_each_step)
def monitor_pipeline(monitor: dict | None = None, data: dict | None = None, registry: dict | None = None) -> None:
    jobs, members, interactions = load_marketplace(data)
    embeddings = embed_windows(jobs, members, interactions, monitor, data, registry)
    _, results = detect_drift(embeddings, monitor, registry)
    alert_on_drift(results, monitor)
