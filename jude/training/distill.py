"""Offline cross-encoder distillation into the fine-tuned bi-encoder.

JUDE: "offline cross-encoder distillation ... bridging 50% of the performance
gap" between the two-tower model and the cross-encoder. The recipe:

1. the fine-tuned bi-encoder retrieves its top-k jobs for every training member
   (``jude.evaluation.retrieval.top_k_candidates``);
2. the cross-encoder teacher scores those pairs offline
   (``jude.modeling.cross_encoder.score_candidates``) -> ``teacher_scores``;
   steps 1 and 2 are :func:`teacher_candidate_scores`;
3. :func:`distill_embedder` trains the bi-encoder to reproduce the teacher's
   ordering of each member's candidates.

:func:`distill_from_teacher` runs the three from two model directories (the
pipeline's ``distill_embedder`` step).

Student: the fine-tuned model directory is loaded (its LoRA already merged into
the weights) and a **fresh LoRA** is added on top. Only the new adapter trains,
so the fine-tuned weights stay the starting point, the step is as cheap as
fine-tuning, and ``adapter/`` of the saved model holds exactly what distillation
learned (``jude.json`` -> ``extra.distill.student_dir`` names the parent model for
lineage). The saved model is merged like the trainer's, so serving sees one model.

Each step takes ``batch_size`` members and ``group_size`` of their candidates
(the teacher's best always, the rest sampled), embeds both sides, and computes
the student's cosine scores ``s`` (B, C) against the teacher's logits ``t`` (B, C):

- ``margin_mse``: MSE between the margins ``s_top - s_c`` (cosines times
  ``margin_scale``) and ``t_top - t_c`` (Hofstätter et al. 2020);
- ``kl``: KL(softmax(t / T_t) || softmax(s / T_s)) over each member's candidates;
- ``both``: their sum;

plus ``infonce_weight`` x InfoNCE on the members' labelled positive jobs (with
in-batch negatives), which keeps the student anchored to the ground truth where
the teacher is wrong. The loss maths lives in ``jude.modeling.losses``.

**Controls.** A distilled student gets more steps and more labelled positives
(the anchor) than the fine-tuned model, so beating the fine-tuned model does not
show that the teacher helped. :func:`train_controls` trains two controls on the
same :func:`batch_schedule` (every step's members, candidates, positives: a
function of ``distill.seed`` and the teacher scores, recorded as
``batch_schedule_sha256``), from the same fresh LoRA (``lora_init_sha256``), with
the same optimiser, rate and steps; only the loss differs:

- ``control_anchor``: the distillation run with the KL and MarginMSE terms off
  (``infonce_weight`` x the InfoNCE anchor alone);
- ``control_steps``: fine-tuning continued, InfoNCE at weight 1 on the same
  positives with ``train.hard_negatives`` judged hard negatives each.

``jude.evaluation.paired`` then compares the distilled row with each on the
test queries (paired bootstrap of the nDCG@10 difference).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from jude.config import DistillConfig, LoRAConfig, ModelConfig, TrainConfig
from jude.evaluation.retrieval import top_k_candidates
from jude.modeling.cross_encoder import SCORE_COLUMNS, CrossEncoderTeacher, score_candidates
from jude.modeling.embedder import Embedder
from jude.modeling.losses import info_nce, kl_distillation, margin_mse
from jude.optim import LogFn, OptimLoop
from jude.training.trainer import TrainingDataError, TrainResult, seed_everything


@dataclass
class CandidateLists:
    """Each member's scored candidates, as aligned arrays, sorted by teacher score (best first)."""

    member_ids: list[str]
    job_ids: list[list[str]]  # member -> its candidates, best teacher score first
    scores: list[np.ndarray]  # member -> (C_m,) teacher logits, same order


