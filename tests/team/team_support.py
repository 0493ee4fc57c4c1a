"""Helpers of the team-mode tests (plain functions and constants; the fixtures are in conftest.py)."""

from __future__ import annotations

from support import free_port

PG_URI = "postgresql+psycopg2://postgres@127.0.0.1:5432/jude_mlflow_test"
MARIADB_ADMIN = "mysql://root@127.0.0.1:3306/jude_zenml_test"


def team_config(tmp, mlflow_port: int | None = None, zenml_port: int | None = None):
    from jude.team import TeamConfig

    return TeamConfig.model_validate(
        {
            "project": str(tmp),
            "mlflow": {"port": mlflow_port or free_port(), "backend_store_uri": PG_URI, "workers": 1},
            "zenml": {"port": zenml_port or free_port(), "database_admin_url": MARIADB_ADMIN},
            "timeout_s": 240,
        }
    )
