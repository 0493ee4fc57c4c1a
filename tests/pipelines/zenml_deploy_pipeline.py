"""A test pipeline around the real deploy step (module level, so ZenML can load its steps by source)."""

from typing import Annotated

from zenml import pipeline, step

from steps.deploy_embedder import deploy_embedder


@step
def fixed_decision() -> Annotated[dict, "promotion_decision"]:
    """Stands in for the promotion gate: promoted version 3."""
    return {"promoted": True, "champion_version": "3", "model_uri": "models:/jude-embedder@champion"}


@pipeline(enable_cache=False)
def deploy_test_pipeline(deploy: dict, output_dir: str) -> None:
    deploy_embedder(fixed_decision(), deploy, True, output_dir)
