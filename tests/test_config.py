"""jude.config: the section models, the pipeline models that hold them, and the run-config reader."""

from pathlib import Path

import pytest
from pydantic import ValidationError

from jude.config import (
    CurriculumPhase,
    DataConfig,
    EvalConfig,
    LabelConfig,
    ModelConfig,
    MonitorConfig,
    TrainConfig,
    TrainPipelineConfig,
)


def test_defaults_validate():
    cfg = TrainPipelineConfig()
    assert cfg.model.pooling == "mean" and cfg.lora.r > 0


@pytest.mark.parametrize(
    "factory, field, value",
    [
        (lambda: TrainConfig(learning_rate=-1e-4), "learning_rate", "-0.0001"),
        (lambda: TrainPipelineConfig.model_validate({"lora": {"r": 0}}), "lora.r", "input_value=0"),
        (lambda: ModelConfig(pooling="max-ish"), "pooling", "max-ish"),
        (lambda: LabelConfig(retrieved_fraction=0.9), "fractions", "1.4"),
        (lambda: LabelConfig(positive_actions=["click"]), "positive_actions", "click"),
        (lambda: DataConfig(source="files"), "data.path", "None"),
    ],
)
def test_impossible_values_name_field_and_value(factory, field, value):
    with pytest.raises(ValidationError) as e:
        factory()
    msg = str(e.value)
    assert field in msg and value in msg


def test_unknown_field_is_rejected():
    with pytest.raises(ValidationError, match="lerning_rate"):
        TrainConfig.model_validate({"lerning_rate": 1e-3})


@pytest.mark.parametrize(
    "text, match",
    [
        (None, "does not exist"),
        ("parameters: [1, 2", "is not valid YAML"),
        ("- a\n- b\n", "expected a mapping at the top level, got list"),
        ("parameters: [1, 2]\n", "'parameters' must be a mapping, got list"),
    ],
)
def test_a_bad_run_config_file_is_named(tmp_path, text, match):
    from jude.config import ConfigFileError, read_parameters

    path = tmp_path / "run.yaml"
    if text is not None:
        path.write_text(text)
    with pytest.raises(ConfigFileError, match=match) as e:
        read_parameters(path)
    assert str(path) in str(e.value)


def test_run_config_readers_share_one_parser(tmp_path):
    import run
    from jude.cli import _deploy_section
    from jude.config import read_parameters, read_run_config

    path = tmp_path / "deploy.yaml"
    path.write_text("parameters:\n  deploy: {target: local}\n")
    assert read_parameters(path) == {"deploy": {"target": "local"}}
    assert run.load_config("deploy", path).deploy.target == "local"
    assert _deploy_section(str(path)) == {"target": "local"} and read_run_config(path)["parameters"]
    (tmp_path / "empty.yaml").write_text("")
    assert read_parameters(tmp_path / "empty.yaml") == {}
    for text, match in ((": : :", "not valid YAML"), ("parameter:\n  deploy: {}\n", "unknown top-level key")):
        path.write_text(text)
        with pytest.raises(run.ConfigError, match=match):
            run.load_config("deploy", path)
        with pytest.raises(SystemExit, match=f"jude: config file .*{match}"):
            _deploy_section(str(path))


# ---- the top level of a run config --------------------------------------------------------
@pytest.mark.parametrize("key, hint", [("parameter", "did you mean 'parameters'"), ("enable_cashe", "enable_cache")])
def test_a_top_level_typo_is_refused_naming_the_key(tmp_path, key, hint):
    from jude.config import ConfigFileError, read_parameters

    path = tmp_path / "run.yaml"
    path.write_text(f"{key}:\n  train: {{max_steps: 1}}\n")
    with pytest.raises(ConfigFileError, match=f"unknown top-level key '{key}'") as e:
        read_parameters(path)
    assert hint in str(e.value) and str(path) in str(e.value)


def test_zenml_run_config_keys_are_accepted(tmp_path):
    from jude.config import read_run_config

    path = tmp_path / "run.yaml"
    path.write_text(
        "run_name: nightly\nenable_cache: false\ntags: [jude]\nsettings: {}\n"
        "steps: {finetune_embedder: {enable_cache: false}}\nparameters: {train: {max_steps: 1}}\n"
    )
    assert read_run_config(path)["run_name"] == "nightly"


def test_run_config_keys_are_zenmls():
    """The list jude checks without importing ZenML is the installed ZenML's run configuration."""
    from zenml.config.pipeline_run_configuration import PipelineRunConfiguration

    from jude.config import RUN_CONFIG_KEYS

    assert set(RUN_CONFIG_KEYS) == set(PipelineRunConfiguration.model_fields)


# ---- one model per pipeline ---------------------------------------------------------------
@pytest.mark.parametrize(
    "pipeline, section, hint",
    [
        ("train", "modle", "did you mean 'model'"),
        ("deploy", "deplyo", "did you mean 'deploy'"),
        ("monitor", "eval", ""),
    ],
)
def test_an_unknown_section_is_refused_naming_it_and_the_known_ones(pipeline, section, hint):
    from jude.config import PIPELINE_CONFIGS

    model = PIPELINE_CONFIGS[pipeline]
    with pytest.raises(ValidationError, match=f"unknown parameter section\\(s\\) \\['{section}'\\]") as e:
        model.model_validate({section: {}})
    assert hint in str(e.value) and str(sorted(model.model_fields)) in str(e.value)


