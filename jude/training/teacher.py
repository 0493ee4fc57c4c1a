"""Train the cross-encoder teacher (``jude.modeling.cross_encoder``) on the labelled training pairs.

Training data (from the labelled pairs, see ``jude.training.pairs``): every
positive pair (relevance label 1, or an apply) opens a *group* with
``negatives_per_positive`` negatives: the member's judged negatives first (graded
below relevant, or dismissed), random jobs when it has too few (the same
choice as the bi-encoder's hard negatives, ``jude.training.trainer.pick_negatives``).
Two losses:

- ``bce``: every pair in the group against a graded target ``grade / 3``
  (relevance grades 0..3; an apply counts 3, a dismissal 0, a random job 0);
- ``listwise``: softmax cross-entropy over the group, the positive is the answer.

All the teacher's weights are fine-tuned (it is small and offline-only), with
AdamW, linear warmup then linear decay (``jude.optim.OptimLoop``).
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from jude.config import TeacherConfig
from jude.modeling.cross_encoder import CrossEncoderTeacher, TeacherDataError
from jude.optim import OptimLoop
from jude.training.trainer import pick_negatives


@dataclass
class TeacherTrainResult:
    """Where the teacher went, and its per-step losses."""

    model_dir: Path
    history: list[dict] = field(default_factory=list)
    stats: dict = field(default_factory=dict)


@dataclass
class _Group:
    member_id: str
    job_ids: list[str]  # the positive first, then its negatives
    targets: list[float]  # graded targets in [0, 1], same order


def build_groups(pairs: pd.DataFrame, job_ids: Sequence[str], cfg: TeacherConfig) -> list[_Group]:
    """One group per positive pair: the positive, then judged negatives, then random jobs.

    Targets are ``grade / 3`` for labelled pairs (relevance grades 0..3; an apply
    has grade 3, a dismissal 0; a positive at least 2 / 3) and 0 for random jobs.
    """
    missing = [c for c in ("member_id", "job_id", "label", "grade", "source") if c not in pairs.columns]
    if missing:
        raise TeacherDataError(f"training pairs are missing column(s) {missing}")
    if not cfg.use_engagement:
        pairs = pairs[pairs["source"] != "engagement"]
    known = set(job_ids)
    unknown = pairs.loc[~pairs["job_id"].isin(known), "job_id"]
    if len(unknown):
        raise TeacherDataError(f"training pairs name unknown job(s) {sorted(set(unknown))[:5]}")
    bad = pairs[(pairs["grade"] < 0) | (pairs["grade"] > 3)]
    if len(bad):
        r = bad.iloc[0]
        raise TeacherDataError(
            f"training pairs row {bad.index[0]}: grade must be in 0..3, got {r['grade']} "
            f"(member {r['member_id']}, job {r['job_id']})"
        )
    pos = pairs[pairs["label"] == 1].reset_index(drop=True)
    if len(pos) == 0:
        raise TeacherDataError("no positive training pairs (label == 1): nothing to teach the teacher")
    grade = {(m, j): float(g) for m, j, g in zip(pairs["member_id"], pairs["job_id"], pairs["grade"])}
    negatives = pick_negatives(pos, pairs, list(job_ids), cfg.negatives_per_positive, cfg.seed)
    groups = []
    for (m, j, g), negs in zip(zip(pos["member_id"], pos["job_id"], pos["grade"]), negatives):
        # a positive counts at least 'relevant' (grade 2) whatever its recorded grade
        groups.append(
            _Group(
                member_id=str(m),
                job_ids=[str(j), *negs],
                targets=[max(float(g), 2.0) / 3.0] + [grade.get((m, n), 0.0) / 3.0 for n in negs],
            )
        )
    return groups


def group_loss(logits: torch.Tensor, targets: torch.Tensor, loss: str) -> torch.Tensor:
    """Loss of (G, 1 + K) logits against (G, 1 + K) graded targets; column 0 is the positive.

    ``bce``: binary cross-entropy of every pair against its soft target.
    ``listwise``: softmax cross-entropy over each group, the answer is column 0.
    """
    if logits.shape != targets.shape or logits.ndim != 2:
        raise ValueError(
            f"logits and targets must both be (G, 1 + K), got {tuple(logits.shape)} and {tuple(targets.shape)}"
        )
    if loss == "bce":
        return F.binary_cross_entropy_with_logits(logits, targets)
    if loss == "listwise":
        return F.cross_entropy(logits, torch.zeros(logits.shape[0], dtype=torch.long, device=logits.device))
    raise ValueError(f"teacher.loss must be 'bce' or 'listwise', got {loss!r}")


def train_cross_encoder(
    pairs: pd.DataFrame,
    jobs: pd.DataFrame,
    members: pd.DataFrame,
    cfg: TeacherConfig,
    out_dir: str | os.PathLike,
    template_style: str = "plain",
    log: Any = None,
    show_progress: bool = True,
) -> TeacherTrainResult:
    """Train the cross-encoder teacher on the labelled training pairs; save it to ``out_dir``.

    ``pairs`` are the training pairs of ``jude.training.pairs.split_and_pair``
    (held-out members are not in them). ``log(metrics, step)`` receives the loss
    and learning rate of every step. Returns the directory, the loss history and stats.
    """
    torch.manual_seed(cfg.seed)
    np.random.seed(cfg.seed)
    groups = build_groups(pairs, jobs["job_id"].tolist(), cfg)
    member_rows = members.set_index("member_id", drop=False)
    unknown = sorted({g.member_id for g in groups} - set(member_rows.index))
    if unknown:
        raise TeacherDataError(f"training pairs name unknown member(s) {unknown[:5]}")

    teacher = CrossEncoderTeacher.from_base(cfg, template_style=template_style)
    used = member_rows.loc[sorted({g.member_id for g in groups})]
    member_texts = {v: dict(zip(used["member_id"], teacher.render(v, used))) for v in cfg.member_views}
    job_texts = dict(zip(jobs["job_id"], teacher.render("job", jobs)))

    steps_per_epoch = math.ceil(len(groups) / cfg.batch_size)
    total_steps = cfg.max_steps or steps_per_epoch * cfg.epochs
    epochs = math.ceil(total_steps / steps_per_epoch)
    params = [p for p in teacher.model.parameters() if p.requires_grad]
    rng = np.random.default_rng(cfg.seed)
    group_len = 1 + cfg.negatives_per_positive

    teacher.model.train()
    loop = OptimLoop(
        params,
        lr=cfg.learning_rate,
        weight_decay=cfg.weight_decay,
        warmup_ratio=cfg.warmup_ratio,
        total_steps=total_steps,
        max_grad_norm=cfg.max_grad_norm,
        prefix="teacher",
        schedule="linear",
        desc="train teacher (cross-encoder)",
        log=log,
        show_progress=show_progress,
    )
    for _epoch in range(epochs):
        order = rng.permutation(len(groups))
        for s in range(0, len(order), cfg.batch_size):
            batch = [groups[i] for i in order[s : s + cfg.batch_size]]
            view = cfg.member_views[int(rng.integers(len(cfg.member_views)))]
            m_texts = [member_texts[view][g.member_id] for g in batch for _ in g.job_ids]  # (G * (1+K),)
            j_texts = [job_texts[j] for g in batch for j in g.job_ids]
            logits = teacher.logits(m_texts, j_texts).view(len(batch), group_len)  # (G, 1+K)
            targets = torch.tensor([g.targets for g in batch], dtype=torch.float32, device=logits.device)
            loss = group_loss(logits, targets, cfg.loss)
            loss.backward()
            loop.step(float(loss.detach()))
            if loop.done:
                break
        if loop.done:
            break
    loop.close()
    teacher.model.eval()
    stats = {
        "groups": len(groups),
        "pairs_per_group": group_len,
        "steps": loop.steps,
        "epochs": epochs,
        "loss": cfg.loss,
        "params": sum(p.numel() for p in params),
    }
    teacher.meta.train = {**stats, "learning_rate": cfg.learning_rate, "seed": cfg.seed}
    out = teacher.save(out_dir)
    return TeacherTrainResult(model_dir=out, history=loop.history, stats=stats)
