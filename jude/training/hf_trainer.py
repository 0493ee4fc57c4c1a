"""The two-tower fine-tune through the Hugging Face ``Trainer``: DeepSpeed ZeRO, torchrun, multi-node.

``jude.training.trainer`` is the plain loop the ZenML pipeline runs on one device.
This module trains the *same* model on the *same* pairs with the *same* objective
(``jude.modeling.losses.CombinedLoss`` through ``trainer.StepLoss``: InfoNCE with
in-batch + judged hard negatives and false negatives masked, plus the BCE head
and the VP-matrix loss when weighted, and a learned temperature), in one phase
(a curriculum or distillation stays with the plain loop and ``jude.training.distill``;
``check_hf_losses`` says so before loading weights), but lets ``transformers.Trainer``
own the device placement,
so one script runs unchanged

- on a CPU (tests),
- on one GPU, with bf16, gradient checkpointing, flash-attention 2 and Liger,
- on N GPUs / M nodes under ``torchrun`` or the ``deepspeed`` launcher, with
  DeepSpeed ZeRO stage 1 (optimizer states sharded across ranks), configured by
  ``configs/deepspeed_zero1.json``.

The optimiser and schedule come from ``TrainingArguments`` (AdamW, linear warmup
then cosine decay) in every set-up; the DeepSpeed JSON has no optimizer section,
so DeepSpeed wraps that same torch optimiser. With ``scale.gather_across_devices``
(the default) the members, jobs and hard negatives of every rank are gathered
before the loss (``jude.training.distributed``), so each query is scored against
the B x ranks - 1 in-batch negatives of the global batch; turned off, negatives
are per rank. The optimiser's global batch is B x ranks x grad_accum either way.

The command line that torchrun and the deepspeed launcher start is ``jude train-hf``
(:mod:`jude.cli`; see docs/gpu.md)::

    torchrun --nproc-per-node 8 -m jude.cli train-hf --config configs/train_gpu_7b.yaml [--out DIR]
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from jude.config import (
    LoRAConfig,
    LossConfig,
    ModelConfig,
    ScaleConfig,
    TrainConfig,
    TrainPipelineConfig,
    check_hf_losses,
    read_pipeline_config,
)
from jude.evaluation.retrieval import EvalSet, evaluate_embedder
from jude.modeling.embedder import Embedder
from jude.modeling.losses import CombinedLoss
from jude.optim import LogFn
from jude.training.distributed import gather_batch, world_size
from jude.training.trainer import PairBatches, StepLoss, TrainResult, make_batches, seed_everything

ZERO_STAGES = (0, 1, 2, 3)
TOWERS = ("q", "d", "n")  # member queries, their jobs, the hard-negative jobs


class DeepSpeedConfigError(ValueError):
    """A DeepSpeed JSON that cannot be used; raised before any model is loaded."""


# ============================================================================ configuration
def load_deepspeed_config(path: str | os.PathLike) -> dict[str, Any]:
    """Read and check a DeepSpeed JSON: it parses, is an object, and its ZeRO stage is 0-3.

    Values may be ``"auto"`` (the HF Trainer fills them from ``TrainingArguments``),
    except the stage, which decides how memory is laid out and must be explicit.
    """
    path = Path(path)
    if not path.is_file():
        raise DeepSpeedConfigError(f"DeepSpeed config {path} does not exist")
    try:
        cfg = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise DeepSpeedConfigError(
            f"DeepSpeed config {path} is not valid JSON: {e.msg} at line {e.lineno}, column {e.colno}"
        ) from e
    if not isinstance(cfg, dict):
        raise DeepSpeedConfigError(f"DeepSpeed config {path}: expected a JSON object, got {type(cfg).__name__}")
    zero = cfg.get("zero_optimization", {})
    if not isinstance(zero, dict):
        raise DeepSpeedConfigError(f"DeepSpeed config {path}: 'zero_optimization' must be an object, got {zero!r}")
    stage = zero.get("stage", 0)
    if isinstance(stage, bool) or not isinstance(stage, int) or stage not in ZERO_STAGES:
        raise DeepSpeedConfigError(
            f"DeepSpeed config {path}: zero_optimization.stage must be one of {list(ZERO_STAGES)}, got {stage!r}"
        )
    for key in ("optimizer", "scheduler"):
        if key in cfg:
            raise DeepSpeedConfigError(
                f"DeepSpeed config {path}: remove the '{key}' section; jude's optimiser and schedule come from "
                "train.* (AdamW, warmup then cosine) so every set-up trains the same way"
            )
    return cfg


def load_pipeline_config(path: str | os.PathLike) -> tuple[TrainPipelineConfig, ScaleConfig]:
    """The ``parameters:`` of a train YAML, validated whole (``TrainPipelineConfig``), and its ``scale`` section.

    Raises ``jude.config.ConfigFileError`` (a ``ValueError``) naming the file, the field and the value.
    """
    cfg = read_pipeline_config("train", path)
    return cfg, cfg.scale


# ============================================================================ model and data
class TwoTower(nn.Module):
    """One forward call embeds every tower of a batch, so DDP/DeepSpeed see one forward per step.

    ``forward(q_input_ids=..., q_attention_mask=..., d_input_ids=..., ...)`` returns
    ``{"q": (B, D), "d": (B, D), "n": (B*K, D)}`` (``n`` only with hard negatives).
    ``criterion`` (the :class:`CombinedLoss`) is a submodule so its trainable parts,
    the interaction head and a learned temperature, are optimised and synchronised
    with the LoRA weights.
    """

    def __init__(self, embedder: Embedder, criterion: CombinedLoss | None = None):
        super().__init__()
        self.embedder = embedder
        self.criterion = criterion

    def forward(self, **features: torch.Tensor) -> dict[str, torch.Tensor]:
        out = {}
        for tower in TOWERS:
            feats = {k[2:]: v for k, v in features.items() if k.startswith(f"{tower}_")}
            if feats:
                out[tower] = self.embedder(feats)
        return out


class PairIndexDataset(torch.utils.data.Dataset):
    """Positive pair i -> i; the collator turns a list of indices into tokenised towers."""

    def __init__(self, n: int):
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> int:
        return i


class PairCollator:
    """Indices of positive pairs -> tokenised member, job and hard-negative texts (CPU tensors).

    One member view (profile or resume) per batch, drawn from a seeded generator,
    so the batch has one max length, as in the plain trainer.
    """

    def __init__(self, pairs: PairBatches, embedder: Embedder, seed: int):
        self.pairs = pairs
        self.embedder = embedder
        self.rng = np.random.default_rng(seed)

    def __call__(self, idx: Sequence[int]) -> dict[str, Any]:
        p, e = self.pairs, self.embedder
        view = p.views[int(self.rng.integers(len(p.views)))]
        member_ids = [p.member_ids[i] for i in idx]
        job_ids = [p.job_ids[i] for i in idx]
        batch: dict[str, Any] = {"view": view, "member_ids": member_ids, "job_ids": job_ids, "negative_ids": None}
        towers = {
            "q": ([p.member_texts[view][m] for m in member_ids], e.meta.max_lengths[view]),
            "d": ([p.job_texts[j] for j in job_ids], e.meta.max_lengths["job"]),
        }
        if p.negatives:
            negs = [p.negatives[i] for i in idx]  # (B, K) job ids
            batch["negative_ids"] = negs
            towers["n"] = ([p.job_texts[j] for row in negs for j in row], e.meta.max_lengths["job"])
        for tower, (texts, max_length) in towers.items():
            for k, v in e.tokenize(texts, max_length, to_device=False).items():
                batch[f"{tower}_{k}"] = v
        return batch


def make_trainer(
    model: TwoTower,
    args: Any,
    dataset: PairIndexDataset,
    collator: PairCollator,
    step_loss: StepLoss,
    gather_across_devices: bool = True,
) -> Any:
    """A ``transformers.Trainer`` whose loss is jude's :class:`CombinedLoss` (on the global batch when gathering)."""
    from transformers import Trainer

    class _EmbedderTrainer(Trainer):
        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            meta = {k: inputs.pop(k) for k in ("view", "member_ids", "job_ids", "negative_ids")}
            emb = model(**inputs)
            q, d = emb["q"], emb["d"]  # (B, D) each
            hard = emb["n"].view(q.shape[0], -1, q.shape[1]) if "n" in emb else None  # (B, K, D)
            if gather_across_devices and world_size() > 1:
                g = gather_batch(q, d, hard, meta["member_ids"], meta["job_ids"], meta["negative_ids"])
                q, d, hard = g.q, g.d, g.hard  # every rank: the same global loss
                meta.update(member_ids=g.member_ids, job_ids=g.job_ids, negative_ids=g.negative_ids)
            d_all = d if hard is None else torch.cat([d, hard.reshape(-1, d.shape[1])])  # (B + B*K, D)
            batch = SimpleNamespace(
                view=meta["view"],
                member_ids=meta["member_ids"],
                job_ids=meta["job_ids"],
                negative_ids=meta["negative_ids"] or [],
            )
            loss = step_loss(batch, q, d_all)
            return (loss, emb) if return_outputs else loss

        def _save(self, output_dir: str | None = None, state_dict=None) -> None:
            # Checkpoints keep the LoRA adapter (small); the final model is saved by Embedder.save.
            output_dir = output_dir or self.args.output_dir
            os.makedirs(output_dir, exist_ok=True)
            self.model_wrapped_embedder.backbone.save_pretrained(output_dir)

    trainer = _EmbedderTrainer(model=model, args=args, train_dataset=dataset, data_collator=collator)
    trainer.model_wrapped_embedder = model.embedder
    return trainer


