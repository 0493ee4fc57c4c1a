"""What the train pipeline trains with: ``model``, ``lora``, ``train``, ``loss``, ``scale``, ``teacher``,
``distill`` and ``ablation`` sections.

``ModelConfig``, ``LoRAConfig``, ``TrainConfig``, ``LossConfig`` (with ``CurriculumPhase``, ``LOSS_NAMES``,
``check_loss_weights``), ``ScaleConfig``, ``TeacherConfig``, ``DistillConfig``, ``AblationConfig``
(``LOSS_VARIANTS``), and the rules between them that the pipeline model applies (``check_scale``,
``check_hf_losses``, ``ScaleConfigError``).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from jude.config.base import LabelSource, MemberView, Pooling, _Section
from jude.data.schema import MEMBER_VIEWS


class LoRAConfig(_Section):
    r: int = Field(16, gt=0, description="LoRA rank.")
    alpha: int = Field(32, gt=0, description="LoRA scaling numerator (scale = alpha / r).")
    dropout: float = Field(0.05, ge=0, lt=1, description="Dropout on the LoRA branch.")
    target_modules: list[str] | Literal["auto"] = Field(
        "auto", description="Modules to adapt; 'auto' picks the attention Q/K/V projections of the architecture."
    )


class ModelConfig(_Section):
    base_model: str = Field("minilm", description="'minilm' (the packaged all-MiniLM-L6-v2), a local path or a hub id.")
    pooling: Pooling = Field("mean", description="'lasttoken' for decoder-only models.")
    normalize: bool = Field(True, description="L2-normalise embeddings (inner product = cosine).")
    template_style: Literal["plain", "instruct"] = Field("plain", description="Entity template style.")
    max_length_job: int = Field(192, gt=8, description="Token budget for a job posting.")
    max_length_profile: int = Field(128, gt=8, description="Token budget for a profile.")
    max_length_resume: int = Field(256, gt=8, description="Token budget for a resume.")
    dtype: Literal["float32", "bfloat16", "float16"] = Field("float32", description="Weights dtype (bf16 on GPUs).")
    attn_implementation: str | None = Field(
        None, description="e.g. 'flash_attention_2' on GPUs; None lets transformers pick."
    )

    def max_length(self, entity_type: str) -> int:
        return {"job": self.max_length_job, "profile": self.max_length_profile, "resume": self.max_length_resume}[
            entity_type
        ]


class TrainConfig(_Section):
    epochs: int = Field(2, gt=0)
    max_steps: int | None = Field(None, gt=0, description="Stop after this many optimiser steps (overrides epochs).")
    batch_size: int = Field(32, gt=1, description="Pairs per step; the other pairs' jobs are in-batch negatives.")
    grad_accum: int = Field(1, gt=0, description="Micro-batches per optimiser step.")
    learning_rate: float = Field(2e-4, gt=0, description="AdamW peak learning rate (LoRA likes larger rates).")
    weight_decay: float = Field(0.01, ge=0)
    warmup_ratio: float = Field(0.1, ge=0, lt=1, description="Linear warmup share, then cosine decay.")
    member_views: list[MemberView] = Field(
        default_factory=lambda: list(MEMBER_VIEWS), description="Member texts used as queries."
    )
    use_engagement: bool = Field(True, description="Train on engagement positives (applies) besides relevance labels.")
    hard_negatives: int = Field(
        1,
        ge=0,
        le=8,
        description=(
            "Judged negatives per positive pair (the member's jobs graded below relevant, or dismissed), "
            "added to the in-batch negatives; a random job stands in when a member has none."
        ),
    )
    mine_negatives: bool = Field(
        True,
        description="Refresh hard negatives between curriculum phases by mining "
        "semi-hard negatives with the current model (phase 1 uses judged negatives).",
    )
    mining_margin: float = Field(0.05, ge=0, description="A mined negative scores at most (positive score - margin).")
    gradcache_chunk: int | None = Field(
        None,
        gt=0,
        description=(
            "GradCache: embed the batch in chunks of this size and replay gradients, so batch_size (the number of "
            "in-batch negatives) can exceed what fits in memory. None = plain backward."
        ),
    )
    max_grad_norm: float = Field(1.0, gt=0)
    checkpoint_every: int = Field(0, ge=0, description="Save a checkpoint every N steps (0 = only at the end).")
    eval_every_steps: int = Field(
        10,  # the default run's 45 steps give val/* at steps 10, 20, 30, 40 and 45: a curve, not a point
        ge=0,
        description=(
            "Validate every N optimiser steps (val/* metrics on the validation set, logged next to train/*), and "
            "at the end of each curriculum phase; 0 = at phase ends only. Each validation embeds the validation "
            "set once."
        ),
    )
    general_mix: float = Field(
        0.0,
        ge=0,
        description=(
            "Weight of a general-text InfoNCE term beside each fine-tuning step (jude.training.general): one batch "
            "of general (query, passage) pairs, by default O*NET titles and descriptions outside every jude world "
            "and evaluation set; 0 = off. The fine-tune only (the distillation starts from its weights)."
        ),
    )
    general_pairs: str | None = Field(
        None, description="CSV (query,passage columns) for general_mix; None = jude/data/general/occupation_pairs.csv."
    )
    seed: int = 0


# ---- losses ------------------------------------------------------------------------------
LOSS_NAMES = ("infonce", "bce", "vp_matrix", "margin_mse", "kl")
TEACHER_SCORE_LOSSES = ("margin_mse", "kl")  # need cross-encoder scores: jude.training.distill


def check_loss_weights(weights: dict[str, float]) -> dict[str, float]:
    """Validate a {loss name: weight} mapping; the one check config and CombinedLoss share."""
    unknown = sorted(set(weights) - set(LOSS_NAMES))
    if unknown:
        raise ValueError(f"loss.weights: unknown loss name(s) {unknown}; known names are {list(LOSS_NAMES)}")
    bad = {k: v for k, v in weights.items() if not 0 <= float(v) < float("inf")}  # negative, inf or NaN
    if bad:
        raise ValueError(f"loss.weights must be finite and >= 0, got {bad} in {dict(weights)}")
    if sum(float(v) for v in weights.values()) <= 0:
        raise ValueError(f"loss.weights must sum to > 0, got {dict(weights)}")
    return {k: float(v) for k, v in weights.items()}


class CurriculumPhase(_Section):
    """One training phase: which label sources feed it and how long it lasts."""

    name: str = Field(min_length=1, description="Phase name, shown in logs (e.g. 'relevance', 'mixed').")
    sources: list[LabelSource] = Field(
        min_length=1, description="Label sources whose positives are trained on in this phase."
    )
    epochs: int | None = Field(None, gt=0, description="Length in epochs (set this or steps_fraction).")
    steps_fraction: float | None = Field(None, gt=0, le=1, description="Length as a share of all steps.")

    @model_validator(mode="after")
    def _check(self) -> CurriculumPhase:
        if (self.epochs is None) == (self.steps_fraction is None):
            raise ValueError(
                f"curriculum phase {self.name!r}: set exactly one of epochs or steps_fraction, "
                f"got epochs={self.epochs}, steps_fraction={self.steps_fraction}"
            )
        if len(set(self.sources)) != len(self.sources):
            raise ValueError(f"curriculum phase {self.name!r}: repeated source in {self.sources}")
        return self


class LossConfig(_Section):
    """The training objective: a weighted sum of JUDE's losses (see jude/modeling/losses.py)."""

    weights: dict[str, float] = Field(
        default_factory=lambda: {"infonce": 1.0},
        description=f"Weight per loss, names from {list(LOSS_NAMES)}; 0 disables a loss.",
    )
    temperature: float = Field(0.05, gt=0, le=1, description="InfoNCE temperature (0.05 = scale 20, as MNRL).")
    learn_temperature: bool = Field(False, description="Learn log-temperature (clamped to [0.01, 1]), as CLIP.")
    symmetric: bool = Field(False, description="Add the job->member InfoNCE term.")
    vp_tau: float = Field(1.0, ge=0, description="Weight of the statistical-invariant term P in V + tau*P.")
    vp_bandwidth: float | None = Field(
        None, gt=0, description="Gaussian V-matrix bandwidth; None = median pairwise distance of the batch."
    )
    bce_hidden: int = Field(256, gt=0, description="Hidden units of the apply-prediction head (BCE task only).")
    kl_student_temperature: float = Field(0.05, gt=0, description="Student cosine -> softmax temperature (KL).")
    kl_teacher_temperature: float = Field(1.0, gt=0, description="Teacher cross-encoder logit temperature (KL).")
    curriculum: list[CurriculumPhase] = Field(
        default_factory=list, description="Phases in order; empty = one phase with every configured source."
    )

    @field_validator("weights")
    @classmethod
    def _weights(cls, v: dict[str, float]) -> dict[str, float]:
        return check_loss_weights(v)

    @model_validator(mode="after")
    def _check(self) -> LossConfig:
        if self.learn_temperature and not 0.01 <= self.temperature <= 1.0:
            raise ValueError(f"loss.temperature must be in [0.01, 1] when learned, got {self.temperature}")
        names = [p.name for p in self.curriculum]
        if len(set(names)) != len(names):
            raise ValueError(f"loss.curriculum: phase names must be unique, got {names}")
        units = {"epochs" if p.epochs is not None else "steps_fraction" for p in self.curriculum}
        if len(units) > 1:
            raise ValueError("loss.curriculum: use epochs for every phase or steps_fraction for every phase, not both")
        if units == {"steps_fraction"}:
            total = sum(p.steps_fraction or 0.0 for p in self.curriculum)
            if abs(total - 1.0) > 1e-6:
                raise ValueError(f"loss.curriculum: steps_fraction must sum to 1, got {total:.3g}")
        return self


