"""The model behind the nearline processor: one small interface, three implementations.

:class:`Inference` embeds texts the processor has already rendered with the entity's
template (``embed_texts``: the text that was hashed is the text that is embedded, and no
one renders it again), or entities (``embed``, the template fields of each), and says
which model it is (:class:`ModelInfo`: the model label stored with every vector, the
templates version and style the content hash is computed with, the dimension).

- :class:`GrpcInference`: a client of ``jude serve``'s gRPC service (``Embed`` with the
  entity type, for rendered texts; ``EmbedEntities``; ``Info``), the way JUDE runs it:
  the served champion embeds, the worker only templates, hashes and writes. A server
  that is down, overloaded or slow (``UNAVAILABLE``, ``RESOURCE_EXHAUSTED``,
  ``DEADLINE_EXCEEDED``) is retried with exponential backoff and jitter (honouring the
  server's ``retry-after``), a bounded number of times; then :class:`InferenceUnavailable`
  tells the worker to hold the batch and try again later. An entity the server refuses
  (``INVALID_ARGUMENT`` naming ``entities[i]`` or ``inputs[i]``: a bad field, a text over
  the server's ``max_input_chars``) raises :class:`InferenceRejected` at once, so that one
  event is dead-lettered and the rest of the batch goes on. A ``RESOURCE_EXHAUSTED`` that
  names an entity the same way is such a refusal too (servers before INVALID_ARGUMENT
  answered a text over ``max_input_chars`` so): it is not retried.
- :class:`LocalInference`: the same serving engine in-process
  (``jude.serving.engine.load_engine``: registry URIs, truncation to the entity's
  token budget, normalisation), for a single-machine set-up. Given the same model it
  returns what the server returns.
- :class:`HashInference`: no model; a deterministic unit vector per text (a hash of
  it). For tests and benchmarks of everything around the model.

Rendered texts are cut to the entity type's token budget (``max_lengths``), as the
server cuts the entities it renders, so ``embed_texts(t, [render(t, e)])`` equals
``embed(t, [e])``.
"""

from __future__ import annotations

import hashlib
import logging
import random
import re
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from jude.modeling.templates import TEMPLATES_VERSION, render

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelInfo:
    """What the processor needs to know about the model that makes the vectors.

    ``model`` is stored with every online record (``<name>/<registry version>`` for a
    registered model, else the model's name or URI). ``registered_name`` and
    ``registered_version`` (both None for a model outside the registry) give the
    default embedding version, ``<name>-<version>``.
    """

    model: str
    templates_version: str
    template_style: str
    dimension: int
    registered_name: str | None = None
    registered_version: str | None = None

    @classmethod
    def of_served(
        cls,
        model_name: str,
        model_uri: str | None,
        registry_version: str | int | None,
        templates_version: str,
        template_style: str,
        dimension: int,
    ) -> ModelInfo:
        """The processor's view of what a server reports (``/info``, gRPC ``Info``, or the engine's own
        :class:`jude.serving.engine.ModelInfo` in process): one derivation of the stored model label."""
        version = str(registry_version) if registry_version not in (None, "") else None
        return cls(
            model=f"{model_name}/{version}" if version else (model_uri or model_name),
            templates_version=templates_version,
            template_style=template_style,
            dimension=int(dimension),
            registered_name=model_name if version else None,
            registered_version=version,
        )

    def default_embedding_version(self) -> str | None:
        """``<registered name>-<version>`` (``jude-embedder-3``), or None for a model outside the registry."""
        if self.registered_name and self.registered_version:
            return f"{self.registered_name}-{self.registered_version}"
        return None


class InferenceUnavailable(RuntimeError):
    """The model could not be reached (down, overloaded, too slow) after the retries; try the batch again later."""


class InferenceRejected(ValueError):
    """The model refused one entity: ``index`` is its position in the call, ``reason`` the server's message."""

    def __init__(self, index: int, reason: str):
        self.index = index
        self.reason = reason
        super().__init__(f"entities[{index}] refused by the model server: {reason}")