class _Progress:
    """What the callback of :func:`progress_callback` collected: ``val/*`` records by step."""

    def __init__(self) -> None:
        self.validations: list[dict[str, Any]] = []
        self.validated_at = -1


def progress_callback(
    embedder: Embedder, val_set: EvalSet | None, every: int, log: LogFn | None, progress: _Progress
) -> Any:
    """A ``TrainerCallback``: ``val/*`` on ``val_set`` every ``every`` optimiser steps and at the end of training,
    and every record (``train/loss``, ``train/lr``, ``val/*``) to ``log`` from rank 0, as the plain loop does.

    Every rank validates (the same queries, so the same numbers): under ZeRO-3 a forward needs every rank's
    parameter shards, so rank 0 alone would wait forever.
    """
    from transformers import TrainerCallback

    class _Callback(TrainerCallback):
        def _validate(self, state: Any) -> None:
            if val_set is None or progress.validated_at == state.global_step:
                return
            metrics = {f"val/{k}": v for k, v in evaluate_embedder(embedder, val_set).items()}
            embedder.train()
            progress.validations.append({"step": int(state.global_step), **metrics})
            progress.validated_at = state.global_step
            if log is not None and state.is_world_process_zero:
                log(metrics, int(state.global_step))

        def on_step_end(self, args, state, control, **kwargs):
            if every and state.global_step % every == 0:
                self._validate(state)

        def on_train_end(self, args, state, control, **kwargs):
            self._validate(state)

        def on_log(self, args, state, control, logs=None, **kwargs):
            if log is None or not state.is_world_process_zero or not logs or "loss" not in logs:
                return
            rec = {"train/loss": float(logs["loss"])}
            if "learning_rate" in logs:
                rec["train/lr"] = float(logs["learning_rate"])
            log(rec, int(state.global_step))

    return _Callback()