# ---- cross-encoder teacher and distillation ------------------------------------------------
TEACHER_LOSSES = ("bce", "listwise")
DISTILL_LOSSES = ("margin_mse", "kl", "both")
TeacherLoss = Literal[TEACHER_LOSSES]  # type: ignore[valid-type]
DistillLoss = Literal[DISTILL_LOSSES]  # type: ignore[valid-type]


class TeacherConfig(_Section):
    """The cross-encoder teacher: one network reads (member text, job text) together and scores the pair."""

    base_model: str = Field("minilm", description="'minilm' (the packaged all-MiniLM-L6-v2), a local path or a hub id.")
    max_length: int = Field(
        128,
        ge=16,
        le=8192,
        description="Token budget of one (member, job) pair, both texts together: the member and the job's header "
        "fit in 128 on the default data, the job description is cut.",
    )
    member_views: list[MemberView] = Field(
        default_factory=lambda: list(MEMBER_VIEWS),
        min_length=1,
        description="Member texts the teacher learns to read.",
    )
    loss: TeacherLoss = Field(
        "bce",
        description="'bce': each pair against its graded target (grade / 3); "
        "'listwise': softmax cross-entropy picking the positive in its group.",
    )
    negatives_per_positive: int = Field(
        3,
        ge=1,
        le=16,
        description="Negatives in each positive's group: the member's "
        "judged negatives first, random jobs when it has too few.",
    )
    use_engagement: bool = Field(
        True, description="Train on engagement labels (applies, dismissals) besides relevance."
    )
    hard_negatives_k: int = Field(
        30,
        ge=0,
        description="Draw each positive's negatives from the fine-tuned embedder's top-k jobs of its member, "
        "so the teacher learns to separate what the student confuses: the judged negatives there first, then "
        "the member's other judged negatives, then unjudged jobs of that top-k (target 0), random jobs last. "
        "0 = judged, then random negatives (no fine-tuned model needed).",
    )
    epochs: int = Field(1, gt=0, description="Passes over the positive pairs.")
    max_steps: int | None = Field(None, gt=0, description="Stop after this many optimiser steps (overrides epochs).")
    batch_size: int = Field(
        8, gt=0, description="Groups per step; pairs per step = batch_size * (1 + negatives_per_positive)."
    )
    learning_rate: float = Field(
        1e-4,
        gt=0,
        le=1,
        description="AdamW peak rate (full fine-tuning of a small encoder); 5e-5 and 2e-4 were within 0.003 of it "
        "on the validation members (bench/results/distill_sweep/).",
    )
    weight_decay: float = Field(0.01, ge=0)
    warmup_ratio: float = Field(0.1, ge=0, lt=1, description="Linear warmup share, then linear decay.")
    max_grad_norm: float = Field(1.0, gt=0)
    seed: int = Field(0, description="Initialisation of the scoring head, batching and random negatives.")


