"""Retrieval settings (``RetrievalConfig``): the job index per embedding version, its feed, ``/v1/recommend``."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from jude.config.base import _Section

IndexKind = Literal["ivf_flat", "ivf_sq8", "exact"]


class RetrievalConfig(_Section):
    """The job index (``jude.retrieval``) and ``POST /v1/recommend`` (``jude serve``)."""

    enabled: bool = Field(False, description="Serve /v1/recommend (needs the online store's Redis).")
    redis_url: str = Field("redis://127.0.0.1:6379/0", description="Redis of the online store and the index feed.")
    prefix: str = Field("jude:", description="Key prefix of the online store (the feed and job attributes share it).")
    member_entity_type: Literal["profile", "resume"] = Field(
        "profile", description="Which member vector a member_id reads from the online store."
    )
    index: IndexKind = Field(
        "ivf_flat",
        description="ivf_flat: inverted lists of full vectors (true removes, recall from probing only); ivf_sq8: "
        "the same with 8-bit scalar-quantised vectors (4x less memory); exact: brute force (the oracle).",
    )
    nlist: int | None = Field(
        None, ge=1, description="Inverted lists; None = 4 x sqrt(n) at training time, at most n / 39 (FAISS's rule)."
    )
    nprobe: int = Field(
        32, ge=1, description="Lists searched per query (recall against exact is measured by bench/retrieval_bench)."
    )
    min_train: int = Field(
        2048,
        ge=1,
        description="Below this many jobs the ANN index is not trained and searches go to the exact index (it is "
        "as fast there and exact).",
    )
    retrain_factor: float = Field(
        2.0, gt=1, description="Retrain the inverted lists when the live count moved this factor from the trained."
    )
    default_k: int = Field(10, ge=1, description="Jobs returned when the request gives no k.")
    max_k: int = Field(100, ge=1, le=10_000, description="Largest k a request may ask for (422 beyond).")
    max_exclude: int = Field(1000, ge=0, description="Most job ids one request may exclude (422 beyond).")
    max_inflight: int = Field(
        64, ge=1, description="Searches running or waiting at once; beyond it 429 + Retry-After (as the embedder)."
    )
    search_threads: int = Field(2, ge=1, description="Threads that run searches (FAISS releases the GIL).")
    feed_maxlen: int = Field(
        100_000,
        ge=1000,
        description="Entries kept per index feed (approximate trim; each holds a vector, 1.5 kB at 384 dimensions); "
        "a server further behind rebuilds from the online store instead.",
    )
    feed_block_ms: int = Field(200, ge=1, le=10_000, description="How long one feed read waits for new entries.")
    active_check_s: float = Field(1.0, gt=0, description="How often the server checks the job `active` pointer.")
    index_dir: str = Field(
        ".jude/retrieval",
        min_length=1,
        description="Snapshots the bootstrap builds before it flips `active` (<dir>/<version>/); servers load one "
        "when its feed position is still in the feed, else they rebuild from the online store.",
    )

    def overrides(self) -> dict:
        """The fields that differ from the defaults, as JSON values: ``$JUDE_RETRIEVAL_CONFIG`` of a server that a
        deployment starts (``jude.deploy``), as ``ServeConfig``'s reach it as ``$JUDE_SERVE_CONFIG``."""
        return self.model_dump(exclude_defaults=True, mode="json")

    @model_validator(mode="after")
    def _check(self) -> RetrievalConfig:
        if self.default_k > self.max_k:
            raise ValueError(f"retrieval.default_k ({self.default_k}) must be <= max_k ({self.max_k})")
        return self
