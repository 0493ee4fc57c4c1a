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
