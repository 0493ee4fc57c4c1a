"""target=local: a real `jude serve` subprocess with MiniLM, replaced blue/green by the next deploy."""

from __future__ import annotations

import socket

import httpx
import pytest

from jude.config import DeployConfig, LocalDeployConfig
from jude.deploy.local import LocalDeployError, deploy_local, is_our_server, read_state, stop_local


def _free_port_pair() -> int:
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port < 65000:
            with socket.socket() as s2:
                try:
                    s2.bind(("127.0.0.1", port + 1))
                except OSError:
                    continue
            return port
    raise RuntimeError("no free port pair")


def test_deploy_local_starts_smoke_tests_and_replaces_the_old_server(tmp_path):
    port = _free_port_pair()
    cfg = DeployConfig(
        model_uri="minilm", local=LocalDeployConfig(port=port, state_dir=str(tmp_path), ready_timeout_s=240)
    )
    try:
        first = deploy_local(cfg, log=lambda *_: None)
        assert first.status == "deployed" and first.address == f"http://127.0.0.1:{port}"
        assert first.smoke["dimension"] == 384 and is_our_server(first.pid)
        assert read_state(tmp_path)["pid"] == first.pid

        second = deploy_local(cfg, model_version="2", log=lambda *_: None)
        assert second.address == f"http://127.0.0.1:{port + 1}"  # the old server still held the port
        assert second.replaced_pid == first.pid
        assert not is_our_server(first.pid)
        assert read_state(tmp_path)["pid"] == second.pid and read_state(tmp_path)["model_version"] == "2"
        r = httpx.post(f"{second.address}/v1/entities/resume/embed", json={"entity": {"resume_text": "Java"}})
        assert r.status_code == 200
    finally:
        stopped = stop_local(tmp_path)
    assert stopped is not None and not is_our_server(stopped)
    assert read_state(tmp_path) is None


def test_a_model_that_cannot_load_fails_the_deploy_and_leaves_no_server(tmp_path):
    port = _free_port_pair()
    cfg = DeployConfig(
        model_uri=str(tmp_path / "no-model-here"),
        local=LocalDeployConfig(port=port, state_dir=str(tmp_path / "state"), ready_timeout_s=120),
    )
    (tmp_path / "no-model-here").mkdir()
    with pytest.raises(LocalDeployError, match="config.json"):
        deploy_local(cfg, log=lambda *_: None)
    assert read_state(tmp_path / "state") is None
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))  # the failed server is gone and released its port
