"""The gRPC service (``jude/serving/embedding.proto``) over the same engine and micro-batcher.

It runs on the HTTP server's event loop (``grpc.aio``), started by the app's
lifespan when ``ServeConfig.grpc_port`` is set, so HTTP and gRPC requests land in
the same batches. The standard ``grpc.health.v1.Health`` service reports
SERVING once the model is loaded (overall and for ``jude.v1.Embedder``).

The stubs ``embedding_pb2*.py`` are generated from the .proto and committed (see
the header of the .proto for the command). The methods are registered here with
a request parser that does not raise: a message that does not parse (a string
field that is not UTF-8) becomes INVALID_ARGUMENT with a message, not grpc's
UNKNOWN. Overload is RESOURCE_EXHAUSTED with trailing metadata ``retry-after``
(seconds), as HTTP's 429 has the header; it is the only RESOURCE_EXHAUSTED, so a
client may retry every one. A request refused for what it holds (too many inputs,
a text over ``max_input_chars``: HTTP's 413) is INVALID_ARGUMENT: sent again it is
refused again, and the nearline client dead-letters the entity the message names.
"""

from __future__ import annotations

import asyncio
import functools
import hmac
from collections.abc import Callable
from typing import Any

import grpc
from google.protobuf import struct_pb2
from google.protobuf.message import DecodeError
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from pydantic import ValidationError

from jude.entities import ENTITY_TYPES
from jude.serving import embedding_pb2 as pb
from jude.serving import embedding_pb2_grpc as pb_grpc
from jude.serving.schemas import ENTITY_MODELS
from jude.serving.service import EmbeddingService, InputError, NotReadyError, QueueFullError

SERVICE_NAME = "jude.v1.Embedder"


def _status_for(exc: Exception) -> grpc.StatusCode:
    if isinstance(exc, QueueFullError):
        return grpc.StatusCode.RESOURCE_EXHAUSTED
    if isinstance(exc, NotReadyError):
        return grpc.StatusCode.UNAVAILABLE
    if isinstance(exc, InputError):  # 413 included: a permanent refusal of this request, not overload
        return grpc.StatusCode.INVALID_ARGUMENT
    return grpc.StatusCode.INTERNAL


class _Unparsable:
    """What the lenient parser hands a method instead of a request that does not parse."""

    def __init__(self, message: str):
        self.message = message


def _lenient_parser(message_type) -> Callable[[bytes], Any]:
    def parse(data: bytes):
        try:
            return message_type.FromString(data)
        except DecodeError as e:
            name = message_type.DESCRIPTOR.full_name
            return _Unparsable(f"the request is not a valid {name} (are its strings UTF-8?): {e}")

    return parse


def _parsed(method):
    """Answer INVALID_ARGUMENT for a request the lenient parser could not parse."""

    @functools.wraps(method)
    async def call(self, request, context: grpc.aio.ServicerContext):
        if isinstance(request, _Unparsable):
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, request.message)
        return await method(self, request, context)

    return call


def _plain(value: Any) -> Any:
    """A ``google.protobuf.Struct`` (or a value in one) as plain Python: dicts, lists, str, float, bool, None.

    Unlike ``json_format.MessageToDict`` it keeps NaN and infinity as floats, so the
    entity schemas refuse them by field name (``min_years: Input should be a finite number``)
    or ignore them in fields no template reads.
    """
    if isinstance(value, struct_pb2.Struct):
        return {key: _plain(item) for key, item in value.fields.items()}
    if isinstance(value, struct_pb2.ListValue):
        return [_plain(item) for item in value.values]
    kind = value.WhichOneof("kind")  # a google.protobuf.Value
    if kind in ("struct_value", "list_value"):
        return _plain(getattr(value, kind))
    return None if kind in (None, "null_value") else getattr(value, kind)


async def _abort(context: grpc.aio.ServicerContext, err: Exception) -> None:
    message = getattr(err, "message", None) or str(err)
    if isinstance(err, QueueFullError):
        await context.abort(_status_for(err), message, trailing_metadata=(("retry-after", str(err.retry_after)),))
    await context.abort(_status_for(err), message)


