"""The HF Trainer path: the same loss suite, accumulation and schedule, DeepSpeed config checks, the CLI."""

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from jude.cli import build_parser, main
from jude.config import LoRAConfig, LossConfig, ModelConfig, ScaleConfig, ScaleConfigError, TrainConfig
from jude.modeling.embedder import Embedder
from jude.modeling.tiny import build_tiny_decoder
from jude.training.hf_trainer import (
    DeepSpeedConfigError,
    load_deepspeed_config,
    train_with_hf_trainer,
)


@pytest.fixture(scope="module")
def qwen2_dir(tmp_path_factory):
    return build_tiny_decoder(tmp_path_factory.mktemp("hf") / "qwen2", "qwen2", hidden_size=32)


def _pairs(market, n=24):
    return pd.DataFrame(
        {
            "member_id": market.members["member_id"].iloc[:n].tolist(),
            "job_id": market.jobs["job_id"].iloc[:n].tolist(),
            "label": 1,
            "grade": 3,
            "source": "relevance",
        }
    )


def _model(path):
    return ModelConfig(
        base_model=str(path),
        pooling="lasttoken",
        template_style="instruct",
        max_length_job=48,
        max_length_profile=32,
        max_length_resume=48,
    )


def test_accumulation_steps_schedule_and_round_trip(tmp_path, qwen2_dir, small_market):
    # 24 pairs, batch 4 -> 6 micro-batches per epoch; accumulating 2 -> 3 optimiser steps per epoch
    train = TrainConfig(
        batch_size=4, grad_accum=2, epochs=2, learning_rate=1e-3, warmup_ratio=0.34, member_views=["profile"]
    )
    res = train_with_hf_trainer(
        _pairs(small_market),
        small_market.jobs,
        small_market.members,
        _model(qwen2_dir),
        LoRAConfig(r=4, alpha=8),
        train,
        tmp_path / "m",
        scale=ScaleConfig(logging_steps=1),
        show_progress=False,
    )
    assert res.stats["steps"] == 6 and [h["step"] for h in res.history] == [1, 2, 3, 4, 5, 6]
    losses = [h["train/loss"] for h in res.history]
    assert np.isfinite(losses).all() and abs(losses[0] - np.log(5)) < 0.2  # 4 in-batch + 1 hard negative
    lrs = [h["train/lr"] for h in res.history]  # the rate each step used: linear warmup, then cosine decay
    peak = int(np.argmax(lrs))
    assert lrs[0] == 0.0 and lrs[peak] == pytest.approx(1e-3) and 0 < peak < len(lrs) - 1
    assert all(a < b for a, b in zip(lrs[:peak], lrs[1 : peak + 1]))  # rises to the peak
    assert all(a > b for a, b in zip(lrs[peak:], lrs[peak + 1 :]))  # then decays
    cos = [1e-3 * 0.5 * (1 + np.cos(np.pi * (i - peak) / (len(lrs) - peak))) for i in range(peak, len(lrs))]
    assert np.allclose(lrs[peak:], cos)  # along a half cosine
    model = Embedder.load(tmp_path / "m")
    assert model.meta.extra["train"]["trainer"] == "hf" and model.meta.pooling == "lasttoken"
    emb = model.encode_entities("job", small_market.jobs.head(3))
    assert emb.shape == (3, 32) and np.isfinite(emb).all()


@pytest.mark.parametrize(
    "text, match",
    [
        ('{"zero_optimization": {"stage": 1}', "not valid JSON"),
        ('{"zero_optimization": {"stage": 5}}', "stage must be one of"),
        ('{"zero_optimization": {"stage": "auto"}}', "stage must be one of"),
        ("[1, 2]", "expected a JSON object"),
        ('{"optimizer": {"type": "AdamW"}}', "remove the 'optimizer' section"),
    ],
)
def test_a_bad_deepspeed_config_is_named_before_any_model_loads(tmp_path, small_market, text, match):
    bad = tmp_path / "ds.json"
    bad.write_text(text)
    with pytest.raises(DeepSpeedConfigError, match=match) as e:
        load_deepspeed_config(bad)
    assert str(bad) in str(e.value)
    # the trainer refuses it first: the base model (which does not exist) is never reached
    with pytest.raises(DeepSpeedConfigError, match=match):
        train_with_hf_trainer(
            _pairs(small_market),
            small_market.jobs,
            small_market.members,
            ModelConfig(base_model=str(tmp_path / "no-model")),
            LoRAConfig(r=4),
            TrainConfig(batch_size=4, max_steps=1),
            tmp_path / "m",
            deepspeed_config=str(bad),
        )
    assert not (tmp_path / "m").exists()


def test_missing_deepspeed_file_and_the_shipped_one(tmp_path):
    with pytest.raises(DeepSpeedConfigError, match="does not exist"):
        load_deepspeed_config(tmp_path / "nope.json")
    cfg = load_deepspeed_config("configs/deepspeed_zero1.json")
    assert cfg["zero_optimization"]["stage"] == 1 and cfg["bf16"]["enabled"] == "auto"


