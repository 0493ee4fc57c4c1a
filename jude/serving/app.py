"""The HTTP API: ``create_app(engine, cfg)`` builds a FastAPI app over the embedding service.

The model is loaded once: pass a loaded :class:`InferenceEngine`, or a loader
(``lambda: load_engine(uri)``) that the app's lifespan runs in a thread, so
``GET /health`` answers at once and ``GET /ready`` turns 200 when the model is in.

Errors are a small table, each with a body ``{"error": {"message", "type", "param", "code"}}``
(the OpenAI error shape) that says what was wrong:

=====================================================  ======
empty input, or an empty string in it                   400
missing or wrong bearer token (with ``JUDE_API_KEY``):
checked before the body is read                         401
the head or the body did not arrive in time             408
more inputs than ``max_client_batch_size``; too many
characters in one input                                 413
a POST whose content type is not JSON                   415
malformed JSON, a body that is not UTF-8, text that is
not valid Unicode (a lone surrogate), wrong types, too
many tokens with ``truncate=false``                     422
overloaded: the queue is full or the estimated wait is
over ``max_queue_wait_s`` (``Retry-After`` header)      429
a request head over ``max_header_bytes``                431
the model is not loaded yet (``/health`` too, once the
load has failed)                                        503
=====================================================  ======

What is checked before the body is read (the key, the content type, the read
deadlines) lives in :mod:`jude.serving.guard`; :func:`uvicorn_config` is how
``jude serve`` runs the app with those limits.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Callable
from contextlib import asynccontextmanager
from typing import Any

import numpy as np
import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.exceptions import HTTPException as StarletteHTTPException

from jude.config import ServeConfig
from jude.serving import schemas as S
from jude.serving.engine import InferenceEngine
from jude.serving.guard import RequestGuard, http_protocol
from jude.serving.metrics import MetricsMiddleware, ServerMetrics
from jude.serving.service import EmbeddingService, InputError, NotReadyError, QueueFullError

_ERROR_RESPONSES = {code: {"model": S.ErrorBody} for code in (400, 401, 408, 413, 415, 422, 429, 503)}
# Paths that answer without the API key: the Kubernetes probes (and /metrics unless metrics_require_key).
_PROBE_PATHS = ("/health", "/ready")


def error_response(
    status: int, message: str, param: str | None = None, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(S.error_body(status, message, param), status_code=status, headers=headers)


def _json(content: Any) -> Response:
    """Serialise with orjson, numpy arrays as they are: no validation, no Python float per value.

    A float32 embedding is written in its shortest decimal form, which reads back
    as the same float32 (about 20x faster than ``json.dumps`` of ``row.tolist()``).
    """
    return Response(orjson.dumps(content, option=orjson.OPT_SERIALIZE_NUMPY), media_type="application/json")


def _encode(row: np.ndarray, fmt: str) -> np.ndarray | str:
    """One embedding as the client asked: float32 values, or OpenAI's base64 of little-endian float32 bytes."""
    if fmt == "base64":
        return base64.b64encode(row.astype("<f4").tobytes()).decode("ascii")
    return row


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        loc = ".".join(str(x) for x in err.get("loc", ()) if x != "body") or "body"
        parts.append(f"{loc}: {err.get('msg', 'invalid')}")
    return "; ".join(parts) or "the request body is invalid"


