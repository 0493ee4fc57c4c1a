"""The ``ranker:`` section: the apply-prediction ranker (``RankerConfig``, its GBM ``RankerGBMConfig``) and its
feature vocabularies (``RANKER_STANDARD_FEATURES``, ``RANKER_EMBEDDING_FEATURES``)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator

from jude.config.base import _EMBEDDING_VERSION, _did_you_mean, _Section

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
        "model at the small world's size, configs/train_small.yaml: what the history build costs).",
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
