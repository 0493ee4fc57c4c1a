"""Every setting jude has, with its default, bounds and a one-line reason.

Defaults live here and only here. The YAML files in ``configs/`` list only what
differs. Each section is a pydantic model; impossible values raise a
``ValueError`` (pydantic ``ValidationError``) that names the field and the value.
Each pipeline has one model of its whole ``parameters:`` (``TrainPipelineConfig``,
``DeployPipelineConfig``, ``MonitorPipelineConfig``) that carries the rules
spanning sections; ``read_pipeline_config`` checks a run config file against it,
so ``run.py`` refuses a bad file before any step runs.

One validation style: ``Literal`` for enumerations (vocabularies shared with the
data come from ``jude/data/schema.py``), ``Field(gt=..., ge=...)`` for bounds, and
validators only for rules that relate several fields.
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from jude.data.schema import ACTIONS, ENTITY_TYPES, LABEL_SOURCES, MEMBER_VIEWS

POOLINGS = ("mean", "cls", "lasttoken")
SHIFTS = ("none", "roles", "cities", "style", "all")  # synthetic distribution shifts (jude/data/synthetic.py)

# Literal types built from the vocabularies above (``Literal[TUPLE]`` works on Python 3.10 too).
Pooling = Literal[POOLINGS]  # type: ignore[valid-type]
Shift = Literal[SHIFTS]  # type: ignore[valid-type]
Action = Literal[ACTIONS]  # type: ignore[valid-type]
EntityType = Literal[ENTITY_TYPES]  # type: ignore[valid-type]
MemberView = Literal[MEMBER_VIEWS]  # type: ignore[valid-type]
LabelSource = Literal[LABEL_SOURCES]  # type: ignore[valid-type]

# The top-level keys of a ZenML run config (zenml.config.pipeline_run_configuration.PipelineRunConfiguration,
# ZenML 0.98; tests/test_config.py compares them with the installed ZenML). Listed here so a config file is
# checked without importing ZenML; ZenML itself ignores unknown keys, so `parameter:` would run the defaults.
RUN_CONFIG_KEYS = frozenset(
    {
        "build",
        "cache_policy",
        "cleanup_hook_source",
        "enable_artifact_metadata",
        "enable_artifact_visualization",
        "enable_cache",
        "enable_heartbeat",
        "enable_pipeline_logs",
        "enable_step_logs",
        "end_hook_source",
        "environment",
        "execution_mode",
        "extra",
        "failure_hook_source",
        "init_hook_kwargs",
        "init_hook_source",
        "model",
        "parameters",
        "pause_hook_source",
        "resume_hook_source",
        "retry",
        "run_name",
        "schedule",
        "secrets",
        "settings",
        "start_hook_source",
        "steps",
        "substitutions",
        "success_hook_source",
        "tags",
    }
)


class ConfigFileError(ValueError):
    """A run config that cannot be read; the message names the file and what is wrong with it."""


def _did_you_mean(name: str, known: Any) -> str:
    close = difflib.get_close_matches(str(name), sorted(known), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def read_run_config(path: str | os.PathLike) -> dict[str, Any]:
    """A run config YAML (``configs/*.yaml``) as a mapping; the one reader run.py, the CLIs and bench/ share.

    Besides parsing, it refuses top-level keys that ZenML's run configuration does
    not know (ZenML would silently ignore them: ``parameter:`` would run the defaults).
    """
    import yaml

    path = Path(path)
    if not path.is_file():
        raise ConfigFileError(f"config file {path} does not exist")
    try:
        doc = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise ConfigFileError(f"config file {path} is not valid YAML: {e}") from e
    if not isinstance(doc, dict):
        raise ConfigFileError(f"config file {path}: expected a mapping at the top level, got {type(doc).__name__}")
    unknown = [key for key in doc if key not in RUN_CONFIG_KEYS]
    if unknown:
        key = unknown[0]
        raise ConfigFileError(
            f"config file {path}: unknown top-level key {key!r}{_did_you_mean(key, RUN_CONFIG_KEYS)}; "
            f"jude's settings go under 'parameters:', and the other keys are ZenML's run configuration: "
            f"{sorted(RUN_CONFIG_KEYS)}"
        )
    params = doc.get("parameters")
    if params is not None and not isinstance(params, dict):
        raise ConfigFileError(f"config file {path}: 'parameters' must be a mapping, got {type(params).__name__}")
    return doc


def read_parameters(path: str | os.PathLike) -> dict[str, Any]:
    """The ``parameters:`` section of a run config (the pipeline's keyword arguments), ``{}`` when absent."""
    return dict(read_run_config(path).get("parameters") or {})


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class SyntheticConfig(_Section):
    """The embedded default: a seeded synthetic job marketplace."""

    n_jobs: int = Field(600, gt=0, description="Job postings to generate.")
    n_members: int = Field(400, gt=0, description="Members (each with a profile and a resume).")
    days: int = Field(90, ge=10, description="Length of the simulated period in days.")
    impressions_per_member: int = Field(30, gt=0, description="Jobs shown to each member over the period.")
    seed: int = Field(0, description="Everything generated is a function of this seed.")
    shift: Shift = Field(
        "none", description="Distribution shift for monitoring tests: new roles, new cities, another writing style."
    )


class DataConfig(_Section):
    source: Literal["synthetic", "files"] = Field("synthetic", description="Generate data, or load the user's tables.")
    path: str | None = Field(
        None, description="Directory with jobs, members, interactions as .parquet or .csv (source=files)."
    )
    synthetic: SyntheticConfig = Field(default_factory=SyntheticConfig)
    val_fraction: float = Field(
        0.15, gt=0, lt=0.5, description="Last fraction of the period held for validation (by time)."
    )
    test_fraction: float = Field(
        0.2, gt=0, lt=0.5, description="Last fraction of the period held out for testing (by time)."
    )

    @model_validator(mode="after")
    def _check(self) -> DataConfig:
        if self.source == "files" and not self.path:
            raise ValueError("data.path must be set when data.source is 'files', got None")
        if self.val_fraction + self.test_fraction >= 0.8:
            raise ValueError(
                f"data.val_fraction + data.test_fraction must be < 0.8, got {self.val_fraction + self.test_fraction}"
            )
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


JUDGE_ERROR_MODES = ("location", "seniority", "lookalike")  # jude/labels/rubric.py: what the judge misreads
JudgeErrorMode = Literal[JUDGE_ERROR_MODES]  # type: ignore[valid-type]


class JudgeErrorConfig(_Section):
    """The rubric judge's deliberate, seeded mistakes (``jude.labels.rubric.RubricJudge``; why 15 %: there).

    A touched pair is graded as if the judge misread one fact: the location (fit read as no fit or the
    reverse), the posting's seniority (one band off), or a look-alike role taken for the same role. The same
    pair (by member_id, job_id and ``seed``) is always touched the same way, so a re-judged pair keeps its grade.
    """

    rate: float = Field(
        0.15,
        ge=0,
        lt=1,
        description="Share of the pairs the judge could misread (a role in common or a look-alike) that it "
        "does misread (0 = the exact rubric).",
    )
    modes: dict[JudgeErrorMode, float] = Field(
        default_factory=lambda: {"location": 1.0, "seniority": 1.0, "lookalike": 1.0},
        description="Relative weight of each error mode among the touched pairs.",
    )
    seed: int = Field(0, description="Which pairs are touched, and how, is a function of this seed and the pair.")

    @model_validator(mode="after")
    def _check(self) -> JudgeErrorConfig:
        if any(w < 0 for w in self.modes.values()) or (self.rate > 0 and sum(self.modes.values()) <= 0):
            raise ValueError(f"labels.judge_errors.modes must be >= 0 with a positive sum, got {self.modes}")
        return self


class LabelConfig(_Section):
    judge: Literal["rubric", "llm"] = Field("rubric", description="Who grades relevance.")
    llm: LLMJudgeConfig = Field(default_factory=LLMJudgeConfig)
    judge_errors: JudgeErrorConfig = Field(
        default_factory=JudgeErrorConfig,
        description="The rubric judge's seeded mistakes (on by default: copying the judge is not the truth).",
    )
    budget: int = Field(3000, gt=0, description="Member-job pairs sent to the judge.")
    retrieved_fraction: float = Field(
        0.5, ge=0, le=1, description="Share of the budget from base-model top-k candidates."
    )
    random_fraction: float = Field(0.2, ge=0, le=1, description="Share of random pairs.")
    interacted_fraction: float = Field(0.3, ge=0, le=1, description="Share of pairs with an interaction.")
    retrieve_k: int = Field(20, gt=0, description="Candidates per member from the base model.")
    relevant_grade: int = Field(2, ge=1, le=3, description="Grades >= this are positives (label=1).")
    positive_actions: list[Action] = Field(default_factory=lambda: ["apply"], description="Engagement positives.")
    negative_actions: list[Action] = Field(default_factory=lambda: ["dismiss"], description="Engagement negatives.")
    seed: int = 0

    @model_validator(mode="after")
    def _check(self) -> LabelConfig:
        total = self.retrieved_fraction + self.random_fraction + self.interacted_fraction
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"labels: retrieved/random/interacted fractions must sum to 1, got {total:.3g}")
        overlap = set(self.positive_actions) & set(self.negative_actions)
        if overlap:
            raise ValueError(f"labels: action(s) {sorted(overlap)} are both positive and negative")
        return self


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
    seed: int = 0


class EvalConfig(_Section):
    max_queries: int = Field(300, gt=0, description="Held-out members (test period) used as queries.")
    member_view: MemberView = Field("profile", description="Which member text is the query.")
    ks: list[int] = Field(default_factory=lambda: [10, 100])
    batch_size: int = Field(64, gt=0)
    qrels: Literal["labels", "pooled"] = Field(
        "pooled",
        description=(
            "Relevant set of a test member: 'labels' = what the label budget judged (half of it sampled from the base "
            "model's top-k, which favours the base model) plus test applies; 'pooled' = that plus the judge's grades "
            "of the top pool_depth jobs of every evaluated model (TREC pooling, jude/evaluation/pooling.py)."
        ),
    )
    pool_depth: int = Field(
        20,
        gt=0,
        description=(
            "Top-k of each evaluated model the judge grades when qrels='pooled' (>= 10 makes every @10 metric "
            "fully judged). With an LLM judge this is the evaluation's API bill: queries x models x depth at most."
        ),
    )
    unseen: bool = Field(
        True,
        description=(
            "Also rank an unseen world (synthetic data only): members and jobs from role families, titles and "
            "cities that never occur in training, judged by the generator's truth (keys unseen/<variant>/...)."
        ),
    )
    unseen_jobs: int = Field(300, gt=0, description="Jobs of the unseen world (its whole corpus).")
    unseen_members: int = Field(150, gt=0, description="Members of the unseen world (queries: those with a fit).")


class RegistryConfig(_Section):
    model_name: str = Field("jude-embedder", description="MLflow registered model and ZenML Model name.")
    experiment: str = Field("jude", description="MLflow experiment.")
    tracking_uri: str | None = Field(None, description="None: $MLFLOW_TRACKING_URI, else sqlite under .jude/.")


# ---- serving and deployment ---------------------------------------------------------------
_K8S_QUANTITY = r"^[0-9]+(\.[0-9]+)?(m|k|M|G|T|Ki|Mi|Gi|Ti)?$"
_K8S_NAME = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"


class ServeConfig(_Section):
    """The embedding server (`jude serve`): micro-batching limits and request limits."""

    host: str = Field("127.0.0.1", description="Interface to bind (0.0.0.0 inside a container).")
    port: int = Field(8080, ge=1, le=65535, description="HTTP port.")
    grpc_port: int | None = Field(
        None, ge=0, le=65535, description="gRPC port; None = no gRPC server, 0 = any free port."
    )
    max_batch_size: int = Field(32, gt=0, description="Texts per micro-batch (requests batched together).")
    max_batch_tokens: int = Field(8192, ge=16, description="Token budget of one micro-batch (sum of token lengths).")
    max_wait_ms: float = Field(
        2.0, ge=0, le=1000, description="Extra wait to fill a batch, only while under concurrent load."
    )
    max_queue_size: int = Field(1024, gt=0, description="Texts waiting for the model; beyond it requests get 429.")
    max_queue_wait_s: float | None = Field(
        2.0,
        gt=0,
        description="Overload budget: a request whose estimated wait (queued tokens / measured tokens per second) "
        "exceeds it gets 429 + Retry-After (gRPC RESOURCE_EXHAUSTED); None = only max_queue_size bounds the queue. "
        "2 s: at 1 s, four clients sending 32 texts each were refused 57 times in 60 on 2 CPU cores (each waits "
        "for three batches of about 0.35 s plus its own), a load the server answers at a p95 of about 1 s.",
    )
    max_client_batch_size: int = Field(64, gt=0, description="Inputs per request; beyond it 413.")
    max_tokens: int | None = Field(
        None, gt=1, description="Token limit for raw text; None = the model's largest max length."
    )
    max_input_chars: int = Field(100_000, gt=0, description="Characters per input before tokenising; beyond it 413.")
    api_key_env: str = Field("JUDE_API_KEY", description="Environment variable with the bearer token; unset = no auth.")
    metrics_require_key: bool = Field(
        False, description="Put GET /metrics behind the API key too (by default it is open: keep it internal)."
    )
    header_timeout_s: float = Field(
        10.0, gt=0, description="A connection that has not sent a complete request head in this time is closed (408)."
    )
    body_timeout_s: float = Field(10.0, gt=0, description="Time to send a whole request body; beyond it 408.")
    keep_alive_timeout_s: float = Field(5.0, gt=0, description="Idle keep-alive connections are closed after this.")
    max_header_bytes: int = Field(
        16_384, ge=1024, description="Largest request head (request line + headers); beyond it 431."
    )
    backend: Literal["torch", "onnx"] = Field(
        "torch",
        description="The forward pass: eager PyTorch, or ONNX Runtime over an export of the same model directory "
        "(written to <model dir>/onnx/ on first load; needs the onnx extra).",
    )
    max_forward_tokens: int = Field(
        384,
        ge=16,
        description="Padded tokens (rows x longest row) per forward: each micro-batch is sorted by length and cut "
        "into chunks of this size. 384 measured best on CPU; on a GPU raise it (e.g. 16384).",
    )
    threads: int | None = Field(
        None, gt=0, description="Intra-op threads of the forward (torch or ONNX Runtime); None = one per core."
    )
    dtype: Literal["float32", "bfloat16", "float16"] = Field(
        "float32", description="Weights' dtype for backend=torch: bfloat16 on GPU pods; float32 on CPU."
    )


class LocalDeployConfig(_Section):
    """target=local: `jude serve` as a background process on this machine."""

    host: str = Field("127.0.0.1", description="Interface the server binds.")
    port: int = Field(8080, ge=1, le=65534, description="Port; port+1 is used while the old server still holds port.")
    ready_timeout_s: float = Field(180.0, gt=0, description="How long to wait for /ready before giving up.")
    state_dir: str = Field(".jude/deploy", description="Where the state file and server logs live.")


# ---- nearline (jude nearline run; the worker Deployment beside the server) -------------------
_EMBEDDING_VERSION = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"  # a Redis key segment (jude.stores.online.check_version)


class NearlineTargetConfig(_Section):
    """One embedding version a nearline worker keeps current, and the model that makes its vectors."""

    embedding_version: str | None = Field(
        None,
        pattern=_EMBEDDING_VERSION,
        description="Part of every online key and history row. None: '<registered model>-<version>' of the model "
        "(jude-embedder-3); a model outside the registry (a directory, minilm) needs it set.",
    )
    model_uri: str | None = Field(
        None, min_length=1, description="Embed in-process with this model: a registry URI, a directory or 'minilm'."
    )
    server: str | None = Field(
        None,
        pattern=r"^\S+:[0-9]{1,5}$",
        description="Embed through `jude serve`'s gRPC service at host:port (how JUDE runs it).",
    )

    @model_validator(mode="after")
    def _one_model(self) -> NearlineTargetConfig:
        if (self.model_uri is None) == (self.server is None):
            raise ValueError(
                f"a nearline target needs exactly one of model_uri (in-process) or server (gRPC host:port), "
                f"got model_uri={self.model_uri!r}, server={self.server!r}"
            )
        return self


class NearlineConfig(_Section):
    """The nearline worker (`jude nearline run`): where events come from, which model, where vectors go."""

    source: Literal["redis", "kafka"] = Field("redis", description="Redis Streams (local default) or Kafka.")
    redis_url: str = Field("redis://127.0.0.1:6379/0", description="Redis of the change streams (source=redis).")
    kafka_bootstrap: str = Field("127.0.0.1:9092", min_length=1, description="Kafka bootstrap servers (source=kafka).")
    kafka_config: dict[str, Any] = Field(
        default_factory=dict, description="Extra librdkafka consumer settings (security, session.timeout.ms, ...)."
    )
    stream_prefix: str | None = Field(
        None, description="Prefix of the streams/topics: None = 'jude:' (Redis) or 'jude.' (Kafka)."
    )
    entity_types: list[EntityType] = Field(
        default_factory=lambda: list(ENTITY_TYPES), min_length=1, description="Entity types this worker follows."
    )
    group: str | None = Field(
        None, min_length=1, description="Consumer group; None = the embedding versions joined by '+' (one per version)."
    )
    worker_name: str | None = Field(
        None, min_length=1, description="Consumer name within the group; None = '<hostname>-<pid>'."
    )
    start_from: Literal["earliest", "latest"] = Field(
        "earliest", description="Where a new group starts: what the streams hold, or only what arrives from now on."
    )
    targets: list[NearlineTargetConfig] = Field(
        default_factory=lambda: [NearlineTargetConfig(server="127.0.0.1:50051")],
        min_length=1,
        description="Embedding versions written (usually one; two while a new version is bootstrapped).",
    )
    batch_size: int = Field(64, ge=1, le=10_000, description="Events read and embedded together (one micro-batch).")
    block_ms: int = Field(1000, ge=0, le=60_000, description="How long a read waits for new events.")
    claim_idle_ms: int = Field(
        30_000,
        ge=0,
        description="Redis: pending events idle this long are claimed from a dead worker; keep it "
        "above the longest batch.",
    )
    max_deliveries: int = Field(5, ge=1, description="An event delivered this often without success is dead-lettered.")
    online_redis_url: str | None = Field(None, description="Redis of the online store; None = redis_url.")
    online_prefix: str = Field("jude:", description="Key prefix of the online store.")
    online_dtype: Literal["float32", "float16"] = Field("float32", description="How vectors are stored online.")
    tombstone_ttl_s: float | None = Field(
        None, gt=0, description="Deletes' tombstones expire after this; None = kept (a late upsert stays refused)."
    )
    history_path: str = Field(
        ".jude/nearline/history", min_length=1, description="Delta table of the offline history (path or s3://...)."
    )
    history_storage_options: dict[str, str] = Field(
        default_factory=dict, description="deltalake storage options (object-store credentials and endpoints)."
    )
    activate_if_unset: bool = Field(
        True,
        description="An entity type with no active version gets the first target's (the first version ever has "
        "nothing to bootstrap against); later versions are activated by their bootstrap.",
    )
    request_size: int = Field(
        32, ge=1, le=1024, description="Entities per gRPC call; at most the server's max_client_batch_size."
    )
    grpc_timeout_s: float = Field(10.0, gt=0, description="Deadline of one gRPC call.")
    grpc_max_attempts: int = Field(
        6, ge=1, le=20, description="Attempts of a gRPC call the server answered UNAVAILABLE/RESOURCE_EXHAUSTED."
    )
    grpc_backoff_s: float = Field(0.1, ge=0, description="First retry wait; doubles per attempt, with jitter.")
    grpc_backoff_max_s: float = Field(5.0, gt=0, description="Cap of one retry wait.")
    api_key_env: str = Field("JUDE_API_KEY", description="Environment variable with the server's API key, if any.")
    device: str | None = Field(None, description="torch device for in-process targets; None = cpu.")
    retry_backoff_max_s: float = Field(
        30.0, gt=0, description="Cap of the wait before a batch whose stores or model failed is tried again."
    )
    metrics_host: str = Field("127.0.0.1", description="Interface of /metrics, /ready, /health (0.0.0.0 in a pod).")
    metrics_port: int | None = Field(9464, ge=0, le=65535, description="Their port; 0 = any free one, None = none.")
    health_timeout_s: float = Field(
        120.0, gt=0, description="/health fails when the loop has not turned for this long (liveness restarts it)."
    )
    lag_interval_s: float = Field(5.0, gt=0, description="How often the backlog (lag gauge) is measured.")

    @model_validator(mode="after")
    def _check(self) -> NearlineConfig:
        versions = [t.embedding_version for t in self.targets if t.embedding_version is not None]
        if len(set(versions)) != len(versions):
            raise ValueError(f"nearline.targets: each embedding_version once, got {versions}")
        if self.grpc_backoff_s > self.grpc_backoff_max_s:
            raise ValueError(
                f"nearline.grpc_backoff_s ({self.grpc_backoff_s}) must be <= grpc_backoff_max_s "
                f"({self.grpc_backoff_max_s})"
            )
        if self.block_ms / 1000 >= self.health_timeout_s:
            raise ValueError(
                f"nearline.block_ms ({self.block_ms}) must be shorter than health_timeout_s ({self.health_timeout_s}) "
                f"or an idle worker fails its liveness probe"
            )
        return self


class NearlineDeployConfig(_Section):
    """The nearline worker Deployment rendered beside the server (target=kubernetes; off by default).

    The worker embeds through the server's Service (gRPC), so its embedding version is
    the served model's registry version. ``worker`` holds the worker's settings that
    differ from the defaults (Redis or Kafka addresses, history_path on object storage).
    """

    enabled: bool = Field(False, description="Render and apply the worker Deployment and its PDB.")
    image: str | None = Field(
        None, min_length=1, description="Worker image; None = the server's (the same image runs `jude nearline run`)."
    )
    replicas: int = Field(2, ge=1, description="Workers in the consumer group (each takes a share of the events).")
    pdb_min_available: int = Field(1, ge=0, description="Workers kept during voluntary disruptions.")
    cpu_request: str = Field("500m", pattern=_K8S_QUANTITY)
    cpu_limit: str = Field("1", pattern=_K8S_QUANTITY)
    memory_request: str = Field("512Mi", pattern=_K8S_QUANTITY)
    memory_limit: str = Field("1Gi", pattern=_K8S_QUANTITY)
    metrics_port: int = Field(9464, ge=1, le=65535, description="Container port of /metrics, /ready, /health.")
    worker: NearlineConfig = Field(
        default_factory=NearlineConfig,
        description="The worker's settings; targets default to the server's Service, metrics to metrics_port.",
    )

    @model_validator(mode="after")
    def _check(self) -> NearlineDeployConfig:
        if self.pdb_min_available >= self.replicas and self.pdb_min_available > 0:
            raise ValueError(
                f"kubernetes.nearline.pdb_min_available must be < replicas ({self.replicas}), "
                f"got {self.pdb_min_available}: a node drain could never evict a worker"
            )
        return self


class KubernetesConfig(_Section):
    """target=kubernetes: Deployment + Service + HPA + PodDisruptionBudget."""

    name: str = Field("jude-embedder", pattern=_K8S_NAME, max_length=50, description="Name of every object.")
    namespace: str = Field("default", pattern=_K8S_NAME, description="Namespace to deploy into.")
    context: str | None = Field(None, description="kubeconfig context; None = the current one.")
    image: str = Field(
        "jude-serve:latest", min_length=1, description="Serving image (see Dockerfile, docs/serving.md)."
    )
    image_pull_policy: Literal["Always", "IfNotPresent", "Never"] = Field("IfNotPresent")
    replicas: int = Field(2, ge=1, description="Initial replicas (the HPA takes over from there).")
    min_replicas: int = Field(2, ge=1, description="HPA lower bound.")
    max_replicas: int = Field(8, ge=1, description="HPA upper bound.")
    target_cpu_utilization: int = Field(70, gt=0, le=100, description="HPA average CPU utilisation target, percent.")
    cpu_request: str = Field("1", pattern=_K8S_QUANTITY)
    cpu_limit: str = Field("2", pattern=_K8S_QUANTITY)
    memory_request: str = Field("2Gi", pattern=_K8S_QUANTITY)
    memory_limit: str = Field("4Gi", pattern=_K8S_QUANTITY)
    gpus: int = Field(0, ge=0, description="nvidia.com/gpu per pod (0 = CPU pods).")
    node_selector: dict[str, str] = Field(default_factory=dict, description="Pod nodeSelector (e.g. a GPU node pool).")
    http_port: int = Field(8080, ge=1, le=65535)
    grpc_port: int = Field(50051, ge=1, le=65535)
    service_type: Literal["ClusterIP", "NodePort", "LoadBalancer"] = Field("ClusterIP")
    pdb_min_available: int = Field(1, ge=0, description="Pods kept during voluntary disruptions.")
    drain_seconds: int = Field(10, ge=0, description="preStop sleep so endpoints drop the pod before SIGTERM.")
    startup_timeout_s: int = Field(600, ge=10, description="How long the startup probe allows for loading the model.")
    rollout_timeout_s: float = Field(600.0, gt=0, description="How long to wait for the rollout before rolling back.")
    run_as_user: int = Field(10001, ge=1, description="Non-root UID of the server process.")
    env: dict[str, str] = Field(default_factory=dict, description="Extra environment, e.g. MLFLOW_TRACKING_URI.")
    api_key_secret: str | None = Field(None, description="Secret whose key 'api-key' becomes JUDE_API_KEY.")
    schema_version: str = Field(
        "1.30", pattern=r"^1\.[0-9]+$", description="Kubernetes version the manifests are validated against."
    )
    nearline: NearlineDeployConfig = Field(
        default_factory=NearlineDeployConfig, description="The nearline worker Deployment beside the server."
    )

    @model_validator(mode="after")
    def _check(self) -> KubernetesConfig:
        if self.min_replicas > self.max_replicas:
            raise ValueError(
                f"kubernetes.min_replicas ({self.min_replicas}) must be <= max_replicas ({self.max_replicas})"
            )
        if self.pdb_min_available >= self.min_replicas and self.pdb_min_available > 0:
            raise ValueError(
                f"kubernetes.pdb_min_available must be < min_replicas ({self.min_replicas}), "
                f"got {self.pdb_min_available}: a node drain could never evict a pod"
            )
        if self.http_port == self.grpc_port:
            raise ValueError(f"kubernetes.http_port and grpc_port must differ, both are {self.http_port}")
        return self


class DeployConfig(_Section):
    """The deploy pipeline: which model, where, and how the server is tuned."""

    target: Literal["local", "kubernetes"] = Field("local", description="Where the champion is served.")
    model_uri: str = Field("models:/jude-embedder@champion", min_length=1, description="What the server loads.")
    only_if_promoted: bool = Field(False, description="Skip deploying when the gate did not promote a new champion.")
    serve: ServeConfig = Field(default_factory=ServeConfig)
    local: LocalDeployConfig = Field(default_factory=LocalDeployConfig)
    kubernetes: KubernetesConfig = Field(default_factory=KubernetesConfig)


class MonitorConfig(_Section):
    """Embedding drift monitoring: the champion embeds a reference and a current window, Evidently compares them."""

    model_uri: str | None = Field(
        None,
        description="Model to monitor; None: models:/<registry.model_name>@champion. A local directory also works.",
    )
    entity_types: list[EntityType] = Field(
        default_factory=lambda: list(ENTITY_TYPES), min_length=1, description="Entity types to check."
    )
    current_days: int = Field(14, gt=0, description="Current window: entities created or updated in the last N days.")
    reference_end: str | None = Field(
        None, description="ISO date ending the reference window; None: end of the training period (data fractions)."
    )
    method: Literal["model", "mmd"] = Field(
        "model", description="Drift method that decides the alert: a classifier's ROC AUC, or kernel MMD^2."
    )
    second_opinion: Literal["model", "mmd", "none"] = Field(
        "mmd", description="Another Evidently method reported beside the first (never alerts on its own)."
    )
    sample_size: int = Field(
        1000,
        ge=20,
        description="Entities per window embedded and compared (seeded sample); "
        "caps MMD's (n+m)^2 kernel and the report's t-SNE, the slow parts.",
    )
    min_entities: int = Field(20, ge=2, description="A window with fewer entities is an error, not a verdict.")
    model_threshold: float = Field(
        0.65,
        gt=0.5,
        le=1.0,
        description="Alert when the window classifier's ROC AUC exceeds this "
        "(0.5 = indistinguishable; 0.65 is ~3 sigma of chance at 150 per window).",
    )
    mmd_threshold: float = Field(
        0.008,
        gt=0,
        description="Alert when the MMD^2 (median-heuristic RBF) exceeds this "
        "(no shift: < 0.002; the synthetic shifts: 0.012 and up).",
    )
    alert: Literal["fail", "warn"] = Field("fail", description="On drift: fail the step, or only log a warning.")
    synthetic_shift: Shift = Field(
        "none", description="Demo: the current window comes from a synthetic marketplace with this shift."
    )
    seed: int = Field(0, description="Seed of the window sampling.")


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
        256, ge=16, le=8192, description="Token budget of one (member, job) pair, both texts together."
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
    learning_rate: float = Field(3e-5, gt=0, le=1, description="AdamW peak rate (full fine-tuning of a small encoder).")
    weight_decay: float = Field(0.01, ge=0)
    warmup_ratio: float = Field(0.1, ge=0, lt=1, description="Linear warmup share, then linear decay.")
    max_grad_norm: float = Field(1.0, gt=0)
    seed: int = Field(0, description="Initialisation of the scoring head, batching and random negatives.")


class DistillConfig(_Section):
    """Offline distillation of the teacher's scores into the fine-tuned bi-encoder (a fresh LoRA on top)."""

    loss: DistillLoss = Field(
        "kl",
        description="'margin_mse' (score margins), 'kl' (softmax over each member's candidates) or 'both' (their sum).",
    )
    candidates_k: int = Field(
        20, ge=2, description="Bi-encoder top-k jobs per training member that the teacher scores."
    )
    group_size: int = Field(
        8,
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
    learning_rate: float = Field(1e-4, gt=0, le=1, description="AdamW peak rate of the distillation LoRA.")
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


class PromotionConfig(_Section):
    """The promotion gate: when does the challenger replace the champion (or, for a first model, the base model)?

    The deploy pipeline's gate uses every field. The train pipeline uses the rule's thresholds
    (``min_ndcg_gain``, ``max_recall_drop``, ``min_queries``) to decide whether a model's first version
    beats the base model on the evaluation it has just run, and so becomes champion at registration.
    """

    min_ndcg_gain: float = Field(
        0.005,
        ge=0,
        description=("nDCG@10 must improve by at least this much (absolute) on the challenger's held-out set."),
    )
    max_recall_drop: float = Field(
        0.0, ge=0, description="recall@100 may fall by at most this much (0 = no regression)."
    )
    min_queries: int = Field(
        50,
        ge=1,
        description=(
            "Never promote on fewer held-out queries with judgements than this: a handful of queries cannot tell "
            "two models apart (the smoke configs, with about 13, set it lower)."
        ),
    )
    max_judge_failure_rate: float = Field(
        0.1,
        ge=0,
        le=1,
        description=(
            "Never promote when the judge failed on more than this share of the pooled pairs. Below it, a failed "
            "pair is left out of both models' rankings (condensed lists), never counted as irrelevant."
        ),
    )
    batch_size: int = Field(64, gt=0)
    pool_depth: int = Field(
        20,
        ge=0,
        description=(
            "The judge grades the unjudged pairs in both models' top-k before they are compared, so the champion is "
            "not "
            "scored on a pool built from the challenger's rankings only (TREC pooling); 0 = the logged judgements only."
        ),
    )
    labels: LabelConfig = Field(
        default_factory=LabelConfig,
        description=(
            "The judge for that pooling (judge, llm, relevant_grade); use the one the models were trained with."
        ),
    )


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


class BootstrapConfig(_Section):
    """A bootstrap / backfill: every selected entity embedded by one embedding version, into both stores."""

    model_uri: str = Field(
        "models:/jude-embedder@champion",
        min_length=1,
        description="The model: a registry URI, a directory or 'minilm'.",
    )
    embedding_version: str | None = Field(
        None,
        pattern=_EMBEDDING_VERSION,
        description="The version written. None: '<registered model>-<version>' (jude-embedder-3), as the nearline "
        "names it; a model outside the registry needs it set.",
    )
    entity_types: list[EntityType] = Field(
        default_factory=lambda: list(ENTITY_TYPES), min_length=1, description="Entity types to embed."
    )
    ids: list[str] | None = Field(None, min_length=1, description="Only these entity ids (None: all).")
    updated_from: str | None = Field(None, description="Only rows with updated_at >= this (ISO 8601; naive = UTC).")
    updated_to: str | None = Field(None, description="Only rows with updated_at < this (ISO 8601; naive = UTC).")
    history: bool = Field(
        False,
        description="Historical backfill: every row version of the synthetic marketplace's change history, not a "
        "snapshot (the offline history then has every past content; data.source must be synthetic).",
    )
    flip: bool = Field(True, description="Point readers at the version once every selected entity has an embedding.")
    engine: Literal["local", "ray"] = Field("local", description="In-process bulk path, or Ray Data ([ray] extra).")
    ray_address: str | None = Field(None, description="Ray cluster (ray://head:10001); None starts a local one.")
    ray_actors: int = Field(2, ge=1, description="Ray actors holding a model each.")
    chunk_size: int = Field(2000, ge=1, description="Entities embedded and written together (the resume checkpoint).")
    token_budget: int = Field(2048, ge=16, description="Padded tokens per batch (token-budget batching).")
    threads: int | None = Field(None, ge=1, description="torch CPU threads; None keeps torch's default.")
    quantize_int8: bool = Field(False, description="Approximate: dynamic int8 Linear layers (CPU).")
    float16_output: bool = Field(False, description="Approximate: vectors rounded to float16.")
    redis_url: str = Field("redis://127.0.0.1:6379/0", description="Redis of the online store.")
    online_prefix: str = Field("jude:", description="Key prefix of the online store.")
    online_dtype: Literal["float32", "float16"] = Field("float32", description="How vectors are stored online.")
    history_path: str = Field(
        ".jude/nearline/history", min_length=1, description="Delta table of the offline history (the nearline's)."
    )

    @model_validator(mode="after")
    def _window(self) -> BootstrapConfig:
        import pandas as pd

        for name in ("updated_from", "updated_to"):
            value = getattr(self, name)
            if value is not None:
                try:
                    pd.Timestamp(value)
                except (ValueError, TypeError):
                    raise ValueError(f"bootstrap.{name} must be an ISO 8601 time, got {value!r}") from None
        if self.updated_from and self.updated_to and pd.Timestamp(self.updated_from) >= pd.Timestamp(self.updated_to):
            raise ValueError(
                f"bootstrap.updated_from must be before updated_to, got {self.updated_from!r} >= {self.updated_to!r}"
            )
        return self


# ---- the apply-prediction ranker (jude/ranker) ------------------------------------------------
# What a ranking team has without embeddings; each computed from the entity tables (their state at creation)
# and from the interactions strictly before each impression (jude/ranker/features.py).
RANKER_STANDARD_FEATURES = (
    "same_city_or_remote",  # 1 if the job is remote or in the member's city
    "years_minus_min",  # the member's years of experience minus the job's minimum
    "seniority_gap",  # the member's seniority level minus the job's (junior 0, mid 1, senior 2, lead 3)
    "skill_overlap",  # how many of the job's skills the member lists
    "title_overlap",  # Jaccard overlap of the title tokens
    "job_age_days",  # days since the job was posted, at the impression
    "job_views_before",  # views of the job, by anyone, before the impression (popularity so far)
    "job_applies_before",  # applies to the job before the impression (popularity so far)
)
RANKER_EMBEDDING_FEATURES = ("cosine", "projection")  # jude/ranker/embeddings.py
StandardFeature = Literal[RANKER_STANDARD_FEATURES]  # type: ignore[valid-type]
EmbeddingFeature = Literal[RANKER_EMBEDDING_FEATURES]  # type: ignore[valid-type]


class RankerGBMConfig(_Section):
    """scikit-learn's ``HistGradientBoostingClassifier``: the same budget and seed for every feature set."""

    max_iter: int = Field(200, gt=0, description="Boosting rounds (no early stopping: every set gets all of them).")
    learning_rate: float = Field(0.05, gt=0, le=1)
    max_leaf_nodes: int = Field(15, ge=2, description="Leaves per tree.")
    min_samples_leaf: int = Field(40, gt=0, description="Rows per leaf at least (~0.5% of the default training rows).")
    l2_regularization: float = Field(1.0, ge=0)
    threads: int = Field(
        1, ge=1, description="OpenMP threads: a few thousand rows fit in seconds on one; more spin on a busy machine."
    )


class RankerConfig(_Section):
    """The apply-prediction ranker: standard features, then + base / + champion embeddings read as of each
    impression from the offline history, and the time-travel row (+ champion embeddings as they are today)."""

    model_uri: str = Field(
        "models:/jude-embedder@champion",
        min_length=1,
        description="The champion: a registry URI, a directory or 'minilm' (run `make train` first for the default).",
    )
    champion_embedding_version: str | None = Field(
        None,
        pattern=_EMBEDDING_VERSION,
        description="The champion's version in the offline history. None: '<registered model>-<version>' "
        "(jude-embedder-3), as the bootstrap and the nearline name it; a model outside the registry needs it set.",
    )
    base_embedding_version: str | None = Field(
        None,
        pattern=_EMBEDDING_VERSION,
        description="The base model's (model section) version in the offline history. None: 'base-<model>-<hash of "
        "the model section>', so a change of max lengths or pooling is a new version.",
    )
    features: list[StandardFeature] = Field(
        default_factory=lambda: list(RANKER_STANDARD_FEATURES),
        min_length=1,
        description="The standard features (every feature set has them).",
    )
    embedding_features: list[EmbeddingFeature] = Field(
        default_factory=lambda: ["cosine"],
        min_length=1,
        description="What the embedding feature sets add: 'cosine' (member vs job), 'projection' (the first "
        "projection_dim principal components of each vector, fitted on the training rows).",
    )
    projection_dim: int = Field(8, ge=1, le=64, description="Components per entity for 'projection'.")
    top_k: list[int] = Field(
        default_factory=lambda: [10, 3],
        min_length=1,
        description="Cut-offs of the per-member metrics (the first leads the report). The synthetic default "
        "shows a test member ~7 jobs in the test period, so @10 holds nearly all of them; @3 keeps under half "
        "of them.",
    )
    qualified_grade: int = Field(
        2, ge=1, le=3, description="An apply is qualified when the truth grades the pair >= this (synthetic truth)."
    )
    bootstrap_samples: int = Field(1000, ge=100, description="Resamples of the test members for the intervals.")
    confidence: float = Field(0.95, gt=0.5, lt=1, description="Coverage of the bootstrap intervals.")
    seed: int = Field(0, description="The GBM's and the bootstrap's seed (the same for every feature set).")
    gbm: RankerGBMConfig = Field(default_factory=RankerGBMConfig)
    history_path: str | None = Field(
        None, description="The offline history (Delta) read as of each impression. None: .jude/ranker/history."
    )
    build_history: bool = Field(
        True,
        description="Backfill the history first from the synthetic change stream (each version, each distinct text "
        "embedded once; what is stored already is reused). False: read history_path as it is (e.g. what the "
        "nearline or `bootstrap.history: true` wrote); a version it lacks stops the run.",
    )
    stream_events: int = Field(
        8_000,
        gt=0,
        description="Events of the synthetic change stream the history is built from (~2,600 distinct texts per "
        "model at configs/train.yaml's size: what the history build costs).",
    )
    stream_seed: int = Field(0, description="The change stream's seed.")
    apply_edit_share: float = Field(
        0.5,
        ge=0,
        le=1,
        description="Share of applies followed by a profile edit toward the job (jude.data.changes): the future "
        "a join with the latest embeddings sees. 0: edits unrelated to outcomes only.",
    )
    chunk_size: int = Field(2000, ge=1, description="Entities embedded and written together (the backfill's).")
    token_budget: int = Field(8192, ge=16, description="Padded tokens per embedding batch (the bulk path's).")
    threads: int | None = Field(None, ge=1, description="torch CPU threads; None keeps torch's default.")

    @field_validator("features", "embedding_features", mode="before")
    @classmethod
    def _known_features(cls, value: Any, info) -> Any:
        known = RANKER_STANDARD_FEATURES if info.field_name == "features" else RANKER_EMBEDDING_FEATURES
        if isinstance(value, list):
            for name in value:
                if name not in known:
                    raise ValueError(
                        f"unknown feature {name!r}{_did_you_mean(name, known)}; the {info.field_name} are {list(known)}"
                    )
            if len(set(value)) != len(value):
                raise ValueError(f"features must not repeat, got {value}")
        return value

    @field_validator("top_k")
    @classmethod
    def _cutoffs(cls, value: list[int]) -> list[int]:
        if any(k < 1 for k in value) or len(set(value)) != len(value):
            raise ValueError(f"top_k must hold distinct cut-offs >= 1, got {value}")
        return value


# ---- one model per pipeline: the whole `parameters:` of its run config ------------------------
class PipelineConfig(_Section):
    """The keyword arguments of one ``@pipeline`` function, each section validated by its model.

    A section left empty in the YAML (``deploy:`` with nothing under it, i.e. None)
    gets its defaults, as the steps do with ``section or {}``.
    """

    pipeline: ClassVar[str]

    @model_validator(mode="before")
    @classmethod
    def _known_sections(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        known = sorted(cls.model_fields)
        unknown = [name for name in data if name not in cls.model_fields]
        if unknown:
            raise ValueError(
                f"unknown parameter section(s) {unknown}{_did_you_mean(unknown[0], known)}; "
                f"the {cls.pipeline} pipeline takes {known}"
            )
        return {name: value for name, value in data.items() if value is not None}


class TrainPipelineConfig(PipelineConfig):
    """The ``parameters:`` section of a train YAML: one field per ``train_pipeline`` parameter."""

    pipeline: ClassVar[str] = "train"

    data: DataConfig = Field(default_factory=DataConfig)
    labels: LabelConfig = Field(default_factory=LabelConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    lora: LoRAConfig = Field(default_factory=LoRAConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    loss: LossConfig = Field(default_factory=LossConfig)
    scale: ScaleConfig = Field(default_factory=ScaleConfig)
    teacher: TeacherConfig = Field(default_factory=TeacherConfig)
    distill: DistillConfig = Field(default_factory=DistillConfig)
    ablation: AblationConfig = Field(default_factory=AblationConfig)
    eval: EvalConfig = Field(default_factory=EvalConfig)
    registry: RegistryConfig = Field(default_factory=RegistryConfig)
    promotion: PromotionConfig = Field(
        default_factory=PromotionConfig,
        description="The rule a first version must pass against the base model to become champion.",
    )

    @model_validator(mode="after")
    def _scale_fits_the_rest(self) -> TrainPipelineConfig:
        check_scale(self.model, self.scale)
        if self.scale.deepspeed:  # steps/finetune_embedder.py then trains through the HF Trainer
            try:
                check_hf_losses(self.loss)
            except ScaleConfigError as e:
                raise ScaleConfigError(
                    f"scale.deepspeed={self.scale.deepspeed!r} trains through the HF Trainer: {e}"
                ) from None
        return self


class DeployPipelineConfig(PipelineConfig):
    """The ``parameters:`` section of a deploy YAML: one field per ``deploy_pipeline`` parameter."""

    pipeline: ClassVar[str] = "deploy"

    deploy: DeployConfig = Field(default_factory=DeployConfig)
    registry: RegistryConfig = Field(default_factory=RegistryConfig)
    promotion: PromotionConfig = Field(default_factory=PromotionConfig)
    dry_run: bool = Field(False, description="Render the manifests, touch no cluster (run.py --dry-run).")
    output_dir: str | None = Field(None, description="Where --dry-run writes the manifests (run.py --output).")


class MonitorPipelineConfig(PipelineConfig):
    """The ``parameters:`` section of a monitor YAML: one field per ``monitor_pipeline`` parameter."""

    pipeline: ClassVar[str] = "monitor"

    monitor: MonitorConfig = Field(default_factory=MonitorConfig)
    data: DataConfig = Field(default_factory=DataConfig)
    registry: RegistryConfig = Field(default_factory=RegistryConfig)


class BootstrapPipelineConfig(PipelineConfig):
    """The ``parameters:`` section of a bootstrap YAML: one field per ``bootstrap_pipeline`` parameter."""

    pipeline: ClassVar[str] = "bootstrap"

    bootstrap: BootstrapConfig = Field(default_factory=BootstrapConfig)
    data: DataConfig = Field(default_factory=DataConfig)

    @model_validator(mode="after")
    def _history_needs_synthetic(self) -> BootstrapPipelineConfig:
        if self.bootstrap.history and self.data.source != "synthetic":
            raise ValueError(
                "bootstrap.history=true replays the synthetic marketplace's change history; "
                f"data.source must be 'synthetic', got {self.data.source!r}"
            )
        return self


class RankerPipelineConfig(PipelineConfig):
    """The ``parameters:`` section of a ranker YAML: one field per ``ranker_pipeline`` parameter.

    ``data``, ``train.seed`` and ``eval`` (max_queries, member_view) pick the test members exactly as the
    training pipeline does, so copy them from the champion's train config; ``model`` is the base model.
    """

    pipeline: ClassVar[str] = "ranker"

    ranker: RankerConfig = Field(default_factory=RankerConfig)
    data: DataConfig = Field(default_factory=DataConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    eval: EvalConfig = Field(default_factory=EvalConfig)
    registry: RegistryConfig = Field(default_factory=RegistryConfig)

    @model_validator(mode="after")
    def _history_needs_synthetic(self) -> RankerPipelineConfig:
        if self.ranker.build_history and self.data.source != "synthetic":
            raise ValueError(
                "ranker.build_history=true builds the history from the synthetic change stream; with "
                f"data.source={self.data.source!r} set it to false and point ranker.history_path at your history"
            )
        return self


PIPELINE_CONFIGS: dict[str, type[PipelineConfig]] = {
    "train": TrainPipelineConfig,
    "deploy": DeployPipelineConfig,
    "monitor": MonitorPipelineConfig,
    "bootstrap": BootstrapPipelineConfig,
    "ranker": RankerPipelineConfig,
}


def describe_validation_error(e: ValidationError) -> list[str]:
    """One line per problem: ``section.field: what is wrong (got value)``."""
    lines = []
    for err in e.errors():
        where = ".".join(str(p) for p in err["loc"])
        msg = err["msg"].removeprefix("Value error, ")  # our validators' messages name the value themselves
        if err["type"] != "value_error" and "input" in err:
            got = repr(err["input"])
            msg += f" (got {got if len(got) <= 80 else got[:77] + '...'})"
        lines.append(f"{where}: {msg}" if where else msg)
    return lines


def read_pipeline_config(pipeline: str, path: str | os.PathLike) -> PipelineConfig:
    """A run config file checked whole before anything runs: its top-level keys, then its ``parameters:``
    against the pipeline's model (every section and the rules between them).

    Raises :class:`ConfigFileError` naming the file and each problem's field and value.
    """
    if pipeline not in PIPELINE_CONFIGS:
        raise ValueError(f"pipeline must be one of {sorted(PIPELINE_CONFIGS)}, got {pipeline!r}")
    params = read_parameters(path)
    try:
        return PIPELINE_CONFIGS[pipeline].model_validate(params)
    except ValidationError as e:
        raise ConfigFileError(f"config file {path}:\n  " + "\n  ".join(describe_validation_error(e))) from e
