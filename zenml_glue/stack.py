"""The local ZenML stack jude runs on by default, registered idempotently.

``jude-local``: local orchestrator + local artifact store (ZenML's defaults),
the MLflow experiment tracker ``jude_mlflow`` and the MLflow model registry
``jude_registry``, both on the project's tracking store (sqlite under
``.jude/``, or ``$MLFLOW_TRACKING_URI``). A stack that already exists is reused;
a tracker that points at another store is re-pointed.
"""

from __future__ import annotations

import logging

from jude.registry.mlflow_registry import configure, resolve_tracking_uri

STACK_NAME = "jude-local"
EXPERIMENT = "jude"  # RegistryConfig.experiment's default: every pipeline logs into it
EXPERIMENT_TRACKER = "jude_mlflow"
MODEL_REGISTRY = "jude_registry"

log = logging.getLogger(__name__)


def ensure_local_stack(tracking_uri: str | None = None, activate: bool = True) -> str:
    """Register (when missing) and activate the local stack. Returns the tracking URI it uses."""
    from zenml.client import Client
    from zenml.enums import StackComponentType

    uri = resolve_tracking_uri(tracking_uri)
    # create the experiment ourselves so its artifacts live beside the store (.jude/mlartifacts),
    # not in an ./mlruns of whatever directory the pipeline was started from
    configure(uri, EXPERIMENT)
    client = Client()

    def component(name: str, flavor: str, ctype: StackComponentType, config: dict):
        try:
            existing = client.get_stack_component(ctype, name_id_or_prefix=name)
        except KeyError:
            return client.create_stack_component(name=name, flavor=flavor, component_type=ctype, configuration=config)
        if config and any(existing.configuration.get(k) != v for k, v in config.items()):
            return client.update_stack_component(name_id_or_prefix=name, component_type=ctype, configuration=config)
        return existing

    component(
        EXPERIMENT_TRACKER,
        "mlflow",
        StackComponentType.EXPERIMENT_TRACKER,
        {"tracking_uri": uri, "experiment_name": EXPERIMENT},
    )
    component(MODEL_REGISTRY, "mlflow", StackComponentType.MODEL_REGISTRY, {})
    try:
        client.get_stack(STACK_NAME)
    except KeyError:
        base = client.get_stack("default")
        client.create_stack(
            name=STACK_NAME,
            components={
                StackComponentType.ORCHESTRATOR: base.components[StackComponentType.ORCHESTRATOR][0].name,
                StackComponentType.ARTIFACT_STORE: base.components[StackComponentType.ARTIFACT_STORE][0].name,
                StackComponentType.EXPERIMENT_TRACKER: EXPERIMENT_TRACKER,
                StackComponentType.MODEL_REGISTRY: MODEL_REGISTRY,
            },
        )
        log.info("registered ZenML stack %s", STACK_NAME)
    if activate and client.active_stack_model.name != STACK_NAME:
        client.activate_stack(STACK_NAME)
    return uri
