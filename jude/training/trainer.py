"""Fine-tune the two-tower embedder with LoRA and JUDE's loss suite.

One shared base model embeds both sides; each side is rendered with its entity
template (member: profile or resume, chosen per batch; job). Per step:

- **InfoNCE** over in-batch negatives (every other job in the batch) plus K hard
  negatives per pair, with false negatives masked (the same job twice in a
  batch, or a job that is also a positive of that member);
- optionally **BCE** from an interaction head over (u, v, u⊙v) on the labelled
  pairs of the batch (positives vs their hard negatives), and the **VP-matrix**
  loss on the same head's predictions, with predicates (label source,
  negative origin, member view, job seniority) — see jude/modeling/losses.py;
- weights from ``LossConfig.weights``.

JUDE's **curriculum**: phases (``LossConfig.curriculum``) train on the positives
of the listed label sources (relevance first, then relevance + engagement).
Phase 1 uses the judge's negatives as hard negatives; later phases re-mine
semi-hard negatives with the current model (``train.mine_negatives``).

Optimiser: AdamW on the LoRA parameters (and the loss's own: head, learned
temperature), linear warmup then cosine decay, gradient clipping, optional
gradient accumulation or **GradCache** (``train.gradcache_chunk``) for batches
larger than memory. Losses and learning rate go to ``log`` (MLflow in the step).
"""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from jude.config import LossConfig, LoRAConfig, ModelConfig, ScaleConfig, TrainConfig
from jude.evaluation.retrieval import EvalSet, evaluate_embedder
from jude.modeling.embedder import Embedder
from jude.modeling.losses import CombinedLoss, LossInputs, plan_curriculum, predicate_matrix
from jude.optim import LogFn, OptimLoop
from jude.training.gradcache import gradcache_step
from jude.training.negatives import mine_hard_negatives


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


def positives_by_member(pos: pd.DataFrame) -> dict[str, set[str]]:
    out: dict[str, set[str]] = defaultdict(set)
    for m, j in zip(pos["member_id"], pos["job_id"]):
        out[m].add(j)
    return out


def mine_negatives(embedder: Embedder, pos: pd.DataFrame, jobs: pd.DataFrame, members: pd.DataFrame, k: int,
                   margin: float, seed: int, show_progress: bool = False) -> list[list[str]]:
    """Semi-hard negatives for each positive pair, mined with the current model (true positives excluded)."""
    member_ids = sorted(set(pos["member_id"]))
    job_ids = jobs["job_id"].tolist()
    job_index = {j: i for i, j in enumerate(job_ids)}
    rows = members.set_index("member_id", drop=False).loc[member_ids]
    q = embedder.encode_entities("profile", rows, show_progress=show_progress)
    d = embedder.encode_entities("job", jobs, show_progress=show_progress)
    positives = positives_by_member(pos)
    mined = mine_hard_negatives(q, d, [{job_index[j] for j in positives[m] if j in job_index} for m in member_ids],
                                k=k, margin=margin, seed=seed)
    by_member = {m: [job_ids[i] for i in row] for m, row in zip(member_ids, mined)}
    return [by_member[m] for m in pos["member_id"]]


