"""Resolve the bootstrap's model before anything is embedded: a URI that points at nothing fails here."""

from typing import Annotated

from zenml import log_metadata, step

from jude.bootstrap.run import resolve_model
from jude.config import BootstrapConfig


@step(enable_cache=False)  # the champion alias can move between runs
def resolve_bootstrap_model(bootstrap: dict | None = None) -> Annotated[dict, "bootstrap_model"]:
    """The model directory, the embedding version it writes and its registry label."""
    cfg = BootstrapConfig.model_validate(bootstrap or {})
    model = resolve_model(cfg)
    log_metadata({"model_uri": cfg.model_uri, "embedding_version": model.embedding_version})
    return {"model_dir": model.model_dir, "embedding_version": model.embedding_version, "model": model.model_version}