def candidate_lists(
    teacher_scores: pd.DataFrame, jobs: pd.DataFrame, members: pd.DataFrame, min_candidates: int = 2
) -> tuple[CandidateLists, dict]:
    """Validate ``teacher_scores`` and group it by member.

    Members with fewer than ``min_candidates`` scored jobs are dropped (counted in
    the returned stats); an empty result is an error.
    """
    missing = [c for c in SCORE_COLUMNS if c not in teacher_scores.columns]
    if missing:
        raise TrainingDataError(f"teacher_scores is missing column(s) {missing}; expected {SCORE_COLUMNS}")
    ts = teacher_scores[SCORE_COLUMNS].reset_index(drop=True)
    scores = pd.to_numeric(ts["teacher_score"], errors="coerce")
    bad = np.flatnonzero(~np.isfinite(scores.to_numpy(dtype=float)))
    if len(bad):
        r = ts.iloc[int(bad[0])]
        raise TrainingDataError(
            f"teacher_scores row {int(bad[0])}: teacher_score must be a finite number, got "
            f"{r['teacher_score']!r} (member {r['member_id']}, job {r['job_id']})"
        )
    unknown_j = sorted(set(ts["job_id"]) - set(jobs["job_id"]))
    if unknown_j:
        raise TrainingDataError(f"teacher_scores names unknown job(s) {unknown_j[:5]}")
    unknown_m = sorted(set(ts["member_id"]) - set(members["member_id"]))
    if unknown_m:
        raise TrainingDataError(f"teacher_scores names unknown member(s) {unknown_m[:5]}")
    dup = ts.duplicated(["member_id", "job_id"])
    if dup.any():
        r = ts[dup].iloc[0]
        raise TrainingDataError(
            f"teacher_scores row {int(np.flatnonzero(dup)[0])}: duplicate pair "
            f"(member {r['member_id']}, job {r['job_id']})"
        )
    ts = ts.assign(teacher_score=scores.astype(np.float32)).sort_values(
        ["member_id", "teacher_score"], ascending=[True, False], kind="stable"
    )
    out = CandidateLists([], [], [])
    dropped = 0
    for m, g in ts.groupby("member_id", sort=True):
        if len(g) < min_candidates:
            dropped += 1
            continue
        out.member_ids.append(str(m))
        out.job_ids.append(g["job_id"].astype(str).tolist())
        out.scores.append(g["teacher_score"].to_numpy(np.float32))
    if not out.member_ids:
        raise TrainingDataError(
            f"teacher_scores: no member has >= {min_candidates} scored candidates "
            f"(distill.group_size); score more candidates (distill.candidates_k)"
        )
    return out, {
        "distill_members": len(out.member_ids),
        "distill_members_dropped": dropped,
        "distill_pairs": int(sum(len(j) for j in out.job_ids)),
    }


def distill_loss(student: torch.Tensor, teacher: torch.Tensor, cfg: DistillConfig) -> dict[str, torch.Tensor]:
    """Distillation losses of student cosines (B, C) against teacher logits (B, C).

    MarginMSE uses each row's teacher-best candidate as the reference: margins
    ``s_best - s_c`` vs ``t_best - t_c`` for the C - 1 others.
    Returns the active parts by name (``margin_mse``, ``kl``).
    """
    parts: dict[str, torch.Tensor] = {}
    if cfg.loss in ("margin_mse", "both"):
        best = teacher.argmax(1)  # (B,)
        rows = torch.arange(student.shape[0], device=student.device)
        others = torch.ones_like(teacher, dtype=torch.bool)
        others[rows, best] = False
        B, C = student.shape
        s = student * cfg.margin_scale
        parts["margin_mse"] = margin_mse(
            s[rows, best], s[others].view(B, C - 1), teacher[rows, best], teacher[others].view(B, C - 1)
        )
    if cfg.loss in ("kl", "both"):
        parts["kl"] = kl_distillation(student, teacher, cfg.student_temperature, cfg.teacher_temperature)
    return parts


