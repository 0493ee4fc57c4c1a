"""In-batch negatives gathered across ranks: two real gloo processes under torchrun, on CPU.

The gathered loss and the gradients each rank's embeddings receive (after DDP's
average over ranks) must equal those of one process holding the whole global batch.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from support import free_port
from tiny_hf_run import HERE

from jude.env import OFFLINE_ENV
from jude.modeling.losses import info_nce
from jude.training.distributed import gather_batch, gather_objects, gather_with_grad, world_size

ROOT = Path(__file__).resolve().parents[2]
B, K, D, WORLD = 4, 2, 8, 2

# The global batch: job j0 sits at rank 0 row 0 and again at rank 1 row 1 (a cross-rank duplicate),
# and m5 (rank 1) has j2 (rank 0) as a known positive: both must be masked on the global batch.
MEMBERS = [f"m{i}" for i in range(B * WORLD)]
JOBS = ["j0", "j1", "j2", "j3", "j4", "j0", "j6", "j7"]
POSITIVES = {"m5": {"j2"}}
NEGATIVE_IDS = [[f"n{i}a", f"n{i}b"] for i in range(B * WORLD)]
NEGATIVE_IDS[6][0] = "j6"  # a hard negative that is the query's own positive


def global_tensors():
    g = torch.Generator().manual_seed(0)
    norm = torch.nn.functional.normalize
    return (
        norm(torch.randn(B * WORLD, D, generator=g), dim=-1),
        norm(torch.randn(B * WORLD, D, generator=g), dim=-1),
        norm(torch.randn(B * WORLD, K, D, generator=g), dim=-1),
    )


CHILD = r"""
import json, os, sys
import torch, torch.distributed as dist
from test_distributed import B, MEMBERS, JOBS, POSITIVES, NEGATIVE_IDS, global_tensors
from jude.env import OFFLINE_ENV
from jude.modeling.losses import info_nce
from jude.env import OFFLINE_ENV
from jude.training.distributed import gather_batch

dist.init_process_group("gloo")
rank, world = dist.get_rank(), dist.get_world_size()
out = {"rank": rank}
q_all, d_all, h_all = global_tensors()
sl = slice(rank * B, (rank + 1) * B)
q, d, h = (t[sl].clone().requires_grad_(True) for t in (q_all, d_all, h_all))
g = gather_batch(q, d, h, MEMBERS[sl], JOBS[sl], NEGATIVE_IDS[sl])
loss = info_nce(g.q, g.d, 0.05, hard_negatives=g.hard, symmetric=True, query_ids=g.member_ids, doc_ids=g.job_ids,
                positives=POSITIVES, hard_negative_ids=g.negative_ids)
loss.backward()
out.update(loss=loss.item(), world=g.world_size, local=g.local_size, members=g.member_ids,
           grads={k: (t.grad / world).tolist() for k, t in {"q": q, "d": d, "h": h}.items()})  # DDP averages over ranks
try:  # ranks with different batch sizes: a named error on every rank, not a hang
    gather_batch(q[: B - rank], d[: B - rank], None, MEMBERS[: B - rank], JOBS[: B - rank], None)
except ValueError as e:
    out["mismatch"] = str(e)
