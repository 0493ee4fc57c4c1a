"""Team-mode fixtures: real servers on this machine's PostgreSQL and MariaDB, on free ports, in test databases.

The servers are started by ``jude.team`` itself (the code under test), with their state under a temporary
directory; the test databases (``jude_mlflow_test``, ``jude_zenml_test``) are kept between sessions, so only the
first session pays for ZenML's migrations. Each test uses its own registered model name, so they never collide.
"""

from __future__ import annotations

import socket
import uuid

import pytest
from team_support import MARIADB_ADMIN, PG_URI, team_config


def _listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture(scope="session")
def postgres():
    if not _listening(5432):
        pytest.skip("PostgreSQL is not running on 127.0.0.1:5432 (.ci/run starts it)")
    return PG_URI


@pytest.fixture(scope="session")
def mariadb():
    if not _listening(3306):
        pytest.skip("MariaDB is not running on 127.0.0.1:3306 (.ci/run starts it)")
    return MARIADB_ADMIN


@pytest.fixture(scope="session")
def mlflow_server(postgres, tmp_path_factory):
    """An MLflow tracking server on PostgreSQL (``jude.team.start_mlflow``); yields its TeamConfig."""
    from jude.team import check_postgres, down, start_mlflow

    cfg = team_config(tmp_path_factory.mktemp("team"))
    check_postgres(cfg.mlflow.backend_store_uri, create=True)
    start_mlflow(cfg)
    yield cfg
    down(cfg)


@pytest.fixture()
def tracking(mlflow_server, monkeypatch, tmp_path):
    """This test's process pointed at the tracking server, with the PostgreSQL promotion lock."""
    import mlflow

    from jude.team import team_env

    for key, value in team_env(mlflow_server).items():
        if key != "ZENML_CONFIG_PATH":
            monkeypatch.setenv(key, value)
    monkeypatch.setenv("JUDE_HOME", str(tmp_path))
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
    uri = mlflow_server.mlflow.client_url
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    yield mlflow_server
    mlflow.set_tracking_uri("")
    mlflow.set_registry_uri("")


@pytest.fixture()
def model_name():
    return f"jude-test-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    """What the registry logs, without weights: the gate's rankings are injected in these tests."""
    path = tmp_path_factory.mktemp("tiny-model") / "model"
    path.mkdir()
    (path / "config.json").write_text("{}")
    (path / "jude.json").write_text('{"base_model": "minilm"}')
    return path