class DistillConfig(_Section):
    """Offline distillation of the teacher's scores into the fine-tuned bi-encoder (a fresh LoRA on top)."""

    loss: DistillLoss = Field(
        "both",
        description="'margin_mse' (score margins), 'kl' (softmax over each member's candidates) or 'both' (their sum).",
    )
    candidates_k: int = Field(
        10, ge=2, description="Bi-encoder top-k jobs per training member that the teacher scores."
    )
    group_size: int = Field(
        5,
        ge=2,
        description="Candidates per member in one step (the teacher's top one always "
        "included); must be <= candidates_k.",
    )
    batch_size: int = Field(8, gt=0, description="Members per step; job texts per step = batch_size * group_size.")
    student_temperature: float = Field(0.05, gt=0, le=1, description="Student cosine -> softmax temperature (KL).")
    teacher_temperature: float = Field(1.0, gt=0, description="Teacher logit -> softmax temperature (KL).")
    margin_scale: float = Field(
        20.0,
        gt=0,
        description="Student cosines are multiplied by this before MarginMSE, "
        "to meet the teacher's logit scale (20 = 1 / 0.05).",
    )
    infonce_weight: float = Field(
        1.0,
        ge=0,
        description="Weight of an InfoNCE term on the labelled positives (in-batch negatives) beside the teacher's "
        "terms: it keeps the student anchored where the teacher is wrong and keeps the tail (recall@100) that "
        "distillation on the top candidates alone loses (0.1 lost 0.10 of it on validation; "
        "bench/results/distill_tail/). 0 = off.",
    )
    infonce_temperature: float = Field(
        0.05, gt=0, le=1, description="Temperature of that InfoNCE term (0.05 = scale 20, as in fine-tuning)."
    )
    epochs: int = Field(1, gt=0, description="Passes over the members with teacher scores.")
    max_steps: int | None = Field(None, gt=0, description="Stop after this many optimiser steps (overrides epochs).")
    learning_rate: float = Field(
        3e-3,
        gt=0,
        le=1,
        description="AdamW peak rate of the distillation LoRA: 3e-3 beat 1e-3 on the validation members by +0.09 "
        "[+0.04, +0.13] nDCG@10 (paired; bench/results/distill_sweep/), 1e-3 beat 3e-4.",
    )
    seed: int = 0

    @model_validator(mode="after")
    def _check(self) -> DistillConfig:
        if self.group_size > self.candidates_k:
            raise ValueError(
                f"distill.group_size ({self.group_size}) must be <= distill.candidates_k ({self.candidates_k})"
            )
        return self