def training_arguments(
    train_cfg: TrainConfig,
    scale: ScaleConfig,
    output_dir: str | os.PathLike,
    deepspeed_config: str | None,
    show_progress: bool = True,
) -> Any:
    """``TrainingArguments`` from jude's config: the same optimiser and schedule as the plain trainer."""
    from transformers import TrainingArguments

    cuda = torch.cuda.is_available()
    kwargs: dict[str, Any] = {}
    if train_cfg.max_steps:
        kwargs["max_steps"] = train_cfg.max_steps
    if train_cfg.checkpoint_every:
        kwargs.update(save_strategy="steps", save_steps=train_cfg.checkpoint_every)
    else:
        kwargs["save_strategy"] = "no"
    return TrainingArguments(
        output_dir=str(output_dir),
        per_device_train_batch_size=train_cfg.batch_size,
        gradient_accumulation_steps=train_cfg.grad_accum,
        num_train_epochs=train_cfg.epochs,
        learning_rate=train_cfg.learning_rate,
        weight_decay=train_cfg.weight_decay,
        warmup_steps=float(train_cfg.warmup_ratio),  # a float in [0, 1) is a share of the steps
        lr_scheduler_type="cosine",
        optim="adamw_torch",
        max_grad_norm=train_cfg.max_grad_norm,
        seed=train_cfg.seed,
        bf16=scale.bf16,
        use_cpu=not cuda,
        deepspeed=deepspeed_config,
        ddp_backend="gloo" if not cuda and "WORLD_SIZE" in os.environ else None,  # CPU ranks talk over gloo
        ddp_find_unused_parameters=False,
        dataloader_drop_last=True,  # in-batch negatives want full batches
        dataloader_num_workers=scale.dataloader_workers,
        remove_unused_columns=False,  # our batches are dicts of towers, not model kwargs
        logging_steps=scale.logging_steps,
        report_to="none",
        disable_tqdm=not show_progress,
        **kwargs,
    )


