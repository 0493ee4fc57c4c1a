"""The monitor pipeline: embed reference and current windows with the champion, detect drift, alert."""

from typing import Optional

from zenml import pipeline

from steps.alert_on_drift import alert_on_drift
from steps.detect_drift import detect_drift
from steps.embed_windows import embed_windows
from steps.load_marketplace import load_marketplace


@pipeline
def monitor_pipeline(monitor: Optional[dict] = None, data: Optional[dict] = None,
                     registry: Optional[dict] = None) -> None:
    jobs, members, interactions = load_marketplace(data)
    embeddings = embed_windows(jobs, members, interactions, monitor, data, registry)
    _, results = detect_drift(embeddings, monitor, registry)
    alert_on_drift(results, monitor)
