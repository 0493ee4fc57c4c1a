"""Fine-tune the two-tower embedder with LoRA.

One shared base model embeds both sides; each side is rendered with its entity
template (member: profile or resume, chosen per example; job). The objective is
InfoNCE with in-batch negatives (every other job in the batch is a negative for
a member), with false negatives masked: the same job twice in a batch, or a job
that is also a positive of that member.

Optimiser: AdamW on the LoRA parameters only, linear warmup then cosine decay
(JUDE's "slanted triangular" schedule), gradient clipping, optional gradient
accumulation. Parameters and losses go to ``log`` (the step sends them to MLflow).
"""

from __future__ import annotations

import math
import random
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from jude.config import LoRAConfig, ModelConfig, TrainConfig
from jude.evaluation.retrieval import EvalSet, evaluate_embedder
from jude.modeling.embedder import Embedder
from jude.modeling.losses import info_nce

LogFn = Callable[[dict[str, float], int], None]


class TrainingDataError(ValueError):
    pass


@dataclass
class TrainResult:
    model_dir: Path
    history: list[dict] = field(default_factory=list)
    stats: dict = field(default_factory=dict)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


@dataclass
class Batch:
    view: str
    member_ids: list[str]
    job_ids: list[str]
    member_texts: list[str]
    job_texts: list[str]
    negative_ids: list[list[str]]  # (B, K)
    negative_texts: list[str]  # B*K, row-major


def pick_negatives(pos: pd.DataFrame, pairs: pd.DataFrame, job_ids: list[str], k: int, seed: int) -> list[list[str]]:
    """K negative jobs per positive pair: the member's judged negatives first, then random non-positives."""
    if k == 0:
        return []
    rng = np.random.default_rng(seed)
    neg = pairs[pairs["label"] == 0]
    judged: dict[str, list[str]] = defaultdict(list)
    for m, j in zip(neg["member_id"], neg["job_id"]):
        judged[m].append(j)
    positives: dict[str, set[str]] = defaultdict(set)
    for m, j in zip(pos["member_id"], pos["job_id"]):
        positives[m].add(j)
    out = []
    for m in pos["member_id"]:
        pool = judged.get(m, [])
        chosen = list(rng.choice(pool, size=min(k, len(pool)), replace=False)) if pool else []
        while len(chosen) < k:
            j = job_ids[int(rng.integers(len(job_ids)))]
            if j not in positives[m] and j not in chosen:
                chosen.append(j)
        out.append([str(j) for j in chosen])
    return out


@dataclass
class PairBatches:
    """Positive (member, job) pairs as rendered texts, batched reproducibly per epoch."""

    member_ids: list[str]
    job_ids: list[str]
    member_texts: dict[str, dict[str, str]]  # view -> member_id -> text
    job_texts: dict[str, str]
    views: list[str]
    batch_size: int
    seed: int
    negatives: list[list[str]] = field(default_factory=list)  # per pair: K judged-negative job ids

    def __len__(self) -> int:
        return len(self.member_ids) // self.batch_size  # drop the ragged last batch

    def epoch(self, epoch: int):
        rng = np.random.default_rng(self.seed + epoch)
        order = rng.permutation(len(self.member_ids))
        for b in range(len(self)):
            idx = order[b * self.batch_size:(b + 1) * self.batch_size]
            view = self.views[int(rng.integers(len(self.views)))]  # one view per batch: one max_length
            negs = [self.negatives[i] for i in idx] if self.negatives else []
            yield Batch(view=view,
                        member_ids=[self.member_ids[i] for i in idx],
                        job_ids=[self.job_ids[i] for i in idx],
                        member_texts=[self.member_texts[view][self.member_ids[i]] for i in idx],
                        job_texts=[self.job_texts[self.job_ids[i]] for i in idx],
                        negative_ids=negs,
                        negative_texts=[self.job_texts[j] for row in negs for j in row])


def make_batches(pairs: pd.DataFrame, jobs: pd.DataFrame, members: pd.DataFrame, embedder: Embedder,
                 train: TrainConfig) -> PairBatches:
    pos = pairs[pairs["label"] == 1]
    if len(pos) < train.batch_size:
        raise TrainingDataError(
            f"only {len(pos)} positive training pairs, fewer than train.batch_size={train.batch_size}; "
            "generate more labels (labels.budget) or lower the batch size")
    job_rows = jobs.set_index("job_id", drop=False)
    member_rows = members.set_index("member_id", drop=False)
    missing_jobs = sorted(set(pos["job_id"]) - set(job_rows.index))
    if missing_jobs:
        raise TrainingDataError(f"training pairs name unknown job(s) {missing_jobs[:5]}")
    missing_members = sorted(set(pos["member_id"]) - set(member_rows.index))
    if missing_members:
        raise TrainingDataError(f"training pairs name unknown member(s) {missing_members[:5]}")
    used_members = member_rows.loc[sorted(set(pos["member_id"]))]
    job_texts = dict(zip(jobs["job_id"], embedder.render("job", jobs)))
    known = set(job_rows.index)
    negatives = pick_negatives(pos, pairs[pairs["job_id"].isin(known)], jobs["job_id"].tolist(),
                               train.hard_negatives, train.seed)
    member_texts = {v: dict(zip(used_members["member_id"], embedder.render(v, used_members)))
                    for v in train.member_views}
    return PairBatches(member_ids=pos["member_id"].tolist(), job_ids=pos["job_id"].tolist(),
                       member_texts=member_texts, job_texts=job_texts, views=list(train.member_views),
                       batch_size=train.batch_size, seed=train.seed, negatives=negatives)