def create_app(
    engine: InferenceEngine | Callable[[], InferenceEngine],
    cfg: ServeConfig | None = None,
    on_load_failure: Callable[[str], None] | None = None,
    retriever: Any = None,
) -> FastAPI:
    """The FastAPI app. ``engine``: a loaded engine, or a zero-argument loader run at start-up.

    ``on_load_failure(reason)`` runs once if that loader fails (``jude serve`` stops the server then).
    ``retriever``: a ``jude.retrieval.service.Retriever``; with it the app serves ``POST /v1/recommend``
    (``jude.serving.recommend``) and the lifespan starts and stops its index follower.
    """
    cfg = cfg or ServeConfig()
    metrics = ServerMetrics()
    service = EmbeddingService(engine, cfg, metrics, on_load_failure=on_load_failure)
    api_key = os.environ.get(cfg.api_key_env) or None

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        await service.start()
        if retriever is not None:
            retriever.start()
        grpc_server = None
        if cfg.grpc_port is not None:
            from jude.serving.grpc_server import start_grpc_server

            grpc_server, app.state.grpc_port = await start_grpc_server(
                service, cfg.host, cfg.grpc_port, api_key, recommend=app.state.recommend
            )
        try:
            yield
        finally:
            if grpc_server is not None:
                await grpc_server.stop(grace=2)
            if retriever is not None:
                retriever.stop()
            await service.stop()

    app = FastAPI(
        title="jude embedding server",
        version="1",
        lifespan=lifespan,
        description="Job and member embeddings: OpenAI- and TEI-compatible endpoints, structured "
        "entities rendered by the training templates.",
    )
    app.state.service = service
    app.state.metrics = metrics
    app.state.cfg = cfg
    app.state.recommend = None  # (retriever, limiter) when /v1/recommend is served
    if retriever is not None:
        from jude.serving.recommend import add_recommend_route

        app.state.recommend = (retriever, add_recommend_route(app, service, retriever))
    open_paths = _PROBE_PATHS if cfg.metrics_require_key else (*_PROBE_PATHS, "/metrics")
    app.add_middleware(
        RequestGuard, api_key=api_key, open_paths=open_paths, body_timeout_s=cfg.body_timeout_s, router=app.router
    )
    app.add_middleware(MetricsMiddleware, metrics=metrics)  # added last = outermost: it also times refusals

    # ---- errors: every failure is a JSON body that says what was wrong -----------------
    @app.exception_handler(InputError)
    async def _input_error(request: Request, exc: InputError):
        return error_response(exc.status, exc.message, exc.param)

    @app.exception_handler(QueueFullError)
    async def _queue_full(request: Request, exc: QueueFullError):
        return error_response(429, str(exc), headers={"Retry-After": str(exc.retry_after)})

    @app.exception_handler(NotReadyError)
    async def _not_ready(request: Request, exc: NotReadyError):
        return error_response(503, str(exc), headers={"Retry-After": "5"})

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError):
        return error_response(422, _validation_message(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException):
        return error_response(exc.status_code, str(exc.detail), headers=getattr(exc, "headers", None))

    # ---- embeddings --------------------------------------------------------------------
    @app.post(
        "/v1/embeddings",
        response_model=S.OpenAIEmbeddingResponse,
        responses=_ERROR_RESPONSES,
        summary="OpenAI-compatible embeddings",
    )
    async def openai_embeddings(req: S.OpenAIEmbeddingRequest) -> Response:
        texts = [req.input] if isinstance(req.input, str) else req.input
        if req.dimensions is not None and service.ready and req.dimensions != service.engine.info.dimension:
            raise InputError(
                f"dimensions={req.dimensions} is not supported; this model has {service.engine.info.dimension}",
                param="dimensions",
                status=422,
            )
        emb, n_tokens = await service.embed_texts(texts, truncate=req.truncate, endpoint="/v1/embeddings")
        return _json(
            {
                "object": "list",
                "data": [
                    {"object": "embedding", "index": i, "embedding": _encode(row, req.encoding_format)}
                    for i, row in enumerate(emb)
                ],
                "model": service.engine.info.model_name,
                "usage": {"prompt_tokens": n_tokens, "total_tokens": n_tokens},
            }
        )

    @app.post(
        "/embed",
        response_model=list[list[float]],
        responses=_ERROR_RESPONSES,
        summary="Hugging Face TEI-compatible embeddings",
    )
    async def tei_embed(req: S.TEIEmbedRequest) -> Response:
        texts = [req.inputs] if isinstance(req.inputs, str) else req.inputs
        emb, _ = await service.embed_texts(
            texts, truncate=req.truncate, normalize=req.normalize, endpoint="/embed", param="inputs"
        )
        return _json(emb)

    # TEI's compatible routes for an embedding model (router/src/http/server.rs): POST / (what Hugging Face's
    # InferenceClient(base_url=...).feature_extraction posts to) and POST /invocations (SageMaker) embed like
    # /embed; /embeddings is the OpenAI route without /v1. They are the same handlers, so the same errors.
    for path in ("/", "/invocations"):
        app.add_api_route(
            path,
            tei_embed,
            methods=["POST"],
            response_model=list[list[float]],
            responses=_ERROR_RESPONSES,
            summary=f"Hugging Face TEI-compatible embeddings ({path}, as /embed)",
        )
    app.add_api_route(
        "/embeddings",
        openai_embeddings,
        methods=["POST"],
        response_model=S.OpenAIEmbeddingResponse,
        responses=_ERROR_RESPONSES,
        summary="OpenAI-compatible embeddings (as /v1/embeddings)",
    )

    def _entity_route(entity_type: str, body_model: type):
        async def embed_entity(req: body_model) -> Response:  # type: ignore[valid-type]
            emb, n_tokens = await service.embed_entities(
                entity_type, req.records(), truncate=req.truncate, endpoint=f"/v1/entities/{entity_type}/embed"
            )
            return _json(
                {
                    "object": "list",
                    "entity_type": entity_type,
                    "data": [{"object": "embedding", "index": i, "embedding": row} for i, row in enumerate(emb)],
                    "model": service.engine.info.model_name,
                    "templates_version": service.engine.info.templates_version,
                    "usage": {"prompt_tokens": n_tokens, "total_tokens": n_tokens},
                }
            )

        # set after definition: string annotations cannot see this closure's body_model
        embed_entity.__annotations__ = {"req": body_model, "return": Response}
        app.post(
            f"/v1/entities/{entity_type}/embed",
            response_model=S.EntityEmbedResponse,
            responses=_ERROR_RESPONSES,
            name=f"embed_{entity_type}",
            summary=f"Embed {entity_type} entities with the training template",
        )(embed_entity)

    _entity_route("job", S.JobEmbedRequest)
    _entity_route("profile", S.ProfileEmbedRequest)
    _entity_route("resume", S.ResumeEmbedRequest)

    # ---- status ------------------------------------------------------------------------
    @app.get("/health", summary="Liveness: the process answers", responses={503: {"model": S.ErrorBody}})
    async def health() -> Response:
        if service.load_error:  # the model will never load: let the orchestrator restart the server
            return error_response(503, f"failed: the model failed to load: {service.load_error}")
        return _json({"status": "alive"})

    for path in ("/", "/ping"):  # TEI's health routes: the Inference API's GET / and SageMaker's GET /ping
        app.add_api_route(path, health, methods=["GET"], summary=f"Liveness ({path}, as /health)")

    @app.get("/ready", summary="Readiness: the model is loaded", responses={503: {"model": S.ErrorBody}})
    async def ready() -> Response:
        if service.ready:
            return _json({"status": "ready", "model": service.engine.info.model_uri})
        if service.load_error:
            return error_response(503, f"failed: the model failed to load: {service.load_error}")
        return error_response(503, "loading: the model is not loaded yet", headers={"Retry-After": "2"})

    @app.get(
        "/info", response_model=S.InfoResponse, responses={503: {"model": S.ErrorBody}}, summary="The served model"
    )
    async def info() -> Response:
        return _json(service.info())

    @app.get("/metrics", summary="Prometheus metrics", response_class=Response)
    async def prometheus_metrics() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return app


def uvicorn_config(app: FastAPI, cfg: ServeConfig, **kwargs: Any):
    """The ``uvicorn.Config`` that ``jude serve`` runs: ``cfg``'s address, connection timeouts and head limits.

    ``kwargs`` go to ``uvicorn.Config`` as they are (``log_level``, ``access_log``).
    """
    import uvicorn

    return uvicorn.Config(
        app,
        host=cfg.host,
        port=cfg.port,
        http=http_protocol(cfg.header_timeout_s, cfg.max_header_bytes),
        timeout_keep_alive=cfg.keep_alive_timeout_s,
        h11_max_incomplete_event_size=cfg.max_header_bytes,
        timeout_graceful_shutdown=30,
        **kwargs,
    )
