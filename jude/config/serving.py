"""The embedding server's settings (``ServeConfig``, `jude serve`): micro-batching, request limits, backend."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from jude.config.base import _Section


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
    batches_in_flight: int = Field(
        1,
        ge=1,
        le=4,
        description="Micro-batches the model works on at once, each tokenised and run through its own forward "
        "(on `threads` intra-op threads each); 1 = one after the other, the forward using every core. "
        "bench/serve_profile.py --serve-config measures the choice (docs/serving.md).",
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
    backend: Literal["auto", "torch", "onnx"] = Field(
        "auto",
        description="The forward pass: 'auto' = ONNX Runtime on CPU where the onnx extra is installed and the "
        "export is exact (cosine >= 0.9999 against torch on probe texts), eager PyTorch otherwise (GPU included); "
        "'torch' or 'onnx' to force one. The export is made at registration (<model dir>/onnx/), or on first load.",
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