class EmbedderServicer(pb_grpc.EmbedderServicer):
    """Translates protobuf messages to :class:`EmbeddingService` calls and errors to status codes."""

    def __init__(self, service: EmbeddingService, api_key: str | None = None, recommend: Any = None):
        self.service = service
        self.api_key = api_key
        self.recommend = recommend  # (Retriever, RecommendLimiter) when retrieval is served

    async def _check_auth(self, context: grpc.aio.ServicerContext) -> None:
        if self.api_key is None:
            return
        meta = dict(context.invocation_metadata() or ())
        scheme, _, token = str(meta.get("authorization", "")).partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), self.api_key.encode()):
            await context.abort(
                grpc.StatusCode.UNAUTHENTICATED, "missing or wrong API key: send metadata 'authorization: Bearer <key>'"
            )

    def _response(self, emb, n_tokens: int) -> pb.EmbedResponse:
        return pb.EmbedResponse(
            embeddings=[pb.Embedding(values=row.tolist()) for row in emb],
            dimension=int(emb.shape[1]),
            prompt_tokens=int(n_tokens),
            model=self.service.engine.info.model_name,
        )

    @_parsed
    async def Embed(self, request: pb.EmbedRequest, context: grpc.aio.ServicerContext) -> pb.EmbedResponse:
        await self._check_auth(context)
        truncate = request.truncate if request.HasField("truncate") else True
        normalize = request.normalize if request.HasField("normalize") else None
        if request.entity_type and request.entity_type not in ENTITY_TYPES:
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"entity_type {request.entity_type!r}; expected one of {list(ENTITY_TYPES)} (or none, for raw texts)",
            )
        try:
            emb, n = await self.service.embed_texts(
                list(request.inputs),
                truncate=truncate,
                normalize=normalize,
                endpoint="grpc:Embed",
                param="inputs",
                entity_type=request.entity_type or None,
            )
        except (InputError, QueueFullError, NotReadyError) as e:
            await _abort(context, e)
        return self._response(emb, n)

    @_parsed
    async def EmbedEntities(
        self, request: pb.EmbedEntitiesRequest, context: grpc.aio.ServicerContext
    ) -> pb.EmbedResponse:
        await self._check_auth(context)
        model = ENTITY_MODELS.get(request.entity_type)
        if model is None:
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"entity_type {request.entity_type!r}; expected one of {sorted(ENTITY_MODELS)}",
            )
        records = []
        for i, s in enumerate(request.entities):
            try:
                records.append(model.model_validate(_plain(s)).model_dump())
            except ValidationError as e:
                first = e.errors()[0]
                loc = ".".join(str(x) for x in first["loc"])
                await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"entities[{i}].{loc}: {first['msg']}")
        truncate = request.truncate if request.HasField("truncate") else True
        try:
            emb, n = await self.service.embed_entities(
                request.entity_type, records, truncate=truncate, endpoint="grpc:EmbedEntities"
            )
        except (InputError, QueueFullError, NotReadyError) as e:
            await _abort(context, e)
        return self._response(emb, n)

    @_parsed
    async def Info(self, request: pb.InfoRequest, context: grpc.aio.ServicerContext) -> pb.InfoResponse:
        try:
            i = self.service.info()
        except NotReadyError as e:
            await context.abort(grpc.StatusCode.UNAVAILABLE, str(e))
        return pb.InfoResponse(
            model_name=i["model_name"],
            model_uri=i["model_uri"],
            registry_version=i["registry_version"] or "",
            dimension=i["dimension"],
            max_tokens=i["max_tokens"],
            templates_version=i["templates_version"],
            template_style=i["template_style"],
        )

    @_parsed
    async def Recommend(self, request: pb.RecommendRequest, context: grpc.aio.ServicerContext) -> pb.RecommendResponse:
        await self._check_auth(context)
        if self.recommend is None:
            await context.abort(grpc.StatusCode.UNIMPLEMENTED, "this server runs without retrieval (retrieval.enabled)")
        from jude.serving.recommend import recommend_grpc

        return await recommend_grpc(self.service, *self.recommend, request, context, plain=_plain, abort=_abort)


def _embedder_handler(servicer: EmbedderServicer) -> grpc.GenericRpcHandler:
    """``jude.v1.Embedder`` as the generated ``add_EmbedderServicer_to_server`` registers it, with lenient parsers."""
    methods = {
        "Embed": (servicer.Embed, pb.EmbedRequest, pb.EmbedResponse),
        "EmbedEntities": (servicer.EmbedEntities, pb.EmbedEntitiesRequest, pb.EmbedResponse),
        "Info": (servicer.Info, pb.InfoRequest, pb.InfoResponse),
        "Recommend": (servicer.Recommend, pb.RecommendRequest, pb.RecommendResponse),
    }
    handlers = {
        name: grpc.unary_unary_rpc_method_handler(
            method, request_deserializer=_lenient_parser(request), response_serializer=response.SerializeToString
        )
        for name, (method, request, response) in methods.items()
    }
    return grpc.method_handlers_generic_handler(SERVICE_NAME, handlers)


async def _report_health(service: EmbeddingService, servicer: health.aio.HealthServicer) -> None:
    """NOT_SERVING until the model is loaded, then SERVING."""
    while not service.ready and not service.load_error:
        await asyncio.sleep(0.1)
    status = health_pb2.HealthCheckResponse.SERVING if service.ready else health_pb2.HealthCheckResponse.NOT_SERVING
    for name in ("", SERVICE_NAME):
        await servicer.set(name, status)


async def start_grpc_server(
    service: EmbeddingService, host: str, port: int, api_key: str | None = None, recommend: Any = None
) -> tuple[grpc.aio.Server, int]:
    """Start the gRPC server on the running event loop -> (server, bound port).

    ``recommend``: the app's (retriever, limiter) for ``Recommend`` (None: UNIMPLEMENTED).
    """
    server = grpc.aio.server(options=[("grpc.max_receive_message_length", 32 * 1024 * 1024)])
    server.add_generic_rpc_handlers((_embedder_handler(EmbedderServicer(service, api_key, recommend)),))
    health_servicer = health.aio.HealthServicer()
    for name in ("", SERVICE_NAME):
        await health_servicer.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    bound = server.add_insecure_port(f"{host}:{port}")
    if bound == 0:
        raise OSError(f"gRPC: cannot bind {host}:{port}")
    await server.start()
    server._jude_health_task = asyncio.create_task(_report_health(service, health_servicer))  # keep a reference
    return server, bound
