"""Train the cross-encoder teacher (``jude.modeling.cross_encoder``) on the labelled training pairs.

Training data (from the labelled pairs, see ``jude.training.pairs``): every
positive pair (relevance label 1, or an apply) opens a *group* with
``negatives_per_positive`` negatives. A teacher is only worth distilling if it
separates what the student confuses, so the negatives are the **fine-tuned
embedder's hard negatives**: given that model's top ``teacher.hard_negatives_k``
jobs of each training member (:func:`finetuned_top_k`), a group takes, in order,

1. the member's judged negatives inside that top-k (graded below relevant, or dismissed),
2. the member's other judged negatives,
3. unjudged jobs of that top-k (target 0: assumed negative, the usual hard-negative bet),
4. random jobs (never a positive of the member),

sampling without replacement inside each tier (seeded). Without a top-k
(``hard_negatives_k: 0``) tiers 1 and 3 are empty: judged, then random
negatives, the bi-encoder's choice (``jude.training.trainer.pick_negatives``).
The stats count where the negatives came from (``negatives_from_finetuned_top_k``).

Two losses:

- ``bce``: every pair in the group against a graded target ``grade / 3``
  (relevance grades 0..3; an apply counts 3, a dismissal 0, an unjudged or random job 0);
- ``listwise``: softmax cross-entropy over the group, the positive is the answer.

All the teacher's weights are fine-tuned (it is small and offline-only), with
AdamW, linear warmup then linear decay (``jude.optim.OptimLoop``).

:func:`check_teacher` is the gate before distillation: on the **validation**
members, the teacher reranking the fine-tuned top-k must beat the fine-tuned
ranking (judge nDCG@10); if it does not, distilling it is not meaningful.
"""

from __future__ import annotations

import math
import os
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from jude.config import EvalConfig, TeacherConfig
from jude.evaluation.retrieval import EvalSet, retrieve, top_k_candidates
from jude.evaluation.variants import evaluate_variants
from jude.modeling.cross_encoder import CrossEncoderTeacher, TeacherDataError, rerank
from jude.optim import OptimLoop
from jude.training.trainer import TrainResult

NEGATIVE_TIERS = ("finetuned_judged", "judged", "finetuned_unjudged", "random")  # the order groups fill from


TeacherTrainResult = TrainResult  # the teacher's run is a training run like the embedder's: one result type


@dataclass
class _Group:
    member_id: str
    job_ids: list[str]  # the positive first, then its negatives
    targets: list[float]  # graded targets in [0, 1], same order
    origins: list[str] = field(default_factory=list)  # per negative: its tier in NEGATIVE_TIERS


def finetuned_top_k(
    embedder: Any, pairs: pd.DataFrame, jobs: pd.DataFrame, members: pd.DataFrame, k: int, show_progress: bool = False
) -> dict[str, list[str]]:
    """member_id -> the fine-tuned ``embedder``'s top ``k`` jobs, for every member with a positive training pair.

    Only training members (those in ``pairs``) are ranked: held-out members never reach the teacher.
    """
    pos_members = set(pairs.loc[pairs["label"] == 1, "member_id"])
    rows = members[members["member_id"].isin(pos_members)]
    if len(rows) == 0 or k == 0:
        return {}
    return top_k_candidates(embedder, jobs, rows, k=min(k, len(jobs)), show_progress=show_progress)


