"""Kubernetes manifests (official schemas via kubernetes-validate) and the apply/rollout/rollback logic
(the kubernetes client against a loopback server that speaks its REST API)."""

from __future__ import annotations

import json

import kubernetes_validate
import pytest
import yaml

from jude.config import DeployConfig, KubernetesConfig, ServeConfig
from jude.deploy.kubernetes import (
    ManifestError,
    RolloutError,
    apply_manifests,
    render_manifests,
    validate_manifests,
    write_manifests,
)
from tests.deploy.fake_kube import FakeKube


def _cfg(**k8s) -> DeployConfig:
    return DeployConfig(
        target="kubernetes",
        model_uri="models:/jude-embedder@champion",
        serve=ServeConfig(max_batch_size=64),
        kubernetes=KubernetesConfig(**k8s),
    )


def _by_kind(manifests):
    return {m["kind"]: m for m in manifests}


@pytest.mark.parametrize(
    "k8s",
    [
        {},
        {
            "gpus": 1,
            "node_selector": {"pool": "gpu"},
            "api_key_secret": "jude-key",
            "service_type": "LoadBalancer",
            "drain_seconds": 0,
        },
    ],
)
@pytest.mark.parametrize("version", ["1.30", "1.33"])
def test_every_manifest_validates_against_the_official_schema(k8s, version):
    manifests = render_manifests(_cfg(**k8s), model_version="7")
    assert [m["kind"] for m in manifests] == ["Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget"]
    for m in manifests:
        assert kubernetes_validate.validate(m, version, strict=True)
    assert len(validate_manifests(manifests, version)) == 4


def test_deployment_has_probes_resources_drain_and_a_non_root_context():
    kinds = _by_kind(render_manifests(_cfg(gpus=2), model_version="7"))
    pod = kinds["Deployment"]["spec"]["template"]["spec"]
    c = pod["containers"][0]
    assert c["startupProbe"]["httpGet"]["path"] == "/ready"
    assert c["readinessProbe"]["httpGet"]["path"] == "/ready"
    assert c["livenessProbe"]["httpGet"]["path"] == "/health"
    assert c["startupProbe"]["failureThreshold"] * c["startupProbe"]["periodSeconds"] >= 600
    assert c["resources"]["limits"]["nvidia.com/gpu"] == "2"
    assert c["args"][-2:] == ["--device", "cuda"]
    assert c["resources"]["requests"] == {"cpu": "1", "memory": "2Gi", "nvidia.com/gpu": "2"}
    env = {e["name"]: e.get("value") for e in c["env"]}
    assert env["JUDE_MODEL_URI"] == "models:/jude-embedder@champion"
    assert json.loads(env["JUDE_SERVE_CONFIG"]) == {"max_batch_size": 64}
    assert c["lifecycle"]["preStop"]["exec"]["command"] == ["sleep", "10"]
    assert pod["terminationGracePeriodSeconds"] > 10
    assert pod["securityContext"]["runAsNonRoot"] is True and c["securityContext"]["runAsUser"] != 0
    assert c["securityContext"]["allowPrivilegeEscalation"] is False
    assert kinds["Deployment"]["spec"]["template"]["metadata"]["annotations"]["jude.dev/model-version"] == "7"
    assert kinds["HorizontalPodAutoscaler"]["apiVersion"] == "autoscaling/v2"
    assert kinds["PodDisruptionBudget"]["spec"]["minAvailable"] == 1
    svc_ports = {p["name"]: p["port"] for p in kinds["Service"]["spec"]["ports"]}
    assert svc_ports == {"http": 8080, "grpc": 50051}


def test_a_broken_manifest_fails_validation_naming_the_field():
    manifests = render_manifests(_cfg())
    manifests[0]["spec"]["replicas"] = "two"
    with pytest.raises(ManifestError, match=r"Deployment/jude-embedder: spec\.replicas"):
        validate_manifests(manifests, "1.30")


