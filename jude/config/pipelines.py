"""One model per pipeline, the whole ``parameters:`` of its run config, and the run-config readers.

``TrainPipelineConfig``, ``DeployPipelineConfig``, ``MonitorPipelineConfig``, ``BootstrapPipelineConfig``,
``RankerPipelineConfig`` (``PIPELINE_CONFIGS``) hold the domain sections and the rules spanning them.
``read_run_config`` / ``read_parameters`` read a run YAML and refuse top-level keys ZenML does not know
(``RUN_CONFIG_KEYS``); ``read_pipeline_config`` checks a file whole, raising ``ConfigFileError``.
This module imports the domain modules; none of them imports it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, ClassVar

from pydantic import Field, ValidationError, model_validator

from jude.config.base import _did_you_mean, _Section
from jude.config.bootstrap import BootstrapConfig
from jude.config.data import DataConfig
from jude.config.deploy import DeployConfig
from jude.config.evaluation import EvalConfig, PromotionConfig
from jude.config.labels import LabelConfig
from jude.config.monitoring import MonitorConfig
from jude.config.ranker import RankerConfig
from jude.config.registry import RegistryConfig
from jude.config.training import (
    AblationConfig,
    DistillConfig,
    LoRAConfig,
    LossConfig,
    ModelConfig,
    ScaleConfig,
    ScaleConfigError,
    TeacherConfig,
    TrainConfig,
    check_hf_losses,
    check_scale,
)

# The top-level keys of a ZenML run config (zenml.config.pipeline_run_configuration.PipelineRunConfiguration,
# ZenML 0.98; tests/test_config.py compares them with the installed ZenML). Listed here so a config file is
# checked without importing ZenML; ZenML itself ignores unknown keys, so `parameter:` would run the defaults.
RUN_CONFIG_KEYS = frozenset(
    {
        "build",
        "cache_policy",
        "cleanup_hook_source",
        "enable_artifact_metadata",
        "enable_artifact_visualization",
        "enable_cache",
        "enable_heartbeat",
        "enable_pipeline_logs",
        "enable_step_logs",
        "end_hook_source",
        "environment",
        "execution_mode",
        "extra",
        "failure_hook_source",
        "init_hook_kwargs",
        "init_hook_source",
        "model",
        "parameters",
        "pause_hook_source",
        "resume_hook_source",
        "retry",
        "run_name",
        "schedule",
        "secrets",
        "settings",
        "start_hook_source",
        "steps",
        "substitutions",
        "success_hook_source",
        "tags",
    }
)


class ConfigFileError(ValueError):
    """A run config that cannot be read; the message names the file and what is wrong with it."""


def read_run_config(path: str | os.PathLike) -> dict[str, Any]:
    """A run config YAML (``configs/*.yaml``) as a mapping; the one reader run.py, the CLIs and bench/ share.

    Besides parsing, it refuses top-level keys that ZenML's run configuration does
    not know (ZenML would silently ignore them: ``parameter:`` would run the defaults).
    """
    import yaml

    path = Path(path)
    if not path.is_file():
        raise ConfigFileError(f"config file {path} does not exist")
    try:
        doc = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise ConfigFileError(f"config file {path} is not valid YAML: {e}") from e
    if not isinstance(doc, dict):
        raise ConfigFileError(f"config file {path}: expected a mapping at the top level, got {type(doc).__name__}")
    unknown = [key for key in doc if key not in RUN_CONFIG_KEYS]
    if unknown:
        key = unknown[0]
        raise ConfigFileError(
            f"config file {path}: unknown top-level key {key!r}{_did_you_mean(key, RUN_CONFIG_KEYS)}; "
            f"jude's settings go under 'parameters:', and the other keys are ZenML's run configuration: "
            f"{sorted(RUN_CONFIG_KEYS)}"
        )
    params = doc.get("parameters")
    if params is not None and not isinstance(params, dict):
        raise ConfigFileError(f"config file {path}: 'parameters' must be a mapping, got {type(params).__name__}")
    return doc


def read_parameters(path: str | os.PathLike) -> dict[str, Any]:
    """The ``parameters:`` section of a run config (the pipeline's keyword arguments), ``{}`` when absent."""
    return dict(read_run_config(path).get("parameters") or {})


# ---- one model per pipeline: the whole `parameters:` of its run config ------------------------
class PipelineConfig(_Section):
    """The keyword arguments of one ``@pipeline`` function, each section validated by its model.

    A section left empty in the YAML (``deploy:`` with nothing under it, i.e. None)
    gets its defaults, as the steps do with ``section or {}``.
    """

    pipeline: ClassVar[str]

    @model_validator(mode="before")
    @classmethod
    def _known_sections(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        known = sorted(cls.model_fields)
        unknown = [name for name in data if name not in cls.model_fields]
        if unknown:
            raise ValueError(
                f"unknown parameter section(s) {unknown}{_did_you_mean(unknown[0], known)}; "
                f"the {cls.pipeline} pipeline takes {known}"
            )
        return {name: value for name, value in data.items() if value is not None}


class TrainPipelineConfig(PipelineConfig):
    """The ``parameters:`` section of a train YAML: one field per ``train_pipeline`` parameter."""

    pipeline: ClassVar[str] = "train"

    data: DataConfig = Field(default_factory=DataConfig)
    labels: LabelConfig = Field(default_factory=LabelConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    lora: LoRAConfig = Field(default_factory=LoRAConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    loss: LossConfig = Field(default_factory=LossConfig)
    scale: ScaleConfig = Field(default_factory=ScaleConfig)
    teacher: TeacherConfig = Field(default_factory=TeacherConfig)
    distill: DistillConfig = Field(default_factory=DistillConfig)
    ablation: AblationConfig = Field(default_factory=AblationConfig)
    eval: EvalConfig = Field(default_factory=EvalConfig)
    registry: RegistryConfig = Field(default_factory=RegistryConfig)
    promotion: PromotionConfig = Field(
        default_factory=PromotionConfig,
        description="The rule a first version must pass against the base model to become champion.",
    )

    @model_validator(mode="after")
    def _scale_fits_the_rest(self) -> TrainPipelineConfig:
        check_scale(self.model, self.scale)
        if self.scale.deepspeed:  # steps/finetune_embedder.py then trains through the HF Trainer
            try:
                check_hf_losses(self.loss)
            except ScaleConfigError as e:
                raise ScaleConfigError(
                    f"scale.deepspeed={self.scale.deepspeed!r} trains through the HF Trainer: {e}"
                ) from None
            if self.train.general_mix:
                raise ScaleConfigError(
                    f"scale.deepspeed={self.scale.deepspeed!r} trains through the HF Trainer, which does not mix "
                    f"general text: set train.general_mix: 0 (got {self.train.general_mix})"
                )
        return self


class DeployPipelineConfig(PipelineConfig):
    """The ``parameters:`` section of a deploy YAML: one field per ``deploy_pipeline`` parameter."""

    pipeline: ClassVar[str] = "deploy"

    deploy: DeployConfig = Field(default_factory=DeployConfig)
    registry: RegistryConfig = Field(default_factory=RegistryConfig)
    promotion: PromotionConfig = Field(default_factory=PromotionConfig)
    dry_run: bool = Field(False, description="Render the manifests, touch no cluster (run.py --dry-run).")
    output_dir: str | None = Field(None, description="Where --dry-run writes the manifests (run.py --output).")


class MonitorPipelineConfig(PipelineConfig):
    """The ``parameters:`` section of a monitor YAML: one field per ``monitor_pipeline`` parameter."""

    pipeline: ClassVar[str] = "monitor"

    monitor: MonitorConfig = Field(default_factory=MonitorConfig)
    data: DataConfig = Field(default_factory=DataConfig)
    registry: RegistryConfig = Field(default_factory=RegistryConfig)


class BootstrapPipelineConfig(PipelineConfig):
    """The ``parameters:`` section of a bootstrap YAML: one field per ``bootstrap_pipeline`` parameter."""

    pipeline: ClassVar[str] = "bootstrap"

    bootstrap: BootstrapConfig = Field(default_factory=BootstrapConfig)
    data: DataConfig = Field(default_factory=DataConfig)

    @model_validator(mode="after")
    def _history_needs_synthetic(self) -> BootstrapPipelineConfig:
        if self.bootstrap.history and self.data.source != "synthetic":
            raise ValueError(
                "bootstrap.history=true replays the synthetic marketplace's change history; "
                f"data.source must be 'synthetic', got {self.data.source!r}"
            )
        return self


class RankerPipelineConfig(PipelineConfig):
    """The ``parameters:`` section of a ranker YAML: one field per ``ranker_pipeline`` parameter.

    ``data``, ``train.seed`` and ``eval`` (max_queries, member_view) pick the test members exactly as the
    training pipeline does, so copy them from the champion's train config; ``model`` is the base model.
    """

    pipeline: ClassVar[str] = "ranker"

    ranker: RankerConfig = Field(default_factory=RankerConfig)
    data: DataConfig = Field(default_factory=DataConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    eval: EvalConfig = Field(default_factory=EvalConfig)
    registry: RegistryConfig = Field(default_factory=RegistryConfig)

    @model_validator(mode="after")
    def _history_needs_synthetic(self) -> RankerPipelineConfig:
        if self.ranker.build_history and self.data.source != "synthetic":
            raise ValueError(
                "ranker.build_history=true builds the history from the synthetic change stream; with "
                f"data.source={self.data.source!r} set it to false and point ranker.history_path at your history"
            )
        return self


PIPELINE_CONFIGS: dict[str, type[PipelineConfig]] = {
    "train": TrainPipelineConfig,
    "deploy": DeployPipelineConfig,
    "monitor": MonitorPipelineConfig,
    "bootstrap": BootstrapPipelineConfig,
    "ranker": RankerPipelineConfig,
}


def describe_validation_error(e: ValidationError) -> list[str]:
    """One line per problem: ``section.field: what is wrong (got value)``."""
    lines = []
    for err in e.errors():
        where = ".".join(str(p) for p in err["loc"])
        msg = err["msg"].removeprefix("Value error, ")  # our validators' messages name the value themselves
        if err["type"] != "value_error" and "input" in err:
            got = repr(err["input"])
            msg += f" (got {got if len(got) <= 80 else got[:77] + '...'})"
        lines.append(f"{where}: {msg}" if where else msg)
    return lines


def read_pipeline_config(pipeline: str, path: str | os.PathLike) -> PipelineConfig:
    """A run config file checked whole before anything runs: its top-level keys, then its ``parameters:``
    against the pipeline's model (every section and the rules between them).

    Raises :class:`ConfigFileError` naming the file and each problem's field and value.
    """
    if pipeline not in PIPELINE_CONFIGS:
        raise ValueError(f"pipeline must be one of {sorted(PIPELINE_CONFIGS)}, got {pipeline!r}")
    params = read_parameters(path)
    try:
        return PIPELINE_CONFIGS[pipeline].model_validate(params)
    except ValidationError as e:
        raise ConfigFileError(f"config file {path}:\n  " + "\n  ".join(describe_validation_error(e))) from e
