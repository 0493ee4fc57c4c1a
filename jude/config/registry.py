"""The ``registry:`` section (``RegistryConfig``): the MLflow registered model, experiment and tracking store."""

from __future__ import annotations

from pydantic import Field

from jude.config.base import _Section


class RegistryConfig(_Section):
    model_name: str = Field("jude-embedder", description="MLflow registered model and ZenML Model name.")
    experiment: str = Field("jude", description="MLflow experiment.")
    tracking_uri: str | None = Field(None, description="None: $MLFLOW_TRACKING_URI, else sqlite under .jude/.")
