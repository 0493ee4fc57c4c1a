"""make dashboard: a taken port is reported with what holds it, never hidden; no real UI is started here."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest
from support import free_port

from jude import dashboard


@pytest.fixture()
def isolated(tmp_path, monkeypatch):
    """Project state and ZenML configuration in tmp_path; starting either UI fails the test."""
    monkeypatch.setenv("JUDE_HOME", str(tmp_path))
    monkeypatch.setenv("ZENML_CONFIG_PATH", str(tmp_path / "zenml"))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")

    def must_not_start(*args, **kwargs):
        raise AssertionError("a UI was started although a port is taken")

    monkeypatch.setattr(dashboard, "start_mlflow", must_not_start)
    monkeypatch.setattr(dashboard, "start_zenml", must_not_start)
    return tmp_path


@pytest.fixture()
def listener():
    """A throwaway server socket on a free loopback port, held by this test process."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield s.getsockname()[1]


def test_a_taken_mlflow_port_exits_non_zero_naming_the_port_and_its_holder(isolated, listener, capsys):
    assert dashboard.main(["--mlflow-port", str(listener), "--no-zenml"]) == dashboard.EXIT_PORT_BUSY
    err = capsys.readouterr().err
    assert f"port {listener} (MLflow UI) is already in use by pid {os.getpid()}" in err
    assert "--mlflow-port" in err


def test_a_taken_zenml_port_stops_everything_before_the_mlflow_ui_starts(isolated, listener, capsys):
    argv = ["--mlflow-port", str(free_port()), "--zenml-port", str(listener)]
    assert dashboard.main(argv) == dashboard.EXIT_PORT_BUSY
    assert f"port {listener} (ZenML dashboard) is already in use" in capsys.readouterr().err


def test_the_mlflow_ui_this_module_started_is_reused_not_reported(isolated, listener):
    uri = os.environ["MLFLOW_TRACKING_URI"]
    state = {"mlflow": {"pid": os.getpid(), "port": listener, "store": uri}}  # "started" by this process
    (isolated / ".jude").mkdir()
    (isolated / ".jude" / "dashboard.json").write_text(json.dumps(state))
    assert dashboard.check_ports(listener, None, uri) == state["mlflow"]
    with pytest.raises(dashboard.DashboardError, match="on another store"):
        dashboard.check_ports(listener, None, "sqlite:////elsewhere/mlflow.db")


def test_a_ui_that_dies_before_answering_is_an_error_not_a_success(tmp_path):
    log = tmp_path / "ui.log"
    log.write_text("OSError: [Errno 98] Address already in use\n")
    proc = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    proc.wait()
    with pytest.raises(dashboard.DashboardError, match=r"exited with code 3(.|\n)*Address already in use"):
        dashboard.wait_for_http(f"http://127.0.0.1:{free_port()}/health", timeout=30, proc=proc, log=log)


def test_the_mlflow_links_open_the_training_view_of_the_latest_train_run(mlflow_uri):
    from mlflow.tracking import MlflowClient

    from jude.config import RegistryConfig
    from jude.registry import mlflow_registry as reg

    cfg = RegistryConfig()
    assert dashboard.mlflow_links("http://ui", mlflow_uri, None) == {}  # no experiment yet: no links
    reg.configure(mlflow_uri, cfg.experiment)
    client = MlflowClient(mlflow_uri)
    exp = client.get_experiment_by_name(cfg.experiment)
    assert exp.tags[reg.EXPERIMENT_KIND_TAG] == "custom_model_development"
    client.create_run(exp.experiment_id, run_name=f"{dashboard.TRAIN_PIPELINE}-old", start_time=1)
    newest = client.create_run(exp.experiment_id, run_name=f"{dashboard.TRAIN_PIPELINE}-new", start_time=2)
    client.create_run(exp.experiment_id, run_name="monitor_pipeline-x", start_time=3)  # not a train run
    links = dashboard.mlflow_links("http://ui", mlflow_uri, None)
    exp_id, run_id = exp.experiment_id, newest.info.run_id
    assert links == {
        "experiment": f"http://ui/#/experiments/{exp_id}?workflowType=machine_learning",
        "run": f"http://ui/#/experiments/{exp_id}/runs/{run_id}?workflowType=machine_learning",
    }
    client.create_registered_model(cfg.model_name)
    assert dashboard.mlflow_links("http://ui", mlflow_uri, None)["model"] == f"http://ui/#/models/{cfg.model_name}"