# ---- scale: GPU training switches ----------------------------------------------------------
class ScaleConfig(_Section):
    """Training optimisations; all off by default (CPU). docs/gpu.md explains each one and its memory."""

    gradient_checkpointing: bool = Field(
        False, description="Recompute activations in backward: ~1/layers the activation memory, ~+30% compute."
    )
    bf16: bool = Field(False, description="bf16 autocast (mixed precision); runs on CPU too, pays off on Ampere+ GPUs.")
    liger: bool = Field(
        False, description="Liger fused kernels (RMSNorm, RoPE, SwiGLU) for Llama/Qwen2/Mistral; GPU only."
    )
    deepspeed: str | None = Field(
        None,
        description=(
            "DeepSpeed JSON (e.g. configs/deepspeed_zero1.json); set = train with the HF Trainer under DeepSpeed."
        ),
    )
    gather_across_devices: bool = Field(
        True,
        description=(
            "HF Trainer: gather members, jobs and hard negatives of every rank before InfoNCE, so each "
            "query sees batch_size x ranks - 1 in-batch negatives (no-op on one rank)."
        ),
    )
    dataloader_workers: int = Field(
        0, ge=0, description="DataLoader worker processes (tokenisation off the main process)."
    )
    logging_steps: int = Field(10, gt=0, description="HF Trainer: log loss and learning rate every N steps.")

    @field_validator("deepspeed")
    @classmethod
    def _deepspeed(cls, v: str | None) -> str | None:
        if v is not None and not v.endswith(".json"):
            raise ValueError(f"scale.deepspeed must name a .json DeepSpeed config, got {v!r}")
        return v


