"""run_deployment (what the deploy step calls) and the `jude k8s render` command."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from jude.cli import main
from jude.config import DeployConfig, KubernetesConfig
from jude.deploy.deployer import run_deployment
from tests.deploy.fake_kube import FakeKube

DECISION = {"promoted": True, "champion_version": "4", "model_uri": "models:/jude-embedder@champion"}


def test_kubernetes_dry_run_writes_validated_manifests_and_touches_no_cluster(tmp_path):
    cfg = DeployConfig(target="kubernetes")
    record = run_deployment(cfg, DECISION, dry_run=True, output_dir=str(tmp_path), log=lambda *_: None)
    assert record.status == "rendered" and record.model_version == "4"
    assert len(record.manifests) == 4
    dep = yaml.safe_load((tmp_path / "01-deployment-jude-embedder.yaml").read_text())
    # the champion alias is pinned to the version the gate chose
    assert dep["spec"]["template"]["spec"]["containers"][0]["args"][2] == "models:/jude-embedder/4"
    assert record.model_uri == "models:/jude-embedder/4"
    assert record.address == "http://jude-embedder.default.svc.cluster.local:8080"


def test_kubernetes_apply_records_the_actions():
    cfg = DeployConfig(target="kubernetes", kubernetes=KubernetesConfig(namespace="jude", rollout_timeout_s=5))
    with FakeKube() as kube:
        record = run_deployment(cfg, DECISION, api_client=kube.api_client(), log=lambda *_: None)
    assert record.status == "deployed" and record.namespace == "jude"
    assert record.actions == {
        "Deployment/jude-embedder": "created",
        "Service/jude-embedder": "created",
        "HorizontalPodAutoscaler/jude-embedder": "created",
        "PodDisruptionBudget/jude-embedder": "created",
    }


def test_an_explicit_model_uri_in_the_config_wins_over_the_decision():
    record = run_deployment(DeployConfig(model_uri="minilm"), DECISION, dry_run=True)
    assert record.model_uri == "minilm" and "--model minilm" in record.detail
    assert record.model_version is None  # not the gate's version: that is another model
    pinned = run_deployment(DeployConfig(model_uri="models:/jude-embedder/2"), DECISION, dry_run=True)
    assert pinned.model_uri == "models:/jude-embedder/2" and pinned.model_version == "2"


def test_only_if_promoted_skips_when_the_gate_did_not_promote():
    cfg = DeployConfig(only_if_promoted=True)
    record = run_deployment(cfg, {**DECISION, "promoted": False})
    assert record.status == "skipped" and "did not promote" in record.detail


def test_local_dry_run_starts_nothing():
    record = run_deployment(DeployConfig(), DECISION, dry_run=True)
    assert record.status == "rendered" and record.pid is None and "jude serve" in record.detail


def test_cli_k8s_render(tmp_path, capsys):
    config = tmp_path / "deploy.yaml"
    config.write_text(
        yaml.safe_dump(
            {"parameters": {"deploy": {"target": "kubernetes", "kubernetes": {"gpus": 1, "image": "img:1"}}}}
        )
    )
    assert main(["k8s", "render", "--config", str(config), "--output", str(tmp_path / "out")]) == 0
    files = sorted((tmp_path / "out").glob("*.yaml"))
    assert len(files) == 4 and len(capsys.readouterr().out.splitlines()) == 4
    dep = yaml.safe_load(files[0].read_text())
    assert dep["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "1"


def test_cli_rejects_a_bad_config_naming_the_field(tmp_path):
    config = tmp_path / "deploy.yaml"
    config.write_text(yaml.safe_dump({"parameters": {"deploy": {"kubernetes": {"replicas": 0}}}}))
    with pytest.raises(SystemExit, match="kubernetes.replicas"):
        main(["k8s", "render", "--config", str(config), "--output", str(tmp_path / "out")])
    assert not (tmp_path / "out").exists()


def test_shipped_k8s_config_renders(tmp_path):
    config = Path(__file__).resolve().parents[2] / "configs" / "deploy_k8s.yaml"
    assert main(["k8s", "render", "--config", str(config), "--output", str(tmp_path)]) == 0
    assert len(list(tmp_path.glob("*.yaml"))) == 6  # the server's four, the nearline worker's Deployment and PDB


@pytest.mark.parametrize("target", ["local", "kubernetes"])
@pytest.mark.parametrize("dry_run", [False, True])
def test_no_champion_stops_before_anything_starts_with_the_gates_reason(target, dry_run, tmp_path):
    """The fresh clone's case: the gate kept v1 as challenger; nothing is started, rendered or applied."""
    from jude.deploy.deployer import NoChampionToDeploy

    kept = {
        "promoted": False,
        "champion_version": None,
        "challenger_version": "1",
        "model_name": "jude-embedder",
        "model_uri": "models:/jude-embedder@champion",
        "reason": "the first version, so compared with the base model: recall@100 falls by 0.0787",
    }
    cfg = DeployConfig(target=target)
    with pytest.raises(NoChampionToDeploy) as e:
        run_deployment(cfg, kept, dry_run=dry_run, output_dir=str(tmp_path), api_client=object(), log=print)
    msg = str(e.value)
    assert "kept v1 as challenger" in msg and "recall@100 falls by 0.0787" in msg
    assert "jude registry promote VERSION --reason TEXT" in msg
    assert list(tmp_path.iterdir()) == []  # no manifest written
    # a model named in the deploy config is still deployed without a champion
    assert run_deployment(DeployConfig(model_uri="minilm"), kept, dry_run=True).status == "rendered"