def train_with_hf_trainer(
    pairs: pd.DataFrame,
    jobs: pd.DataFrame,
    members: pd.DataFrame,
    model_cfg: ModelConfig,
    lora_cfg: LoRAConfig,
    train_cfg: TrainConfig,
    out_dir: str | os.PathLike,
    deepspeed_config: str | None = None,
    loss_cfg: LossConfig | None = None,
    scale: ScaleConfig | None = None,
    show_progress: bool = True,
    val_set: EvalSet | None = None,
    log: LogFn | None = None,
) -> TrainResult:
    """Fine-tune with LoRA through ``transformers.Trainer`` (DeepSpeed when ``deepspeed_config`` is set).

    Returns the same :class:`TrainResult` as ``train_embedder``; the model at
    ``out_dir`` is a jude model directory (``Embedder.load``), written by rank 0.
    Checkpoints (LoRA adapters) and Trainer state go to ``<out_dir>-hf/``.
    With ``val_set``, ``val/*`` every ``train.eval_every_steps`` steps and at the end
    (in ``history`` after the step's training record); ``log`` gets every record on rank 0.
    """
    loss_cfg = loss_cfg or LossConfig()
    check_hf_losses(loss_cfg)
    scale = (scale or ScaleConfig()).model_copy(update={"deepspeed": deepspeed_config or (scale and scale.deepspeed)})
    if scale.deepspeed:
        load_deepspeed_config(scale.deepspeed)  # fail on a bad file before loading any weights
    out_dir = Path(out_dir)
    hf_dir = out_dir.parent / f"{out_dir.name}-hf"
    args = training_arguments(train_cfg, scale, hf_dir, scale.deepspeed, show_progress)  # sets up distributed

    seed_everything(train_cfg.seed)
    embedder = Embedder.trainable(model_cfg, lora_cfg, scale)
    batches = make_batches(pairs, jobs, members, embedder, train_cfg)
    criterion = CombinedLoss.from_config(loss_cfg, embedder.dimension).to(embedder.device)
    step_loss = StepLoss.from_pairs(criterion, pairs, jobs)
    trainer = make_trainer(
        TwoTower(embedder, criterion),
        args,
        PairIndexDataset(len(batches.member_ids)),
        PairCollator(batches, embedder, train_cfg.seed),
        step_loss,
        gather_across_devices=scale.gather_across_devices,
    )
    progress = _Progress()
    trainer.add_callback(progress_callback(embedder, val_set, train_cfg.eval_every_steps, log, progress))
    output = trainer.train()

    history = [
        {
            "step": int(h["step"]),
            "train/loss": float(h["loss"]),
            **({"train/lr": float(h["learning_rate"])} if "learning_rate" in h else {}),
        }
        for h in trainer.state.log_history
        if "loss" in h
    ]
    # a step's validation record after its training record, as in the plain loop (sorted() is stable)
    history = sorted([*history, *progress.validations], key=lambda h: h["step"])
    stats = {
        "positive_pairs": len(batches.member_ids),
        "steps": int(trainer.state.global_step),
        "world_size": int(args.world_size),
        "losses": criterion.weights.active,
        "in_batch_negatives": train_cfg.batch_size * (int(args.world_size) if scale.gather_across_devices else 1) - 1,
        "trainable_params": sum(p.numel() for p in embedder.trainable_parameters()),
        "total_params": sum(p.numel() for p in embedder.parameters()),
        "train_loss": float(output.training_loss),
        "deepspeed": scale.deepspeed or "",
        "bf16": scale.bf16,
        "gradient_checkpointing": scale.gradient_checkpointing,
        "liger": scale.liger,
        "zero_stage": trainer.deepspeed.zero_optimization_stage() if trainer.is_deepspeed_enabled else None,
        "dist_backend": torch.distributed.get_backend() if torch.distributed.is_initialized() else None,
    }
    trainer.accelerator.wait_for_everyone()
    if trainer.is_world_process_zero():
        embedder.eval()
        embedder.meta.extra["train"] = {
            "steps": stats["steps"],
            "positive_pairs": stats["positive_pairs"],
            "temperature": loss_cfg.temperature,
            "learning_rate": train_cfg.learning_rate,
            "trainer": "hf",
            "world_size": stats["world_size"],
            "deepspeed": stats["deepspeed"],
            "losses": criterion.weights.active,
        }
        embedder.save(out_dir)
        if criterion.head is not None:  # as the plain trainer: kept for the BCE task, not served
            torch.save(criterion.head.state_dict(), out_dir / "interaction_head.pt")
    trainer.accelerator.wait_for_everyone()
    return TrainResult(model_dir=out_dir, history=history, stats=stats)
