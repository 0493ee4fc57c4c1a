"""The embedding service shared by the HTTP app and the gRPC server.

It owns the engine and the micro-batcher and applies the request rules that do
not depend on the transport: empty input (400), too many inputs or too many
characters (413), text that is not valid Unicode or too many tokens with
truncate=false (422), overload (429: the queue is full or the estimated wait is
over budget), the model not loaded yet (503). Each rule raises an :class:`InputError`,
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
from jude.serving.schemas import invalid_unicode

log = logging.getLogger("jude.serving")

__all__ = ["EmbeddingService", "InputError", "NotReadyError", "QueueFullError"]


class NotReadyError(RuntimeError):
    """The model is not loaded (yet, or it failed to load)."""


class EmbeddingService:
    """Model + batcher + request rules. ``engine`` may be a loaded engine or a loader to call at start."""

    def __init__(
        self,
        engine: InferenceEngine | Callable[[], InferenceEngine],
        cfg: ServeConfig,
        metrics: ServerMetrics | None = None,
        on_load_failure: Callable[[str], None] | None = None,
    ):
        """``on_load_failure(reason)`` runs once if the loader fails (``jude serve`` uses it to exit non-zero)."""
        self.cfg = cfg
        self._on_load_failure = on_load_failure
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
        except Exception as err:  # reported by /health and /ready, logged here once
            self.load_error = f"{type(err).__name__}: {err}"
            log.error("the model failed to load; this server will never be ready: %s", self.load_error)
            log.debug("the model load failed with", exc_info=err)
            if self._on_load_failure is not None:
                self._on_load_failure(self.load_error)
            return
        await self._start_batcher()
        log.info("model loaded: %s (dimension %d)", self.engine.info.model_uri, self.engine.info.dimension)

    async def _start_batcher(self) -> None:
        self.batcher = MicroBatcher(
            self.engine,
            max_batch_size=self.cfg.max_batch_size,
            max_batch_tokens=self.cfg.max_batch_tokens,
            max_wait_ms=self.cfg.max_wait_ms,
            max_queue_size=self.cfg.max_queue_size,
            max_queue_wait_s=self.cfg.max_queue_wait_s,
            metrics=self.metrics,
            batches_in_flight=self.cfg.batches_in_flight,
        )
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
        """Empty (400), too many (413), too long in characters (413), not valid Unicode (422)."""
        if len(texts) == 0:
            raise InputError(f"{param} is empty: send at least one text", param=param, status=400)
        if len(texts) > self.cfg.max_client_batch_size:
            raise InputError(
                f"{param} has {len(texts)} items; at most {self.cfg.max_client_batch_size} per request",
                param=param,
                status=413,
            )
        for i, t in enumerate(texts):
            if not t:
                raise InputError(f"{param}[{i}] is an empty string", param=param, status=400)
            if len(t) > self.cfg.max_input_chars:
                raise InputError(
                    f"{param}[{i}] has {len(t)} characters; the limit is {self.cfg.max_input_chars}",
                    param=param,
                    status=413,
                )
            problem = invalid_unicode(t)
            if problem:  # the HTTP schemas refuse it first; this covers every other caller
                raise InputError(f"{param}[{i}] {problem}", param=param, status=422)

    async def embed_texts(
        self,
        texts: list[str],
        truncate: bool = True,
        normalize: bool | None = None,
        max_tokens: int | None = None,
        endpoint: str = "embed",
        param: str = "input",
        entity_type: str | None = None,
    ) -> tuple[np.ndarray, int]:
        """Embed raw texts -> ((N, D) float32, tokens used).

        ``entity_type``: the texts are that entity type's template text (rendered by the caller), cut to its token
        budget as :meth:`embed_entities` cuts them.
        """
        engine, batcher = self._require_ready()
        self.check_inputs(texts, param)
        if max_tokens is None and entity_type is not None:
            max_tokens = engine.entity_max_tokens(entity_type)
        # tokenised in the batcher's worker thread, with the rest of its micro-batch: off the event loop
        rows, prepared = await batcher.submit_texts(
            texts, max_tokens or self.text_max_tokens(engine), truncate=truncate, param=param
        )
        do_norm = engine.info.normalize if normalize is None else normalize
        emb = normalize_rows(rows) if do_norm else rows
        n_tokens = sum(p.n_tokens for p in prepared)
        self.metrics.tokens.labels(endpoint).inc(n_tokens)
        self.metrics.inputs.labels(endpoint).inc(len(texts))
        n_trunc = sum(p.truncated for p in prepared)
        if n_trunc:
            self.metrics.truncated.inc(n_trunc)
        return emb, n_tokens

    async def embed_entities(
        self, entity_type: str, records: list[dict[str, Any]], truncate: bool = True, endpoint: str = "entities"
    ) -> tuple[np.ndarray, int]:
        """Render entities with the training templates, then embed with the entity's token budget."""
        engine, _ = self._require_ready()
        if len(records) == 0:
            raise InputError("entities is empty: send at least one entity", param="entities", status=400)
        try:
            texts = engine.render_entities(entity_type, records)
        except (TemplateError, KeyError, TypeError, ValueError) as e:
            raise InputError(f"{entity_type} entity cannot be rendered: {e}", param="entities", status=422) from e
        return await self.embed_texts(
            texts,
            truncate=truncate,
            max_tokens=engine.entity_max_tokens(entity_type),
            endpoint=endpoint,
            param="entities",
        )

    def info(self) -> dict[str, Any]:
        engine, _ = self._require_ready()
        i = engine.info
        return {
            "model_name": i.model_name,
            "model_uri": i.model_uri,
            "registry_version": i.registry_version,
            "dimension": i.dimension,
            "max_tokens": self.text_max_tokens(engine),
            "max_lengths": i.max_lengths,
            "templates_version": i.templates_version,
            "template_style": i.template_style,
            "pooling": i.pooling,
            "normalize": i.normalize,
            "backend": i.backend,
            "max_client_batch_size": self.cfg.max_client_batch_size,
            "max_batch_size": self.cfg.max_batch_size,
        }
