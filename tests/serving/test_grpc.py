"""The gRPC service: same engine and batcher as HTTP, standard health service, status codes; stubs match the .proto."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import grpc
import numpy as np
import pytest
from google.protobuf import descriptor_pb2, struct_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc

from jude.serving import embedding_pb2 as pb
from jude.serving import embedding_pb2_grpc as pb_grpc
from tests.serving.conftest import app_client, raw_embed_request, raw_entities_request

pytestmark = pytest.mark.anyio
ROOT = Path(__file__).resolve().parents[2]


async def test_grpc_embed_matches_http_and_reports_health(engine):
    texts = ["Senior Python developer", "Nurse in Lyon"]
    async with app_client(engine, grpc_port=0) as c:
        http = await c.post("/v1/embeddings", json={"input": texts})
        async with grpc.aio.insecure_channel(f"127.0.0.1:{c.app.state.grpc_port}") as channel:
            await c.app.state.service.wait_ready(10)
            health = health_pb2_grpc.HealthStub(channel)
            stub = pb_grpc.EmbedderStub(channel)
            reply = await stub.Embed(pb.EmbedRequest(inputs=texts))
            info = await stub.Info(pb.InfoRequest())
            entity = struct_pb2.Struct()
            entity.update({"resume_text": "Ten years of Java and Kafka."})
            ent = await stub.EmbedEntities(pb.EmbedEntitiesRequest(entity_type="resume", entities=[entity]))
            for name in ("", "jude.v1.Embedder"):
                for _ in range(50):  # the health reporter flips to SERVING shortly after the model is ready
                    status = (await health.Check(health_pb2.HealthCheckRequest(service=name))).status
                    if status == health_pb2.HealthCheckResponse.SERVING:
                        break
                    await asyncio.sleep(0.1)
                assert status == health_pb2.HealthCheckResponse.SERVING
    got = np.array([list(e.values) for e in reply.embeddings])
    want = np.array([d["embedding"] for d in http.json()["data"]])
    np.testing.assert_allclose(got, want, atol=1e-5)
    assert reply.dimension == 384 and reply.prompt_tokens == http.json()["usage"]["prompt_tokens"]
    assert info.dimension == 384 and info.templates_version == "v1"
    want_resume = engine.embedder.encode_entities("resume", [{"resume_text": "Ten years of Java and Kafka."}])
    np.testing.assert_allclose(list(ent.embeddings[0].values), want_resume[0], atol=1e-5)


async def test_grpc_errors_have_status_codes(engine, monkeypatch):
    monkeypatch.setenv("JUDE_API_KEY", "k")
    async with app_client(engine, grpc_port=0, max_client_batch_size=2, max_input_chars=4000) as c:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{c.app.state.grpc_port}") as channel:
            stub = pb_grpc.EmbedderStub(channel)
            auth = (("authorization", "Bearer k"),)
            cases = [
                (pb.EmbedRequest(inputs=["x"]), (), grpc.StatusCode.UNAUTHENTICATED, "API key"),
                (pb.EmbedRequest(inputs=[]), auth, grpc.StatusCode.INVALID_ARGUMENT, "empty"),
                # refusals of what the request holds are permanent: INVALID_ARGUMENT, never the overload code
                (pb.EmbedRequest(inputs=["a", "b", "c"]), auth, grpc.StatusCode.INVALID_ARGUMENT, "at most 2"),
                (
                    pb.EmbedRequest(inputs=["a", "x" * 4001]),
                    auth,
                    grpc.StatusCode.INVALID_ARGUMENT,
                    "inputs[1] has 4001 characters; the limit is 4000",
                ),
                (
                    pb.EmbedRequest(inputs=["word " * 600], truncate=False),
                    auth,
                    grpc.StatusCode.INVALID_ARGUMENT,
                    "tokens",
                ),
            ]
            for request, metadata, code, fragment in cases:
                with pytest.raises(grpc.aio.AioRpcError) as err:
                    await stub.Embed(request, metadata=metadata)
                assert err.value.code() == code
                assert fragment in err.value.details()
            bad = struct_pb2.Struct()
            bad.update({"title": "x"})
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await stub.EmbedEntities(pb.EmbedEntitiesRequest(entity_type="job", entities=[bad]), metadata=auth)
            assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "entities[0]" in err.value.details()
            ok = await stub.Embed(pb.EmbedRequest(inputs=["word " * 600]), metadata=auth)
            assert ok.prompt_tokens == 256  # truncated by default


JOB = {
    "title": "Backend Engineer",
    "company": "Acme",
    "location": "Berlin",
    "remote": True,
    "seniority": "senior",
    "min_years": 5.0,
    "skills": ["python"],
    "description": "APIs.",
}


async def test_grpc_nan_and_bytes_that_are_not_utf8_are_invalid_argument(engine):
    async with app_client(engine, grpc_port=0) as c:
        await c.app.state.service.wait_ready(10)
        async with grpc.aio.insecure_channel(f"127.0.0.1:{c.app.state.grpc_port}") as channel:
            stub = pb_grpc.EmbedderStub(channel)
            raw_embed = channel.unary_unary(
                "/jude.v1.Embedder/Embed", response_deserializer=pb.EmbedResponse.FromString
            )
            raw_entities = channel.unary_unary(
                "/jude.v1.Embedder/EmbedEntities", response_deserializer=pb.EmbedResponse.FromString
            )
            calls = {
                "nan min_years": stub.EmbedEntities(
                    pb.EmbedEntitiesRequest(entity_type="job", entities=[_struct({**JOB, "min_years": float("nan")})])
                ),
                "nan text": stub.EmbedEntities(
                    pb.EmbedEntitiesRequest(entity_type="resume", entities=[_struct({"resume_text": float("nan")})])
                ),
                "bad utf-8 input": raw_embed(raw_embed_request([b"ok", b"caf\xe9"])),
                "bad utf-8 entity": raw_entities(raw_entities_request("job", [{**JOB, "title": b"\xff\xfe"}])),
                "utf-8 surrogate": raw_embed(raw_embed_request(["\ud800"])),
            }
            errors = {}
            for name, call in calls.items():
                with pytest.raises(grpc.aio.AioRpcError) as err:
                    await call
                errors[name] = (err.value.code(), err.value.details())
            ok = await raw_entities(raw_entities_request("job", [{**JOB, "job_id": float("nan")}]))  # ignored field
    assert {name: code for name, (code, _) in errors.items()} == dict.fromkeys(calls, grpc.StatusCode.INVALID_ARGUMENT)
    assert "min_years" in errors["nan min_years"][1] and "finite" in errors["nan min_years"][1]
    assert "resume_text" in errors["nan text"][1]
    assert all("UTF-8" in errors[name][1] for name in ("bad utf-8 input", "bad utf-8 entity", "utf-8 surrogate"))
    assert ok.dimension == 384


async def test_grpc_overload_is_resource_exhausted_with_retry_after(engine):
    texts = [f"senior python developer number {i} with kubernetes experience" for i in range(32)]
    async with app_client(engine, grpc_port=0, max_queue_wait_s=0.01) as c:
        await c.app.state.service.wait_ready(10)
        await c.post("/embed", json={"inputs": texts})  # the batcher measures its throughput
        async with grpc.aio.insecure_channel(f"127.0.0.1:{c.app.state.grpc_port}") as channel:
            stub = pb_grpc.EmbedderStub(channel)
            results = await asyncio.gather(
                *[stub.Embed(pb.EmbedRequest(inputs=texts)) for _ in range(10)], return_exceptions=True
            )
    refused = [r for r in results if isinstance(r, grpc.aio.AioRpcError)]
    assert refused and len(refused) < len(results)
    for err in refused:
        assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and "overloaded" in err.details()
        assert int(dict(err.trailing_metadata())["retry-after"]) >= 1


def _struct(fields: dict) -> struct_pb2.Struct:
    s = struct_pb2.Struct()
    s.update(fields)
    return s


def test_committed_stubs_match_the_proto(tmp_path):
    """Regenerate from embedding.proto; the descriptor must equal the committed one."""
    import grpc_tools

    include = Path(grpc_tools.__file__).parent / "_proto"
    out = tmp_path / "embedding.desc"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            f"-I{ROOT}",
            f"-I{include}",
            f"--descriptor_set_out={out}",
            "jude/serving/embedding.proto",
        ],
        check=True,
        cwd=ROOT,
    )
    fresh = descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes()).file[0]
    committed = descriptor_pb2.FileDescriptorProto.FromString(pb.DESCRIPTOR.serialized_pb)
    for message in fresh.message_type:  # the descriptor-set output adds json_name; the stubs omit it
        for f in message.field:
            f.ClearField("json_name")
    assert fresh == committed, "stale stubs: regenerate them (see the header of embedding.proto)"
