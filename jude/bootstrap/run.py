"""A bootstrap from its config: resolve the model, select the rows, embed into the stores (what the steps call)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from jude.bootstrap.backfill import BootstrapError, BootstrapReport, backfill, flip_active
from jude.bootstrap.bulk import BulkOptions
from jude.bootstrap.engines import make_engine
from jude.bootstrap.selection import history_rows, select, snapshot_rows
from jude.config import BootstrapConfig, DataConfig
from jude.stores.offline import DeltaHistory
from jude.stores.online import RedisOnlineStore


@dataclass(frozen=True)
class BootstrapModel:
    """The resolved model: where it is on disk, the embedding version it writes, its registry label."""

    model_dir: str
    embedding_version: str
    model_version: str


def resolve_model(cfg: BootstrapConfig, tracking_uri: str | None = None) -> BootstrapModel:
    """Resolve and download ``cfg.model_uri`` (a ``ModelURIError`` / ``ModelNotFoundError`` names it)."""
    from jude.registry.mlflow_registry import download_model
    from jude.registry.uri import resolve

    resolved = resolve(cfg.model_uri, tracking_uri)
    version = cfg.embedding_version or (f"{resolved.name}-{resolved.version}" if resolved.registered else None)
    if version is None:
        raise BootstrapError(
            f"bootstrap.embedding_version must be set for a model outside the registry, got None "
            f"(model_uri={cfg.model_uri!r})"
        )
    model_dir = download_model(resolved, tracking_uri=tracking_uri)
    return BootstrapModel(str(Path(model_dir)), version, resolved.label)


def selected_rows(cfg: BootstrapConfig, data: DataConfig, jobs: pd.DataFrame, members: pd.DataFrame) -> pd.DataFrame:
    """The change rows ``cfg`` selects: the tables' snapshot, or the synthetic history's row versions."""
    if cfg.history:
        from jude.data.synthetic import generate_marketplace

        rows = history_rows(generate_marketplace(data.synthetic))
    else:
        rows = snapshot_rows({"jobs": jobs, "members": members}, cfg.entity_types, table_name=data.path or "data")
    return select(rows, cfg.entity_types, cfg.ids, cfg.updated_from, cfg.updated_to)


def stores(cfg: BootstrapConfig) -> tuple[RedisOnlineStore, DeltaHistory]:
    import redis

    client = redis.Redis.from_url(cfg.redis_url)
    return RedisOnlineStore(client, prefix=cfg.online_prefix, dtype=cfg.online_dtype), DeltaHistory(cfg.history_path)


def run_bootstrap(cfg: BootstrapConfig, rows: pd.DataFrame, model: BootstrapModel) -> BootstrapReport:
    """Embed ``rows`` with ``model`` into the stores of ``cfg`` (no flip: :func:`flip` does it after)."""
    options = BulkOptions(
        token_budget=cfg.token_budget,
        threads=cfg.threads,
        quantize_int8=cfg.quantize_int8,
        float16_output=cfg.float16_output,
    )
    ray_kwargs = {"address": cfg.ray_address, "actors": cfg.ray_actors} if cfg.engine == "ray" else {}
    engine = make_engine(cfg.engine, model.model_dir, options, **ray_kwargs)
    online, history = stores(cfg)
    return backfill(
        rows, engine, online, history, model.embedding_version, model.model_version, chunk_size=cfg.chunk_size
    )


def flip(cfg: BootstrapConfig, rows: pd.DataFrame, embedding_version: str) -> dict[str, str | None]:
    """Flip every selected entity type's active version (refused while an entity lacks an embedding)."""
    online, _ = stores(cfg)
    return flip_active(online, rows, embedding_version)
