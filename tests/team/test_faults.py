"""Faults in team mode: each is a clear error that names what failed, and leaves nothing half-done.

- a database that is down, or a wrong password: ``jude team up`` stops before it starts anything;
- a tracking server that does not answer: ``run.py`` stops before any step runs;
- the tracking server killed (``kill -9``) in the middle of a run: the run fails naming the tracking URI, no
  version is registered from it, and the same command succeeds once the server is back.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from support import free_port

from jude.team import TeamConfig, TeamError, check_postgres, main, start_mlflow, tracking_failure

ROOT = Path(__file__).resolve().parents[2]


def test_a_postgres_that_is_down_is_named():
    port = free_port()
    with pytest.raises(TeamError, match=rf"cannot connect to PostgreSQL at 127.0.0.1:{port} \(user 'postgres'"):
        check_postgres(f"postgresql+psycopg2://postgres@127.0.0.1:{port}/jude_mlflow", create=True)


def test_a_bad_team_config_names_the_field(tmp_path):
    path = tmp_path / "team.yaml"
    path.write_text(yaml.safe_dump({"mlflow": {"port": 0}}))
    assert main(["status", "--config", str(path)]) == 2


def test_tracking_failure_names_the_uri_only_for_a_lost_server():
    cfg = TeamConfig.model_validate({"mlflow": {"port": 5999}})
    lost = ConnectionError("HTTPConnectionPool(host='127.0.0.1', port=5999): Max retries exceeded")
    msg = tracking_failure(RuntimeError("API request to http://127.0.0.1:5999/api failed").with_traceback(None), cfg)
    assert msg is None  # not a lost connection
    err = RuntimeError("step failed")
    err.__cause__ = lost
    msg = tracking_failure(err, cfg)
    assert msg is not None and "http://127.0.0.1:5999" in msg and "no model version was registered" in msg
    assert tracking_failure(ValueError("bad config field"), cfg) is None


@pytest.mark.services
def test_team_up_with_a_wrong_mariadb_password_starts_nothing(tmp_path, postgres, mariadb, capsys):
    path = tmp_path / "team.yaml"
    cfg = {
        "project": str(tmp_path),
        "mlflow": {"port": free_port(), "backend_store_uri": postgres},
        "zenml": {
            "port": free_port(),
            "database_admin_url": "mysql://root:not-the-password@127.0.0.1:3306/jude_zenml_test",
        },
    }
    path.write_text(yaml.safe_dump(cfg))
    assert main(["up", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert "cannot connect to MariaDB/MySQL at 127.0.0.1:3306 (user 'root'" in err and "Access denied" in err
    state = tmp_path / ".jude" / "team" / "state.json"
    assert not state.exists() or json.loads(state.read_text()) == {}  # no server was started


def test_run_py_stops_before_any_step_when_the_tracking_server_does_not_answer(tmp_path):
    port = free_port()
    path = tmp_path / "team.yaml"
    path.write_text(yaml.safe_dump({"project": str(tmp_path), "mlflow": {"port": port}}))
    env = {**os.environ, "JUDE_TEAM": str(path), "JUDE_HOME": str(tmp_path)}
    res = subprocess.run(
        [sys.executable, "run.py", "--pipeline", "train", "--config", "configs/train_smoke.yaml"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 1, res.stderr[-2000:]
    last = res.stderr.strip().splitlines()[-1]
    assert f"the MLflow tracking server at http://127.0.0.1:{port} does not answer" in last
    assert "has started" not in res.stdout + res.stderr  # no step ran


# A run as a training step makes it: metrics while it trains, then the model logged and registered.
RUN = """
import sys, time, mlflow
from jude.registry import mlflow_registry as reg
from jude.team import tracking_failure
name, model_dir, flag, steps = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
try:
    reg.configure(experiment="jude-fault-test")
    with mlflow.start_run():
        for step in range(steps):
            mlflow.log_metric("train/loss", 1.0 / (step + 1), step=step)
            if step == 2:
                open(flag, "w").write("training")
            time.sleep(0.2)
        eval_set = {"queries": {}, "corpus": {}, "relevant": {}}
        print("registered", reg.log_model_version(model_dir, name, eval_set=eval_set).version)
except Exception as e:
    print(f"error: {tracking_failure(e) or repr(e)}", file=sys.stderr)
    sys.exit(1)
"""


@pytest.mark.services
def test_killing_the_tracking_server_mid_run_fails_clearly_and_registers_nothing(
    postgres, tmp_path, tiny_model_dir, model_name
):
    from mlflow.tracking import MlflowClient

    from jude.team import down

    cfg = TeamConfig.model_validate(
        {"project": str(tmp_path), "mlflow": {"port": free_port(), "backend_store_uri": postgres, "workers": 1}}
    )
    check_postgres(postgres, create=True)
    start_mlflow(cfg)
    uri = cfg.mlflow.client_url
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": uri,
        "JUDE_HOME": str(tmp_path),
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1",
        "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "0",
    }
    flag = tmp_path / "training"
    cmd = [sys.executable, "-c", RUN, model_name, str(tiny_model_dir), str(flag)]
    try:
        proc = subprocess.Popen([*cmd, "400"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 120
        while not flag.exists() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.2)
        assert flag.exists(), proc.communicate()[1][-2000:]
        pid = json.loads((tmp_path / ".jude" / "team" / "state.json").read_text())["mlflow"]["pid"]
        os.killpg(pid, signal.SIGKILL)  # the server and its workers, mid-training
        out, err = proc.communicate(timeout=180)
        assert proc.returncode == 1, out + err
        assert f"the MLflow tracking server at {uri} stopped answering during the run" in err.strip().splitlines()[-1]

        start_mlflow(cfg)  # the server is back
        client = MlflowClient(uri)
        assert client.search_model_versions(f"name='{model_name}'") == []  # nothing half-registered
        res = subprocess.run([*cmd, "4"], env=env, capture_output=True, text=True, timeout=300)
        assert res.returncode == 0, res.stderr[-2000:]
        assert "registered 1" in res.stdout
        assert [v.version for v in client.search_model_versions(f"name='{model_name}'")] == ["1"]
    finally:
        down(cfg)