def test_an_empty_section_gets_its_defaults():
    from jude.config import DeployPipelineConfig, MonitorPipelineConfig

    assert DeployPipelineConfig.model_validate({"deploy": None, "promotion": None}).deploy.target == "local"
    assert MonitorPipelineConfig.model_validate({"monitor": None}).monitor.entity_types == ["job", "profile", "resume"]


def test_each_pipeline_model_has_one_field_per_pipeline_parameter():
    """The models mirror the @pipeline functions' signatures (read from the source: no ZenML import)."""
    import ast
    from pathlib import Path

    from jude.config import PIPELINE_CONFIGS

    root = Path(__file__).resolve().parents[1] / "pipelines"
    for name, model in PIPELINE_CONFIGS.items():
        tree = ast.parse((root / f"{name}.py").read_text())
        fn = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == f"{name}_pipeline")
        assert [a.arg for a in fn.args.args] == list(model.model_fields), name


def test_scale_and_model_must_agree():
    with pytest.raises(ValidationError) as e:
        TrainPipelineConfig.model_validate({"model": {"dtype": "float16"}, "scale": {"bf16": True}})
    assert "scale.bf16=true" in str(e.value) and "model.dtype='float16'" in str(e.value)
    TrainPipelineConfig.model_validate({"model": {"dtype": "bfloat16"}, "scale": {"bf16": True}})


CURRICULUM = [{"name": "relevance", "sources": ["relevance"], "steps_fraction": 1.0}]


@pytest.mark.parametrize(
    "loss, named",
    [
        ({"curriculum": CURRICULUM}, "loss.curriculum (['relevance']) runs in the plain loop"),
        ({"weights": {"infonce": 1.0, "kl": 0.5}}, "['kl'] need teacher scores"),
    ],
)
def test_deepspeed_refuses_what_the_hf_trainer_cannot_run(loss, named):
    deepspeed = {"deepspeed": "configs/deepspeed_zero1.json"}
    with pytest.raises(ValidationError) as e:
        TrainPipelineConfig.model_validate({"loss": loss, "scale": deepspeed})
    assert "scale.deepspeed='configs/deepspeed_zero1.json'" in str(e.value) and named in str(e.value)
    TrainPipelineConfig.model_validate({"loss": loss})  # the plain loop runs both


def test_cross_section_checks_are_callable_alone():
    from jude.config import LossConfig, ScaleConfig, ScaleConfigError, check_hf_losses, check_scale

    with pytest.raises(ScaleConfigError, match="model.dtype='float16'"):
        check_scale(ModelConfig(dtype="float16"), ScaleConfig(bf16=True))
    with pytest.raises(ScaleConfigError, match="loss.curriculum"):
        check_hf_losses(LossConfig(curriculum=CURRICULUM))
    check_hf_losses(LossConfig(weights={"infonce": 1.0, "bce": 0.5, "kl": 0.0}))  # a zero weight is off


# ---- one validation style: vocabularies come from jude/data/schema.py ----------------------
@pytest.mark.parametrize(
    "make, vocab",
    [
        (lambda v: TrainConfig(member_views=[v]), "MEMBER_VIEWS"),
        (lambda v: EvalConfig(member_view=v), "MEMBER_VIEWS"),
        (lambda v: MonitorConfig(entity_types=[v]), "ENTITY_TYPES"),
        (lambda v: LabelConfig(positive_actions=[v], negative_actions=[]), "ACTIONS"),
        (
            lambda v: CurriculumPhase(name="p", sources=[v], epochs=1),
            "LABEL_SOURCES",
        ),
    ],
)
def test_vocabularies_are_the_schemas(make, vocab):
    from jude.data import schema

    for value in getattr(schema, vocab):
        make(value)
    with pytest.raises(ValidationError, match="input_value='nope'"):
        make("nope")


def _leaves(tree: dict, prefix: tuple = ()) -> list[tuple[tuple, object]]:
    out = []
    for key, value in tree.items():
        if isinstance(value, dict):
            out.extend(_leaves(value, (*prefix, key)))
        else:
            out.append(((*prefix, key), value))
    return out


def _commented(lines: list[str], key: str, value: object) -> bool:
    """True when the YAML line that sets ``key`` carries a comment, or the comment block just above it does
    (for a flow mapping, the line holding ``key:`` inside the braces)."""
    for i, line in enumerate(lines):
        stripped = line.split("#", 1)[0]
        if not (stripped.strip().startswith(f"{key}:") or f" {key}:" in stripped or f"{{{key}:" in stripped):
            continue
        if "#" in line:
            return True
        j = i - 1
        # up through blank lines, comment lines and parent keys (``ablation:  # why``) to the previous setting
        while j >= 0 and (not lines[j].split("#", 1)[0].strip() or lines[j].split("#", 1)[0].rstrip().endswith(":")):
            if "#" in lines[j]:
                return True
            j -= 1
    return False


def test_each_value_train_yaml_runs_is_the_default_or_says_why_it_differs():
    """#26: the defaults in jude/config/ are the values configs/train.yaml runs, or the YAML says why not."""
    from jude.config import TrainPipelineConfig, read_parameters

    path = Path(__file__).resolve().parents[1] / "configs" / "train.yaml"
    params = read_parameters(path)
    defaults = TrainPipelineConfig().model_dump()
    lines = path.read_text().splitlines()
    silent = []
    for keys, value in _leaves(params):
        default = defaults
        for k in keys:
            default = default[k]
        if value != default and not _commented(lines, keys[-1], value):
            silent.append(f"{'.'.join(keys)}: {value!r} (default {default!r})")
    assert not silent, "configs/train.yaml overrides defaults without saying why: " + "; ".join(silent)
