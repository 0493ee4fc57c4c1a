"""DeepSpeed ZeRO stage 1 through the HF Trainer, on CPU: one gloo process, run in a subprocess
so its process group never leaks into the other tests."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("deepspeed", reason="DeepSpeed is not installed (make setup installs it)")

from support import free_port  # noqa: E402
from tiny_hf_run import HERE  # noqa: E402

from jude.env import OFFLINE_ENV  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]

CHILD = r"""
import sys
import deepspeed.ops
# One CPU rank needs no shared-memory all-reduce: skip DeepSpeed's JIT build of that op (minutes on 2 cores).
deepspeed.ops.__compatible_ops__["deepspeed_shm_comm"] = False

from jude.config import LossConfig
from jude.env import OFFLINE_ENV
from tiny_hf_run import train_tiny

train_tiny(*sys.argv[1:4], max_steps=3, deepspeed_config="configs/deepspeed_zero1.json",
           loss_cfg=LossConfig(weights={"infonce": 1.0, "bce": 0.5, "vp_matrix": 0.5}))
"""


def test_zero1_trains_on_cpu_with_gloo_and_the_model_reloads(tmp_path):
    from jude.modeling.embedder import Embedder
    from jude.modeling.tiny import build_tiny_decoder

    base = build_tiny_decoder(tmp_path / "qwen2", "qwen2", hidden_size=32)
    env = {
        **os.environ,
        "MASTER_ADDR": "127.0.0.1",
        "MASTER_PORT": str(free_port()),
        "RANK": "0",
        "WORLD_SIZE": "1",
        "LOCAL_RANK": "0",
        "LOCAL_WORLD_SIZE": "1",
        **OFFLINE_ENV,
        "CUDA_VISIBLE_DEVICES": "",
        "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests"), HERE]),
    }
    result = tmp_path / "result.json"
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, str(base), str(tmp_path / "model"), str(result)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=540,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    out = json.loads(result.read_text())
    assert out["stats"]["zero_stage"] == 1 and out["stats"]["dist_backend"] == "gloo"
    assert out["stats"]["steps"] == 3 and out["stats"]["deepspeed"].endswith("deepspeed_zero1.json")
    losses = [h["train/loss"] for h in out["history"]]
    assert len(losses) == 3 and np.isfinite(losses).all()
    assert out["stats"]["losses"] == {"infonce": 1.0, "bce": 0.5, "vp_matrix": 0.5}
    assert (tmp_path / "model" / "interaction_head.pt").exists()  # the BCE head trained under ZeRO-1 too

    model = Embedder.load(tmp_path / "model")
    assert model.meta.extra["train"]["deepspeed"].endswith("deepspeed_zero1.json")
    emb = model.encode(["a data engineer in berlin", "a nurse"])
    assert emb.shape == (2, 32) and np.isfinite(emb).all()
