"""Resolve the ranker's two embedding models before anything is embedded: the base and the champion."""

from typing import Annotated

from zenml import log_metadata, step

from jude.config import ModelConfig, RankerConfig, RegistryConfig
from jude.ranker.run import resolve_models


@step(enable_cache=False)  # the champion alias can move between runs
def resolve_ranker_models(
    ranker: dict | None = None, model: dict | None = None, registry: dict | None = None
) -> Annotated[dict, "ranker_models"]:
    """role -> embedding version, label and model directory (the champion downloaded pinned)."""
    cfg = RankerConfig.model_validate(ranker or {})
    models = resolve_models(
        cfg, ModelConfig.model_validate(model or {}), RegistryConfig.model_validate(registry or {}).tracking_uri
    )
    out = {role: m.to_dict() for role, m in models.items()}
    log_metadata({"models": {role: {k: v for k, v in m.items() if v is not None} for role, m in out.items()}})
    return out
