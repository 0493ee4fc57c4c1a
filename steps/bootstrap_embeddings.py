"""Select the entities and embed them into the online store and the offline history (resumable)."""

from typing import Annotated

import pandas as pd
from zenml import log_metadata, step

from jude.bootstrap.run import BootstrapModel, run_bootstrap, selected_rows
from jude.config import BootstrapConfig, DataConfig


@step(enable_cache=False)  # writes to the stores: never skipped from a cache
def bootstrap_embeddings(
    jobs: pd.DataFrame,
    members: pd.DataFrame,
    bootstrap_model: dict,
    bootstrap: dict | None = None,
    data: dict | None = None,
) -> Annotated[dict, "bootstrap_report"]:
    """Select -> template -> hash -> dedup -> embed -> write; returns the run's counts (BootstrapReport)."""
    cfg = BootstrapConfig.model_validate(bootstrap or {})
    rows = selected_rows(cfg, DataConfig.model_validate(data or {}), jobs, members)
    report = run_bootstrap(cfg, rows, BootstrapModel(**_model_fields(bootstrap_model)))
    out = report.to_dict()
    log_metadata({"bootstrap": {k: v for k, v in out.items() if isinstance(v, (int, float, str))}})
    return out


def _model_fields(info: dict) -> dict:
    return {
        "model_dir": info["model_dir"],
        "embedding_version": info["embedding_version"],
        "model_version": info["model"],
    }