def test_impossible_config_values_are_refused():
    with pytest.raises(ValueError, match="min_replicas"):
        KubernetesConfig(min_replicas=5, max_replicas=2)
    with pytest.raises(ValueError, match="memory_limit"):
        KubernetesConfig(memory_limit="lots")
    with pytest.raises(ValueError, match="pdb_min_available"):
        KubernetesConfig(min_replicas=1, max_replicas=3, pdb_min_available=1)


def test_write_manifests_writes_one_yaml_file_per_object(tmp_path):
    manifests = render_manifests(_cfg())
    paths = write_manifests(manifests, tmp_path / "out")
    assert [p.name for p in paths] == [
        "01-deployment-jude-embedder.yaml",
        "02-service-jude-embedder.yaml",
        "03-horizontalpodautoscaler-jude-embedder.yaml",
        "04-poddisruptionbudget-jude-embedder.yaml",
    ]
    assert [yaml.safe_load(p.read_text()) for p in paths] == manifests
    assert not [p for p in (tmp_path / "out").iterdir() if p.name.startswith(".")]  # no temp files left


def test_apply_creates_then_patches_and_awaits_the_rollout():
    with FakeKube() as kube:
        api = kube.api_client()
        first = apply_manifests(
            render_manifests(_cfg(), model_version="1"), api, timeout_s=5, poll_s=0.01, log=lambda *_: None
        )
        assert set(first.actions.values()) == {"created"} and first.rolled_out and first.revision == "1"
        second = apply_manifests(
            render_manifests(_cfg(image="jude-serve:2"), model_version="2"),
            api,
            timeout_s=5,
            poll_s=0.01,
            log=lambda *_: None,
        )
        assert set(second.actions.values()) == {"patched"} and second.rolled_out and second.revision == "2"
        dep = kube.objects[("deployments", "default", "jude-embedder")]
        assert dep["spec"]["template"]["spec"]["containers"][0]["image"] == "jude-serve:2"
        assert len(kube.objects) == 4
        assert ("POST", "/apis/autoscaling/v2/namespaces/default/horizontalpodautoscalers") in kube.requests
        assert ("POST", "/apis/policy/v1/namespaces/default/poddisruptionbudgets") in kube.requests


def test_a_failed_rollout_is_rolled_back_to_the_previous_template():
    with FakeKube() as kube:
        api = kube.api_client()
        apply_manifests(
            render_manifests(_cfg(image="jude-serve:good"), model_version="1"),
            api,
            timeout_s=5,
            poll_s=0.01,
            log=lambda *_: None,
        )
        kube.bad_images.add("jude-serve:bad")
        with pytest.raises(RolloutError, match="rolled Deployment/jude-embedder back"):
            apply_manifests(
                render_manifests(_cfg(image="jude-serve:bad"), model_version="2"),
                api,
                timeout_s=0.3,
                poll_s=0.01,
                log=lambda *_: None,
            )
        dep = kube.objects[("deployments", "default", "jude-embedder")]
        assert dep["spec"]["template"]["spec"]["containers"][0]["image"] == "jude-serve:good"
        assert dep["spec"]["template"]["metadata"]["annotations"]["jude.dev/model-version"] == "1"
        assert ("PUT", "/apis/apps/v1/namespaces/default/deployments/jude-embedder") in kube.requests


def test_a_failed_first_rollout_says_there_is_nothing_to_roll_back_to():
    with FakeKube() as kube:
        kube.bad_images.add("jude-serve:bad")
        with pytest.raises(RolloutError, match="no previous version"):
            apply_manifests(
                render_manifests(_cfg(image="jude-serve:bad")),
                kube.api_client(),
                timeout_s=0.2,
                poll_s=0.01,
                log=lambda *_: None,
            )


# ---- the nearline worker beside the server -------------------------------------------------
def _nearline(**nearline) -> DeployConfig:
    return _cfg(nearline={"enabled": True, **nearline})


