"""Point readers at the new embedding version once every selected entity has one (optional)."""

from typing import Annotated

import pandas as pd
from zenml import log_metadata, step

from jude.bootstrap.run import flip, selected_rows
from jude.config import BootstrapConfig, DataConfig


@step(enable_cache=False)
def flip_active_version(
    jobs: pd.DataFrame,
    members: pd.DataFrame,
    bootstrap_report: dict,
    bootstrap: dict | None = None,
    data: dict | None = None,
) -> Annotated[dict, "bootstrap_summary"]:
    """Flip each entity type's ``active`` pointer (bootstrap.flip); refused while an entity lacks an embedding."""
    cfg = BootstrapConfig.model_validate(bootstrap or {})
    summary = dict(bootstrap_report)
    if cfg.flip:
        rows = selected_rows(cfg, DataConfig.model_validate(data or {}), jobs, members)
        summary["previous_active"] = flip(cfg, rows, summary["embedding_version"])
        summary["flipped"] = True
        log_metadata({"previous_active": summary["previous_active"], "active": summary["embedding_version"]})
    return summary