@pytest.fixture()
def team_servers(isolated, monkeypatch):
    """Two loopback HTTP servers that answer as the team's MLflow and ZenML servers, a team.yaml naming them, and
    JUDE_TEAM pointing at it (what `JUDE_TEAM=1 make dashboard` sees after `make team-up`)."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Answer(BaseHTTPRequestHandler):
        def _ok(self):
            known = ("/api/2.0/mlflow/experiments/search", "/api/v1/info")
            self.send_response(200 if self.path in known else 404)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(b"{}")

        do_GET = do_POST = _ok

        def log_message(self, *args):
            pass

    servers = [ThreadingHTTPServer(("127.0.0.1", 0), Answer) for _ in range(2)]
    for server in servers:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    mlflow_url, zenml_url = (f"http://127.0.0.1:{s.server_address[1]}" for s in servers)
    config = isolated / "team.yaml"
    config.write_text(f"mlflow: {{url: {mlflow_url}}}\nzenml: {{url: {zenml_url}}}\nstate_dir: {isolated / 'team'}\n")
    monkeypatch.setenv("JUDE_TEAM", str(config))
    yield mlflow_url, zenml_url
    for server in servers:
        server.shutdown()
        server.server_close()


def test_team_mode_prints_the_team_servers_and_starts_nothing(team_servers, isolated, monkeypatch, capsys):
    mlflow_url, zenml_url = team_servers
    seen = {}

    def latest_train_run(env):
        seen["zenml_config"] = env["ZENML_CONFIG_PATH"]
        return {"id": "r1", "name": "train_pipeline-2026", "status": "completed"}

    def mlflow_links(base, uri, run_name):
        seen["mlflow"] = (base, uri, run_name)
        return {"model": f"{base}/#/models/jude-embedder"}

    monkeypatch.setattr(dashboard, "latest_train_run", latest_train_run)
    monkeypatch.setattr(dashboard, "mlflow_links", mlflow_links)
    assert dashboard.main([]) == 0  # the isolated fixture fails the test if a UI is started
    out = capsys.readouterr().out
    assert f"MLflow UI:        {mlflow_url}  (the team's tracking server" in out
    assert f"ZenML dashboard:  {zenml_url}  (the team's ZenML server; user jude" in out
    assert f"- latest train run in ZenML (train_pipeline-2026, completed): {zenml_url}/projects/default/runs/r1" in out
    assert f"{mlflow_url}/#/models/jude-embedder" in out and "team's servers" in out
    # the links are read from the team's stores: its tracking server, the team client's ZenML configuration
    assert seen == {
        "zenml_config": str(isolated / "team" / "zenml-client"),
        "mlflow": (mlflow_url, mlflow_url, "train_pipeline-2026"),
    }


def test_team_mode_with_a_server_down_names_it_and_starts_nothing(isolated, monkeypatch, capsys):
    down = f"http://127.0.0.1:{free_port()}"
    config = isolated / "team.yaml"
    config.write_text(f"mlflow: {{url: {down}}}\nstate_dir: {isolated / 'team'}\n")
    monkeypatch.setenv("JUDE_TEAM_CONFIG", str(config))
    monkeypatch.delenv("JUDE_TEAM", raising=False)
    assert dashboard.main(["--team"]) == 1
    err = capsys.readouterr().err
    assert f"dashboard: team mode: the MLflow tracking server at {down} does not answer" in err
    assert "make team-up" in err


def test_stop_in_team_mode_leaves_the_team_servers_alone(isolated, monkeypatch, capsys):
    monkeypatch.setenv("JUDE_TEAM", "1")
    monkeypatch.setattr(dashboard, "_zenml_server_pid", lambda: None)
    assert dashboard.main(["--stop"]) == 0
    out = capsys.readouterr().out
    assert "the team servers keep running (`make team-down` stops them)" in out
    assert "no MLflow UI started by `make dashboard` is running" in out
