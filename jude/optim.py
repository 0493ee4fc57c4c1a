"""The bookkeeping every jude training loop shares: AdamW, warmup + decay, clipping, steps, progress, history.

The bi-encoder fine-tune (``jude.training.trainer``), the cross-encoder teacher
(``jude.training.teacher``) and distillation (``jude.training.distill``)
differ in what a batch is and how its loss is computed; from ``loss.backward()``
on they do the same thing, here::

    loop = OptimLoop(params, lr=1e-3, weight_decay=0.01, warmup_ratio=0.1, total_steps=45,
                     max_grad_norm=1.0, prefix="train", desc="fine-tune (LoRA)", log=log)
    for batch in batches:
        loss = ...; loss.backward()
        loop.step(float(loss.detach()), parts={"infonce": 0.4})   # clip, step, schedule, record
        if loop.done: break
    loop.close()

Each recorded step is ``{"step": n, "<prefix>/loss": ..., "<prefix>/lr": ..., "<prefix>/<part>": ...}``
in ``loop.history`` and goes to ``log(record, step)`` (MLflow, through the step).
``<prefix>/lr`` is the rate the *next* step will use (``get_last_lr`` after the
scheduler step), as the loops always logged it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, Literal

import torch

LogFn = Callable[[dict[str, float], int], None]


class OptimLoop:
    """AdamW over ``params`` with linear warmup then cosine (or linear) decay to 0 over ``total_steps``."""

    def __init__(
        self,
        params: Iterable[torch.nn.Parameter],
        *,
        lr: float,
        weight_decay: float,
        warmup_ratio: float,
        total_steps: int,
        max_grad_norm: float,
        prefix: str,
        desc: str,
        schedule: Literal["cosine", "linear"] = "cosine",
        log: LogFn | None = None,
        show_progress: bool = True,
    ):
        from tqdm.auto import tqdm
        from transformers import get_cosine_schedule_with_warmup, get_linear_schedule_with_warmup

        if total_steps <= 0:
            raise ValueError(f"total_steps must be > 0, got {total_steps}")
        self.params = list(params)
        self.optimizer = torch.optim.AdamW(self.params, lr=lr, weight_decay=weight_decay)
        make = {"cosine": get_cosine_schedule_with_warmup, "linear": get_linear_schedule_with_warmup}[schedule]
        self.scheduler = make(self.optimizer, int(warmup_ratio * total_steps), total_steps)
        self.max_grad_norm = max_grad_norm
        self.total_steps = total_steps
        self.prefix = prefix
        self.log = log
        self.steps = 0
        self.history: list[dict[str, Any]] = []
        self.bar = tqdm(total=total_steps, desc=desc, unit="step", disable=not show_progress)

    @property
    def done(self) -> bool:
        return self.steps >= self.total_steps

    def step(self, loss: float, parts: Mapping[str, float] | None = None, **history_fields: Any) -> dict[str, float]:
        """After ``backward``: clip, optimiser and scheduler step, zero the gradients, record and log.

        ``history_fields`` (e.g. ``phase="mixed"``) go into the history entry only.
        Returns the logged record.
        """
        torch.nn.utils.clip_grad_norm_(self.params, self.max_grad_norm)
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.steps += 1
        p = self.prefix
        rec = {
            f"{p}/loss": float(loss),
            f"{p}/lr": self.scheduler.get_last_lr()[0],
            **{f"{p}/{k}": float(v) for k, v in (parts or {}).items()},
        }
        self.record(rec, **history_fields)
        self.bar.update(1)
        self.bar.set_postfix(loss=f"{loss:.3f}")
        return rec

    def record(self, rec: Mapping[str, float], **history_fields: Any) -> None:
        """Add a record at the current step (validation metrics, say) to the history and the log."""
        self.history.append({"step": self.steps, **history_fields, **rec})
        if self.log:
            self.log(dict(rec), self.steps)

    def close(self) -> None:
        self.bar.close()
