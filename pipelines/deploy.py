"""The deploy pipeline: load the challenger and gate it (promote_challenger), then deploy the champion."""

from typing import Optional

from zenml import pipeline

from steps.deploy_embedder import deploy_embedder
from steps.promote_challenger import promote_challenger


@pipeline
def deploy_pipeline(deploy: Optional[dict] = None, registry: Optional[dict] = None,
                    promotion: Optional[dict] = None, dry_run: bool = False,
                    output_dir: Optional[str] = None) -> None:
    decision = promote_challenger(registry=registry, promotion=promotion)
    deploy_embedder(decision, deploy, dry_run, output_dir)
