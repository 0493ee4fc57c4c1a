"""The ``bootstrap:`` section (``BootstrapConfig``): a bootstrap / backfill of one embedding version into both
stores."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from jude.config.base import _EMBEDDING_VERSION, EntityType, _Section
from jude.data.schema import ENTITY_TYPES


class BootstrapConfig(_Section):
    """A bootstrap / backfill: every selected entity embedded by one embedding version, into both stores."""

    model_uri: str = Field(
        "models:/jude-embedder@champion",
        min_length=1,
        description="The model: a registry URI, a directory or 'minilm'.",
    )
    embedding_version: str | None = Field(
        None,
        pattern=_EMBEDDING_VERSION,
        description="The version written. None: '<registered model>-<version>' (jude-embedder-3), as the nearline "
        "names it; a model outside the registry needs it set.",
    )
    entity_types: list[EntityType] = Field(
        default_factory=lambda: list(ENTITY_TYPES), min_length=1, description="Entity types to embed."
    )
    ids: list[str] | None = Field(None, min_length=1, description="Only these entity ids (None: all).")
    updated_from: str | None = Field(None, description="Only rows with updated_at >= this (ISO 8601; naive = UTC).")
    updated_to: str | None = Field(None, description="Only rows with updated_at < this (ISO 8601; naive = UTC).")
    history: bool = Field(
        False,
        description="Historical backfill: every row version of the synthetic marketplace's change history, not a "
        "snapshot (the offline history then has every past content; data.source must be synthetic).",
    )
    flip: bool = Field(True, description="Point readers at the version once every selected entity has an embedding.")
    engine: Literal["local", "ray"] = Field("local", description="In-process bulk path, or Ray Data ([ray] extra).")
    ray_address: str | None = Field(None, description="Ray cluster (ray://head:10001); None starts a local one.")
    ray_actors: int = Field(2, ge=1, description="Ray actors holding a model each.")
    chunk_size: int = Field(2000, ge=1, description="Entities embedded and written together (the resume checkpoint).")
    token_budget: int = Field(2048, ge=16, description="Padded tokens per batch (token-budget batching).")
    threads: int | None = Field(None, ge=1, description="torch CPU threads; None keeps torch's default.")
    quantize_int8: bool = Field(False, description="Approximate: dynamic int8 Linear layers (CPU).")
    float16_output: bool = Field(False, description="Approximate: vectors rounded to float16.")
    redis_url: str = Field("redis://127.0.0.1:6379/0", description="Redis of the online store.")
    online_prefix: str = Field("jude:", description="Key prefix of the online store.")
    online_dtype: Literal["float32", "float16"] = Field("float32", description="How vectors are stored online.")
    history_path: str = Field(
        ".jude/nearline/history", min_length=1, description="Delta table of the offline history (the nearline's)."
    )

    @model_validator(mode="after")
    def _window(self) -> BootstrapConfig:
        import pandas as pd

        for name in ("updated_from", "updated_to"):
            value = getattr(self, name)
            if value is not None:
                try:
                    pd.Timestamp(value)
                except (ValueError, TypeError):
                    raise ValueError(f"bootstrap.{name} must be an ISO 8601 time, got {value!r}") from None
        if self.updated_from and self.updated_to and pd.Timestamp(self.updated_from) >= pd.Timestamp(self.updated_to):
            raise ValueError(
                f"bootstrap.updated_from must be before updated_to, got {self.updated_from!r} >= {self.updated_to!r}"
            )
        return self
