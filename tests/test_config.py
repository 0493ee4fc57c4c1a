import pytest
from pydantic import ValidationError

from jude.config import DataConfig, LabelConfig, LoRAConfig, ModelConfig, TrainConfig, TrainPipelineConfig


def test_defaults_validate():
    cfg = TrainPipelineConfig()
    assert cfg.model.pooling == "mean" and cfg.lora.r > 0


@pytest.mark.parametrize("factory, field, value", [
    (lambda: TrainConfig(learning_rate=-1e-4), "learning_rate", "-0.0001"),
    (lambda: LoRAConfig(r=0), "lora.r", "0"),
    (lambda: ModelConfig(pooling="max-ish"), "pooling", "max-ish"),
    (lambda: LabelConfig(retrieved_fraction=0.9), "fractions", "1.4"),
    (lambda: LabelConfig(positive_actions=["click"]), "positive_actions", "click"),
    (lambda: DataConfig(source="files"), "data.path", "None"),
])
def test_impossible_values_name_field_and_value(factory, field, value):
    with pytest.raises(ValidationError) as e:
        factory()
    msg = str(e.value)
    assert field in msg and value in msg


def test_unknown_field_is_rejected():
    with pytest.raises(ValidationError, match="lerning_rate"):
        TrainConfig.model_validate({"lerning_rate": 1e-3})


@pytest.mark.parametrize("text, match", [
    (None, "does not exist"),
    ("parameters: [1, 2", "is not valid YAML"),
    ("- a\n- b\n", "expected a mapping at the top level, got list"),
    ("parameters: [1, 2]\n", "'parameters' must be a mapping, got list"),
])
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
    assert read_parameters(path) == run.load_parameters(path) == {"deploy": {"target": "local"}}
    assert _deploy_section(str(path)) == {"target": "local"} and read_run_config(path)["parameters"]
    (tmp_path / "empty.yaml").write_text("")
    assert read_parameters(tmp_path / "empty.yaml") == {}
    path.write_text(": : :")
    with pytest.raises(run.ConfigError, match="not valid YAML"):
        run.load_parameters(path)
    with pytest.raises(SystemExit, match="jude: config file .* is not valid YAML"):
        _deploy_section(str(path))
