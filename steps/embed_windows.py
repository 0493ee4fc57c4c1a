"""Embed the reference and current windows of every monitored entity type with the champion."""

from typing import Annotated

import pandas as pd
from zenml import log_metadata, step

from jude.config import DataConfig, MonitorConfig, RegistryConfig
from jude.monitoring import drift as drift_lib
from jude.monitoring import windows as windows_lib


@step(enable_cache=False)  # the champion alias can move between runs
def embed_windows(
    jobs: pd.DataFrame,
    members: pd.DataFrame,
    interactions: pd.DataFrame,
    monitor: dict | None = None,
    data: dict | None = None,
    registry: dict | None = None,
) -> Annotated[pd.DataFrame, "window_embeddings"]:
    """Reference = entities of the training period, current = entities touched in the last N days.

    Returns one row per embedded entity (entity_type, window, entity_id, the
    model's version / base model / templates version, vector).
    """
    monitor_cfg = MonitorConfig.model_validate(monitor or {})
    data_cfg = DataConfig.model_validate(data or {})
    registry_cfg = RegistryConfig.model_validate(registry or {})
    embedder, version = windows_lib.load_monitored_model(monitor_cfg, registry_cfg)
    cur_jobs, cur_members = windows_lib.current_tables(jobs, members, data_cfg, monitor_cfg)
    sets = windows_lib.embed_windows(
        embedder,
        version,
        (jobs, members),
        (cur_jobs, cur_members),
        interactions,
        monitor_cfg,
        data_cfg.val_fraction,
        data_cfg.test_fraction,
    )
    log_metadata(
        {
            "model_version": version,
            "synthetic_shift": monitor_cfg.synthetic_shift,
            "windows": {f"{s.entity_type}/{s.window}": len(s) for s in sets},
        }
    )
    return drift_lib.to_frame(sets)
