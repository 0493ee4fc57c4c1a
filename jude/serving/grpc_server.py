"""The gRPC service (``jude/serving/embedding.proto``) over the same engine and micro-batcher.

It runs on the HTTP server's event loop (``grpc.aio``), started by the app's
lifespan when ``ServeConfig.grpc_port`` is set, so HTTP and gRPC requests land in
the same batches. The standard ``grpc.health.v1.Health`` service reports
SERVING once the model is loaded (overall and for ``jude.v1.Embedder``).

The stubs ``embedding_pb2*.py`` are generated from the .proto and committed (see
the header of the .proto for the command).
"""

from __future__ import annotations

import asyncio
import hmac

import grpc
from google.protobuf import json_format
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from pydantic import ValidationError

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
    if isinstance(exc, InputError):
        return grpc.StatusCode.RESOURCE_EXHAUSTED if exc.status == 413 else grpc.StatusCode.INVALID_ARGUMENT
    return grpc.StatusCode.INTERNAL


class EmbedderServicer(pb_grpc.EmbedderServicer):
    """Translates protobuf messages to :class:`EmbeddingService` calls and errors to status codes."""

    def __init__(self, service: EmbeddingService, api_key: str | None = None):
        self.service = service
        self.api_key = api_key

    async def _check_auth(self, context: grpc.aio.ServicerContext) -> None:
        if self.api_key is None:
            return
        meta = dict(context.invocation_metadata() or ())
        scheme, _, token = str(meta.get("authorization", "")).partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), self.api_key.encode()):
            await context.abort(grpc.StatusCode.UNAUTHENTICATED,
                                "missing or wrong API key: send metadata 'authorization: Bearer <key>'")

    def _response(self, emb, n_tokens: int) -> pb.EmbedResponse:
        return pb.EmbedResponse(embeddings=[pb.Embedding(values=row.tolist()) for row in emb],
                                dimension=int(emb.shape[1]), prompt_tokens=int(n_tokens),
                                model=self.service.engine.info.model_name)

    async def Embed(self, request: pb.EmbedRequest, context: grpc.aio.ServicerContext) -> pb.EmbedResponse:
        await self._check_auth(context)
        truncate = request.truncate if request.HasField("truncate") else True
        normalize = request.normalize if request.HasField("normalize") else None
        try:
            emb, n = await self.service.embed_texts(list(request.inputs), truncate=truncate, normalize=normalize,
                                                    endpoint="grpc:Embed", param="inputs")
        except (InputError, QueueFullError, NotReadyError) as e:
            await context.abort(_status_for(e), getattr(e, "message", None) or str(e))
        return self._response(emb, n)

    async def EmbedEntities(self, request: pb.EmbedEntitiesRequest,
                            context: grpc.aio.ServicerContext) -> pb.EmbedResponse:
        await self._check_auth(context)
        model = ENTITY_MODELS.get(request.entity_type)
        if model is None:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                                f"entity_type {request.entity_type!r}; expected one of {sorted(ENTITY_MODELS)}")
        records = []
        for i, s in enumerate(request.entities):
            try:
                records.append(model.model_validate(json_format.MessageToDict(s)).model_dump())
            except ValidationError as e:
                first = e.errors()[0]
                loc = ".".join(str(x) for x in first["loc"])
                await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"entities[{i}].{loc}: {first['msg']}")
        truncate = request.truncate if request.HasField("truncate") else True
        try:
            emb, n = await self.service.embed_entities(request.entity_type, records, truncate=truncate,
                                                       endpoint="grpc:EmbedEntities")
        except (InputError, QueueFullError, NotReadyError) as e:
            await context.abort(_status_for(e), getattr(e, "message", None) or str(e))
        return self._response(emb, n)

    async def Info(self, request: pb.InfoRequest, context: grpc.aio.ServicerContext) -> pb.InfoResponse:
        try:
            i = self.service.info()
        except NotReadyError as e:
            await context.abort(grpc.StatusCode.UNAVAILABLE, str(e))
        return pb.InfoResponse(model_name=i["model_name"], model_uri=i["model_uri"],
                               registry_version=i["registry_version"] or "", dimension=i["dimension"],
                               max_tokens=i["max_tokens"], templates_version=i["templates_version"],
                               template_style=i["template_style"])


async def _report_health(service: EmbeddingService, servicer: health.aio.HealthServicer) -> None:
    """NOT_SERVING until the model is loaded, then SERVING."""
    while not service.ready and not service.load_error:
        await asyncio.sleep(0.1)
    status = health_pb2.HealthCheckResponse.SERVING if service.ready else health_pb2.HealthCheckResponse.NOT_SERVING
    for name in ("", SERVICE_NAME):
        await servicer.set(name, status)


async def start_grpc_server(service: EmbeddingService, host: str, port: int,
                            api_key: str | None = None) -> tuple[grpc.aio.Server, int]:
    """Start the gRPC server on the running event loop -> (server, bound port)."""
    server = grpc.aio.server(options=[("grpc.max_receive_message_length", 32 * 1024 * 1024)])
    pb_grpc.add_EmbedderServicer_to_server(EmbedderServicer(service, api_key), server)
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
