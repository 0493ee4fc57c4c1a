"""The nearline's models: gRPC to a real ``jude serve`` (tiny random BERT) agrees with in-process; retries; errors.

The retry cases use a small fake gRPC server that fails on purpose (a real server
cannot be made UNAVAILABLE on cue); everything else talks to the real one.
"""

from __future__ import annotations

import random
from concurrent import futures

import grpc
import numpy as np
import pytest

from jude.config import ServeConfig
from jude.nearline.inference import (
    GrpcInference,
    HashInference,
    InferenceRejected,
    InferenceUnavailable,
    LocalInference,
    ModelChanged,
    RetryPolicy,
)
from jude.serving import embedding_pb2 as pb
from jude.serving import embedding_pb2_grpc as pb_grpc
from tests.nearline.nearline_support import JOB_FIELDS
from tests.serving.conftest import live_server

PROFILE = {
    "headline": "Data engineer",
    "title": "Data Engineer",
    "location": "Berlin",
    "years_experience": 6.0,
    "skills": ["python", "spark"],
    "summary": "Pipelines at scale.",
}


@pytest.fixture(scope="module")
def tiny_engine(tiny_bert_dir):
    from jude.serving.engine import load_engine

    return load_engine(str(tiny_bert_dir))


@pytest.fixture(scope="module")
def served(tiny_engine):
    """``jude serve``'s app (HTTP + gRPC on free ports) with the tiny model, under a real uvicorn -> gRPC address."""
    from jude.serving.app import create_app

    app = create_app(tiny_engine, ServeConfig(grpc_port=0, max_client_batch_size=8))
    with live_server(app):
        yield f"127.0.0.1:{app.state.grpc_port}"


def test_grpc_inference_returns_what_the_in_process_engine_returns(served, tiny_engine):
    remote = GrpcInference(served, request_size=3)
    local = LocalInference(engine=tiny_engine)
    assert remote.info == local.info
    assert (remote.info.dimension, remote.info.template_style, remote.info.templates_version) == (32, "plain", "v1")
    jobs = [{**JOB_FIELDS, "title": f"Engineer {i}"} for i in range(7)]  # three requests of at most 3
    for entity_type, entities in (("job", jobs), ("profile", [PROFILE]), ("resume", [{"resume_text": "Welder."}])):
        got, want = remote.embed(entity_type, entities), local.embed(entity_type, entities)
        assert got.shape == (len(entities), 32) and got.dtype == np.float32
        np.testing.assert_allclose(got, want, atol=1e-5)
    remote.close()


def test_rendered_texts_embed_as_their_entities_do_with_the_entity_token_budget(tiny_engine):
    """``embed_texts`` (the worker's path: text rendered once, sent as is) equals ``embed`` of the entities, remote
    and local. The server's raw-text limit (16 tokens here) does not cut them; the entity's budget does."""
    from jude.modeling.templates import render
    from jude.serving.app import create_app

    app = create_app(tiny_engine, ServeConfig(grpc_port=0, max_tokens=16))
    with live_server(app):
        remote = GrpcInference(f"127.0.0.1:{app.state.grpc_port}", request_size=2)
        local = LocalInference(engine=tiny_engine)
        long_job = {**JOB_FIELDS, "description": "Build and run the data pipelines. " * 20}
        for entity_type, entities in (("job", [JOB_FIELDS, long_job, JOB_FIELDS]), ("profile", [PROFILE])):
            texts = [render(entity_type, e, remote.info.template_style) for e in entities]
            want = local.embed(entity_type, entities)
            np.testing.assert_allclose(remote.embed_texts(entity_type, texts), want, atol=1e-5)
            np.testing.assert_allclose(local.embed_texts(entity_type, texts), want, atol=1e-5)
        raw = remote._stub.Embed(pb.EmbedRequest(inputs=texts[:1]))  # no entity type: cut to 16 tokens
        assert raw.prompt_tokens == 16
        with pytest.raises(grpc.RpcError) as err:
            remote._stub.Embed(pb.EmbedRequest(inputs=["x"], entity_type="company"))
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "'company'" in err.value.details()
        remote.close()


