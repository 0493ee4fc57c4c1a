"""ZenML Model version stages follow the MLflow aliases (zenml_glue/model_stages.py), on private stores."""

import pytest

from zenml_glue.model_stages import ARCHIVED, PRODUCTION, STAGING, main, sync_model_stages, target_stage

NAME = "jude-embedder"


def test_target_stage_reads_the_aliases():
    assert target_stage({"champion", "challenger"}, "none")[0] == PRODUCTION  # champion wins
    assert target_stage({"challenger"}, PRODUCTION)[0] == STAGING
    assert target_stage({"previous"}, PRODUCTION) == (
        ARCHIVED,
        "holds neither 'champion' nor 'challenger' any more (it holds ['previous'])",
    )
    assert target_stage(set(), "none") == (None, "")  # never staged: left alone


def _stages(client) -> dict[str, str]:
    return {
        str(v.name): str(getattr(v.stage, "value", v.stage) or "none") for v in client.list_model_versions(NAME).items
    }


@pytest.mark.slow
def test_stages_follow_the_aliases_after_registration_promotion_and_a_move_by_hand(mlflow_uri, zenml_home, capsys):
    from mlflow.tracking import MlflowClient
    from zenml import log_metadata
    from zenml.client import Client

    ml = MlflowClient(tracking_uri=mlflow_uri, registry_uri=mlflow_uri)
    ml.create_registered_model(NAME)
    zc = Client()
    zc.create_model(NAME)

    def register(crowned: bool = False) -> str:
        """An MLflow version that becomes challenger (and champion), and the ZenML version of 'its run'."""
        mv = ml.create_model_version(NAME, source="file:///nowhere")
        ml.set_registered_model_alias(NAME, "challenger", mv.version)
        if crowned:
            ml.set_registered_model_alias(NAME, "champion", mv.version)
        zv = zc.create_model_version(NAME)
        log_metadata({"mlflow_model": {"name": NAME, "version": str(mv.version)}}, model_version_id=zv.id)
        return str(mv.version)

    register(crowned=True)
    zc.create_model_version(NAME)  # ZenML version 2: a run that failed before registering (no metadata)
    sync_model_stages(NAME, mlflow_uri)
    assert _stages(zc) == {"1": PRODUCTION, "2": "none"}

    register()  # MLflow v2, ZenML version 3: the new challenger
    changes = sync_model_stages(NAME, mlflow_uri)
    assert _stages(zc) == {"1": PRODUCTION, "2": "none", "3": STAGING}
    assert [str(c) for c in changes] == [
        "ZenML version 3 (MLflow v2): none -> staging (holds the MLflow alias 'challenger')"
    ]

    # the gate promotes MLflow v2: champion v2, previous v1
    ml.set_registered_model_alias(NAME, "champion", "2")
    ml.set_registered_model_alias(NAME, "previous", "1")
    sync_model_stages(NAME, mlflow_uri)
    assert _stages(zc) == {"1": ARCHIVED, "2": "none", "3": PRODUCTION}

    # someone moves champion back to v1 in the MLflow UI, then runs `make sync-stages`
    ml.set_registered_model_alias(NAME, "champion", "1")
    assert main(["--tracking-uri", mlflow_uri]) == 0
    assert _stages(zc) == {"1": PRODUCTION, "2": "none", "3": STAGING}  # v2 is still challenger
    out = capsys.readouterr().out
    assert "ZenML version 1 (MLflow v1): archived -> production" in out
    assert "ZenML version 3 (MLflow v2): production -> staging" in out
    assert sync_model_stages(NAME, mlflow_uri) == []  # in step: nothing to do