@torch.inference_mode()
def distillation_metrics(
    embedder: Embedder,
    teacher_scores: pd.DataFrame,
    jobs: pd.DataFrame,
    members: pd.DataFrame,
    cfg: DistillConfig,
    member_view: str = "profile",
    batch_size: int = 64,
) -> dict[str, float]:
    """How far the student is from the teacher on the scored candidates (lower = closer).

    Over every member's full candidate list: MarginMSE (teacher-best as reference,
    student cosines times ``margin_scale``), KL at the configured temperatures, and
    the mean Spearman correlation of student and teacher scores per member.
    """
    lists, _ = candidate_lists(teacher_scores, jobs, members, min_candidates=2)
    job_ids = sorted({j for js in lists.job_ids for j in js})
    job_rows = jobs.set_index("job_id", drop=False).loc[job_ids]
    mem_rows = members.set_index("member_id", drop=False).loc[lists.member_ids]
    job_emb = dict(zip(job_ids, embedder.encode_entities("job", job_rows, batch_size=batch_size)))
    mem_emb = embedder.encode_entities(member_view, mem_rows, batch_size=batch_size)  # (M, D)
    mse, kl, rho = [], [], []
    full = cfg.model_copy(update={"loss": "both"})
    for i, (js, t) in enumerate(zip(lists.job_ids, lists.scores)):
        s = np.stack([job_emb[j] for j in js]) @ mem_emb[i]  # (C,)
        parts = distill_loss(torch.from_numpy(s)[None], torch.from_numpy(t)[None], full)
        mse.append(float(parts["margin_mse"]))
        kl.append(float(parts["kl"]))
        rs, rt = pd.Series(s).rank().to_numpy(), pd.Series(t).rank().to_numpy()
        rho.append(float(np.corrcoef(rs, rt)[0, 1]) if rs.std() > 0 and rt.std() > 0 else 0.0)
    return {"margin_mse": float(np.mean(mse)), "kl": float(np.mean(kl)), "spearman": float(np.mean(rho))}


RUNS = ("distilled", "control_anchor", "control_steps")  # what distill_embedder trains: the student, its controls


@dataclass
class DistillBatch:
    """One step of the schedule: which members, which of their candidates, which positives and negatives."""

    view: str  # the member text of this step
    member_ids: list[str]  # (B,)
    candidates: list[list[str]]  # (B, C): the teacher-best candidate and C - 1 sampled, shuffled
    teacher: np.ndarray  # (B, C) teacher logits of those candidates
    anchor_rows: list[int]  # rows of the members with a labelled positive (the InfoNCE anchor's queries)
    anchor_jobs: list[str]  # (A,): one labelled positive per anchored row
    anchor_negatives: list[list[str]]  # (A, K): judged negatives of those pairs (control_steps' hard negatives)

    def ids(self) -> list:
        """Every id this step reads, in order: what the schedule digest is made of."""
        return [self.view, self.member_ids, self.candidates, self.anchor_jobs, self.anchor_negatives]


