"""The embedding service shared by the HTTP app and the gRPC server.

It owns the engine and the micro-batcher and applies the request rules that do
not depend on the transport: empty input (400), too many inputs or too many
characters (413), too many tokens with truncate=false (422), a full queue (429),
the model not loaded yet (503). Each rule raises an :class:`InputError`,
:class:`QueueFullError` or :class:`NotReadyError` whose message says what was wrong;
the HTTP and gRPC layers only translate them into their status codes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import numpy as np

from jude.config import ServeConfig
from jude.modeling.templates import TemplateError
from jude.serving.batcher import MicroBatcher, QueueFullError
from jude.serving.engine import InferenceEngine, InputError, normalize_rows
from jude.serving.metrics import ServerMetrics

log = logging.getLogger("jude.serving")

# Above this many characters in one request, tokenising moves off the event loop.
_INLINE_TOKENIZE_CHARS = 20_000

__all__ = ["EmbeddingService", "InputError", "NotReadyError", "QueueFullError"]


class NotReadyError(RuntimeError):
    """The model is not loaded (yet, or it failed to load)."""


class EmbeddingService:
    """Model + batcher + request rules. ``engine`` may be a loaded engine or a loader to call at start."""

    def __init__(self, engine: InferenceEngine | Callable[[], InferenceEngine], cfg: ServeConfig,
                 metrics: ServerMetrics | None = None):
        self.cfg = cfg
        self.metrics = metrics or ServerMetrics()
        self._loader = engine if callable(engine) and not isinstance(engine, InferenceEngine) else None
        self.engine: InferenceEngine | None = engine if isinstance(engine, InferenceEngine) else None
        self.batcher: MicroBatcher | None = None
        self.load_error: str | None = None
        self._load_task: asyncio.Task | None = None

    # ---- lifecycle --------------------------------------------------------------------
    @property
    def ready(self) -> bool:
        return self.batcher is not None

    async def start(self) -> None:
        """Start the batcher now (engine given) or load the model in a thread (loader given)."""
        if self.engine is not None:
            await self._start_batcher()
            return
        self._load_task = asyncio.create_task(self._load(), name="jude-load-model")

    async def _load(self) -> None:
        try:
            self.engine = await asyncio.get_running_loop().run_in_executor(None, self._loader)
        except Exception as err:  # reported by /ready, logged here
            self.load_error = f"{type(err).__name__}: {err}"
            log.error("loading the model failed: %s", self.load_error)
            return
        await self._start_batcher()
        log.info("model loaded: %s (dimension %d)", self.engine.info.model_uri, self.engine.info.dimension)

    async def _start_batcher(self) -> None:
        self.batcher = MicroBatcher(self.engine, max_batch_size=self.cfg.max_batch_size,
                                    max_batch_tokens=self.cfg.max_batch_tokens, max_wait_ms=self.cfg.max_wait_ms,
                                    max_queue_size=self.cfg.max_queue_size, metrics=self.metrics)
        await self.batcher.start()
        self.metrics.model_ready.set(1)

    async def wait_ready(self, timeout: float | None = None) -> None:
        """Wait until the model is loaded (raises NotReadyError if loading failed)."""
        async def _wait():
            while not self.ready:
                if self.load_error:
                    raise NotReadyError(self.load_error)
                await asyncio.sleep(0.05)
        await asyncio.wait_for(_wait(), timeout)

    async def stop(self) -> None:
        if self._load_task is not None and not self._load_task.done():
            self._load_task.cancel()
        if self.batcher is not None:
            await self.batcher.stop()
            self.batcher = None
        self.metrics.model_ready.set(0)

    def _require_ready(self) -> tuple[InferenceEngine, MicroBatcher]:
        if self.batcher is None or self.engine is None:
            if self.load_error:
                raise NotReadyError(f"the model failed to load: {self.load_error}")
            raise NotReadyError("the model is still loading; retry when GET /ready answers 200")
        return self.engine, self.batcher

    # ---- requests ---------------------------------------------------------------------
    def text_max_tokens(self, engine: InferenceEngine) -> int:
        """The token limit for raw text: ServeConfig.max_tokens, capped by what the model allows."""
        if self.cfg.max_tokens is None:
            return engine.info.max_tokens
        return min(self.cfg.max_tokens, engine.info.max_tokens)

    def check_inputs(self, texts: list[str], param: str = "input") -> None:
        """Empty (400), too many (413), too long in characters (413)."""
        if len(texts) == 0:
            raise InputError(f"{param} is empty: send at least one text", param=param, status=400)
        if len(texts) > self.cfg.max_client_batch_size:
            raise InputError(f"{param} has {len(texts)} items; at most {self.cfg.max_client_batch_size} "
                             f"per request", param=param, status=413)
        for i, t in enumerate(texts):
            if not t:
                raise InputError(f"{param}[{i}] is an empty string", param=param, status=400)
            if len(t) > self.cfg.max_input_chars:
                raise InputError(f"{param}[{i}] has {len(t)} characters; the limit is "
                                 f"{self.cfg.max_input_chars}", param=param, status=413)

    async def embed_texts(self, texts: list[str], truncate: bool = True, normalize: bool | None = None,
                          max_tokens: int | None = None, endpoint: str = "embed",
                          param: str = "input") -> tuple[np.ndarray, int]:
        """Embed raw texts -> ((N, D) float32, tokens used)."""
        engine, batcher = self._require_ready()
        self.check_inputs(texts, param)
        max_tokens = max_tokens or self.text_max_tokens(engine)
        if sum(len(t) for t in texts) > _INLINE_TOKENIZE_CHARS:
            prepared = await asyncio.get_running_loop().run_in_executor(
                None, lambda: engine.prepare(texts, max_tokens, truncate, param))
        else:
            prepared = engine.prepare(texts, max_tokens, truncate, param)
        rows = await batcher.submit(prepared)
        do_norm = engine.info.normalize if normalize is None else normalize
        emb = normalize_rows(rows) if do_norm else rows
        n_tokens = sum(p.n_tokens for p in prepared)
        self.metrics.tokens.labels(endpoint).inc(n_tokens)
        self.metrics.inputs.labels(endpoint).inc(len(texts))
        n_trunc = sum(p.truncated for p in prepared)
        if n_trunc:
            self.metrics.truncated.inc(n_trunc)
        return emb, n_tokens

    async def embed_entities(self, entity_type: str, records: list[dict[str, Any]], truncate: bool = True,
                             endpoint: str = "entities") -> tuple[np.ndarray, int]:
        """Render entities with the training templates, then embed with the entity's token budget."""
        engine, _ = self._require_ready()
        if len(records) == 0:
            raise InputError("entities is empty: send at least one entity", param="entities", status=400)
        try:
            texts = engine.render_entities(entity_type, records)
        except (TemplateError, KeyError, TypeError, ValueError) as e:
            raise InputError(f"{entity_type} entity cannot be rendered: {e}", param="entities", status=422) from e
        return await self.embed_texts(texts, truncate=truncate, max_tokens=engine.entity_max_tokens(entity_type),
                                      endpoint=endpoint, param="entities")

    def info(self) -> dict[str, Any]:
        engine, _ = self._require_ready()
        i = engine.info
        return {
            "model_name": i.model_name, "model_uri": i.model_uri, "registry_version": i.registry_version,
            "dimension": i.dimension, "max_tokens": self.text_max_tokens(engine), "max_lengths": i.max_lengths,
            "templates_version": i.templates_version, "template_style": i.template_style,
            "pooling": i.pooling, "normalize": i.normalize,
            "max_client_batch_size": self.cfg.max_client_batch_size, "max_batch_size": self.cfg.max_batch_size,
        }