class StepLoss:
    """Turns one batch's embeddings into CombinedLoss inputs (kept apart so GradCache and the HF Trainer reuse it).

    The batch ``b`` needs ``view``, ``member_ids``, ``job_ids`` and ``negative_ids``
    (a :class:`Batch`, or the HF Trainer's gathered global batch).
    """

    def __init__(self, criterion: CombinedLoss, positives: dict[str, set[str]], judged: set[tuple[str, str]],
                 seniority: dict[str, str], sources: dict[tuple[str, str], str]):
        self.criterion = criterion
        self.positives = positives
        self.judged = judged
        self.seniority = seniority
        self.sources = sources
        active = criterion.weights.active
        self.needs_pairs = "bce" in active or "vp_matrix" in active
        self.parts: dict[str, float] = {}

    def __call__(self, b: Batch, q: torch.Tensor, d_all: torch.Tensor) -> torch.Tensor:
        B, D = q.shape
        d = d_all[:B]  # (B, D) positives
        hard = d_all[B:].view(B, -1, D) if d_all.shape[0] > B else None  # (B, K, D)
        x = LossInputs(q=q, d=d, hard_negatives=hard, query_ids=b.member_ids, doc_ids=b.job_ids,
                       positives=self.positives, hard_negative_ids=b.negative_ids or None)
        if self.needs_pairs:
            K = 0 if hard is None else hard.shape[1]
            x.pair_u = torch.cat([q, q.repeat_interleave(K, 0)]) if K else q  # (B + B*K, D)
            x.pair_v = torch.cat([d, hard.reshape(-1, D)]) if K else d
            x.pair_labels = torch.tensor([1.0] * B + [0.0] * (B * K), device=q.device)
            neg_origin = ["judged" if (m, j) in self.judged else "random"
                          for m, row in zip(b.member_ids, b.negative_ids) for j in row]
            origin = [self.sources.get((m, j), "relevance") for m, j in zip(b.member_ids, b.job_ids)] + neg_origin
            jobs_of = list(b.job_ids) + [j for row in b.negative_ids for j in row]
            x.pair_predicates = predicate_matrix({
                "origin": origin, "view": [b.view] * len(origin),
                "seniority": [self.seniority.get(j, "?") for j in jobs_of]}).to(q.device)
        out = self.criterion(x)
        self.parts = out.parts
        return out.total

    @classmethod
    def from_pairs(cls, criterion: CombinedLoss, pairs: pd.DataFrame, jobs: pd.DataFrame) -> "StepLoss":
        """Positives, judged negatives, label sources and job seniority from the training pairs."""
        pos = pairs[pairs["label"] == 1]
        neg = pairs[pairs["label"] == 0]
        return cls(criterion, positives_by_member(pos), set(zip(neg["member_id"], neg["job_id"])),
                   dict(zip(jobs["job_id"], jobs["seniority"])),
                   dict(zip(zip(pos["member_id"], pos["job_id"]), pos["source"])))