json.dump(out, open(os.path.join(sys.argv[1], f"rank{rank}.json"), "w"))
dist.barrier()
dist.destroy_process_group()
"""


def _torchrun(tmp_path, script: str | None, args: list[str], timeout: int) -> subprocess.CompletedProcess:
    """``WORLD`` CPU ranks of ``script`` (written to a file), or with ``script=None`` of ``args`` as they are."""
    target = []
    if script is not None:
        path = tmp_path / "child.py"
        path.write_text(script)
        target = [str(path)]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests"), HERE]),
        "CUDA_VISIBLE_DEVICES": "",
        **OFFLINE_ENV,
        "OMP_NUM_THREADS": "1",
    }
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nnodes",
        "1",
        "--nproc-per-node",
        str(WORLD),
        "--master-addr",
        "127.0.0.1",
        "--master-port",
        str(free_port()),
        *target,
        *args,
    ]
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


def test_one_process_is_a_pass_through():
    q = torch.randn(3, 4, requires_grad=True)
    assert world_size() == 1 and gather_with_grad(q) is q and gather_objects(("a", "b")) == ["a", "b"]
    g = gather_batch(q, q, None, ["m"] * 3, ["j"] * 3, None)
    assert g.world_size == 1 and g.local_size == 3 and g.negative_ids is None
    with pytest.raises(ValueError, match="together"):
        gather_batch(q, q, None, ["m"] * 3, ["j"] * 3, [["x"]] * 3)


def test_two_gloo_ranks_give_the_loss_and_gradients_of_one_global_batch(tmp_path):
    proc = _torchrun(tmp_path, CHILD, [str(tmp_path)], timeout=240)
    assert proc.returncode == 0, proc.stderr[-4000:]
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(WORLD)]

    q_all, d_all, h_all = (t.clone().requires_grad_(True) for t in global_tensors())
    loss = info_nce(
        q_all,
        d_all,
        0.05,
        hard_negatives=h_all,
        symmetric=True,
        query_ids=MEMBERS,
        doc_ids=JOBS,
        positives=POSITIVES,
        hard_negative_ids=NEGATIVE_IDS,
    )
    loss.backward()
    local = info_nce(q_all[:B], d_all[:B], 0.05, hard_negatives=h_all[:B], symmetric=True)  # no gathering
    assert abs(local.item() - loss.item()) > 1e-3  # the global batch really is a different loss

    for out in ranks:
        r = out["rank"]
        assert out["world"] == WORLD and out["local"] == B and out["members"] == MEMBERS
        assert out["loss"] == pytest.approx(loss.item(), rel=1e-5)
        for name, full in {"q": q_all, "d": d_all, "h": h_all}.items():
            np.testing.assert_allclose(
                np.array(out["grads"][name]),
                full.grad[r * B : (r + 1) * B].numpy(),
                rtol=1e-4,
                atol=1e-6,
                err_msg=f"rank {r} {name}",
            )
        assert "different shapes" in out["mismatch"] and "(4, 8)" in out["mismatch"] and "(3, 8)" in out["mismatch"]


HF_CHILD = r"""
import sys
from tiny_hf_run import train_tiny

train_tiny(*sys.argv[1:4], max_steps=2)
"""


def test_hf_trainer_on_two_gloo_ranks_scores_the_global_batch(tmp_path):
    from jude.modeling.embedder import Embedder
    from jude.modeling.tiny import build_tiny_decoder

    base = build_tiny_decoder(tmp_path / "qwen2", "qwen2", hidden_size=32)
    result = tmp_path / "result.json"
    proc = _torchrun(tmp_path, HF_CHILD, [str(base), str(tmp_path / "model"), str(result)], timeout=400)
    assert proc.returncode == 0, proc.stderr[-4000:]
    out = json.loads(result.read_text())
    assert out["stats"]["world_size"] == 2 and out["stats"]["dist_backend"] == "gloo"
    assert out["stats"]["in_batch_negatives"] == 4 * 2 - 1 and out["stats"]["steps"] == 2
    assert np.isfinite([h["train/loss"] for h in out["history"]]).all()
    emb = Embedder.load(tmp_path / "model").encode(["a data engineer in berlin"])
    assert emb.shape == (1, 32) and np.isfinite(emb).all()


def test_jude_train_hf_under_torchrun_shares_the_data_and_trains_on_two_ranks(tmp_path):
    from jude.modeling.embedder import Embedder
    from jude.modeling.tiny import build_tiny_decoder

    base = build_tiny_decoder(tmp_path / "qwen2", "qwen2", hidden_size=32)
    cfg = tmp_path / "train_tiny.yaml"
    cfg.write_text(f"""
parameters:
  data:
    synthetic: {{n_jobs: 60, n_members: 50, days: 20, impressions_per_member: 10, seed: 3}}
  labels: {{budget: 200, retrieved_fraction: 0.0, random_fraction: 0.6, interacted_fraction: 0.4}}
  model:
    base_model: {base}
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
    out = tmp_path / "run" / "model"
    args = ["-m", "jude.cli", "train-hf", "--config", str(cfg), "--out", str(out), "--max-steps", "2"]
    proc = _torchrun(tmp_path, None, args, timeout=400)
    assert proc.returncode == 0, proc.stderr[-4000:]
    summary = json.loads(proc.stdout[proc.stdout.rindex('{\n  "model_dir"') :])  # printed by rank 0 only
    assert proc.stdout.count('"model_dir"') == 1
    assert summary["world_size"] == 2 and summary["dist_backend"] == "gloo" and summary["steps"] == 2
    assert summary["in_batch_negatives"] == 4 * 2 - 1 and np.isfinite(summary["train_loss"])
    assert sorted(p.name for p in (tmp_path / "run" / "data").iterdir()) == [
        "jobs.parquet",
        "members.parquet",
        "pairs.parquet",
        "test_set.json",
    ]  # built by local rank 0, read by rank 1
    assert not [p for p in (tmp_path / "run").iterdir() if p.name.startswith(".data.")]  # no temporary copy left
    assert Embedder.load(out).meta.extra["train"]["world_size"] == 2