def test_the_loss_suite_runs_through_the_hf_trainer(tmp_path, small_market, qwen2_dir):
    import torch

    from jude.modeling.losses import InteractionHead

    def first_loss(loss_cfg, out):
        res = train_with_hf_trainer(
            _pairs(small_market),
            small_market.jobs,
            small_market.members,
            _model(qwen2_dir),
            LoRAConfig(r=4, alpha=8),
            TrainConfig(batch_size=4, max_steps=2, member_views=["profile"]),
            tmp_path / out,
            loss_cfg=loss_cfg,
            scale=ScaleConfig(logging_steps=1),
            show_progress=False,
        )
        assert np.isfinite([h["train/loss"] for h in res.history]).all() and res.stats["steps"] == 2
        return res, res.history[0]["train/loss"]

    suite = LossConfig(weights={"infonce": 1.0, "bce": 0.5, "vp_matrix": 0.5}, learn_temperature=True)
    res, loss_suite = first_loss(suite, "suite")
    _, loss_infonce = first_loss(LossConfig(learn_temperature=True), "infonce")
    assert res.stats["losses"] == {"infonce": 1.0, "bce": 0.5, "vp_matrix": 0.5}
    # same seed, same first batch: the suite adds 0.5 * BCE (about 0.5 * ln 2 untrained) + 0.5 * VP on top of InfoNCE
    assert loss_suite - loss_infonce > 0.2
    head = InteractionHead(32)
    head.load_state_dict(torch.load(tmp_path / "suite" / "interaction_head.pt"))  # kept for the BCE task
    assert Embedder.load(tmp_path / "suite").meta.extra["train"]["losses"] == res.stats["losses"]


def test_the_hf_trainer_validates_every_n_steps_and_logs_both_curves(tmp_path, small_market, split, qwen2_dir):
    logged: list[tuple[int, dict]] = []
    res = train_with_hf_trainer(
        _pairs(small_market),
        small_market.jobs,
        small_market.members,
        _model(qwen2_dir),
        LoRAConfig(r=4, alpha=8),
        TrainConfig(batch_size=4, max_steps=5, eval_every_steps=2, member_views=["profile"]),
        tmp_path / "m",
        scale=ScaleConfig(logging_steps=1),
        show_progress=False,
        val_set=split.val,
        log=lambda rec, step: logged.append((step, dict(rec))),
    )
    assert [h["step"] for h in res.history if "val/ndcg_at_10" in h] == [2, 4, 5]  # every 2 steps and the end
    assert [step for step, rec in logged if "val/ndcg_at_10" in rec] == [2, 4, 5]
    assert [step for step, rec in logged if "train/loss" in rec] == [1, 2, 3, 4, 5]
    assert res.history[-1]["step"] == 5 and "val/ndcg_at_10" in res.history[-1]
    losses = [h["train/loss"] for h in res.history if "train/loss" in h]
    assert np.isfinite(res.final_loss) and res.final_loss == losses[-1]


@pytest.mark.parametrize(
    "loss_cfg, match",
    [
        (LossConfig(weights={"infonce": 1.0, "margin_mse": 1.0}), r"\['margin_mse'\] need teacher scores"),
        (
            LossConfig(curriculum=[{"name": "relevance", "sources": ["relevance"], "steps_fraction": 1.0}]),
            r"loss.curriculum \(\['relevance'\]\) runs in the plain loop",
        ),
    ],
)
def test_what_the_hf_trainer_cannot_run_is_named_before_loading(tmp_path, small_market, loss_cfg, match):
    with pytest.raises(ScaleConfigError, match=match):
        train_with_hf_trainer(
            _pairs(small_market),
            small_market.jobs,
            small_market.members,
            _model(tmp_path / "no-such-model"),
            LoRAConfig(r=4),
            TrainConfig(batch_size=4, max_steps=1),
            tmp_path / "m",
            loss_cfg=loss_cfg,
        )


def test_cli_prepares_data_and_trains(tmp_path, qwen2_dir, capsys):
    cfg = tmp_path / "train_tiny.yaml"
    cfg.write_text(f"""
parameters:
  data:
    synthetic: {{n_jobs: 60, n_members: 50, days: 20, impressions_per_member: 10, seed: 3}}
  labels:
    budget: 200
    retrieved_fraction: 0.0
    random_fraction: 0.6
    interacted_fraction: 0.4
  model:
    base_model: {qwen2_dir}
    pooling: lasttoken
    template_style: instruct
    max_length_job: 48
    max_length_profile: 32
    max_length_resume: 48
  lora: {{r: 4, alpha: 8}}
  train: {{batch_size: 4, member_views: [profile]}}
  eval: {{max_queries: 10}}
  scale: {{logging_steps: 1}}
""")
    assert main(["train-hf", "--config", str(cfg), "--out", str(tmp_path / "run" / "model"), "--max-steps", "2"]) == 0
    out = capsys.readouterr().out
    summary = json.loads(out[out.rindex('{\n  "model_dir"') :])
    assert summary["steps"] == 2 and summary["world_size"] == 1 and summary["zero_stage"] is None
    assert (tmp_path / "run" / "data" / "pairs.parquet").exists()
    assert Embedder.load(tmp_path / "run" / "model").meta.extra["train"]["steps"] == 2


def test_cli_rejects_an_unknown_section(tmp_path):
    cfg = tmp_path / "train_bad.yaml"
    cfg.write_text("parameters:\n  scale: {gradient_checkpoint: true}\n")
    with pytest.raises(ValueError, match="gradient_checkpoint"):
        main(["train-hf", "--config", str(cfg)])


def test_the_cli_loads_no_training_code_until_train_hf_runs():
    code = (
        "import sys, jude.cli; jude.cli.build_parser(); "
        "print(sorted(m for m in ('torch', 'jude.training.hf_trainer', 'jude.training.data') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"  # the serving container starts without the training stack


def test_the_cli_accepts_the_local_rank_the_deepspeed_launcher_adds():
    parser = build_parser()
    # deepspeed puts it right after the module name, before the subcommand; accepted after it too
    for argv in (
        ["--local_rank=1", "train-hf", "--config", "c.yaml"],
        ["train-hf", "--config", "c.yaml", "--local_rank", "1"],
    ):
        args = parser.parse_args(argv)
        assert args.command == "train-hf" and args.config == "c.yaml" and args.local_rank == 1
