"""Load the marketplace tables: the synthetic default, or the user's files (validated)."""

from typing import Annotated

import pandas as pd
from zenml import log_metadata, step

from jude.config import DataConfig
from jude.data.io import marketplace_from_config


@step
def load_marketplace(
    data: dict | None = None,
) -> tuple[
    Annotated[pd.DataFrame, "jobs"],
    Annotated[pd.DataFrame, "members"],
    Annotated[pd.DataFrame, "interactions"],
]:
    """Generate the synthetic marketplace, or load and validate jobs/members/interactions from data.path."""
    cfg = DataConfig.model_validate(data or {})
    market = marketplace_from_config(cfg)
    log_metadata({"data": {"source": cfg.source, **market.summary()}})
    return market.jobs, market.members, market.interactions
