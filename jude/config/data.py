"""The ``data:`` section: where the marketplace comes from (``DataConfig``, ``SyntheticConfig``) and its time split."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from jude.config.base import Shift, _Section


class SyntheticConfig(_Section):
    """The embedded default: a seeded synthetic job marketplace."""

    n_jobs: int = Field(600, gt=0, description="Job postings to generate.")
    n_members: int = Field(400, gt=0, description="Members (each with a profile and a resume).")
    days: int = Field(90, ge=10, description="Length of the simulated period in days.")
    impressions_per_member: int = Field(30, gt=0, description="Jobs shown to each member over the period.")
    seed: int = Field(0, description="Everything generated is a function of this seed.")
    shift: Shift = Field(
        "none", description="Distribution shift for monitoring tests: new roles, new cities, another writing style."
    )
    world: Literal["synthetic", "grounded"] = Field(
        "synthetic",
        description="synthetic: the small hand-made world (17 role families, 27 cities, one style per field; the "
        "smoke world). grounded: real O*NET-SOC occupations with ESCO title variants and skills, US metropolitan "
        "areas with BLS OEWS employment and wages, several writing styles (jude/data/grounded/).",
    )
    occupations: int = Field(
        150, gt=1, description="world: grounded: the most-employed occupations a marketplace draws from."
    )
    areas: int = Field(
        150, gt=0, le=300, description="world: grounded: the largest metropolitan areas a marketplace draws from."
    )

    @model_validator(mode="after")
    def _check_world(self) -> SyntheticConfig:
        if self.world == "grounded" and self.shift != "none":
            raise ValueError(
                f"data.synthetic.shift must be 'none' when data.synthetic.world is 'grounded', got {self.shift!r}"
            )
        return self


class DataConfig(_Section):
    source: Literal["synthetic", "files"] = Field("synthetic", description="Generate data, or load the user's tables.")
    path: str | None = Field(
        None, description="Directory with jobs, members, interactions as .parquet or .csv (source=files)."
    )
    synthetic: SyntheticConfig = Field(default_factory=SyntheticConfig)
    val_fraction: float = Field(
        0.15, gt=0, lt=0.5, description="Last fraction of the period held for validation (by time)."
    )
    test_fraction: float = Field(
        0.2, gt=0, lt=0.5, description="Last fraction of the period held out for testing (by time)."
    )

    @model_validator(mode="after")
    def _check(self) -> DataConfig:
        if self.source == "files" and not self.path:
            raise ValueError("data.path must be set when data.source is 'files', got None")
        if self.val_fraction + self.test_fraction >= 0.8:
            raise ValueError(
                f"data.val_fraction + data.test_fraction must be < 0.8, got {self.val_fraction + self.test_fraction}"
            )
        return self
