"""Every setting jude has, with its default, bounds and a one-line reason.

Defaults live here and only here. The YAML files in ``configs/`` list only what
differs. Each section is a pydantic model; impossible values raise a
``ValueError`` (pydantic ``ValidationError``) that names the field and the value.
Each pipeline has one model of its whole ``parameters:`` (``TrainPipelineConfig``,
``DeployPipelineConfig``, ``MonitorPipelineConfig``) that carries the rules
spanning sections; ``read_pipeline_config`` checks a run config file against it,
so ``run.py`` refuses a bad file before any step runs.

One validation style: ``Literal`` for enumerations (vocabularies shared with the
data come from ``jude/data/schema.py``), ``Field(gt=..., ge=...)`` for bounds, and
validators only for rules that relate several fields.

The models live in one module per domain, and this package re-exports every public name, so
``from jude.config import X`` is the one import: ``base`` (``_Section``, the shared vocabularies),
``data``, ``labels``, ``training`` (model, lora, train, loss, scale, teacher, distill, ablation),
``evaluation`` (eval, promotion), ``registry``, ``serving``, ``deploy``, ``nearline``, ``monitoring``,
``bootstrap``, ``ranker``, and ``pipelines`` (the pipeline models and the run-config readers), which
imports the domain modules; none of them imports it.
"""

from jude.config.base import POOLINGS, SHIFTS, Action, EntityType, LabelSource, MemberView, Pooling, Shift
from jude.config.bootstrap import BootstrapConfig
from jude.config.data import DataConfig, SyntheticConfig
from jude.config.deploy import DeployConfig, KubernetesConfig, LocalDeployConfig, NearlineDeployConfig
from jude.config.evaluation import EvalConfig, PromotionConfig
from jude.config.labels import JUDGE_ERROR_MODES, JudgeErrorConfig, JudgeErrorMode, LabelConfig, LLMJudgeConfig
from jude.config.monitoring import MonitorConfig
from jude.config.nearline import NearlineConfig, NearlineTargetConfig
from jude.config.pipelines import (
    PIPELINE_CONFIGS,
    RUN_CONFIG_KEYS,
    BootstrapPipelineConfig,
    ConfigFileError,
    DeployPipelineConfig,
    MonitorPipelineConfig,
    PipelineConfig,
    RankerPipelineConfig,
    TrainPipelineConfig,
    describe_validation_error,
    read_parameters,
    read_pipeline_config,
    read_run_config,
)
from jude.config.ranker import (
    RANKER_EMBEDDING_FEATURES,
    RANKER_STANDARD_FEATURES,
    EmbeddingFeature,
    RankerConfig,
    RankerGBMConfig,
    StandardFeature,
)
from jude.config.registry import RegistryConfig
from jude.config.retrieval import IndexKind, RetrievalConfig
from jude.config.serving import ServeConfig
from jude.config.training import (
    DISTILL_LOSSES,
    LOSS_NAMES,
    LOSS_VARIANTS,
    TEACHER_LOSSES,
    TEACHER_SCORE_LOSSES,
    AblationConfig,
    CurriculumPhase,
    DistillConfig,
    DistillLoss,
    LoRAConfig,
    LossConfig,
    LossVariant,
    ModelConfig,
    ScaleConfig,
    ScaleConfigError,
    TeacherConfig,
    TeacherLoss,
    TrainConfig,
    check_hf_losses,
    check_loss_weights,
    check_scale,
)

__all__ = [
    "AblationConfig",
    "Action",
    "BootstrapConfig",
    "BootstrapPipelineConfig",
    "ConfigFileError",
    "CurriculumPhase",
    "DISTILL_LOSSES",
    "DataConfig",
    "DeployConfig",
    "DeployPipelineConfig",
    "DistillConfig",
    "DistillLoss",
    "EmbeddingFeature",
    "EntityType",
    "EvalConfig",
    "IndexKind",
    "JUDGE_ERROR_MODES",
    "JudgeErrorConfig",
    "JudgeErrorMode",
    "KubernetesConfig",
    "LLMJudgeConfig",
    "LOSS_NAMES",
    "LOSS_VARIANTS",
    "LabelConfig",
    "LabelSource",
    "LoRAConfig",
    "LocalDeployConfig",
    "LossConfig",
    "LossVariant",
    "MemberView",
    "ModelConfig",
    "MonitorConfig",
    "MonitorPipelineConfig",
    "NearlineConfig",
    "NearlineDeployConfig",
    "NearlineTargetConfig",
    "PIPELINE_CONFIGS",
    "POOLINGS",
    "PipelineConfig",
    "Pooling",
    "PromotionConfig",
    "RANKER_EMBEDDING_FEATURES",
    "RANKER_STANDARD_FEATURES",
    "RUN_CONFIG_KEYS",
    "RankerConfig",
    "RankerGBMConfig",
    "RankerPipelineConfig",
    "RegistryConfig",
    "RetrievalConfig",
    "SHIFTS",
    "ScaleConfig",
    "ScaleConfigError",
    "ServeConfig",
    "Shift",
    "StandardFeature",
    "SyntheticConfig",
    "TEACHER_LOSSES",
    "TEACHER_SCORE_LOSSES",
    "TeacherConfig",
    "TeacherLoss",
    "TrainConfig",
    "TrainPipelineConfig",
    "check_hf_losses",
    "check_loss_weights",
    "check_scale",
    "describe_validation_error",
    "read_parameters",
    "read_pipeline_config",
    "read_run_config",
]