@pytest.mark.parametrize("version", ["1.30", "1.33"])
def test_the_nearline_worker_manifests_validate_and_are_off_by_default(version):
    assert len(render_manifests(_cfg())) == 4
    manifests = render_manifests(_cfg(api_key_secret="jude-key", nearline={"enabled": True}), model_version="7")
    assert [(m["kind"], m["metadata"]["name"]) for m in manifests[4:]] == [
        ("Deployment", "jude-embedder-nearline"),
        ("PodDisruptionBudget", "jude-embedder-nearline"),
    ]
    assert len(validate_manifests(manifests, version)) == 6


def test_the_nearline_worker_embeds_through_the_service_with_probes_and_a_drain():
    from jude.config import NearlineConfig

    worker_cfg = {"redis_url": "redis://redis:6379/0", "history_path": "s3://bucket/history", "batch_size": 64}
    manifests = render_manifests(_nearline(replicas=3, worker=worker_cfg), model_version="7")
    dep, pdb = manifests[4], manifests[5]
    pod = dep["spec"]["template"]["spec"]
    [c] = pod["containers"]
    assert c["args"] == ["nearline", "run"] and dep["spec"]["replicas"] == 3
    assert c["readinessProbe"]["httpGet"] == {"path": "/ready", "port": "metrics"}
    assert c["livenessProbe"]["httpGet"] == {"path": "/health", "port": "metrics"}
    assert c["ports"] == [{"containerPort": 9464, "name": "metrics", "protocol": "TCP"}]
    assert pod["terminationGracePeriodSeconds"] == 60  # SIGTERM finishes the batch in flight
    assert dep["spec"]["template"]["metadata"]["annotations"]["jude.dev/model-version"] == "7"  # rolls with the model
    env = {e["name"]: e.get("value") for e in c["env"]}
    worker = NearlineConfig.model_validate(json.loads(env["JUDE_NEARLINE_CONFIG"]))
    assert worker.targets[0].server == "jude-embedder.default.svc.cluster.local:50051"
    assert (worker.redis_url, worker.history_path, worker.metrics_host) == (
        "redis://redis:6379/0",
        "s3://bucket/history",
        "0.0.0.0",
    )
    assert "batch_size" not in json.loads(env["JUDE_NEARLINE_CONFIG"])  # only what differs from the defaults
    assert pdb["spec"]["minAvailable"] == 1
    assert pdb["spec"]["selector"]["matchLabels"] == dep["spec"]["selector"]["matchLabels"]
    server_selector = manifests[0]["spec"]["selector"]["matchLabels"]
    assert server_selector != dep["spec"]["selector"]["matchLabels"]  # the Service never routes to a worker


def test_nearline_settings_are_checked():
    with pytest.raises(ValueError, match="nearline.pdb_min_available must be < replicas"):
        KubernetesConfig(nearline={"enabled": True, "replicas": 1, "pdb_min_available": 1})
    with pytest.raises(ValueError, match="batch_size"):
        KubernetesConfig(nearline={"worker": {"batch_size": 0}})


def test_apply_awaits_the_worker_too_and_a_failed_worker_rolls_the_server_back_with_it():
    with FakeKube() as kube:
        api = kube.api_client()
        first = apply_manifests(
            render_manifests(_nearline(), model_version="1"), api, timeout_s=5, poll_s=0.01, log=lambda *_: None
        )
        assert first.rolled_out and first.revision == "1" and len(first.actions) == 6
        assert ("deployments", "default", "jude-embedder-nearline") in kube.objects
        kube.bad_images.add("jude-serve:bad")
        with pytest.raises(
            RolloutError, match="rolled Deployment/jude-embedder and Deployment/jude-embedder-nearline back"
        ):
            apply_manifests(
                render_manifests(_nearline(image="jude-serve:bad"), model_version="2"),  # the worker's image
                api,
                timeout_s=0.3,
                poll_s=0.01,
                log=lambda *_: None,
            )
        for name in ("jude-embedder", "jude-embedder-nearline"):
            dep = kube.objects[("deployments", "default", name)]
            assert dep["spec"]["template"]["metadata"]["annotations"]["jude.dev/model-version"] == "1"
