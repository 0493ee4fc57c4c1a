"""Every setting jude has, with its default, bounds and a one-line reason.

Defaults live here and only here. The YAML files in ``configs/`` list only what
differs. Each section is a pydantic model; impossible values raise a
``ValueError`` (pydantic ``ValidationError``) that names the field and the value.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

POOLINGS = ("mean", "cls", "lasttoken")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class SyntheticConfig(_Section):
    """The embedded default: a seeded synthetic job marketplace."""

    n_jobs: int = Field(600, gt=0, description="Job postings to generate.")
    n_members: int = Field(400, gt=0, description="Members (each with a profile and a resume).")
    days: int = Field(90, ge=10, description="Length of the simulated period in days.")
    impressions_per_member: int = Field(30, gt=0, description="Jobs shown to each member over the period.")
    seed: int = Field(0, description="Everything generated is a function of this seed.")
    shift: Literal["none", "roles", "cities", "style", "all"] = Field(
        "none", description="Distribution shift for monitoring tests: new roles, new cities, another writing style.")


class DataConfig(_Section):
    source: Literal["synthetic", "files"] = Field("synthetic", description="Generate data, or load the user's tables.")
    path: str | None = Field(None, description="Directory with jobs, members, interactions as .parquet or .csv (source=files).")
    synthetic: SyntheticConfig = Field(default_factory=SyntheticConfig)
    val_fraction: float = Field(0.15, gt=0, lt=0.5, description="Last fraction of the period held for validation (by time).")
    test_fraction: float = Field(0.2, gt=0, lt=0.5, description="Last fraction of the period held out for testing (by time).")

    @model_validator(mode="after")
    def _check(self) -> "DataConfig":
        if self.source == "files" and not self.path:
            raise ValueError("data.path must be set when data.source is 'files', got None")
        if self.val_fraction + self.test_fraction >= 0.8:
            raise ValueError(
                f"data.val_fraction + data.test_fraction must be < 0.8, got {self.val_fraction + self.test_fraction}")
        return self


class LLMJudgeConfig(_Section):
    """An OpenAI-compatible chat-completions endpoint (vLLM, Ollama, OpenAI)."""

    base_url: str = Field("http://127.0.0.1:8000/v1", description="Base URL; '/chat/completions' is appended.")
    model: str = Field("Qwen/Qwen2.5-7B-Instruct", description="Model name sent in each request.")
    api_key_env: str = Field("OPENAI_API_KEY", description="Environment variable holding the bearer token, if any.")
    concurrency: int = Field(8, gt=0, description="Requests in flight at once.")
    max_retries: int = Field(4, ge=0, description="Retries on 429, 5xx and timeouts, with exponential backoff.")
    timeout_s: float = Field(60.0, gt=0, description="Per-request timeout in seconds.")
    temperature: float = Field(0.0, ge=0, description="0 makes the judge as repeatable as the server allows.")
    cache_dir: str = Field(".jude/judge_cache", description="On-disk cache keyed by the prompt's hash.")


class LabelConfig(_Section):
    judge: Literal["rubric", "llm"] = Field("rubric", description="Who grades relevance.")
    llm: LLMJudgeConfig = Field(default_factory=LLMJudgeConfig)
    budget: int = Field(3000, gt=0, description="Member-job pairs sent to the judge.")
    retrieved_fraction: float = Field(0.5, ge=0, le=1, description="Share of the budget from base-model top-k candidates.")
    random_fraction: float = Field(0.2, ge=0, le=1, description="Share of random pairs.")
    interacted_fraction: float = Field(0.3, ge=0, le=1, description="Share of pairs with an interaction.")
    retrieve_k: int = Field(20, gt=0, description="Candidates per member from the base model.")
    relevant_grade: int = Field(2, ge=1, le=3, description="Grades >= this are positives (label=1).")
    positive_actions: list[str] = Field(default_factory=lambda: ["apply"], description="Engagement positives.")
    negative_actions: list[str] = Field(default_factory=lambda: ["dismiss"], description="Engagement negatives.")
    seed: int = 0

    @model_validator(mode="after")
    def _check(self) -> "LabelConfig":
        total = self.retrieved_fraction + self.random_fraction + self.interacted_fraction
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"labels: retrieved/random/interacted fractions must sum to 1, got {total}")
        allowed = {"impression", "view", "apply", "dismiss"}
        for name in ("positive_actions", "negative_actions"):
            bad = [a for a in getattr(self, name) if a not in allowed]
            if bad:
                raise ValueError(f"labels.{name}: unknown action(s) {bad}; expected from {sorted(allowed)}")
        overlap = set(self.positive_actions) & set(self.negative_actions)
        if overlap:
            raise ValueError(f"labels: action(s) {sorted(overlap)} are both positive and negative")
        return self


class LoRAConfig(_Section):
    r: int = Field(16, description="LoRA rank.")
    alpha: int = Field(32, gt=0, description="LoRA scaling numerator (scale = alpha / r).")
    dropout: float = Field(0.05, ge=0, lt=1, description="Dropout on the LoRA branch.")
    target_modules: list[str] | Literal["auto"] = Field(
        "auto", description="Modules to adapt; 'auto' picks the attention Q/K/V projections of the architecture.")

    @field_validator("r")
    @classmethod
    def _r(cls, v: int) -> int:
        if v <= 0:
            raise ValueError(f"lora.r must be > 0, got {v}")
        return v


class ModelConfig(_Section):
    base_model: str = Field("minilm", description="'minilm' (the packaged all-MiniLM-L6-v2), a local path or a hub id.")
    pooling: str = Field("mean", description="mean | cls | lasttoken (decoder-only models).")
    normalize: bool = Field(True, description="L2-normalise embeddings (inner product = cosine).")
    template_style: Literal["plain", "instruct"] = Field("plain", description="Entity template style.")
    max_length_job: int = Field(192, gt=8, description="Token budget for a job posting.")
    max_length_profile: int = Field(128, gt=8, description="Token budget for a profile.")
    max_length_resume: int = Field(256, gt=8, description="Token budget for a resume.")
    dtype: Literal["float32", "bfloat16", "float16"] = Field("float32", description="Weights dtype (bf16 on GPUs).")
    attn_implementation: str | None = Field(None, description="e.g. 'flash_attention_2' on GPUs; None lets transformers pick.")

    @field_validator("pooling")
    @classmethod
    def _pooling(cls, v: str) -> str:
        if v not in POOLINGS:
            raise ValueError(f"model.pooling must be one of {list(POOLINGS)}, got {v!r}")
        return v

    def max_length(self, entity_type: str) -> int:
        return {"job": self.max_length_job, "profile": self.max_length_profile,
                "resume": self.max_length_resume}[entity_type]


class TrainConfig(_Section):
    epochs: int = Field(2, gt=0)
    max_steps: int | None = Field(None, gt=0, description="Stop after this many optimiser steps (overrides epochs).")
    batch_size: int = Field(32, gt=1, description="Pairs per step; the other pairs' jobs are in-batch negatives.")
    grad_accum: int = Field(1, gt=0, description="Micro-batches per optimiser step.")
    learning_rate: float = Field(2e-4, description="AdamW peak learning rate (LoRA likes larger rates).")
    weight_decay: float = Field(0.01, ge=0)
    warmup_ratio: float = Field(0.1, ge=0, lt=1, description="Linear warmup share, then cosine decay.")
    temperature: float = Field(0.05, gt=0, description="InfoNCE temperature (scale 20, as MNRL).")
    member_views: list[Literal["profile", "resume"]] = Field(
        default_factory=lambda: ["profile", "resume"], description="Member texts used as queries.")
    use_engagement: bool = Field(True, description="Train on engagement positives (applies) besides relevance labels.")
    max_grad_norm: float = Field(1.0, gt=0)
    checkpoint_every: int = Field(0, ge=0, description="Save a checkpoint every N steps (0 = only at the end).")
    seed: int = 0

    @field_validator("learning_rate")
    @classmethod
    def _lr(cls, v: float) -> float:
        if v <= 0:
            raise ValueError(f"train.learning_rate must be > 0, got {v}")
        return v


class EvalConfig(_Section):
    max_queries: int = Field(300, gt=0, description="Held-out members (test period) used as queries.")
    member_view: Literal["profile", "resume"] = Field("profile", description="Which member text is the query.")
    ks: list[int] = Field(default_factory=lambda: [10, 100])
    batch_size: int = Field(64, gt=0)


class RegistryConfig(_Section):
    model_name: str = Field("jude-embedder", description="MLflow registered model and ZenML Model name.")
    experiment: str = Field("jude", description="MLflow experiment.")
    tracking_uri: str | None = Field(None, description="None: $MLFLOW_TRACKING_URI, else sqlite under .jude/.")


class TrainPipelineConfig(_Section):
    data: DataConfig = Field(default_factory=DataConfig)
    labels: LabelConfig = Field(default_factory=LabelConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    lora: LoRAConfig = Field(default_factory=LoRAConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    eval: EvalConfig = Field(default_factory=EvalConfig)
    registry: RegistryConfig = Field(default_factory=RegistryConfig)
