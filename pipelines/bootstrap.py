"""The bootstrap pipeline: every selected entity embedded by a model version, into both stores.

load -> resolve the model -> select + embed + write (resumable) -> flip the active version -> report.
"""

from zenml import pipeline
from zenml.enums import ExecutionMode

from steps.bootstrap_embeddings import bootstrap_embeddings
from steps.flip_active_version import flip_active_version
from steps.load_marketplace import load_marketplace
from steps.report_bootstrap import report_bootstrap
from steps.resolve_bootstrap_model import resolve_bootstrap_model
from zenml_glue.stop import before_each_step


@pipeline(execution_mode=ExecutionMode.FAIL_FAST, on_start=before_each_step)
def bootstrap_pipeline(bootstrap: dict | None = None, data: dict | None = None) -> None:
    jobs, members, _ = load_marketplace(data)
    model = resolve_bootstrap_model(bootstrap)
    report = bootstrap_embeddings(jobs, members, model, bootstrap, data)
    summary = flip_active_version(jobs, members, report, bootstrap, data)
    report_bootstrap(summary)