def batch_schedule(
    lists: CandidateLists,
    positives: dict[str, list[str]],
    negatives: dict[str, list[str]],
    views: list[str],
    cfg: DistillConfig,
    hard_negatives: int,
    job_ids: list[str],
) -> list[DistillBatch]:
    """Every step's batch, drawn up front from ``default_rng(cfg.seed)``: a function of the seed and the data.

    The distilled student and both controls iterate the same list, so they see the same members, candidates
    and positives in the same order; :func:`schedule_digest` of the list is recorded with each run. Epochs are
    seeded permutations of the members (the ragged last batch dropped); ``negatives`` (member -> judged
    negatives) and ``hard_negatives`` give control_steps its K hard negatives per anchored pair (random
    non-positive jobs where a member has too few judged ones).
    """
    rng = np.random.default_rng(cfg.seed)
    B, C = cfg.batch_size, cfg.group_size
    n_members = len(lists.member_ids)
    steps_per_epoch = max(1, n_members // B)  # the ragged last batch is dropped (one short batch if n < B)
    total_steps = cfg.max_steps or steps_per_epoch * cfg.epochs
    positive_sets = {m: set(js) for m, js in positives.items()}
    schedule: list[DistillBatch] = []
    while len(schedule) < total_steps:
        order = rng.permutation(n_members)
        for b in range(steps_per_epoch):
            idx = order[b * B : (b + 1) * B]
            view = views[int(rng.integers(len(views)))]
            cand, teach = [], []
            for i in idx:  # each member: its teacher-best candidate + (C - 1) sampled from the rest, shuffled
                rest = 1 + rng.choice(len(lists.job_ids[i]) - 1, size=C - 1, replace=False)
                pick = rng.permutation(np.concatenate([[0], rest]))
                cand.append([lists.job_ids[i][p] for p in pick])
                teach.append(lists.scores[i][pick])
            mids = [lists.member_ids[i] for i in idx]
            rows = [k for k, m in enumerate(mids) if positives.get(m)]
            jobs_ = [positives[mids[k]][int(rng.integers(len(positives[mids[k]])))] for k in rows]
            negs = []
            for k in rows:
                m = mids[k]
                pool = [j for j in negatives.get(m, []) if j not in positive_sets[m]]
                chosen = [pool[i] for i in rng.permutation(len(pool))[:hard_negatives]]
                while len(chosen) < hard_negatives:
                    j = job_ids[int(rng.integers(len(job_ids)))]
                    if j not in positive_sets[m] and j not in chosen:
                        chosen.append(j)
                negs.append(chosen)
            schedule.append(DistillBatch(view, mids, cand, np.stack(teach), rows, jobs_, negs))
            if len(schedule) == total_steps:
                break
    return schedule


def schedule_digest(schedule: list[DistillBatch]) -> str:
    """sha256 of every id the schedule's steps read, in order (equal digests = the same batches)."""
    h = hashlib.sha256()
    for b in schedule:
        h.update(json.dumps(b.ids(), separators=(",", ":")).encode())
    return h.hexdigest()


def _parameters_digest(params: list[torch.nn.Parameter]) -> str:
    """sha256 of the trainable parameters' values (equal digests at the start = the same fresh LoRA)."""
    h = hashlib.sha256()
    for p in params:
        h.update(p.detach().cpu().float().numpy().tobytes())
    return h.hexdigest()


@dataclass
class _Run:
    """What every distillation run shares once prepared: the model, its texts and the batch schedule."""

    embedder: Embedder
    cfg: DistillConfig
    member_texts: dict[str, dict[str, str]]  # view -> member -> text
    job_texts: dict[str, str]
    positive_sets: dict[str, set[str]]
    max_job: int

    def jobs(self, ids: list[str]) -> torch.Tensor:
        return self.embedder.embed_texts([self.job_texts[j] for j in ids], self.max_job)

    def anchor(self, b: DistillBatch, q: torch.Tensor, hard_negatives: bool) -> torch.Tensor | None:
        """InfoNCE on the batch's labelled positives (in-batch negatives; with ``hard_negatives`` also the
        batch's judged negatives), or None when fewer than two members of the batch have a positive."""
        rows = b.anchor_rows
        if len(rows) < 2:
            return None
        hard = None
        if hard_negatives and b.anchor_negatives and b.anchor_negatives[0]:
            K = len(b.anchor_negatives[0])
            flat = [j for row in b.anchor_negatives for j in row]
            hard = self.jobs(flat).view(len(rows), K, -1)  # (A, K, D)
        return info_nce(
            q[rows],
            self.jobs(b.anchor_jobs),  # (A, D)
            self.cfg.infonce_temperature,
            hard_negatives=hard,
            query_ids=[b.member_ids[k] for k in rows],
            doc_ids=b.anchor_jobs,
            positives=self.positive_sets,
            hard_negative_ids=b.anchor_negatives if hard is not None else None,
        )


# Each run's loss on one batch: (run, batch, member embeddings (B, D)) -> the named parts, summed into the loss.
def _distilled_parts(r: _Run, b: DistillBatch, q: torch.Tensor) -> dict[str, torch.Tensor]:
    """The student: the teacher's terms (KL / MarginMSE) + ``infonce_weight`` x the anchor."""
    d = r.jobs([j for row in b.candidates for j in row])  # (B*C, D)
    student = torch.einsum("bd,bcd->bc", q, d.view(len(b.member_ids), r.cfg.group_size, -1))  # (B, C) cosines
    parts = distill_loss(student, torch.from_numpy(b.teacher).to(student.device), r.cfg)
    if r.cfg.infonce_weight > 0 and (anchor := r.anchor(b, q, hard_negatives=False)) is not None:
        parts["infonce"] = anchor
    return parts


def _anchor_parts(r: _Run, b: DistillBatch, q: torch.Tensor) -> dict[str, torch.Tensor]:
    """control_anchor: the student's run with the teacher's terms off (``infonce_weight`` x the anchor alone)."""
    anchor = r.anchor(b, q, hard_negatives=False)
    return {} if anchor is None else {"infonce": anchor}


def _steps_parts(r: _Run, b: DistillBatch, q: torch.Tensor) -> dict[str, torch.Tensor]:
    """control_steps: fine-tuning continued, InfoNCE at weight 1 with the judged hard negatives."""
    anchor = r.anchor(b, q, hard_negatives=True)
    return {} if anchor is None else {"infonce": anchor}


_PARTS: dict[str, Callable[[_Run, DistillBatch, torch.Tensor], dict[str, torch.Tensor]]] = {
    "distilled": _distilled_parts,
    "control_anchor": _anchor_parts,
    "control_steps": _steps_parts,
}


def _infonce_weight(run: str, cfg: DistillConfig) -> float:
    return 1.0 if run == "control_steps" else cfg.infonce_weight


def _check_run(run: str, cfg: DistillConfig, pairs: pd.DataFrame | None) -> None:
    if run not in RUNS:
        raise ValueError(f"run must be one of {RUNS}, got {run!r}")
    if run != "distilled" and pairs is None:
        raise ValueError(f"run {run!r} trains on the labelled positives: it needs the training pairs (pairs=)")
    if cfg.infonce_weight > 0 and pairs is None:
        raise ValueError(
            f"distill.infonce_weight={cfg.infonce_weight} needs the training pairs; "
            "pass pairs= or set distill.infonce_weight to 0"
        )
    if run == "control_anchor" and cfg.infonce_weight <= 0:
        raise ValueError(
            "run 'control_anchor' is the distillation run with only its InfoNCE anchor, but "
            f"distill.infonce_weight={cfg.infonce_weight}: there is no anchor to train"
        )


def distill_embedder(
    student_dir: str | Path,
    teacher_scores: pd.DataFrame,
    jobs: pd.DataFrame,
    members: pd.DataFrame,
    model_cfg: ModelConfig | None,
    lora_cfg: LoRAConfig,
    train_cfg: TrainConfig,
    distill_cfg: DistillConfig,
    out_dir: str | Path,
    pairs: pd.DataFrame | None = None,
    log: LogFn | None = None,
    measure: bool = True,
    show_progress: bool = True,
    run: str = "distilled",
    on_batch: Callable[[DistillBatch], None] | None = None,
) -> TrainResult:
    """Distil the teacher's candidate scores into the bi-encoder at ``student_dir``; save to ``out_dir``.

    Args:
        student_dir: the fine-tuned model directory (``Embedder.save`` output).
        teacher_scores: DataFrame[member_id, job_id, teacher_score] from ``score_candidates``.
        model_cfg: if given, its ``template_style`` must match the student's (the
            teacher scored texts rendered in that style).
        lora_cfg: the fresh distillation LoRA.
        train_cfg: ``member_views`` (student query texts, one per batch), ``weight_decay``,
            ``warmup_ratio``, ``max_grad_norm``; ``hard_negatives`` (control_steps).
        distill_cfg: loss, temperatures, steps, rate, batch and group sizes.
        pairs: the training pairs (positives label == 1); required when
            ``distill_cfg.infonce_weight`` > 0 and for the controls.
        measure: compute :func:`distillation_metrics` before and after (stats
            ``before/...``, ``after/...``) on the first member view.
        run: ``distilled`` (the teacher's terms + ``infonce_weight`` x the InfoNCE anchor),
            ``control_anchor`` (the same run with the KL and MarginMSE terms off: the anchor alone) or
            ``control_steps`` (fine-tuning continued: InfoNCE at weight 1 with ``train.hard_negatives``
            judged hard negatives per pair, ``distill.infonce_temperature``). Each is one loss function
            (``_distilled_parts``, ``_anchor_parts``, ``_steps_parts``); everything else is shared: all
            three read the same :func:`batch_schedule`, start from the same fresh LoRA
            (``torch.manual_seed(distill.seed)`` right before it is added) and use the same optimiser, rate
            and steps; the stats record ``batch_schedule_sha256`` and ``lora_init_sha256`` so that can be
            checked (:func:`check_controls`).
        on_batch: called with each step's :class:`DistillBatch` as it is trained.

    Returns a ``TrainResult`` (model_dir, per-step history, stats).
    """
    _check_run(run, distill_cfg, pairs)
    seed_everything(distill_cfg.seed)
    lists, stats = candidate_lists(teacher_scores, jobs, members, min_candidates=distill_cfg.group_size)
    embedder = Embedder.load(student_dir)
    if model_cfg is not None and model_cfg.template_style != embedder.meta.template_style:
        raise ValueError(
            f"model.template_style={model_cfg.template_style!r} but the student at {student_dir} "
            f"was trained with {embedder.meta.template_style!r}"
        )
    views = list(train_cfg.member_views)
    if measure:
        before = distillation_metrics(embedder, teacher_scores, jobs, members, distill_cfg, views[0])
        stats.update({f"before/{k}": v for k, v in before.items()})
    parent_lora = embedder.meta.extra.pop("lora", None)
    torch.manual_seed(distill_cfg.seed)  # the same fresh LoRA for the student and its controls
    embedder.add_lora(lora_cfg)
    embedder.train()

    # texts, rendered once with the student's templates
    used = members.set_index("member_id", drop=False).loc[lists.member_ids]
    member_texts = {v: dict(zip(lists.member_ids, embedder.render(v, used))) for v in views}
    job_texts = dict(zip(jobs["job_id"], embedder.render("job", jobs)))
    positives: dict[str, list[str]] = defaultdict(list)
    negatives: dict[str, list[str]] = defaultdict(list)
    if pairs is not None:
        known = pairs[pairs["member_id"].isin(set(lists.member_ids)) & pairs["job_id"].isin(set(job_texts))]
        for m, j, label in zip(known["member_id"], known["job_id"], known["label"]):
            (positives if label == 1 else negatives)[m].append(j)
    r = _Run(
        embedder,
        distill_cfg,
        member_texts,
        job_texts,
        {m: set(js) for m, js in positives.items()},
        embedder.meta.max_lengths["job"],
    )
    schedule = batch_schedule(
        lists, positives, negatives, views, distill_cfg, train_cfg.hard_negatives, list(job_texts)
    )
    total_steps = len(schedule)
    steps_per_epoch = max(1, len(lists.member_ids) // distill_cfg.batch_size)
    params = embedder.trainable_parameters()
    stats["lora_init_sha256"] = _parameters_digest(params)
    stats["batch_schedule_sha256"] = schedule_digest(schedule)
    loop = OptimLoop(
        params,
        lr=distill_cfg.learning_rate,
        weight_decay=train_cfg.weight_decay,
        warmup_ratio=train_cfg.warmup_ratio,
        total_steps=total_steps,
        max_grad_norm=train_cfg.max_grad_norm,
        prefix="distill" if run == "distilled" else run,
        desc=f"distil ({distill_cfg.loss})" if run == "distilled" else run,
        log=log,
        show_progress=show_progress,
    )
    parts_of, weight = _PARTS[run], _infonce_weight(run, distill_cfg)
    for b in schedule:
        if on_batch is not None:
            on_batch(b)
        q = embedder.embed_texts([member_texts[b.view][m] for m in b.member_ids], embedder.meta.max_lengths[b.view])
        parts = parts_of(r, b, q)  # (B, D) member embeddings in, the loss's named parts out
        loss = sum((weight if k == "infonce" else 1.0) * v for k, v in parts.items()) if parts else None
        if loss is not None:
            loss.backward()
        # a step with nothing to learn (a control batch with < 2 anchored members) still steps the schedule
        loop.step(
            float(loss.detach()) if loss is not None else 0.0, parts={k: float(v.detach()) for k, v in parts.items()}
        )
    loop.close()
    embedder.eval()
    if measure:
        after = distillation_metrics(embedder, teacher_scores, jobs, members, distill_cfg, views[0])
        stats.update({f"after/{k}": v for k, v in after.items()})
    stats.update(
        {
            "run": run,
            "steps": loop.steps,
            "epochs": math.ceil(total_steps / steps_per_epoch),
            "trainable_params": sum(p.numel() for p in params),
        }
    )
    embedder.meta.extra["distill"] = {
        "run": run,
        "student_dir": str(student_dir),
        "parent_lora": parent_lora,
        "loss": distill_cfg.loss if run == "distilled" else "infonce",
        "steps": loop.steps,
        "learning_rate": distill_cfg.learning_rate,
        "infonce_weight": weight,
        "infonce_temperature": distill_cfg.infonce_temperature,
        "student_temperature": distill_cfg.student_temperature,
        "teacher_temperature": distill_cfg.teacher_temperature,
        "margin_scale": distill_cfg.margin_scale,
        "seed": distill_cfg.seed,
        "batch_schedule_sha256": stats["batch_schedule_sha256"],
        "lora_init_sha256": stats["lora_init_sha256"],
    }
    out = embedder.save(out_dir)
    return TrainResult(model_dir=Path(out), history=loop.history, stats=stats)


def teacher_candidate_scores(
    student: Embedder,
    teacher: CrossEncoderTeacher,
    pairs: pd.DataFrame,
    jobs: pd.DataFrame,
    members: pd.DataFrame,
    candidates_k: int,
    show_progress: bool = False,
) -> pd.DataFrame:
    """The teacher's scores of the student's top ``candidates_k`` jobs of every member in the training
    ``pairs`` -> DataFrame[member_id, job_id, teacher_score] (what :func:`distill_embedder` learns from).

    Only training members are scored: the held-out members' rankings stay out of the distillation.
    """
    train_members = members[members["member_id"].isin(set(pairs["member_id"]))]
    candidates = top_k_candidates(student, jobs, train_members, k=candidates_k, show_progress=show_progress)
    return score_candidates(teacher, candidates, jobs, members, show_progress=show_progress)


@dataclass(frozen=True)
class DistillInputs:
    """What every distillation run of one chain reads: the fine-tuned student, the training data, the configs.

    The student and its two controls are trained through :meth:`train`, so nothing but the ``run`` (and where
    it is saved) can differ between them.
    """

    student_dir: str | Path  # the fine-tuned model directory
    pairs: pd.DataFrame  # the training pairs: the members to score, the InfoNCE anchor's positives
    jobs: pd.DataFrame
    members: pd.DataFrame
    model_cfg: ModelConfig | None
    lora_cfg: LoRAConfig
    train_cfg: TrainConfig
    distill_cfg: DistillConfig

    def train(
        self,
        teacher_scores: pd.DataFrame,
        out_dir: str | Path,
        run: str = "distilled",
        log: LogFn | None = None,
        show_progress: bool = True,
    ) -> TrainResult:
        """:func:`distill_embedder` on these inputs."""
        return distill_embedder(
            self.student_dir,
            teacher_scores,
            self.jobs,
            self.members,
            self.model_cfg,
            self.lora_cfg,
            self.train_cfg,
            self.distill_cfg,
            out_dir,
            pairs=self.pairs,
            log=log,
            show_progress=show_progress,
            run=run,
        )


@dataclass
class Distillation:
    teacher_scores: pd.DataFrame  # [member_id, job_id, teacher_score], the distillation's training data
    result: TrainResult  # the distilled model directory, history and stats


def distill_from_teacher(
    inputs: DistillInputs,
    teacher_dir: str | Path,
    out_dir: str | Path,
    log: LogFn | None = None,
    show_progress: bool = True,
) -> Distillation:
    """Score the fine-tuned student's candidates with the teacher (``teacher_dir``, the cross-encoder's
    directory), then distil those scores into the student (:meth:`DistillInputs.train`), saved to ``out_dir``."""
    scores = teacher_candidate_scores(
        Embedder.load(inputs.student_dir),
        CrossEncoderTeacher.load(teacher_dir),
        inputs.pairs,
        inputs.jobs,
        inputs.members,
        inputs.distill_cfg.candidates_k,
        show_progress=show_progress,
    )
    result = inputs.train(scores, out_dir, log=log, show_progress=show_progress)
    return Distillation(teacher_scores=scores, result=result)


class ControlMismatchError(RuntimeError):
    """A control did not train on the distilled student's batches or from its fresh LoRA: not a control."""


def check_controls(student: dict, controls: dict[str, TrainResult]) -> str:
    """Each control trained on the student's batch schedule and started from its fresh LoRA, or an error.

    ``student`` is the distilled model's ``jude.json`` ``extra.distill`` (its ``batch_schedule_sha256`` and
    ``lora_init_sha256``); ``controls`` the :func:`train_controls` results. Returns the schedule digest.
    """
    schedule, lora = student["batch_schedule_sha256"], student.get("lora_init_sha256")
    for run, res in controls.items():
        if res.stats["batch_schedule_sha256"] != schedule:
            raise ControlMismatchError(
                f"{run} trained on batch schedule {res.stats['batch_schedule_sha256'][:12]}, the distilled "
                f"student on {schedule[:12]}: not the same batches"
            )
        if lora is None:
            raise ControlMismatchError(
                "the distilled student records no lora_init_sha256 (distilled before it was recorded): "
                "its controls cannot be checked to start from the same fresh LoRA; distil it again"
            )
        if res.stats["lora_init_sha256"] != lora:
            raise ControlMismatchError(
                f"{run} started from LoRA {res.stats['lora_init_sha256'][:12]}, the distilled student from "
                f"{lora[:12]}: not the same fresh LoRA"
            )
    return schedule


def train_controls(
    inputs: DistillInputs,
    teacher_scores: pd.DataFrame,
    out_root: str | Path,
    log: LogFn | None = None,
    show_progress: bool = True,
) -> dict[str, TrainResult]:
    """Distillation's two controls, ``control_anchor`` and ``control_steps`` (see :func:`distill_embedder`'s
    ``run``), from the same fine-tuned model, teacher scores (so the same :func:`batch_schedule`), seed and
    fresh LoRA as the distilled student. Saved under ``out_root/<run>``; ``log`` gets ``<run>/loss`` etc.

    Nothing but the loss differs from the student's run, so a distilled model that beats both has learnt
    something from the teacher, not from more steps or from the anchor's labelled positives.
    """
    out_root = Path(out_root)
    return {
        run: inputs.train(teacher_scores, out_root / run, run=run, log=log, show_progress=show_progress)
        for run in RUNS[1:]
    }
