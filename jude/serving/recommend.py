"""``POST /v1/recommend``: top-k jobs for a member from the active version's job index (``jude.retrieval``).

Input: ``member_id`` (the member's vector is read from the online store, of the index's
embedding version) or ``profile`` (a profile entity, embedded on the fly by the served
model through the same micro-batcher as ``/v1/entities/profile/embed``), ``k`` (1 to
``retrieval.max_k``), and ``filters``: ``remote``, ``location`` (case-insensitive) and
``exclude_job_ids``. ``exact: true`` searches the exact index (the oracle) instead of
the ANN index. Output: the job ids with their scores (cosine), the ``embedding_version``
they come from and the index's ``watermark`` (the latest job event time it has applied).

Errors (the server's error body): an unknown member (or one without a vector of the
index's version) 404; a bad ``k`` or filter 422; overloaded 429 with ``Retry-After``,
like embedding (more than ``retrieval.max_inflight`` searches at once, or the
embedding queue full for a profile); no index yet 503. A Redis error while reading
the member is a 503, never a 500.

:func:`recommend` is the transport-free call the HTTP route and the gRPC ``Recommend``
method share; :func:`add_recommend_route` is what ``create_app`` registers.
"""

from __future__ import annotations

import asyncio
import functools
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from typing import Any

import orjson
from fastapi import FastAPI
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, model_validator

from jude.retrieval.service import BadRequest, MemberNotFound, NoIndex, Recommendation, Retriever
from jude.serving.schemas import ErrorBody, ProfileEntity, error_body
from jude.serving.service import EmbeddingService, InputError, NotReadyError, QueueFullError


class RecommendFilters(BaseModel):
    model_config = ConfigDict(extra="forbid")

    remote: bool | None = Field(None, description="Only remote (true) or only on-site (false) jobs.")
    location: str | None = Field(None, min_length=1, description="Only jobs in this location (case-insensitive).")
    exclude_job_ids: list[str] = Field(default_factory=list, description="Never return these jobs.")


class RecommendRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    member_id: str | None = Field(None, min_length=1, description="Read the member's vector from the online store.")
    profile: ProfileEntity | None = Field(None, description="Or a profile, embedded on the fly by the served model.")
    k: int | None = Field(None, description="Jobs to return (1 to retrieval.max_k; default retrieval.default_k).")
    filters: RecommendFilters = Field(default_factory=RecommendFilters)
    exact: bool = Field(False, description="Search the exact index (the oracle) instead of the ANN index.")

    @model_validator(mode="after")
    def _one_member(self) -> RecommendRequest:
        if (self.member_id is None) == (self.profile is None):
            raise ValueError("give exactly one of member_id or profile")
        return self


class RecommendedJob(BaseModel):
    job_id: str
    score: float


class RecommendResponse(BaseModel):
    object: str = "list"
    data: list[RecommendedJob]
    embedding_version: str
    watermark: str | None = Field(description="The latest job event time the index has applied (ISO 8601, UTC).")
    watermark_ms: int | None
    index: str = Field(description="'ann' or 'exact': the index that answered.")
    member_id: str | None = None


class RecommendLimiter:
    """At most ``max_inflight`` searches at once (running or queued for a search thread); beyond it 429."""

    def __init__(self, max_inflight: int, threads: int):
        self.max_inflight = max_inflight
        self.inflight = 0
        self.executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="jude-recommend")

    def enter(self) -> None:
        if self.inflight >= self.max_inflight:
            raise QueueFullError(f"{self.inflight} recommend searches in flight (retrieval.max_inflight)", 1)
        self.inflight += 1

    def leave(self) -> None:
        self.inflight -= 1


async def recommend(
    service: EmbeddingService,
    retriever: Retriever,
    limiter: RecommendLimiter,
    *,
    member_id: str | None,
    profile: dict[str, Any] | None,
    k: int | None,
    remote: bool | None,
    location: str | None,
    exclude: list[str],
    exact: bool = False,
) -> Recommendation:
    """Embed the profile if given, then search in a worker thread; raises the retriever's and service's errors."""
    limiter.enter()
    try:
        vector = None
        if profile is not None:
            emb, _ = await service.embed_entities("profile", [profile], endpoint="/v1/recommend")
            vector = emb[0]
        call = functools.partial(
            retriever.recommend,
            member_id=member_id,
            vector=vector,
            k=k,
            remote=remote,
            location=location,
            exclude=exclude,
            exact=exact,
        )
        return await asyncio.get_running_loop().run_in_executor(limiter.executor, call)
    except OSError as e:  # redis.ConnectionError and TimeoutError are OSErrors too: the store is away
        raise NotReadyError(f"the online store did not answer: {e}") from e
    finally:
        limiter.leave()


