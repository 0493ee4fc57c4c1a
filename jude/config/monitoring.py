"""The ``monitor:`` section (``MonitorConfig``): embedding drift between a reference and a current window."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from jude.config.base import EntityType, Shift, _Section
from jude.data.schema import ENTITY_TYPES


class MonitorConfig(_Section):
    """Embedding drift monitoring: the champion embeds a reference and a current window, Evidently compares them."""

    model_uri: str | None = Field(
        None,
        description="Model to monitor; None: models:/<registry.model_name>@champion. A local directory also works.",
    )
    entity_types: list[EntityType] = Field(
        default_factory=lambda: list(ENTITY_TYPES), min_length=1, description="Entity types to check."
    )
    current_days: int = Field(14, gt=0, description="Current window: entities created or updated in the last N days.")
    reference_end: str | None = Field(
        None, description="ISO date ending the reference window; None: end of the training period (data fractions)."
    )
    method: Literal["model", "mmd"] = Field(
        "model", description="Drift method that decides the alert: a classifier's ROC AUC, or kernel MMD^2."
    )
    second_opinion: Literal["model", "mmd", "none"] = Field(
        "mmd", description="Another Evidently method reported beside the first (never alerts on its own)."
    )
    sample_size: int = Field(
        1000,
        ge=20,
        description="Entities per window embedded and compared (seeded sample); "
        "caps MMD's (n+m)^2 kernel and the report's t-SNE, the slow parts.",
    )
    min_entities: int = Field(20, ge=2, description="A window with fewer entities is an error, not a verdict.")
    model_threshold: float = Field(
        0.65,
        gt=0.5,
        le=1.0,
        description="Alert when the window classifier's ROC AUC exceeds this "
        "(0.5 = indistinguishable; 0.65 is ~3 sigma of chance at 150 per window).",
    )
    mmd_threshold: float = Field(
        0.008,
        gt=0,
        description="Alert when the MMD^2 (median-heuristic RBF) exceeds this "
        "(no shift: < 0.002; the synthetic shifts: 0.012 and up).",
    )
    alert: Literal["fail", "warn"] = Field("fail", description="On drift: fail the step, or only log a warning.")
    synthetic_shift: Shift = Field(
        "none", description="Demo: the current window comes from a synthetic marketplace with this shift."
    )
    seed: int = Field(0, description="Seed of the window sampling.")
