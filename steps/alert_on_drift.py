"""Raise the drift alert (fail the step) or only warn, as monitor.alert says."""

from typing import Annotated

from zenml import log_metadata, step

from jude.config import MonitorConfig
from jude.monitoring import drift as drift_lib


@step(enable_cache=False)
def alert_on_drift(drift_results: dict, monitor: dict | None = None) -> Annotated[dict, "drift_verdict"]:
    """A separate step so the report of ``detect_drift`` is stored even when this one fails."""
    monitor_cfg = MonitorConfig.model_validate(monitor or {})
    results = [drift_lib.DriftResult.from_dict(d) for d in drift_results["results"]]
    verdict = {"drifted": [r.entity_type for r in results if r.drifted], "alert": monitor_cfg.alert}
    log_metadata({"drift_verdict": verdict})
    verdict["messages"] = drift_lib.check_alert(results, monitor_cfg)  # raises DriftAlert when alert == "fail"
    return verdict
