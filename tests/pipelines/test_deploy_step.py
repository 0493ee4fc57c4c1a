"""The deploy step through ZenML: its DeploymentRecord artifact and metadata (Kubernetes dry run)."""

from __future__ import annotations

import pytest


@pytest.mark.slow
def test_deploy_step_records_the_deployment_as_an_artifact(zenml_home, mlflow_uri, tmp_path):
    from zenml.client import Client

    from jude.deploy.record import DeploymentRecord
    from tests.pipelines.zenml_deploy_pipeline import deploy_test_pipeline

    out = tmp_path / "manifests"
    run = deploy_test_pipeline(
        deploy={"target": "kubernetes", "kubernetes": {"namespace": "jude"}}, output_dir=str(out)
    )
    run = Client().get_pipeline_run(run.id)
    step_run = run.steps["deploy_embedder"]
    record = step_run.outputs["deployment"][0].load()
    assert isinstance(record, DeploymentRecord)
    assert record.status == "rendered" and record.model_version == "3" and record.namespace == "jude"
    assert len(list(out.glob("*.yaml"))) == 4
    assert step_run.run_metadata["target"] == "kubernetes"
    assert step_run.run_metadata["model_version"] == "3"