def train_embedder(pairs: pd.DataFrame, jobs: pd.DataFrame, members: pd.DataFrame, model_cfg: ModelConfig,
                   lora_cfg: LoRAConfig, train: TrainConfig, out_dir: str | Path, loss_cfg: LossConfig | None = None,
                   val_set: EvalSet | None = None, log: LogFn | None = None, show_progress: bool = True,
                   embedder: Embedder | None = None, scale: ScaleConfig | None = None) -> TrainResult:
    """Fine-tune ``model_cfg.base_model`` with LoRA on the labelled pairs; save to ``out_dir``.

    ``embedder`` continues training a model that is already loaded (LoRA added if it has none).
    ``scale`` switches on gradient checkpointing, Liger kernels and bf16 autocast
    (DeepSpeed runs through ``jude.training.hf_trainer`` instead).
    """
    loss_cfg = loss_cfg or LossConfig()
    scale = scale or ScaleConfig()
    seed_everything(train.seed)
    if embedder is None:
        from jude.training.hf_trainer import build_embedder  # base + Liger + LoRA + checkpointing

        embedder = build_embedder(model_cfg, lora_cfg, scale)
    if not embedder.has_lora:
        embedder.add_lora(lora_cfg)
    criterion = CombinedLoss.from_config(loss_cfg, embedder.dimension).to(embedder.device)
    full = make_batches(pairs, jobs, members, embedder, train)  # validates ids, renders every text once
    pos = pairs[pairs["label"] == 1]
    step_loss = StepLoss.from_pairs(criterion, pairs, jobs)

    steps_per_epoch = max(1, len(full) // train.grad_accum)
    plan = plan_curriculum(loss_cfg.curriculum, steps_per_epoch,
                           total_steps=train.max_steps or (None if loss_cfg.curriculum else steps_per_epoch * train.epochs))
    total_steps = plan[-1].end
    params = embedder.trainable_parameters() + [p for p in criterion.parameters() if p.requires_grad]

    stats = {"positive_pairs": len(pos), "steps": total_steps, "phases": [p.name for p in plan],
             "losses": criterion.weights.active, "gradcache": bool(train.gradcache_chunk),
             "trainable_params": sum(p.numel() for p in params),
             "total_params": sum(p.numel() for p in embedder.parameters())}
    out_dir = Path(out_dir)
    embedder.train()
    loop = OptimLoop(params, lr=train.learning_rate, weight_decay=train.weight_decay, warmup_ratio=train.warmup_ratio,
                     total_steps=total_steps, max_grad_norm=train.max_grad_norm, prefix="train",
                     desc="fine-tune (LoRA)", log=log, show_progress=show_progress)
    for phase_no, phase in enumerate(plan):
        phase_pos = pos[pos["source"].isin(phase.sources)]
        if len(phase_pos) < train.batch_size:
            raise TrainingDataError(f"curriculum phase {phase.name!r}: only {len(phase_pos)} positives from "
                                    f"{list(phase.sources)}, fewer than train.batch_size={train.batch_size}")
        if phase_no > 0 and train.mine_negatives and train.hard_negatives:
            negatives = mine_negatives(embedder, phase_pos, jobs, members, train.hard_negatives,
                                       train.mining_margin, train.seed + phase_no)
            embedder.train()
        else:
            negatives = pick_negatives(phase_pos, pairs, jobs["job_id"].tolist(), train.hard_negatives, train.seed)
        batches = PairBatches(member_ids=phase_pos["member_id"].tolist(), job_ids=phase_pos["job_id"].tolist(),
                              member_texts=full.member_texts, job_texts=full.job_texts, views=full.views,
                              batch_size=train.batch_size, seed=train.seed + 1000 * phase_no, negatives=negatives)
        loop.bar.set_description(f"fine-tune (LoRA) [{phase.name}]")
        epoch = 0
        while loop.steps < phase.end:
            micro = 0
            for b in batches.epoch(epoch):
                q_len, d_len = embedder.meta.max_lengths[b.view], embedder.meta.max_lengths["job"]
                d_texts = b.job_texts + b.negative_texts
                if train.gradcache_chunk:
                    loss_value = gradcache_step(lambda t: embedder.embed_texts(list(t), q_len),
                                                lambda t: embedder.embed_texts(list(t), d_len),
                                                b.member_texts, d_texts,
                                                lambda q, d_all, b=b: step_loss(b, q, d_all) / train.grad_accum,
                                                train.gradcache_chunk) * train.grad_accum
                else:
                    with embedder.autocast(enabled=scale.bf16):
                        q = embedder.embed_texts(b.member_texts, q_len)  # (B, D)
                        d_all = embedder.embed_texts(d_texts, d_len)  # (B + B*K, D)
                        loss = step_loss(b, q, d_all)
                    (loss / train.grad_accum).backward()
                    loss_value = float(loss.detach())
                micro += 1
                if micro % train.grad_accum:
                    continue
                loop.step(loss_value, parts=step_loss.parts, phase=phase.name)
                if train.checkpoint_every and loop.steps % train.checkpoint_every == 0:
                    embedder.backbone.save_pretrained(
                        out_dir.parent / f"{out_dir.name}-checkpoints" / f"step-{loop.steps}")
                if loop.steps >= phase.end:
                    break
            epoch += 1
        if val_set is not None:
            val = evaluate_embedder(embedder, val_set)
            embedder.train()
            loop.record({f"val/{k}": v for k, v in val.items()}, phase=phase.name)
    loop.close()
    embedder.eval()
    embedder.meta.extra["train"] = {"steps": loop.steps, "positive_pairs": len(pos), "losses": criterion.weights.active,
                                    "temperature": loss_cfg.temperature, "learning_rate": train.learning_rate,
                                    "phases": [p.name for p in plan]}
    embedder.save(out_dir)
    if criterion.head is not None:  # kept for the BCE task and lineage; not part of the served embedding
        torch.save(criterion.head.state_dict(), out_dir / "interaction_head.pt")
    return TrainResult(model_dir=out_dir, history=loop.history, stats=stats)