def test_an_entity_the_server_refuses_is_named_by_its_index(served):
    remote = GrpcInference(served, request_size=2)
    entities = [JOB_FIELDS, JOB_FIELDS, {**JOB_FIELDS, "seniority": "chief"}]
    with pytest.raises(InferenceRejected) as err:
        remote.embed("job", entities)
    assert err.value.index == 2 and "seniority" in err.value.reason
    remote.close()


def test_a_text_over_the_servers_character_limit_is_refused_at_once_not_retried(tiny_engine):
    """max_input_chars is a permanent refusal: the server answers INVALID_ARGUMENT naming the input, and the client
    raises InferenceRejected for it on the first answer (the worker dead-letters that event), with no retry."""
    from jude.serving.app import create_app

    app = create_app(tiny_engine, ServeConfig(grpc_port=0, max_input_chars=200))
    with live_server(app):
        retried, waits = [], []
        remote = GrpcInference(
            f"127.0.0.1:{app.state.grpc_port}",
            request_size=2,
            retry=RetryPolicy(4, 0.01, 0.1),
            on_retry=retried.append,
            sleep=waits.append,
        )
        with pytest.raises(grpc.RpcError) as err:
            remote._stub.Embed(pb.EmbedRequest(inputs=["x" * 201]))
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        texts = ["Job: short.", "Job: short too.", "Job: short three.", "Job: " + "long " * 60]
        with pytest.raises(InferenceRejected) as rejected:
            remote.embed_texts("job", texts)
        assert rejected.value.index == 3 and "inputs[1] has 305 characters; the limit is 200" in rejected.value.reason
        assert retried == [] and waits == []
        assert remote.embed_texts("job", texts[:3]).shape == (3, 32)  # the rest goes on
        remote.close()


class OldServer(pb_grpc.EmbedderServicer):
    """A server from before the fix: a text over max_input_chars answered RESOURCE_EXHAUSTED (no retry-after)."""

    calls = 0

    def Info(self, request, context):
        return Flaky(0).Info(request, context)

    def Embed(self, request, context):
        self.calls += 1
        context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, "inputs[0] has 100001 characters; the limit is 100000")


def test_an_older_servers_resource_exhausted_naming_an_input_is_a_refusal_not_overload(flaky_server):
    servicer, retried = OldServer(), []
    remote = GrpcInference(flaky_server(servicer), retry=RetryPolicy(4, 0.0, 0.0), on_retry=retried.append)
    with pytest.raises(InferenceRejected) as rejected:
        remote.embed_texts("job", ["Job: " + "x" * 100_000])
    assert rejected.value.index == 0 and servicer.calls == 1 and retried == []


def test_local_inference_loads_a_model_uri(tiny_bert_dir):
    local = LocalInference(str(tiny_bert_dir))
    assert local.info.model == str(tiny_bert_dir) and local.info.default_embedding_version() is None
    assert local.embed("resume", [{"resume_text": "Welder."}]).shape == (1, 32)
    assert local.embed("resume", []).shape == (0, 32)


def test_hash_inference_is_deterministic_and_unit_norm():
    model = HashInference(dimension=8)
    a = model.embed("resume", [{"resume_text": "Welder."}, {"resume_text": "Baker."}, {"resume_text": "Welder."}])
    np.testing.assert_array_equal(a[0], a[2])
    assert not np.allclose(a[0], a[1])
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0, rtol=1e-6)
    assert (model.calls, model.texts) == (1, 3)


def test_retry_waits_grow_with_jitter_up_to_the_cap_and_honour_retry_after():
    policy = RetryPolicy(max_attempts=8, base_delay_s=0.1, max_delay_s=1.0)
    rng = random.Random(0)
    for attempt in range(8):
        d = min(1.0, 0.1 * 2**attempt)
        waits = [policy.delay(attempt, rng) for _ in range(50)]
        assert all(d / 2 <= w <= d for w in waits) and len(set(waits)) > 1
    assert policy.delay(0, rng, retry_after_s=0.7) >= 0.7
    assert policy.delay(0, rng, retry_after_s=30) <= 1.0  # capped
    with pytest.raises(ValueError, match="max_attempts must be >= 1, got 0"):
        RetryPolicy(max_attempts=0)


