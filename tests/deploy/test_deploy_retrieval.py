"""The deploy config's ``retrieval:`` section reaches the server the deploy pipeline starts: validated by
``RetrievalConfig``, passed as ``jude serve --recommend`` with ``$JUDE_RETRIEVAL_CONFIG`` (as ``serve:`` reaches it
as ``$JUDE_SERVE_CONFIG``), locally and on Kubernetes; ``jude serve`` reads it back to the same settings."""

from __future__ import annotations

import json

import pytest
import yaml
from pydantic import ValidationError

from jude.config import DeployConfig, RetrievalConfig
from jude.deploy import local
from jude.deploy.deployer import run_deployment
from jude.deploy.kubernetes import render_manifests, validate_manifests

RETRIEVAL = {"enabled": True, "redis_url": "redis://10.0.0.5:6379/2", "prefix": "prod:", "nprobe": 48, "max_k": 50}


def _deploy_yaml(tmp_path, retrieval: dict | None = RETRIEVAL) -> tuple[str, dict]:
    deploy = {"target": "local", "model_uri": "minilm", "serve": {"max_batch_size": 16}}
    deploy["local"] = {"port": 18080, "state_dir": str(tmp_path / "state")}
    if retrieval is not None:
        deploy["retrieval"] = retrieval
    path = tmp_path / "deploy.yaml"
    path.write_text(yaml.safe_dump({"parameters": {"deploy": deploy}}))
    return str(path), deploy


class _Started:
    """Stands in for the server process: records the command line and environment it was started with."""

    pid = 4242
    calls: list[tuple[list[str], dict]] = []

    def __init__(self, cmd, env=None, **kwargs):
        _Started.calls.append((list(cmd), dict(env or {})))

    def poll(self):
        return None


@pytest.fixture()
def started(monkeypatch):
    """deploy_local with the server process, /ready and the smoke request stubbed: what would it start?"""
    _Started.calls = []
    monkeypatch.setattr(local.subprocess, "Popen", _Started)
    monkeypatch.setattr(local, "wait_ready", lambda *a, **k: None)
    monkeypatch.setattr(local, "smoke_request", lambda *a, **k: {"latency_ms": 1.0, "dimension": 384})
    monkeypatch.delenv("JUDE_RETRIEVAL_CONFIG", raising=False)
    return _Started.calls


def _served_retrieval(cmd: list[str], env: dict, monkeypatch) -> RetrievalConfig | None:
    """What `jude serve` makes of that command line and environment: the RetrievalConfig its retriever gets."""
    from jude import cli
    from jude.retrieval import service

    got = {}
    monkeypatch.setattr(service, "Retriever", lambda store, rcfg: got.setdefault("cfg", rcfg))
    for key in ("JUDE_RETRIEVAL_CONFIG", "JUDE_SERVE_CONFIG"):
        monkeypatch.delenv(key, raising=False)
        if key in env:
            monkeypatch.setenv(key, env[key])
    args = cli.build_parser().parse_args(cmd[cmd.index("serve") :])
    cli._retriever(args)
    return got.get("cfg")


def test_the_retrieval_section_is_validated_with_the_deploy_config(tmp_path):
    cfg = DeployConfig.model_validate(_deploy_yaml(tmp_path)[1])
    assert cfg.retrieval.enabled and cfg.retrieval.nprobe == 48 and cfg.retrieval.prefix == "prod:"
    assert DeployConfig().retrieval == RetrievalConfig() and not DeployConfig().retrieval.enabled
    with pytest.raises(ValidationError, match="retrieval.nprobe"):
        DeployConfig.model_validate({"retrieval": {"nprobe": 0}})
    with pytest.raises(ValidationError, match="retrieval.nprob"):  # unknown keys are refused, as everywhere
        DeployConfig.model_validate({"retrieval": {"nprob": 8}})
    with pytest.raises(ValidationError, match="default_k"):
        DeployConfig.model_validate({"retrieval": {"default_k": 20, "max_k": 10}})


def test_a_local_deployment_serves_recommend_with_the_sections_settings(tmp_path, started, monkeypatch):
    path, _ = _deploy_yaml(tmp_path)
    from jude import cli

    cfg = cli._deploy_config(path)  # what `jude deploy local --config` and the deploy step validate
    record = local.deploy_local(cfg, log=lambda *_: None)
    assert record.status == "deployed"
    ((cmd, env),) = started
    assert cmd[cmd.index("serve") :] == [
        "serve", "--model", "minilm", "--host", "127.0.0.1", "--port", "18080", "--recommend",
    ]  # fmt: skip
    assert json.loads(env["JUDE_RETRIEVAL_CONFIG"]) == RETRIEVAL
    assert json.loads(env["JUDE_SERVE_CONFIG"]) == {"max_batch_size": 16}
    served = _served_retrieval(cmd, env, monkeypatch)
    assert served == RetrievalConfig.model_validate(RETRIEVAL)


def test_without_the_section_the_server_starts_as_before(tmp_path, started, monkeypatch):
    path, _ = _deploy_yaml(tmp_path, retrieval=None)
    from jude import cli

    local.deploy_local(cli._deploy_config(path), log=lambda *_: None)
    ((cmd, env),) = started
    assert "--recommend" not in cmd and "JUDE_RETRIEVAL_CONFIG" not in env
    assert _served_retrieval(cmd, env, monkeypatch) is None  # no /v1/recommend
    disabled = {**RETRIEVAL, "enabled": False}
    local.deploy_local(DeployConfig.model_validate(_deploy_yaml(tmp_path, disabled)[1]), log=lambda *_: None)
    cmd, env = started[-1]
    assert "--recommend" not in cmd and "JUDE_RETRIEVAL_CONFIG" not in env


def test_the_dry_run_says_what_would_be_served(tmp_path):
    cfg = DeployConfig.model_validate(_deploy_yaml(tmp_path)[1])
    record = run_deployment(cfg, {"promoted": True, "champion_version": "3"}, dry_run=True)
    assert "--recommend` with $JUDE_RETRIEVAL_CONFIG=" in record.detail and '"nprobe": 48' in record.detail


def test_kubernetes_pods_serve_recommend_with_the_sections_settings(monkeypatch):
    cfg = DeployConfig(target="kubernetes", retrieval=RetrievalConfig.model_validate(RETRIEVAL))
    manifests = render_manifests(cfg, model_version="7")
    validate_manifests(manifests, cfg.kubernetes.schema_version)
    c = manifests[0]["spec"]["template"]["spec"]["containers"][0]
    assert c["args"][-1] == "--recommend"
    env = {e["name"]: e.get("value") for e in c["env"]}
    assert json.loads(env["JUDE_RETRIEVAL_CONFIG"]) == RETRIEVAL
    assert _served_retrieval(["jude", *c["args"]], env, monkeypatch) == RetrievalConfig.model_validate(RETRIEVAL)
    plain = render_manifests(DeployConfig(target="kubernetes"), model_version="7")[0]
    c = plain["spec"]["template"]["spec"]["containers"][0]
    assert "--recommend" not in c["args"] and "JUDE_RETRIEVAL_CONFIG" not in {e["name"] for e in c["env"]}


def test_the_shipped_deploy_configs_still_validate():
    from jude.config import read_run_config

    for name in ("configs/deploy_local.yaml", "configs/deploy_k8s.yaml"):
        DeployConfig.model_validate(read_run_config(name)["parameters"]["deploy"])