# Loss weights of the extra models of the evaluation table (ablation.loss_variants).
LOSS_VARIANTS = {
    "infonce": {"infonce": 1.0},
    "bce": {"infonce": 1.0, "bce": 0.5},
    "vp": {"infonce": 1.0, "bce": 0.5, "vp_matrix": 0.5},
}
LossVariant = Literal[tuple(LOSS_VARIANTS)]  # type: ignore[valid-type]


class AblationConfig(_Section):
    """The evaluation table of the train pipeline: which variants besides base and fine-tuned."""

    loss_variants: list[LossVariant] = Field(
        default_factory=list,
        description=(
            "Extra models trained with the same data and schedule for the table: "
            "'infonce' (InfoNCE only), 'bce' (+ BCE head), 'vp' (+ BCE + VP-matrix)."
        ),
    )
    distill: bool = Field(
        False,
        description="Train the cross-encoder teacher, distil it into the fine-tuned model, "
        "and add 'distilled' and 'teacher' (reranking the top 100) to the table.",
    )
    controls: bool = Field(
        False,
        description="Also train distillation's two control rows on the student's batches, seed and fresh LoRA: "
        "'control_anchor' (the distillation run with the KL and MarginMSE terms off: the InfoNCE anchor alone) "
        "and 'control_steps' (fine-tuning continued with InfoNCE and judged hard negatives for the same steps); "
        "the distilled row is a win only where it beats both (jude/evaluation/paired.py).",
    )
    register_model: Literal["finetuned", "distilled", "selected"] = Field(
        "finetuned",
        description="Which model the pipeline registers as the challenger; 'selected': of the fine-tuned and the "
        "distilled model, those that pass the promotion rule against the base model on the validation members "
        "(nDCG@10 gain, recall@100 guard: jude/evaluation/rule.py), the higher judge nDCG@10; none passing, "
        "nothing is registered (jude/training/selection.py).",
    )
    rerank_k: int = Field(
        100,
        gt=0,
        description="Fine-tuned top-k the teacher reranks: for its row of the table, and on the validation "
        "members for the check that the teacher beats the fine-tuned model before distillation.",
    )

    @model_validator(mode="after")
    def _check(self) -> AblationConfig:
        if self.register_model in ("distilled", "selected") and not self.distill:
            raise ValueError(f"ablation.register_model={self.register_model!r} needs ablation.distill=true")
        if self.controls and not self.distill:
            raise ValueError("ablation.controls=true needs ablation.distill=true")
        return self


# ---- rules that span sections -----------------------------------------------------------------
class ScaleConfigError(ValueError):
    """Switches that contradict each other or the rest of the configuration."""


def check_scale(model: ModelConfig, scale: ScaleConfig) -> None:
    """The scale switches agree with the model section (one 16-bit format, not two)."""
    if scale.bf16 and model.dtype == "float16":
        raise ScaleConfigError(
            "scale.bf16=true with model.dtype='float16': pick one 16-bit format (model.dtype 'bfloat16' or 'float32')"
        )


def check_hf_losses(loss: LossConfig) -> None:
    """The HF Trainer path trains InfoNCE, BCE and VP-matrix (and a learned temperature) in one phase.

    A curriculum re-mines negatives and swaps the training pairs between phases,
    which the Trainer's fixed dataset cannot do; distillation losses need teacher
    scores (``jude.training.distill``). Both are named here, before any weights load.
    """
    if loss.curriculum:
        raise ScaleConfigError(
            f"loss.curriculum ({[p.name for p in loss.curriculum]}) runs in the plain loop "
            "(jude.training.trainer), not the HF Trainer path; drop it or run one trainer per "
            "phase"
        )
    distill = sorted(k for k, w in loss.weights.items() if w > 0 and k in TEACHER_SCORE_LOSSES)
    if distill:
        raise ScaleConfigError(
            f"loss.weights {loss.weights}: {distill} need teacher scores; "
            "distillation runs in jude.training.distill, not the HF Trainer path"
        )