class ModelChanged(RuntimeError):
    """The server now serves another model than the one this worker's embedding version was made with."""


class Inference(ABC):
    """Embeds entities for the processor; see the module docstring."""

    info: ModelInfo

    @abstractmethod
    def embed(self, entity_type: str, entities: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """(N, D) float32 embeddings of ``entities`` (dicts of the template's fields), in order."""

    @abstractmethod
    def embed_texts(self, entity_type: str, texts: Sequence[str]) -> np.ndarray:
        """(N, D) float32 embeddings of texts rendered by the ``entity_type`` template (in ``info.template_style``),
        cut to that entity type's token budget, in order."""

    def close(self) -> None:  # noqa: B027 (optional hook)
        """Release connections or memory; the default holds none."""


# ----------------------------------------------------------------------------- in-process


class LocalInference(Inference):
    """The serving engine in this process (``model_uri``: a registry URI, a directory or ``minilm``).

    ``engine`` lets a caller that already holds a loaded ``InferenceEngine`` share it.
    """

    def __init__(
        self, model_uri: str | None = None, *, device: str | None = None, max_batch_size: int = 32, engine=None
    ):
        if engine is None:
            if not model_uri:
                raise ValueError("LocalInference: give model_uri (or a loaded engine)")
            from jude.serving.engine import load_engine

            engine = load_engine(model_uri, device=device, max_batch_size=max_batch_size)
        self.engine = engine
        i = engine.info
        self.info = ModelInfo.of_served(
            i.model_name, i.model_uri, i.registry_version, i.templates_version, i.template_style, i.dimension
        )

    def embed(self, entity_type: str, entities: Sequence[Mapping[str, Any]]) -> np.ndarray:
        if not entities:
            return np.zeros((0, self.info.dimension), dtype=np.float32)
        return self.embed_texts(entity_type, self.engine.render_entities(entity_type, [dict(e) for e in entities]))

    def embed_texts(self, entity_type: str, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.info.dimension), dtype=np.float32)
        return self.engine.embed(list(texts), max_tokens=self.engine.entity_max_tokens(entity_type))


class HashInference(Inference):
    """No model: each text becomes a unit vector drawn from a generator seeded by its sha256.

    Equal texts give equal vectors, different texts different ones: everything the
    processor and the stores do can be checked exactly, without torch. ``calls`` and
    ``texts`` count what was asked (a test's and the benchmark's inference count).
    """

    def __init__(self, dimension: int = 16, template_style: str = "plain", model: str = "hash"):
        if dimension < 1:
            raise ValueError(f"dimension must be >= 1, got {dimension}")
        self.info = ModelInfo(
            model=model, templates_version=TEMPLATES_VERSION, template_style=template_style, dimension=dimension
        )
        self.calls = 0
        self.texts = 0

    def vector(self, text: str) -> np.ndarray:
        """The vector of one rendered text."""
        seed = int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "little")
        v = np.random.default_rng(seed).standard_normal(self.info.dimension).astype(np.float32)
        return v / np.linalg.norm(v)

    def embed(self, entity_type: str, entities: Sequence[Mapping[str, Any]]) -> np.ndarray:
        return self.embed_texts(entity_type, [render(entity_type, e, self.info.template_style) for e in entities])

    def embed_texts(self, entity_type: str, texts: Sequence[str]) -> np.ndarray:
        self.calls += 1
        self.texts += len(texts)
        out = np.zeros((len(texts), self.info.dimension), dtype=np.float32)
        for i, text in enumerate(texts):
            out[i] = self.vector(text)
        return out


