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

JUDE's **curriculum**: phases (``LossConfig.curriculum``, laid out on steps by
``jude.training.curriculum``) train on the positives
of the listed label sources (relevance first, then relevance + engagement).
Phase 1 uses the judge's negatives as hard negatives; later phases re-mine
semi-hard negatives with the current model (``train.mine_negatives``).

Optimiser: AdamW on the LoRA parameters (and the loss's own: head, learned
temperature), linear warmup then cosine decay, gradient clipping, optional
gradient accumulation or **GradCache** (``train.gradcache_chunk``) for batches
larger than memory. Losses and learning rate go to ``log`` (MLflow in the step),
and with a validation set its ``val/*`` metrics every ``train.eval_every_steps``
optimiser steps and at the end of each phase, so a validation curve sits next to
the training one.

Where the time goes (a step is almost all forward and backward of the towers),
and what keeps it down without changing the maths:

- only the LoRA matrices (and the loss's own parameters) require gradients, so
  the backward pass computes no weight gradients for the frozen base;
- every text is rendered and tokenised once (:class:`TokenCache`), for all
  steps and curriculum phases, and mining reuses the ids;
- each distinct text of a step is embedded once (:class:`StepTexts`: a member
  with two pairs, a job that is a positive and another pair's negative), in
  chunks of similar length (``Embedder.embed_token_ids``), so a profile of 60
  tokens is not padded to the 128 of the batch's longest text. Which pairs
  share a batch is unchanged (a repeated text now shares one dropout draw);
- opt-in, ``scale.bf16``: the towers under bf16 autocast (fast on CPUs with
  avx512_bf16 or AMX too), the loss in float32.

What is left on 2 CPU cores (MiniLM): the matrix products, and drawing the
dropout masks (``aten::bernoulli_``, a quarter of the step: on CPUs other than
Intel's, PyTorch draws them one element at a time on one thread).
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch.profiler import record_function

from jude.config import LoRAConfig, LossConfig, ModelConfig, ScaleConfig, TrainConfig
from jude.evaluation.retrieval import EvalSet, evaluate_embedder
from jude.modeling.embedder import Embedder
from jude.modeling.losses import CombinedLoss, LossInputs, predicate_matrix
from jude.optim import LogFn, OptimLoop
from jude.training.curriculum import plan_curriculum
from jude.training.general import GeneralBatches, general_step, load_general_pairs
from jude.training.gradcache import gradcache_shared_step
from jude.training.negatives import mine_hard_negatives


class TrainingDataError(ValueError):
    pass


@dataclass
class TrainResult:
    """Where the model went, the recorded steps (and validation records), and run statistics."""

    model_dir: Path
    history: list[dict] = field(default_factory=list)
    stats: dict = field(default_factory=dict)

    @property
    def final_loss(self) -> float:
        """The training loss of the last optimiser step (NaN when no step was recorded).

        Validation records (``val/...``) follow a phase's last step in ``history``,
        so this is the last record that has ``train/loss``, not ``history[-1]``.
        """
        losses = [h["train/loss"] for h in self.history if "train/loss" in h]
        return float(losses[-1]) if losses else float("nan")


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


@dataclass
class Batch:
    """One step's pairs by id; their texts (token ids) come from a :class:`TokenCache`."""

    view: str
    member_ids: list[str]
    job_ids: list[str]
    negative_ids: list[list[str]]  # (B, K)


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
        """This epoch's batches: a seeded permutation of the pairs, one member view drawn per batch."""
        rng = np.random.default_rng(self.seed + epoch)
        order = rng.permutation(len(self.member_ids))
        for b in range(len(self)):
            idx = order[b * self.batch_size : (b + 1) * self.batch_size]
            view = self.views[int(rng.integers(len(self.views)))]  # one view per batch: one max_length
            yield Batch(
                view=view,
                member_ids=[self.member_ids[i] for i in idx],
                job_ids=[self.job_ids[i] for i in idx],
                negative_ids=[self.negatives[i] for i in idx] if self.negatives else [],
            )


def check_training_pairs(
    pairs: pd.DataFrame, jobs: pd.DataFrame, members: pd.DataFrame, batch_size: int
) -> pd.DataFrame:
    """The positive pairs, after checking there are a batch of them and that they name known entities."""
    pos = pairs[pairs["label"] == 1]
    if len(pos) < batch_size:
        raise TrainingDataError(
            f"only {len(pos)} positive training pairs, fewer than train.batch_size={batch_size}; "
            "generate more labels (labels.budget) or lower the batch size"
        )
    missing_jobs = sorted(set(pos["job_id"]) - set(jobs["job_id"]))
    if missing_jobs:
        raise TrainingDataError(f"training pairs name unknown job(s) {missing_jobs[:5]}")
    missing_members = sorted(set(pos["member_id"]) - set(members["member_id"]))
    if missing_members:
        raise TrainingDataError(f"training pairs name unknown member(s) {missing_members[:5]}")
    return pos


def render_texts(
    embedder: Embedder, pos: pd.DataFrame, jobs: pd.DataFrame, members: pd.DataFrame, views: list[str]
) -> tuple[dict[str, dict[str, str]], dict[str, str]]:
    """Every text training reads, rendered once: ``({view: {member_id: text}}, {job_id: text})``.

    Members: those with a positive pair, in each member view. Jobs: all of them
    (any job can be a random or mined negative).
    """
    used = members.set_index("member_id", drop=False).loc[sorted(set(pos["member_id"]))]
    member_texts = {v: dict(zip(used["member_id"], embedder.render(v, used))) for v in views}
    job_texts = dict(zip(jobs["job_id"], embedder.render("job", jobs)))
    return member_texts, job_texts


def make_batches(
    pairs: pd.DataFrame, jobs: pd.DataFrame, members: pd.DataFrame, embedder: Embedder, train: TrainConfig
) -> PairBatches:
    """All positive pairs as rendered texts with their judged negatives (the HF Trainer's dataset)."""
    pos = check_training_pairs(pairs, jobs, members, train.batch_size)
    member_texts, job_texts = render_texts(embedder, pos, jobs, members, list(train.member_views))
    known = pairs[pairs["job_id"].isin(set(jobs["job_id"]))]
    negatives = pick_negatives(pos, known, jobs["job_id"].tolist(), train.hard_negatives, train.seed)
    return PairBatches(
        member_ids=pos["member_id"].tolist(),
        job_ids=pos["job_id"].tolist(),
        member_texts=member_texts,
        job_texts=job_texts,
        views=list(train.member_views),
        batch_size=train.batch_size,
        seed=train.seed,
        negatives=negatives,
    )


@dataclass
class TokenCache:
    """Every training text tokenised once, kept across steps and curriculum phases.

    ``members[view][member_id]`` and ``jobs[job_id]`` are unpadded token-id lists
    (``Embedder.token_ids``), truncated at the view's or the job's max length.
    """

    members: dict[str, dict[str, list[int]]]
    jobs: dict[str, list[int]]

    @classmethod
    def build(
        cls, embedder: Embedder, member_texts: dict[str, dict[str, str]], job_texts: dict[str, str]
    ) -> TokenCache:
        lengths = embedder.meta.max_lengths
        members = {
            view: dict(zip(texts, embedder.token_ids(list(texts.values()), lengths[view])))
            for view, texts in member_texts.items()
        }
        jobs = dict(zip(job_texts, embedder.token_ids(list(job_texts.values()), lengths["job"])))
        return cls(members=members, jobs=jobs)


@dataclass
class StepTexts:
    """One step's distinct texts and where the loss's rows come from.

    A member with two pairs in the batch, or a job that is one pair's positive
    and another's hard negative, is one entry of ``ids``, embedded once (both
    towers are the same network). ``ids`` is sorted by length (GradCache chunks
    then pad little). ``q_rows`` (B,) and ``d_rows`` (B + B*K,) index the (U, D)
    embeddings of ``ids``: the members, then the positive jobs followed by the
    hard negatives row-major, the layout :class:`StepLoss` reads.
    """

    ids: list[list[int]]  # U distinct texts, shortest first
    q_rows: torch.Tensor  # (B,)
    d_rows: torch.Tensor  # (B + B*K,)

    @classmethod
    def of(cls, b: Batch, tokens: TokenCache) -> StepTexts:
        slot: dict[tuple[str, str], int] = {}
        seqs: list[list[int]] = []

        def row(key: tuple[str, str], seq: list[int]) -> int:
            if key not in slot:
                slot[key] = len(seqs)
                seqs.append(seq)
            return slot[key]

        member_seqs = tokens.members[b.view]
        q = [row(("member", m), member_seqs[m]) for m in b.member_ids]
        d = [row(("job", j), tokens.jobs[j]) for j in [*b.job_ids, *(j for r in b.negative_ids for j in r)]]
        order = sorted(range(len(seqs)), key=lambda i: len(seqs[i]))  # stable: ties keep first-seen order
        rank = torch.empty(len(seqs), dtype=torch.long)
        rank[torch.tensor(order, dtype=torch.long)] = torch.arange(len(seqs))
        return cls(ids=[seqs[i] for i in order], q_rows=rank[q], d_rows=rank[d])


def positives_by_member(pos: pd.DataFrame) -> dict[str, set[str]]:
    out: dict[str, set[str]] = defaultdict(set)
    for m, j in zip(pos["member_id"], pos["job_id"]):
        out[m].add(j)
    return out


def mine_negatives(
    embedder: Embedder,
    pos: pd.DataFrame,
    jobs: pd.DataFrame,
    members: pd.DataFrame,
    k: int,
    margin: float,
    seed: int,
    show_progress: bool = False,
    tokens: TokenCache | None = None,
) -> list[list[str]]:
    """Semi-hard negatives for each positive pair, mined with the current model (true positives excluded).

    Members are embedded by their profile, against every job. With ``tokens`` (the
    trainer's cache) the texts are not rendered and tokenised again.
    """
    member_ids = sorted(set(pos["member_id"]))
    job_ids = jobs["job_id"].tolist()
    job_index = {j: i for i, j in enumerate(job_ids)}
    profiles = tokens.members.get("profile", {}) if tokens is not None else {}
    if tokens is not None and all(m in profiles for m in member_ids) and all(j in tokens.jobs for j in job_ids):
        q = embedder.encode_token_ids([profiles[m] for m in member_ids])
        d = embedder.encode_token_ids([tokens.jobs[j] for j in job_ids])
    else:
        rows = members.set_index("member_id", drop=False).loc[member_ids]
        q = embedder.encode_entities("profile", rows, show_progress=show_progress)
        d = embedder.encode_entities("job", jobs, show_progress=show_progress)
    positives = positives_by_member(pos)
    mined = mine_hard_negatives(
        q,
        d,
        [{job_index[j] for j in positives[m] if j in job_index} for m in member_ids],
        k=k,
        margin=margin,
        seed=seed,
    )
    by_member = {m: [job_ids[i] for i in row] for m, row in zip(member_ids, mined)}
    return [by_member[m] for m in pos["member_id"]]


class StepLoss:
    """Turns one batch's embeddings into CombinedLoss inputs (kept apart so GradCache and the HF Trainer reuse it).

    The batch ``b`` needs ``view``, ``member_ids``, ``job_ids`` and ``negative_ids``
    (a :class:`Batch`, or the HF Trainer's gathered global batch).
    """

    def __init__(
        self,
        criterion: CombinedLoss,
        positives: dict[str, set[str]],
        judged: set[tuple[str, str]],
        seniority: dict[str, str],
        sources: dict[tuple[str, str], str],
    ):
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
        x = LossInputs(
            q=q,
            d=d,
            hard_negatives=hard,
            query_ids=b.member_ids,
            doc_ids=b.job_ids,
            positives=self.positives,
            hard_negative_ids=b.negative_ids or None,
        )
        if self.needs_pairs:
            K = 0 if hard is None else hard.shape[1]
            x.pair_u = torch.cat([q, q.repeat_interleave(K, 0)]) if K else q  # (B + B*K, D)
            x.pair_v = torch.cat([d, hard.reshape(-1, D)]) if K else d
            x.pair_labels = torch.tensor([1.0] * B + [0.0] * (B * K), device=q.device)
            neg_origin = [
                "judged" if (m, j) in self.judged else "random"
                for m, row in zip(b.member_ids, b.negative_ids)
                for j in row
            ]
            origin = [self.sources.get((m, j), "relevance") for m, j in zip(b.member_ids, b.job_ids)] + neg_origin
            jobs_of = list(b.job_ids) + [j for row in b.negative_ids for j in row]
            x.pair_predicates = predicate_matrix(
                {
                    "origin": origin,
                    "view": [b.view] * len(origin),
                    "seniority": [self.seniority.get(j, "?") for j in jobs_of],
                }
            ).to(q.device)
        out = self.criterion(x)
        self.parts = out.parts
        return out.total

    @classmethod
    def from_pairs(cls, criterion: CombinedLoss, pairs: pd.DataFrame, jobs: pd.DataFrame) -> StepLoss:
        """Positives, judged negatives, label sources and job seniority from the training pairs."""
        pos = pairs[pairs["label"] == 1]
        neg = pairs[pairs["label"] == 0]
        return cls(
            criterion,
            positives_by_member(pos),
            set(zip(neg["member_id"], neg["job_id"])),
            dict(zip(jobs["job_id"], jobs["seniority"])),
            dict(zip(zip(pos["member_id"], pos["job_id"]), pos["source"])),
        )


def train_embedder(
    pairs: pd.DataFrame,
    jobs: pd.DataFrame,
    members: pd.DataFrame,
    model_cfg: ModelConfig,
    lora_cfg: LoRAConfig,
    train: TrainConfig,
    out_dir: str | Path,
    loss_cfg: LossConfig | None = None,
    val_set: EvalSet | None = None,
    log: LogFn | None = None,
    show_progress: bool = True,
    embedder: Embedder | None = None,
    scale: ScaleConfig | None = None,
) -> TrainResult:
    """Fine-tune ``model_cfg.base_model`` with LoRA on the labelled pairs; save to ``out_dir``.

    ``embedder`` continues training a model that is already loaded (LoRA added if it has none).
    ``scale`` switches on gradient checkpointing, Liger kernels and bf16 autocast
    (DeepSpeed runs through ``jude.training.hf_trainer`` instead).
    """
    loss_cfg = loss_cfg or LossConfig()
    scale = scale or ScaleConfig()
    seed_everything(train.seed)
    if embedder is None:
        embedder = Embedder.trainable(model_cfg, lora_cfg, scale)  # base + Liger + LoRA + checkpointing
    if not embedder.has_lora:
        embedder.add_lora(lora_cfg)
    criterion = CombinedLoss.from_config(loss_cfg, embedder.dimension).to(embedder.device)
    pos = check_training_pairs(pairs, jobs, members, train.batch_size)
    member_texts, job_texts = render_texts(embedder, pos, jobs, members, list(train.member_views))
    tokens = TokenCache.build(embedder, member_texts, job_texts)  # every text tokenised once
    known_pairs = pairs[pairs["job_id"].isin(set(jobs["job_id"]))]
    step_loss = StepLoss.from_pairs(criterion, pairs, jobs)
    general = None
    if train.general_mix > 0:  # general text beside each micro-batch (jude.training.general)
        general = GeneralBatches.build(
            embedder, load_general_pairs(train.general_pairs), train.batch_size, model_cfg.max_length_job, train.seed
        )

    steps_per_epoch = max(1, (len(pos) // train.batch_size) // train.grad_accum)
    plan = plan_curriculum(
        loss_cfg.curriculum,
        steps_per_epoch,
        total_steps=train.max_steps or (None if loss_cfg.curriculum else steps_per_epoch * train.epochs),
    )
    total_steps = plan[-1].end
    params = embedder.trainable_parameters() + [p for p in criterion.parameters() if p.requires_grad]

    stats = {
        "positive_pairs": len(pos),
        "steps": total_steps,
        "phases": [p.name for p in plan],
        "losses": criterion.weights.active,
        "gradcache": bool(train.gradcache_chunk),
        "general_pairs": len(general.queries) if general else 0,
        "trainable_params": sum(p.numel() for p in params),
        "total_params": sum(p.numel() for p in embedder.parameters()),
    }
    out_dir = Path(out_dir)
    embedder.train()
    validated_at = -1  # the step of the last validation record (one per step at most)

    def validate(phase_name: str) -> None:
        """``val/*`` of the current model on ``val_set``, recorded (and logged) at the current step."""
        nonlocal validated_at
        if val_set is None or validated_at == loop.steps:
            return
        with record_function("jude.validate"):
            val = evaluate_embedder(embedder, val_set)
        embedder.train()
        loop.record({f"val/{k}": v for k, v in val.items()}, phase=phase_name)
        validated_at = loop.steps

    loop = OptimLoop(
        params,
        lr=train.learning_rate,
        weight_decay=train.weight_decay,
        warmup_ratio=train.warmup_ratio,
        total_steps=total_steps,
        max_grad_norm=train.max_grad_norm,
        prefix="train",
        desc="fine-tune (LoRA)",
        log=log,
        show_progress=show_progress,
    )
    micro_no = 0  # every micro-batch's general batch, across phases
    for phase_no, phase in enumerate(plan):
        phase_pos = pos[pos["source"].isin(phase.sources)]
        if len(phase_pos) < train.batch_size:
            raise TrainingDataError(
                f"curriculum phase {phase.name!r}: only {len(phase_pos)} positives from "
                f"{list(phase.sources)}, fewer than train.batch_size={train.batch_size}"
            )
        if phase_no > 0 and train.mine_negatives and train.hard_negatives:
            with record_function("jude.mine_negatives"):
                negatives = mine_negatives(
                    embedder,
                    phase_pos,
                    jobs,
                    members,
                    train.hard_negatives,
                    train.mining_margin,
                    train.seed + phase_no,
                    tokens=tokens,
                )
            embedder.train()
        else:
            negatives = pick_negatives(
                phase_pos, known_pairs, jobs["job_id"].tolist(), train.hard_negatives, train.seed
            )
        batches = PairBatches(
            member_ids=phase_pos["member_id"].tolist(),
            job_ids=phase_pos["job_id"].tolist(),
            member_texts=member_texts,
            job_texts=job_texts,
            views=list(train.member_views),
            batch_size=train.batch_size,
            seed=train.seed + 1000 * phase_no,
            negatives=negatives,
        )
        loop.bar.set_description(f"fine-tune (LoRA) [{phase.name}]")
        epoch = 0
        while loop.steps < phase.end:
            micro = 0
            for b in batches.epoch(epoch):
                loss_value = train_step(embedder, step_loss, b, tokens, train, bf16=scale.bf16)
                parts = dict(step_loss.parts)
                if general is not None:
                    with record_function("jude.general"):
                        parts["general"] = general_step(
                            embedder, general, micro_no, train.general_mix, loss_cfg.temperature,
                            train.grad_accum, bf16=scale.bf16,
                        )  # fmt: skip
                micro_no += 1
                micro += 1
                if micro % train.grad_accum:
                    continue
                with record_function("jude.optimizer"):
                    loop.step(loss_value, parts=parts, phase=phase.name)
                if train.eval_every_steps and loop.steps % train.eval_every_steps == 0:
                    validate(phase.name)
                if train.checkpoint_every and loop.steps % train.checkpoint_every == 0:
                    embedder.backbone.save_pretrained(
                        out_dir.parent / f"{out_dir.name}-checkpoints" / f"step-{loop.steps}"
                    )
                if loop.steps >= phase.end:
                    break
            epoch += 1
        validate(phase.name)  # every phase ends with a validation record (unless its last step just had one)
    loop.close()
    embedder.eval()
    embedder.meta.extra["train"] = {
        "steps": loop.steps,
        "positive_pairs": len(pos),
        "losses": criterion.weights.active,
        "temperature": loss_cfg.temperature,
        "learning_rate": train.learning_rate,
        "phases": [p.name for p in plan],
        "general_mix": train.general_mix,
    }
    embedder.save(out_dir)
    if criterion.head is not None:  # kept for the BCE task and lineage; not part of the served embedding
        torch.save(criterion.head.state_dict(), out_dir / "interaction_head.pt")
    return TrainResult(model_dir=out_dir, history=loop.history, stats=stats)


def train_step(
    embedder: Embedder, step_loss: StepLoss, b: Batch, tokens: TokenCache, train: TrainConfig, bf16: bool = False
) -> float:
    """Forward and backward of one micro-batch; gradients accumulate. Returns the (unscaled) loss value.

    Every distinct text of the batch is embedded once (:class:`StepTexts`), in
    length-sorted chunks (``Embedder.embed_token_ids``); with ``train.gradcache_chunk``
    through GradCache instead. ``bf16`` autocasts the towers only: the loss (cosines
    over a 0.05 temperature) is computed in float32.
    """
    with record_function("jude.step_texts"):
        st = StepTexts.of(b, tokens)
    if train.gradcache_chunk:

        def embed(seqs: Sequence[list[int]]) -> torch.Tensor:
            with embedder.autocast(enabled=bf16):
                return embedder.embed_token_ids(seqs, max_batch_tokens=None)  # a GradCache chunk: one forward

        with record_function("jude.gradcache"):
            value = gradcache_shared_step(
                embed,
                st.ids,
                lambda emb: step_loss(b, emb[st.q_rows], emb[st.d_rows]) / train.grad_accum,
                train.gradcache_chunk,
            )
        return value * train.grad_accum
    with record_function("jude.embed"), embedder.autocast(enabled=bf16):
        emb = embedder.embed_token_ids(st.ids)  # (U, D)
    with record_function("jude.loss"):
        loss = step_loss(b, emb[st.q_rows], emb[st.d_rows])  # q (B, D), d_all (B + B*K, D)
    with record_function("jude.backward"):
        (loss / train.grad_accum).backward()
    return float(loss.detach())
