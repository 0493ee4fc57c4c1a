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