# ----------------------------------------------------------------------------- gRPC


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter: attempt k (from 0) waits ``U(d/2, d)`` with ``d = min(cap, base * 2**k)``.

    The "equal jitter" of the AWS architecture blog's backoff study: half the delay is
    kept (so retries do spread out in time), half is random (so workers that failed
    together do not retry together). A server's ``retry-after`` raises the wait to at
    least that, still capped at ``max_delay_s``.
    """

    max_attempts: int = 6
    base_delay_s: float = 0.1
    max_delay_s: float = 5.0

    def __post_init__(self):
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be >= 1, got {self.max_attempts}")
        if not 0 <= self.base_delay_s <= self.max_delay_s:
            raise ValueError(
                f"need 0 <= base_delay_s <= max_delay_s, got base_delay_s={self.base_delay_s}, "
                f"max_delay_s={self.max_delay_s}"
            )

    def delay(self, attempt: int, rng: random.Random, retry_after_s: float | None = None) -> float:
        d = min(self.max_delay_s, self.base_delay_s * 2**attempt)
        wait = d / 2 + rng.uniform(0, d / 2)
        if retry_after_s is not None:
            wait = max(wait, min(retry_after_s, self.max_delay_s))
        return wait


_ENTITY_INDEX = re.compile(r"^(?:entities|inputs)\[(\d+)\]")


class GrpcInference(Inference):
    """A client of ``jude serve --grpc-port`` (``address``: ``host:port``); see the module docstring.

    - ``request_size``: entities per ``EmbedEntities`` call; keep it at or below the
      server's ``max_client_batch_size`` (64 by default).
    - ``timeout_s``: the deadline of one call.
    - ``api_key``: sent as ``authorization: Bearer <key>`` when the server wants one.
    - ``model_check_s``: how often ``Info`` is asked again; when the server's model
      changed (a new champion rolled out), :class:`ModelChanged` is raised, since the
      embeddings of this worker's version must all come from one model.
    - ``on_retry(code)``: called on every retry (the worker counts them).
    """

    RETRYABLE = ("UNAVAILABLE", "RESOURCE_EXHAUSTED", "DEADLINE_EXCEEDED")

    def __init__(
        self,
        address: str,
        *,
        request_size: int = 32,
        timeout_s: float = 10.0,
        retry: RetryPolicy | None = None,
        api_key: str | None = None,
        model_check_s: float | None = 30.0,
        on_retry: Callable[[str], None] | None = None,
        seed: int | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ):
        import grpc

        from jude.serving import embedding_pb2 as pb
        from jude.serving import embedding_pb2_grpc as pb_grpc

        if request_size < 1:
            raise ValueError(f"request_size must be >= 1, got {request_size}")
        if timeout_s <= 0:
            raise ValueError(f"timeout_s must be > 0, got {timeout_s}")
        self.address = address
        self.request_size = request_size
        self.timeout_s = timeout_s
        self.retry = retry or RetryPolicy()
        self.model_check_s = model_check_s
        self.on_retry = on_retry
        self._grpc = grpc
        self._pb = pb
        self._rng = random.Random(seed)
        self._sleep = sleep
        self._metadata = (("authorization", f"Bearer {api_key}"),) if api_key else ()
        self._channel = grpc.insecure_channel(address, options=[("grpc.max_receive_message_length", 64 * 2**20)])
        self._stub = pb_grpc.EmbedderStub(self._channel)
        self.info = self._fetch_info()
        self._checked_at = time.monotonic()

    # ---- calls with retries -------------------------------------------------------------
    def _call(self, method, request, what: str):
        grpc = self._grpc
        for attempt in range(self.retry.max_attempts):
            try:
                return method(request, timeout=self.timeout_s, metadata=self._metadata)
            except grpc.RpcError as err:
                code = err.code()
                if code.name not in self.RETRYABLE or _names_an_entity(err):
                    raise  # a refusal of what the request holds: sent again, it is refused again
                if attempt + 1 == self.retry.max_attempts:
                    raise InferenceUnavailable(
                        f"{what} at {self.address}: {code.name} after {self.retry.max_attempts} attempts "
                        f"({err.details()})"
                    ) from err
                wait = self.retry.delay(attempt, self._rng, _retry_after(err))
                log.info("%s at %s: %s, retry %d in %.2fs", what, self.address, code.name, attempt + 1, wait)
                if self.on_retry is not None:
                    self.on_retry(code.name)
                self._sleep(wait)
        raise AssertionError("unreachable")

    def _fetch_info(self) -> ModelInfo:
        reply = self._call(self._stub.Info, self._pb.InfoRequest(), "Info")
        return ModelInfo.of_served(
            reply.model_name,
            reply.model_uri,
            reply.registry_version or None,
            reply.templates_version,
            reply.template_style,
            reply.dimension,
        )

    def check_model(self) -> None:
        """Ask ``Info`` again; raise :class:`ModelChanged` if the server's model is not the one it was."""
        now = self._fetch_info()
        self._checked_at = time.monotonic()
        if now != self.info:
            raise ModelChanged(
                f"the server at {self.address} now serves {now.model} (templates {now.templates_version}, "
                f"style {now.template_style}, dimension {now.dimension}); this worker started with {self.info.model} "
                f"and its embedding version must not mix models: start a worker for the new version"
            )

    def embed(self, entity_type: str, entities: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """``EmbedEntities``: the server checks and renders the entities."""
        from google.protobuf import struct_pb2

        def request(chunk: Sequence[Mapping[str, Any]]):
            structs = []
            for e in chunk:
                s = struct_pb2.Struct()
                s.update({k: _proto_value(v) for k, v in e.items()})
                structs.append(s)
            return self._pb.EmbedEntitiesRequest(entity_type=entity_type, entities=structs)

        return self._embed_chunks(entities, request, self._stub.EmbedEntities, "EmbedEntities")

    def embed_texts(self, entity_type: str, texts: Sequence[str]) -> np.ndarray:
        """``Embed`` with ``entity_type``: the texts as rendered here, cut to the entity type's token budget."""

        def request(chunk: Sequence[str]):
            return self._pb.EmbedRequest(inputs=list(chunk), entity_type=entity_type)

        return self._embed_chunks(texts, request, self._stub.Embed, "Embed")

    def _embed_chunks(self, items: Sequence[Any], request: Callable[[Sequence[Any]], Any], method, what: str):
        """Call ``method`` with ``request(chunk)`` for every ``request_size`` items -> (N, D) float32."""
        if self.model_check_s is not None and time.monotonic() - self._checked_at >= self.model_check_s:
            self.check_model()
        out = np.zeros((len(items), self.info.dimension), dtype=np.float32)
        for start in range(0, len(items), self.request_size):
            chunk = items[start : start + self.request_size]
            try:
                reply = self._call(method, request(chunk), what)
            except self._grpc.RpcError as err:
                m = _names_an_entity(err)
                if m:
                    raise InferenceRejected(start + int(m.group(1)), err.details()) from err
                raise
            if reply.dimension != self.info.dimension or len(reply.embeddings) != len(chunk):
                raise ModelChanged(
                    f"the server at {self.address} answered {len(reply.embeddings)} embeddings of dimension "
                    f"{reply.dimension} for {len(chunk)} entities; expected dimension {self.info.dimension}"
                )
            out[start : start + len(chunk)] = np.array([list(x.values) for x in reply.embeddings], dtype=np.float32)
        return out

    def close(self) -> None:
        self._channel.close()


def _proto_value(value: Any) -> Any:
    """A template field as a ``google.protobuf.Value`` can hold it (numbers become floats, tuples lists)."""
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return value


def _names_an_entity(err) -> re.Match | None:
    """The ``entities[i]`` / ``inputs[i]`` a refusal names (INVALID_ARGUMENT, or an older server's
    RESOURCE_EXHAUSTED for a text over ``max_input_chars``); None for any other error, overload included."""
    import grpc

    if err.code() not in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.RESOURCE_EXHAUSTED):
        return None
    return _ENTITY_INDEX.match(err.details() or "")


def _retry_after(err) -> float | None:
    """The ``retry-after`` trailing metadata (seconds) of an overloaded server's answer, if any."""
    try:
        for key, value in err.trailing_metadata() or ():
            if key == "retry-after":
                return float(value)
    except (AttributeError, TypeError, ValueError):
        return None
    return None
