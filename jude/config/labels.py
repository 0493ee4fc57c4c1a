"""The ``labels:`` section: the relevance judge (rubric or LLM), its seeded mistakes and the label budget.

``LabelConfig``, ``LLMJudgeConfig`` (and its local ``LLMServerConfig``), ``JudgeErrorConfig`` and the judge's
error modes (``JUDGE_ERROR_MODES``).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from jude.config.base import Action, _Section


class LLMServerConfig(_Section):
    """A local llama.cpp server (``python -m llama_cpp.server``) that jude starts around each judging call.

    Set ``labels.llm.server`` to use it; ``labels.llm.base_url`` is then the started server's. See docs/llm.md.
    """

    model_path: str = Field(
        ".jude/models/SmolLM2-135M-Instruct.Q4_1.gguf", description="The GGUF file to serve (`make llm` fetches them)."
    )
    host: str = Field("127.0.0.1", description="Listen address (loopback: the server is for this machine only).")
    port: int = Field(0, ge=0, le=65535, description="Listen port; 0 picks a free one.")
    n_ctx: int = Field(4096, ge=512, description="Context size in tokens (the rubric prompt is about 1,600).")
    n_threads: int = Field(2, gt=0, description="CPU threads for generation and prompt processing.")
    startup_timeout_s: float = Field(180.0, gt=0, description="How long to wait for the model to load.")


class LLMJudgeConfig(_Section):
    """An OpenAI-compatible chat-completions endpoint (vLLM, Ollama, OpenAI, llama.cpp)."""

    base_url: str = Field("http://127.0.0.1:8000/v1", description="Base URL; '/chat/completions' is appended.")
    model: str = Field("Qwen/Qwen2.5-7B-Instruct", description="Model name sent in each request (and cache key).")
    api_key_env: str = Field("OPENAI_API_KEY", description="Environment variable holding the bearer token, if any.")
    concurrency: int = Field(8, gt=0, description="Requests in flight at once.")
    max_retries: int = Field(4, ge=0, description="Retries on 429, 5xx and timeouts, with exponential backoff.")
    timeout_s: float = Field(60.0, gt=0, description="Per-request timeout in seconds.")
    temperature: float = Field(0.0, ge=0, description="0 makes the judge as repeatable as the server allows.")
    max_tokens: int = Field(96, gt=0, description="Answer length cap (the constrained answer needs about 40).")
    response_format: Literal["auto", "json_schema", "json_object_schema", "json_object"] = Field(
        "auto",
        description="How the answer is constrained: 'json_schema' (OpenAI, vLLM, Ollama, llama-server), "
        "'json_object_schema' (llama-cpp-python's server: json_object plus a schema), 'json_object' (JSON mode "
        "only); 'auto': json_object_schema when `server` is set, else json_schema.",
    )
    prompt: Literal["strict", "questions"] = Field(
        "strict",
        description="'strict': one request a pair, the rubric and a procedure, the facts and the grade in one "
        "answer (jude/labels/judge_prompt.py); 'questions': three short questions a pair (role, location, "
        "qualification), the grade from their answers by the rubric's combination (for small models).",
    )
    cache_dir: str = Field(".jude/judge_cache", description="On-disk cache keyed by model, prompt version and pair.")
    server: LLMServerConfig | None = Field(
        None, description="Start a local llama.cpp server for the judge (base_url is then ignored); None: use base_url."
    )


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
