"""Deploy the champion the promotion gate chose: a local server or Kubernetes (or a dry-run render)."""

from typing import Annotated

from zenml import log_metadata, step

from jude.config import DeployConfig
from jude.deploy.deployer import run_deployment
from jude.deploy.record import DeploymentRecord


@step(enable_cache=False)
def deploy_embedder(
    promotion_decision: dict, deploy: dict | None = None, dry_run: bool = False, output_dir: str | None = None
) -> Annotated[DeploymentRecord, "deployment"]:
    """Validate the deploy config, deploy (or render with dry_run), record target, address and version."""
    cfg = DeployConfig.model_validate(deploy or {})
    record = run_deployment(cfg, promotion_decision, dry_run=dry_run, output_dir=output_dir)
    log_metadata(
        {
            "deployment": record.model_dump(mode="json"),
            "target": record.target,
            "status": record.status,
            "address": record.address or "",
            "model_uri": record.model_uri,
            "model_version": record.model_version or "",
        }
    )
    return record
