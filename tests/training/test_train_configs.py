"""Every configs/*.yaml validates against its pipeline's model in jude.config; the GPU set-up says what it should."""

from pathlib import Path

import pytest

from jude.config import PIPELINE_CONFIGS, read_pipeline_config
from jude.training.hf_trainer import load_deepspeed_config, load_pipeline_config

ROOT = Path(__file__).resolve().parents[2]
ALL_CONFIGS = sorted((ROOT / "configs").glob("*.yaml"))
# configs read by a console command, not by run.py (jude nearline run --config configs/nearline.yaml)
COMMAND_CONFIGS = {"nearline.yaml", "team.yaml"}  # jude nearline run; jude team up (JUDE_TEAM=1)


def _pipeline(path: Path) -> str:
    """configs/<pipeline>[_<variant>].yaml"""
    return path.stem.split("_")[0]


RUN_CONFIGS = [p for p in ALL_CONFIGS if p.name not in COMMAND_CONFIGS]
TRAIN_CONFIGS = [p for p in RUN_CONFIGS if p.name.startswith("train")]


def test_every_config_is_a_pipeline_or_a_command_config():
    assert {p.name for p in ALL_CONFIGS if _pipeline(p) not in PIPELINE_CONFIGS} == COMMAND_CONFIGS


def test_the_nearline_config_validates():
    from jude.nearline.worker import load_config

    cfg = load_config(ROOT / "configs" / "nearline.yaml")
    assert cfg.targets and cfg.targets[0].embedding_version


def test_the_team_config_validates():
    from jude.team import load_team_config

    cfg = load_team_config(ROOT / "configs" / "team.yaml")
    assert cfg.mlflow and cfg.zenml


def test_there_are_configs_for_every_pipeline():
    assert {p.name for p in TRAIN_CONFIGS} >= {"train.yaml", "train_gpu_7b.yaml"}
    assert {_pipeline(p) for p in RUN_CONFIGS} == set(PIPELINE_CONFIGS)


@pytest.mark.parametrize("path", RUN_CONFIGS, ids=lambda p: p.name)
def test_every_run_config_validates_against_its_pipeline_model(path):
    cfg = read_pipeline_config(_pipeline(path), path)
    assert isinstance(cfg, PIPELINE_CONFIGS[_pipeline(path)])


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
        "lasttoken",
        "instruct",
        "bfloat16",
        "flash_attention_2",
    )
    assert cfg.lora.r == 16 and cfg.lora.target_modules == ["q_proj", "k_proj", "v_proj"]
    assert cfg.train.grad_accum > 1 and scale.gradient_checkpointing and scale.bf16 and scale.liger
    assert load_deepspeed_config(ROOT / scale.deepspeed)["zero_optimization"]["stage"] == 1


def test_an_unknown_field_names_the_file_and_field(tmp_path):
    bad = tmp_path / "train_bad.yaml"
    bad.write_text("parameters:\n  model: {pooling: lasttoken, flash: true}\n")
    with pytest.raises(ValueError, match="flash") as e:
        load_pipeline_config(bad)
    assert str(bad) in str(e.value)


def test_the_default_run_is_the_jude_chain_and_the_full_table_adds_the_controls():
    default = read_pipeline_config("train", ROOT / "configs" / "train.yaml").ablation
    assert default.distill and default.register_model == "selected" and not default.controls
    smoke = read_pipeline_config("train", ROOT / "configs" / "train_smoke.yaml").ablation
    assert (smoke.distill, smoke.register_model, smoke.controls) == (True, "selected", False)
    for name in ("train_full.yaml", "train_full_smoke.yaml"):
        full = read_pipeline_config("train", ROOT / "configs" / name).ablation
        assert full.distill and full.controls and full.register_model == "selected", name