def pick_teacher_negatives(
    pos: pd.DataFrame,
    pairs: pd.DataFrame,
    job_ids: Sequence[str],
    k: int,
    seed: int,
    mined: Mapping[str, Sequence[str]] | None = None,
) -> tuple[list[list[str]], list[list[str]]]:
    """K negatives per positive pair of ``pos`` and the tier each came from (``NEGATIVE_TIERS``).

    ``mined`` is member_id -> the fine-tuned model's top-k jobs. A member's positives (label 1) are never
    its negatives, whatever tier.
    """
    rng = np.random.default_rng(seed)
    judged: dict[str, list[str]] = defaultdict(list)
    for m, j in zip(pairs.loc[pairs["label"] == 0, "member_id"], pairs.loc[pairs["label"] == 0, "job_id"]):
        judged[m].append(str(j))
    labelled: dict[str, set[str]] = defaultdict(set)
    for m, j in zip(pairs["member_id"], pairs["job_id"]):
        labelled[m].add(str(j))
    positives: dict[str, set[str]] = defaultdict(set)
    for m, j in zip(pairs.loc[pairs["label"] == 1, "member_id"], pairs.loc[pairs["label"] == 1, "job_id"]):
        positives[m].add(str(j))
    mined = mined or {}
    negatives, tiers = [], []
    for m in pos["member_id"]:
        top = [str(j) for j in mined.get(m, []) if str(j) not in positives[m]]
        top_set = set(top)
        pools = {
            "finetuned_judged": [j for j in judged.get(m, []) if j in top_set],
            "judged": [j for j in judged.get(m, []) if j not in top_set],
            "finetuned_unjudged": [j for j in top if j not in labelled[m]],
        }
        chosen: list[str] = []
        origin: list[str] = []
        for tier, pool in pools.items():
            pool = [j for j in dict.fromkeys(pool) if j not in chosen]
            take = min(k - len(chosen), len(pool))
            if take > 0:
                chosen += [pool[i] for i in rng.choice(len(pool), size=take, replace=False)]
                origin += [tier] * take
        while len(chosen) < k:
            j = str(job_ids[int(rng.integers(len(job_ids)))])
            if j not in positives[m] and j not in chosen:
                chosen.append(j)
                origin.append("random")
        negatives.append(chosen)
        tiers.append(origin)
    return negatives, tiers


