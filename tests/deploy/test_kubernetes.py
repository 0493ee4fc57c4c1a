"""Kubernetes manifests (official schemas via kubernetes-validate) and the apply/rollout/rollback logic
(the kubernetes client against a loopback server that speaks its REST API)."""

from __future__ import annotations

import json

import kubernetes_validate
import pytest
import yaml

from jude.config import DeployConfig, KubernetesConfig, ServeConfig
from jude.deploy.kubernetes import (ManifestError, RolloutError, apply_manifests, render_manifests,
                                    validate_manifests, write_manifests)
from tests.deploy.fake_kube import FakeKube


def _cfg(**k8s) -> DeployConfig:
    return DeployConfig(target="kubernetes", model_uri="models:/jude-embedder@champion",
                        serve=ServeConfig(max_batch_size=64), kubernetes=KubernetesConfig(**k8s))


def _by_kind(manifests):
    return {m["kind"]: m for m in manifests}


@pytest.mark.parametrize("k8s", [{}, {"gpus": 1, "node_selector": {"pool": "gpu"}, "api_key_secret": "jude-key",
                                      "service_type": "LoadBalancer", "drain_seconds": 0}])
@pytest.mark.parametrize("version", ["1.30", "1.33"])
def test_every_manifest_validates_against_the_official_schema(k8s, version):
    manifests = render_manifests(_cfg(**k8s), model_version="7")
    assert [m["kind"] for m in manifests] == ["Deployment", "Service", "HorizontalPodAutoscaler",
                                              "PodDisruptionBudget"]
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
    assert [p.name for p in paths] == ["01-deployment-jude-embedder.yaml", "02-service-jude-embedder.yaml",
                                       "03-horizontalpodautoscaler-jude-embedder.yaml",
                                       "04-poddisruptionbudget-jude-embedder.yaml"]
    assert [yaml.safe_load(p.read_text()) for p in paths] == manifests
    assert not [p for p in (tmp_path / "out").iterdir() if p.name.startswith(".")]  # no temp files left


def test_apply_creates_then_patches_and_awaits_the_rollout():
    with FakeKube() as kube:
        api = kube.api_client()
        first = apply_manifests(render_manifests(_cfg(), model_version="1"), api, timeout_s=5, poll_s=0.01,
                                log=lambda *_: None)
        assert set(first.actions.values()) == {"created"} and first.rolled_out and first.revision == "1"
        second = apply_manifests(render_manifests(_cfg(image="jude-serve:2"), model_version="2"), api, timeout_s=5,
                                 poll_s=0.01, log=lambda *_: None)
        assert set(second.actions.values()) == {"patched"} and second.rolled_out and second.revision == "2"
        dep = kube.objects[("deployments", "default", "jude-embedder")]
        assert dep["spec"]["template"]["spec"]["containers"][0]["image"] == "jude-serve:2"
        assert len(kube.objects) == 4
        assert ("POST", "/apis/autoscaling/v2/namespaces/default/horizontalpodautoscalers") in kube.requests
        assert ("POST", "/apis/policy/v1/namespaces/default/poddisruptionbudgets") in kube.requests


def test_a_failed_rollout_is_rolled_back_to_the_previous_template():
    with FakeKube() as kube:
        api = kube.api_client()
        apply_manifests(render_manifests(_cfg(image="jude-serve:good"), model_version="1"), api, timeout_s=5,
                        poll_s=0.01, log=lambda *_: None)
        kube.bad_images.add("jude-serve:bad")
        with pytest.raises(RolloutError, match="rolled Deployment/jude-embedder back"):
            apply_manifests(render_manifests(_cfg(image="jude-serve:bad"), model_version="2"), api, timeout_s=0.3,
                            poll_s=0.01, log=lambda *_: None)
        dep = kube.objects[("deployments", "default", "jude-embedder")]
        assert dep["spec"]["template"]["spec"]["containers"][0]["image"] == "jude-serve:good"
        assert dep["spec"]["template"]["metadata"]["annotations"]["jude.dev/model-version"] == "1"
        assert ("PUT", "/apis/apps/v1/namespaces/default/deployments/jude-embedder") in kube.requests


def test_a_failed_first_rollout_says_there_is_nothing_to_roll_back_to():
    with FakeKube() as kube:
        kube.bad_images.add("jude-serve:bad")
        with pytest.raises(RolloutError, match="no previous version"):
            apply_manifests(render_manifests(_cfg(image="jude-serve:bad")), kube.api_client(), timeout_s=0.2,
                            poll_s=0.01, log=lambda *_: None)
