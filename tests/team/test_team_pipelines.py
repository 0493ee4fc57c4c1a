"""``jude team up`` for real (both servers, the client login, the stack), then run.py against it.

Slow (a ZenML server start, run.py's imports): marked ``slow`` and ``services``. The servers' state lives in
one directory kept between sessions (``$TMPDIR/jude-team-test``), so the ZenML test database keeps its first
user; without that directory the database is dropped and made again.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import yaml
from team_support import team_config

pytestmark = [pytest.mark.services, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]
PG_DB = "jude_mlflow_test_pipes"


@pytest.fixture(scope="module")
def team(postgres, mariadb):
    import psycopg2
    import pymysql

    from jude.team import down, up

    home = Path(tempfile.gettempdir()) / "jude-team-test"
    if not (home / ".jude" / "team" / "secrets.json").exists():  # a first user we cannot log in as: start over
        conn = pymysql.connect(host="127.0.0.1", user="root", password="", autocommit=True)
        conn.cursor().execute("DROP DATABASE IF EXISTS jude_zenml_test")
        conn.close()
    conn = psycopg2.connect(host="127.0.0.1", user="postgres", dbname="postgres")
    conn.autocommit = True
    conn.cursor().execute(f"DROP DATABASE IF EXISTS {PG_DB} WITH (FORCE)")  # a registry with no versions yet
    conn.close()
    home.mkdir(exist_ok=True)
    cfg = team_config(home)
    cfg.mlflow.backend_store_uri = f"postgresql+psycopg2://postgres@127.0.0.1:5432/{PG_DB}"
    path = home / "team.yaml"
    path.write_text(yaml.safe_dump(cfg.model_dump(exclude_none=True)))
    up(cfg, path)
    yield cfg, path
    down(cfg)


def test_team_up_again_reuses_both_servers_and_status_is_ok(team):
    from jude.team import status, up

    cfg, path = team
    lines = up(cfg, path)
    assert any("MLflow tracking server already running" in line for line in lines)
    assert any("ZenML server already running" in line for line in lines)
    ok, lines = status(cfg)
    assert ok, lines


def test_deploy_dry_run_gates_and_renders_the_team_champion(team, tmp_path):
    """A champion registered on the team server; run.py's deploy pipeline (gate + Kubernetes dry run) through the
    ZenML server renders manifests pinned to that version."""
    import mlflow

    from jude.config import ModelConfig
    from jude.modeling.embedder import Embedder
    from jude.registry import mlflow_registry as reg

    cfg, path = team
    uri = cfg.mlflow.client_url
    model = tmp_path / "model"
    Embedder.from_base(ModelConfig()).save(model)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    try:
        reg.configure(uri, "jude")
        with mlflow.start_run():
            eval_set = {"queries": {"q1": {}}, "corpus": {"j1": {}}, "relevant": {"q1": {"j1": 2}}}
            info = reg.log_model_version(model, "jude-embedder", eval_set=eval_set, first_champion=(True, "test"))
    finally:
        mlflow.set_tracking_uri("")
        mlflow.set_registry_uri("")
    out = tmp_path / "manifests"
    env = {**os.environ, "JUDE_TEAM": str(path), "JUDE_HOME": str(cfg.path("."))}
    env.pop("MLFLOW_TRACKING_URI", None)
    res = subprocess.run(
        [sys.executable, "run.py", "--pipeline", "deploy", "--config", "configs/deploy_k8s.yaml"]
        + ["--dry-run", "--output", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert res.returncode == 0, (res.stdout + res.stderr)[-3000:]
    assert f"mlflow={uri}" in res.stdout
    text = "\n".join(p.read_text() for p in out.rglob("*.yaml"))
    assert f"models:/jude-embedder/{info.version}" in text
