"""The ZenML side of team mode: log this machine's client in to the team's ZenML server, register ``jude-team``.

``jude team up`` and ``jude team join`` run this module as a subprocess (``python -m zenml_glue.team``) with the
team environment (:func:`jude.team.team_env`): ``ZENML_CONFIG_PATH`` is the project's own client configuration
(``.jude/team/zenml-client``), so ``zenml login``'s effect (the server URL and the credentials) lands there and
the user's default ZenML store stays as it was. ``run.py`` calls :func:`ensure_team_stack` in team mode.

The stack ``jude-team`` has the same component names as ``jude-local`` (the steps name the experiment tracker
``jude_mlflow``), pointing at the team's servers:

- orchestrator: the server's ``default`` (local: the steps run on the machine that started the run);
- artifact store ``jude_team_artifacts``: ``zenml.artifact_store`` of configs/team.yaml; a local directory here,
  ``s3://``, ``gs://`` or ``az://`` for machines that do not share a disk (ZenML's s3, gcp or azure integration);
- experiment tracker ``jude_mlflow`` and model registry ``jude_registry``: the MLflow tracking server.
"""

from __future__ import annotations

import logging
import os

from jude.registry.mlflow_registry import configure
from jude.team import TeamConfig, load_team_config, zenml_password
from zenml_glue.stack import EXPERIMENT, EXPERIMENT_TRACKER, MODEL_REGISTRY

STACK_NAME = "jude-team"
ARTIFACT_STORE = "jude_team_artifacts"
# ZenML's MLflow tracker demands a credential for an http(s) tracking URI. The tracking server that `jude team up`
# starts has no authentication (it binds to loopback by default), and ignores this bearer token; a server behind
# MLflow's basic-auth app (`--app-name basic-auth`) takes tracking_username/tracking_password instead.
NO_AUTH_TOKEN = "jude-team-no-auth"
ARTIFACT_FLAVORS = {"s3://": "s3", "gs://": "gcp", "az://": "azure", "abfs://": "azure"}

log = logging.getLogger(__name__)


def login(cfg: TeamConfig, password: str | None = None) -> None:
    """``zenml login <url>`` without a browser: the first user's name and password, kept in the client
    configuration's credentials store (ZenML trades them for a token on each connection)."""
    from zenml.client import Client
    from zenml.config.global_config import GlobalConfiguration
    from zenml.zen_stores.rest_zen_store import RestZenStoreConfiguration

    url = cfg.zenml.client_url
    store = GlobalConfiguration().store_configuration
    if store.url.rstrip("/") == url and os.environ.get("ZENML_CONFIG_PATH") == str(cfg.zenml_client_dir):
        try:
            Client().zen_store.get_store_info()
            return
        except Exception:  # expired or changed credentials: log in again
            pass
    GlobalConfiguration().set_store(
        RestZenStoreConfiguration(url=url, username=cfg.zenml.username, password=password or zenml_password(cfg))
    )


def ensure_team_stack(cfg: TeamConfig | None = None, activate: bool = True) -> str:
    """Register (when missing or changed) and activate ``jude-team`` on the ZenML server. Returns the tracking URI."""
    from zenml.client import Client
    from zenml.enums import StackComponentType

    cfg = cfg or load_team_config()
    uri = cfg.mlflow.client_url
    configure(uri, EXPERIMENT)  # the experiment, with its artifacts proxied by the server (mlflow-artifacts:/)
    client = Client()

    def component(name: str, flavor: str, ctype: StackComponentType, config: dict):
        try:
            existing = client.get_stack_component(ctype, name_id_or_prefix=name)
        except KeyError:
            return client.create_stack_component(name=name, flavor=flavor, component_type=ctype, configuration=config)
        if config and any(existing.configuration.get(k) != v for k, v in config.items() if k != "tracking_token"):
            return client.update_stack_component(name_id_or_prefix=name, component_type=ctype, configuration=config)
        return existing

    root = cfg.artifact_root(cfg.zenml.artifact_store)
    flavor = next((f for prefix, f in ARTIFACT_FLAVORS.items() if root.startswith(prefix)), "local")
    component(ARTIFACT_STORE, flavor, StackComponentType.ARTIFACT_STORE, {"path": root})
    component(
        EXPERIMENT_TRACKER,
        "mlflow",
        StackComponentType.EXPERIMENT_TRACKER,
        {"tracking_uri": uri, "experiment_name": EXPERIMENT, "tracking_token": NO_AUTH_TOKEN},
    )
    component(MODEL_REGISTRY, "mlflow", StackComponentType.MODEL_REGISTRY, {})
    try:
        client.get_stack(STACK_NAME)
    except KeyError:
        orchestrator = client.get_stack("default").components[StackComponentType.ORCHESTRATOR][0].name
        client.create_stack(
            name=STACK_NAME,
            components={
                StackComponentType.ORCHESTRATOR: orchestrator,
                StackComponentType.ARTIFACT_STORE: ARTIFACT_STORE,
                StackComponentType.EXPERIMENT_TRACKER: EXPERIMENT_TRACKER,
                StackComponentType.MODEL_REGISTRY: MODEL_REGISTRY,
            },
        )
        log.info("registered ZenML stack %s", STACK_NAME)
    if activate and client.active_stack_model.name != STACK_NAME:
        client.activate_stack(STACK_NAME)
    return uri


def main() -> int:
    cfg = load_team_config()
    login(cfg)
    uri = ensure_team_stack(cfg)
    print(
        f"ZenML client logged in to {cfg.zenml.client_url} as {cfg.zenml.username}; stack {STACK_NAME} active "
        f"(tracking {uri}; client configuration {cfg.zenml_client_dir})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
