"""The nearline worker's settings (`jude nearline run`): ``NearlineConfig`` and its ``NearlineTargetConfig``
(one embedding version kept current, and the model that makes its vectors)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from jude.config.base import _EMBEDDING_VERSION, EntityType, _Section
from jude.data.schema import ENTITY_TYPES


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
    index_feed: bool = Field(
        True,
        description="Append every job write and delete the online store applied to its version's job-index feed "
        "({online_prefix}index:{version}:job, and each job's filter attributes), which `jude serve --recommend` "
        "follows; false: no feed writes (no server reads them, or something else feeds the index), and a "
        "recommending server's index stops following this worker's writes.",
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
