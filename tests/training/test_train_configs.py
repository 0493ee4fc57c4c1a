"""Every configs/train*.yaml validates against jude.config; the GPU set-up says what it should."""

from pathlib import Path

import pytest

from jude.training.hf_trainer import load_deepspeed_config, load_pipeline_config

ROOT = Path(__file__).resolve().parents[2]
TRAIN_CONFIGS = sorted((ROOT / "configs").glob("train*.yaml"))


def test_there_are_train_configs():
    assert {p.name for p in TRAIN_CONFIGS} >= {"train.yaml", "train_gpu_7b.yaml"}


@pytest.mark.parametrize("path", TRAIN_CONFIGS, ids=lambda p: p.name)
def test_train_config_validates(path):
    cfg, scale = load_pipeline_config(path)
    assert cfg.model.base_model and cfg.train.batch_size > 1
    if scale.deepspeed:
        load_deepspeed_config(ROOT / scale.deepspeed)


def test_the_7b_gpu_setup():
    cfg, scale = load_pipeline_config(ROOT / "configs" / "train_gpu_7b.yaml")
    m = cfg.model
    assert (m.pooling, m.template_style, m.dtype, m.attn_implementation) == (
        "lasttoken", "instruct", "bfloat16", "flash_attention_2")
    assert cfg.lora.r == 16 and cfg.lora.target_modules == ["q_proj", "k_proj", "v_proj"]
    assert cfg.train.grad_accum > 1 and scale.gradient_checkpointing and scale.bf16 and scale.liger
    assert load_deepspeed_config(ROOT / scale.deepspeed)["zero_optimization"]["stage"] == 1


def test_an_unknown_field_names_the_file_and_field(tmp_path):
    bad = tmp_path / "train_bad.yaml"
    bad.write_text("parameters:\n  model: {pooling: lasttoken, flash: true}\n")
    with pytest.raises(ValueError, match="flash") as e:
        load_pipeline_config(bad)
    assert str(bad) in str(e.value)