# ---------------------------------------------------------------------------- a server that fails on cue


class Flaky(pb_grpc.EmbedderServicer):
    """Fails the first ``failures`` EmbedEntities calls with ``code`` (and a retry-after), then embeds by hash."""

    def __init__(self, failures: int, code=grpc.StatusCode.UNAVAILABLE, retry_after: str | None = None):
        self.failures = failures
        self.code = code
        self.retry_after = retry_after
        self.calls = 0
        self.model_name = "jude-embedder"
        self.version = "3"
        self.model = HashInference(dimension=4)

    def Info(self, request, context):
        return pb.InfoResponse(
            model_name=self.model_name,
            model_uri=f"models:/jude-embedder/{self.version}",
            registry_version=self.version,
            dimension=4,
            max_tokens=128,
            templates_version="v1",
            template_style="plain",
        )

    def EmbedEntities(self, request, context):
        self.calls += 1
        if self.calls <= self.failures:
            if self.retry_after:
                context.set_trailing_metadata((("retry-after", self.retry_after),))
            context.abort(self.code, "busy")
        entities = [dict(s.items()) for s in request.entities]
        emb = self.model.embed(request.entity_type, entities)
        return pb.EmbedResponse(embeddings=[pb.Embedding(values=row.tolist()) for row in emb], dimension=4)


@pytest.fixture()
def flaky_server():
    servers = []

    def start(servicer) -> str:
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        pb_grpc.add_EmbedderServicer_to_server(servicer, server)
        port = server.add_insecure_port("127.0.0.1:0")
        server.start()
        servers.append(server)
        return f"127.0.0.1:{port}"

    yield start
    for s in servers:
        s.stop(0)


@pytest.mark.parametrize("code", [grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED])
def test_a_server_that_is_down_or_overloaded_is_retried_with_backoff(flaky_server, code):
    servicer = Flaky(failures=2, code=code, retry_after="0.3" if code == grpc.StatusCode.RESOURCE_EXHAUSTED else None)
    waits, retried = [], []
    remote = GrpcInference(
        flaky_server(servicer), retry=RetryPolicy(4, 0.01, 1.0), sleep=waits.append, on_retry=retried.append, seed=0
    )
    assert remote.info.default_embedding_version() == "jude-embedder-3" and remote.info.model == "jude-embedder/3"
    got = remote.embed("resume", [{"resume_text": "Welder."}])
    np.testing.assert_allclose(got[0], HashInference(dimension=4).vector("Resume:\nWelder."), atol=1e-6)
    assert retried == [code.name] * 2 and servicer.calls == 3
    if code == grpc.StatusCode.RESOURCE_EXHAUSTED:
        assert all(w >= 0.3 for w in waits)  # the server's retry-after
    else:
        assert waits[0] <= 0.01 and waits[1] <= 0.02


def test_retries_are_bounded(flaky_server):
    remote = GrpcInference(flaky_server(Flaky(failures=99)), retry=RetryPolicy(3, 0.0, 0.0), sleep=lambda s: None)
    with pytest.raises(InferenceUnavailable, match="UNAVAILABLE after 3 attempts"):
        remote.embed("resume", [{"resume_text": "Welder."}])


def test_a_new_model_on_the_server_stops_the_worker_from_mixing_versions(flaky_server):
    servicer = Flaky(failures=0)
    remote = GrpcInference(flaky_server(servicer), model_check_s=0.0)
    remote.embed("resume", [{"resume_text": "Welder."}])
    servicer.version = "4"
    with pytest.raises(ModelChanged, match="now serves jude-embedder/4"):
        remote.embed("resume", [{"resume_text": "Welder."}])