def train_embedder(pairs: pd.DataFrame, jobs: pd.DataFrame, members: pd.DataFrame, model_cfg: ModelConfig,
                   lora_cfg: LoRAConfig, train: TrainConfig, out_dir: str | Path, val_set: EvalSet | None = None,
                   log: LogFn | None = None, show_progress: bool = True) -> TrainResult:
    """Fine-tune ``model_cfg.base_model`` with LoRA on the positive pairs; save to ``out_dir``."""
    from tqdm.auto import tqdm
    from transformers import get_cosine_schedule_with_warmup

    seed_everything(train.seed)
    embedder = Embedder.from_base(model_cfg)
    embedder.add_lora(lora_cfg)
    batches = make_batches(pairs, jobs, members, embedder, train)
    pos = pairs[pairs["label"] == 1]
    positives: dict[str, set[str]] = defaultdict(set)
    for m, j in zip(pos["member_id"], pos["job_id"]):
        positives[m].add(j)

    steps_per_epoch = max(1, len(batches) // train.grad_accum)
    total_steps = train.max_steps or steps_per_epoch * train.epochs
    epochs = math.ceil(total_steps / steps_per_epoch)
    params = embedder.trainable_parameters()
    optimizer = torch.optim.AdamW(params, lr=train.learning_rate, weight_decay=train.weight_decay)
    scheduler = get_cosine_schedule_with_warmup(optimizer, int(train.warmup_ratio * total_steps), total_steps)

    n_trainable = sum(p.numel() for p in params)
    n_total = sum(p.numel() for p in embedder.parameters())
    stats = {"positive_pairs": len(pos), "steps": total_steps, "epochs": epochs,
             "trainable_params": n_trainable, "total_params": n_total}
    history: list[dict] = []
    out_dir = Path(out_dir)
    embedder.train()
    step = 0
    bar = tqdm(total=total_steps, desc="fine-tune (LoRA)", unit="step", disable=not show_progress)
    for epoch in range(epochs):
        micro = 0
        for b in batches.epoch(epoch):
            q = embedder.embed_texts(b.member_texts, embedder.meta.max_lengths[b.view])  # (B, D)
            d = embedder.embed_texts(b.job_texts, embedder.meta.max_lengths["job"])  # (B, D)
            hard = None
            if b.negative_texts:
                hard = embedder.embed_texts(b.negative_texts, embedder.meta.max_lengths["job"])  # (B*K, D)
                hard = hard.view(len(b.member_ids), -1, hard.shape[-1])  # (B, K, D)
            loss = info_nce(q, d, train.temperature, hard_negatives=hard, query_ids=b.member_ids,
                            doc_ids=b.job_ids, positives=positives,
                            hard_negative_ids=b.negative_ids or None)
            (loss / train.grad_accum).backward()
            micro += 1
            if micro % train.grad_accum:
                continue
            torch.nn.utils.clip_grad_norm_(params, train.max_grad_norm)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            rec = {"train/loss": float(loss.detach()), "train/lr": scheduler.get_last_lr()[0]}
            history.append({"step": step, **rec})
            if log:
                log(rec, step)
            bar.update(1)
            bar.set_postfix(loss=f"{rec['train/loss']:.3f}")
            if train.checkpoint_every and step % train.checkpoint_every == 0:
                embedder.backbone.save_pretrained(out_dir.parent / f"{out_dir.name}-checkpoints" / f"step-{step}")
            if step >= total_steps:
                break
        if val_set is not None:
            val = evaluate_embedder(embedder, val_set)
            rec = {f"val/{k}": v for k, v in val.items()}
            history.append({"step": step, "epoch": epoch, **rec})
            if log:
                log(rec, step)
        if step >= total_steps:
            break
    bar.close()
    embedder.eval()
    embedder.meta.extra["train"] = {"steps": step, "positive_pairs": len(pos),
                                    "temperature": train.temperature, "learning_rate": train.learning_rate}
    embedder.save(out_dir)
    return TrainResult(model_dir=out_dir, history=history, stats=stats)