def build_groups(
    pairs: pd.DataFrame,
    job_ids: Sequence[str],
    cfg: TeacherConfig,
    mined: Mapping[str, Sequence[str]] | None = None,
) -> list[_Group]:
    """One group per positive pair: the positive, then its negatives (:func:`pick_teacher_negatives`).

    Targets are ``grade / 3`` for labelled pairs (relevance grades 0..3; an apply
    has grade 3, a dismissal 0; a positive at least 2 / 3) and 0 for unjudged and random jobs.
    ``mined``: member_id -> the fine-tuned model's top-k jobs (the hard negatives' source).
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
    unknown_mined = sorted({str(j) for js in (mined or {}).values() for j in js} - {str(j) for j in known})
    if unknown_mined:
        raise TeacherDataError(f"the fine-tuned top-k names unknown job(s) {unknown_mined[:5]}")
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
    negatives, tiers = pick_teacher_negatives(
        pos, pairs, [str(j) for j in job_ids], cfg.negatives_per_positive, cfg.seed, mined
    )
    groups = []
    for (m, j, g), negs, origin in zip(zip(pos["member_id"], pos["job_id"], pos["grade"]), negatives, tiers):
        # a positive counts at least 'relevant' (grade 2) whatever its recorded grade
        groups.append(
            _Group(
                member_id=str(m),
                job_ids=[str(j), *negs],
                targets=[max(float(g), 2.0) / 3.0] + [grade.get((m, n), 0.0) / 3.0 for n in negs],
                origins=origin,
            )
        )
    return groups


def negative_origins(groups: Sequence[_Group]) -> dict[str, float]:
    """How many negatives came from each tier, and the share from the fine-tuned top-k."""
    counts = {t: 0 for t in NEGATIVE_TIERS}
    for g in groups:
        for o in g.origins:
            counts[o] += 1
    total = sum(counts.values())
    mined = counts["finetuned_judged"] + counts["finetuned_unjudged"]
    return {
        **{f"negatives_{t}": n for t, n in counts.items()},
        "negatives_from_finetuned_top_k": mined / total if total else 0.0,
    }


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
    mined: Mapping[str, Sequence[str]] | None = None,
) -> TrainResult:
    """Train the cross-encoder teacher on the labelled training pairs; save it to ``out_dir``.

    ``pairs`` are the training pairs of ``jude.training.pairs.split_and_pair``
    (held-out members are not in them); ``mined`` is the fine-tuned model's top-k per training member
    (:func:`finetuned_top_k`), where the groups' negatives come from first. ``log(metrics, step)`` receives
    the loss and learning rate of every step. Returns the directory, the loss history and stats.
    """
    torch.manual_seed(cfg.seed)
    np.random.seed(cfg.seed)
    groups = build_groups(pairs, jobs["job_id"].tolist(), cfg, mined=mined)
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
        "hard_negatives_k": cfg.hard_negatives_k if mined else 0,
        **negative_origins(groups),
    }
    teacher.meta.train = {**stats, "learning_rate": cfg.learning_rate, "seed": cfg.seed}
    out = teacher.save(out_dir)
    return TrainResult(model_dir=out, history=loop.history, stats=stats)


@dataclass
class TeacherCheck:
    """The teacher reranking the fine-tuned top-k vs the fine-tuned ranking, on the validation members."""

    finetuned_ndcg: float  # judge nDCG@10 of the fine-tuned model
    teacher_ndcg: float  # judge nDCG@10 of the teacher reranking the fine-tuned top-k
    queries: int
    rerank_k: int
    pooled: bool

    @property
    def meaningful(self) -> bool:
        """Distillation is meaningful only if the teacher ranks better than the student it would teach."""
        return self.teacher_ndcg > self.finetuned_ndcg

    def summary(self) -> str:
        verdict = (
            "the teacher beats the fine-tuned model: distillation is meaningful"
            if self.meaningful
            else "the teacher does NOT beat the fine-tuned model: distillation is not meaningful (it still runs, "
            "and the table marks it)"
        )
        return (
            f"validation ({self.queries} members, judge nDCG@10): teacher reranking the fine-tuned top "
            f"{self.rerank_k} {self.teacher_ndcg:.4f} vs fine-tuned {self.finetuned_ndcg:.4f}; {verdict}"
        )

    def metrics(self) -> dict[str, float]:
        return {
            "val/finetuned/ndcg_at_10": self.finetuned_ndcg,
            "val/teacher/ndcg_at_10": self.teacher_ndcg,
            "distillation_meaningful": float(self.meaningful),
        }


def check_teacher(
    finetuned: Any,
    teacher: CrossEncoderTeacher,
    val_set: EvalSet,
    judge: Any,
    eval_cfg: EvalConfig,
    relevant_grade: int,
    rerank_k: int,
    show_progress: bool = False,
) -> TeacherCheck:
    """Score the fine-tuned ranking and the teacher's rerank of its top ``rerank_k`` on ``val_set``.

    ``val_set`` holds the validation members (``split_pairs``' ``val_set``), never test members. With
    ``eval_cfg.qrels == 'pooled'`` the ``judge`` grades the top ``eval_cfg.pool_depth`` of both rankings
    first (as on the test members), so neither is scored on the other's unjudged jobs.
    """
    ft_run = retrieve(finetuned, val_set, k=max(rerank_k, 10), batch_size=eval_cfg.batch_size)
    runs = {
        "finetuned": ft_run,
        "teacher": rerank(teacher, ft_run, val_set, k=rerank_k, show_progress=show_progress),
    }
    table = evaluate_variants(runs, val_set, judge if eval_cfg.qrels == "pooled" else None, eval_cfg, relevant_grade)
    return TeacherCheck(
        finetuned_ndcg=table.results["finetuned"]["ndcg_at_10"],
        teacher_ndcg=table.results["teacher"]["ndcg_at_10"],
        queries=len(val_set.queries),
        rerank_k=rerank_k,
        pooled=table.pooled,
    )
