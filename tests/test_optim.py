"""The shared optimisation bookkeeping: schedule, clipping, history and log."""

import math

import pytest
import torch

from jude.optim import OptimLoop


def _loop(**kw):
    w = torch.nn.Parameter(torch.zeros(3))
    logged = []
    args = dict(
        lr=0.1,
        weight_decay=0.0,
        warmup_ratio=0.25,
        total_steps=8,
        max_grad_norm=1.0,
        prefix="train",
        desc="t",
        log=lambda rec, step: logged.append((step, rec)),
        show_progress=False,
    )
    args.update(kw)
    return w, OptimLoop([w], **args), logged


def test_warmup_then_cosine_clipping_history_and_log():
    w, loop, logged = _loop()
    lrs = []
    for i in range(8):
        w.grad = torch.tensor([100.0, 0.0, 0.0])
        rec = loop.step(float(i), parts={"infonce": 0.5}, phase="p")
        lrs.append(rec["train/lr"])
        assert w.grad is None  # zeroed (set to None)
    assert loop.done and loop.steps == 8
    assert lrs[0] == pytest.approx(0.05) and lrs[1] == pytest.approx(0.1)  # 2 warmup steps
    assert lrs[-1] == pytest.approx(0.0, abs=1e-12)
    assert lrs[4] == pytest.approx(0.1 * 0.5 * (1 + math.cos(math.pi * 3 / 6)))
    assert loop.history[0] == {"step": 1, "phase": "p", "train/loss": 0.0, "train/lr": lrs[0], "train/infonce": 0.5}
    loop.record({"val/ndcg_at_10": 0.4}, phase="p")
    assert loop.history[-1] == {"step": 8, "phase": "p", "val/ndcg_at_10": 0.4}
    assert [s for s, _ in logged] == [1, 2, 3, 4, 5, 6, 7, 8, 8] and "phase" not in logged[0][1]
    loop.close()


def test_clipping_bounds_the_gradient_norm():
    w, loop, _ = _loop(warmup_ratio=0.0)
    w.grad = torch.tensor([30.0, 40.0, 0.0])
    seen = []  # the loop clips before stepping: look at the gradient the optimiser steps with
    loop.optimizer.register_step_pre_hook(lambda opt, args, kwargs: seen.append(w.grad.norm().item()))
    loop.step(1.0)
    assert seen == [pytest.approx(1.0)]


def test_linear_schedule_and_bad_total():
    _, loop, _ = _loop(schedule="linear", warmup_ratio=0.0, total_steps=4)
    lrs = [loop.step(0.0)["train/lr"] for _ in range(4)]
    assert lrs == pytest.approx([0.075, 0.05, 0.025, 0.0])
    with pytest.raises(ValueError, match="total_steps must be > 0, got 0"):
        _loop(total_steps=0)