def iso_ms(ms: int | None) -> str | None:
    if ms is None:
        return None
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def response_body(rec: Recommendation, member_id: str | None) -> dict[str, Any]:
    return {
        "object": "list",
        "data": [{"job_id": h.job_id, "score": h.score} for h in rec.hits],
        "embedding_version": rec.embedding_version,
        "watermark": iso_ms(rec.watermark_ms),
        "watermark_ms": rec.watermark_ms,
        "index": rec.index,
        "member_id": member_id,
    }


def error_response(status: int, message: str, param: str | None = None, headers: dict | None = None) -> JSONResponse:
    return JSONResponse(error_body(status, message, param), status_code=status, headers=headers)


def _json(content: Any) -> Response:
    return Response(orjson.dumps(content), media_type="application/json")


def add_recommend_route(app: FastAPI, service: EmbeddingService, retriever: Retriever) -> RecommendLimiter:
    """Register ``POST /v1/recommend`` on ``app`` (``create_app`` calls it when a retriever is given)."""
    import redis

    cfg = retriever.cfg
    limiter = RecommendLimiter(cfg.max_inflight, cfg.search_threads)
    codes = (404, 422, 429, 503)

    @app.post(
        "/v1/recommend",
        response_model=RecommendResponse,
        responses={code: {"model": ErrorBody} for code in codes},
        summary="Top-k jobs for a member from the job index (fresh: the nearline keeps it current)",
    )
    async def recommend_jobs(req: RecommendRequest) -> Response:
        try:
            rec = await recommend(
                service,
                retriever,
                limiter,
                member_id=req.member_id,
                profile=None if req.profile is None else req.profile.model_dump(),
                k=req.k,
                remote=req.filters.remote,
                location=req.filters.location,
                exclude=req.filters.exclude_job_ids,
                exact=req.exact,
            )
        except MemberNotFound as e:
            return error_response(404, str(e), "member_id")
        except BadRequest as e:
            return error_response(422, str(e), e.param)
        except NoIndex as e:
            return error_response(503, f"no job index: {e}", headers={"Retry-After": "2"})
        except redis.exceptions.RedisError as e:
            return error_response(503, f"the online store failed: {e}", headers={"Retry-After": "2"})
        except (InputError, QueueFullError, NotReadyError):
            raise  # the app's handlers: 4xx, 429 + Retry-After, 503
        return _json(response_body(rec, req.member_id))

    @app.get("/v1/recommend/index", summary="The job index: version, size, watermark, feed position")
    async def recommend_index() -> Response:
        state = retriever.state
        if state is None:
            return error_response(503, f"no job index yet{': ' + retriever.error if retriever.error else ''}")
        return _json({**state.index.stats(), "feed_position": state.position.entry_id, "feed_applied": state.applied})

    return limiter


async def recommend_grpc(
    service: EmbeddingService, retriever: Retriever, limiter: RecommendLimiter, request, context, *, plain, abort
):
    """The gRPC ``Recommend`` method: the same call, errors as status codes.

    ``plain`` (a Struct as Python values) and ``abort`` (an error as its status) are
    ``jude.serving.grpc_server``'s, handed in so this module does not import it back.
    """
    import grpc
    import redis
    from pydantic import ValidationError

    from jude.serving import embedding_pb2 as pb

    profile = None
    if request.HasField("profile"):
        try:
            profile = ProfileEntity.model_validate(plain(request.profile)).model_dump()
        except ValidationError as e:
            first = e.errors()[0]
            loc = ".".join(str(x) for x in first["loc"])
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"profile.{loc}: {first['msg']}")
    elif not request.member_id:
        await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "give exactly one of member_id or profile")
    try:
        rec = await recommend(
            service,
            retriever,
            limiter,
            member_id=request.member_id or None,
            profile=profile,
            k=request.k if request.HasField("k") else None,
            remote=request.remote if request.HasField("remote") else None,
            location=request.location if request.HasField("location") else None,
            exclude=list(request.exclude_job_ids),
            exact=request.exact,
        )
    except MemberNotFound as e:
        await context.abort(grpc.StatusCode.NOT_FOUND, str(e))
    except BadRequest as e:
        await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"{e.param}: {e}")
    except (NoIndex, redis.exceptions.RedisError) as e:
        await context.abort(grpc.StatusCode.UNAVAILABLE, f"no job index or online store: {e}")
    except (InputError, QueueFullError, NotReadyError) as e:
        await abort(context, e)
    return pb.RecommendResponse(
        jobs=[pb.RecommendedJob(job_id=h.job_id, score=h.score) for h in rec.hits],
        embedding_version=rec.embedding_version,
        watermark_ms=rec.watermark_ms,
        index=rec.index,
    )
