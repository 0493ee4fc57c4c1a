"""The deploy pipeline: load the challenger and gate it (promote_challenger), then deploy the champion."""

from zenml import pipeline
from zenml.enums import ExecutionMode

from steps.deploy_embedder import deploy_embedder
from steps.promote_challenger import promote_challenger
from zenml_glue.stop import before_each_step


@pipeline(execution_mode=ExecutionMode.FAIL_FAST, on_start=before_each_step)
def deploy_pipeline(
    deploy: dict | None = None,
    registry: dict | None = None,
    promotion: dict | None = None,
    dry_run: bool = False,
    output_dir: str | None = None,
) -> None:
    decision = promote_challenger(registry=registry, promotion=promotion)
    deploy_embedder(decision, deploy, dry_run, output_dir)
