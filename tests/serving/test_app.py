"""The HTTP API with the real MiniLM model: results, batching, every error status."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import threading

import numpy as np
import pytest

from tests.serving.conftest import app_client

pytestmark = pytest.mark.anyio

TEXTS = [
    "Senior Python developer with Kubernetes experience",
    "Nurse",
    "Data engineer in Berlin building streaming pipelines with Kafka, Flink and a lot of SQL every day",
    "Frontend engineer, React and TypeScript",
    "Warehouse operations lead",
]

JOB = {
    "job_id": "j1",
    "title": "Backend Engineer",
    "company": "Acme",
    "location": "Berlin",
    "remote": True,
    "seniority": "senior",
    "min_years": 5,
    "skills": ["python", "postgresql"],
    "description": "Build the APIs behind our marketplace.",
}


async def test_openai_embeddings_equal_encode_and_count_tokens(engine, minilm):
    async with app_client(engine) as c:
        r = await c.post("/v1/embeddings", json={"input": TEXTS, "model": "anything"})
    assert r.status_code == 200
    body = r.json()
    got = np.array([d["embedding"] for d in body["data"]], dtype=np.float32)
    assert [d["index"] for d in body["data"]] == list(range(len(TEXTS)))
    np.testing.assert_allclose(got, minilm.encode(TEXTS), atol=1e-5)
    n_tokens = sum(len(ids) for ids in minilm.tokenizer(TEXTS)["input_ids"])
    assert body["usage"] == {"prompt_tokens": n_tokens, "total_tokens": n_tokens}
    assert body["model"] == "all-MiniLM-L6-v2"


async def test_concurrent_single_requests_are_batched_and_equal_the_batch_result(engine):
    texts = TEXTS * 4  # 20 requests of different lengths
    async with app_client(engine) as c:
        batch = await c.post("/v1/embeddings", json={"input": TEXTS})
        singles = await asyncio.gather(*[c.post("/v1/embeddings", json={"input": t}) for t in texts])
        metrics = (await c.get("/metrics")).text
    assert all(r.status_code == 200 for r in singles)
    want = np.array([d["embedding"] for d in batch.json()["data"]])
    got = np.array([r.json()["data"][0]["embedding"] for r in singles])
    np.testing.assert_allclose(got, np.tile(want, (4, 1)), atol=1e-5)
    n_batches = float(
        next(line.split()[-1] for line in metrics.splitlines() if line.startswith("jude_batch_size_count"))
    )
    assert n_batches < 1 + len(texts), "concurrent requests should share forward passes"


async def test_many_concurrent_clients_are_all_answered(engine):
    async with app_client(engine, max_batch_size=8) as c:
        rs = await asyncio.gather(*[c.post("/embed", json={"inputs": [f"query {i}", "job"]}) for i in range(40)])
    assert [r.status_code for r in rs] == [200] * 40
    assert all(len(r.json()) == 2 and len(r.json()[0]) == 384 for r in rs)


async def test_base64_encoding_decodes_to_the_float_result(engine):
    async with app_client(engine) as c:
        f = await c.post("/v1/embeddings", json={"input": "hello", "encoding_format": "float"})
        b = await c.post("/v1/embeddings", json={"input": "hello", "encoding_format": "base64"})
    decoded = np.frombuffer(base64.b64decode(b.json()["data"][0]["embedding"]), dtype="<f4")
    np.testing.assert_array_equal(decoded, np.array(f.json()["data"][0]["embedding"], dtype=np.float32))


async def test_tei_embed_normalize_flag(engine):
    async with app_client(engine) as c:
        norm = (await c.post("/embed", json={"inputs": "hello world"})).json()[0]
        raw = (await c.post("/embed", json={"inputs": ["hello world"], "normalize": False})).json()[0]
    assert np.linalg.norm(norm) == pytest.approx(1.0, abs=1e-5)
    assert np.linalg.norm(raw) > 1.5
    np.testing.assert_allclose(np.array(raw) / np.linalg.norm(raw), norm, atol=1e-5)


async def test_entity_endpoint_uses_the_training_template(engine, minilm):
    async with app_client(engine) as c:
        one = await c.post("/v1/entities/job/embed", json={"entity": JOB})
        many = await c.post("/v1/entities/job/embed", json={"entities": [JOB, {**JOB, "title": "Nurse"}]})
    assert one.status_code == 200 and many.status_code == 200
    want = minilm.encode_entities("job", [JOB, {**JOB, "title": "Nurse"}])
    np.testing.assert_allclose(one.json()["data"][0]["embedding"], want[0], atol=1e-5)
    np.testing.assert_allclose([d["embedding"] for d in many.json()["data"]], want, atol=1e-5)
    assert one.json()["templates_version"] == "v1"


@pytest.mark.parametrize(
    "body,status,fragment",
    [
        ({"input": ""}, 400, "empty"),
        ({"input": []}, 400, "empty"),
        ({"input": ["ok", ""]}, 400, "input[1]"),
        ({"input": 5}, 422, "input"),
        ({"input": "x", "encoding_format": "int8"}, 422, "encoding_format"),
        ({"inputs": "wrong field"}, 422, "input"),
        ({"input": "x", "dimensions": 128}, 422, "dimensions"),
    ],
)
async def test_bad_openai_requests(engine, body, status, fragment):
    async with app_client(engine) as c:
        r = await c.post("/v1/embeddings", json=body)
    assert r.status_code == status
    assert fragment in r.json()["error"]["message"]


async def test_malformed_json_is_422(engine):
    async with app_client(engine) as c:
        r = await c.post("/v1/embeddings", content=b'{"input": ["a",', headers={"content-type": "application/json"})
    assert r.status_code == 422
    assert "JSON" in r.json()["error"]["message"]


async def test_bad_entities(engine):
    async with app_client(engine) as c:
        both = await c.post("/v1/entities/job/embed", json={"entity": JOB, "entities": [JOB]})
        missing = await c.post(
            "/v1/entities/job/embed", json={"entity": {k: v for k, v in JOB.items() if k != "company"}}
        )
        bad_seniority = await c.post("/v1/entities/job/embed", json={"entity": {**JOB, "seniority": "cto"}})
        empty = await c.post("/v1/entities/resume/embed", json={"entities": []})
        unknown = await c.post("/v1/entities/company/embed", json={"entity": JOB})
    assert both.status_code == 422 and "exactly one" in both.json()["error"]["message"]
    assert missing.status_code == 422 and "company" in missing.json()["error"]["message"]
    assert bad_seniority.status_code == 422 and "seniority" in bad_seniority.json()["error"]["message"]
    assert empty.status_code == 400
    assert unknown.status_code == 404


async def test_too_many_inputs_is_413(engine):
    async with app_client(engine, max_client_batch_size=4) as c:
        r = await c.post("/v1/embeddings", json={"input": ["a"] * 5})
    assert r.status_code == 413
    assert "5 items" in r.json()["error"]["message"]


async def test_too_many_characters_is_413(engine):
    async with app_client(engine, max_input_chars=100) as c:
        r = await c.post("/embed", json={"inputs": ["a" * 101]})
    assert r.status_code == 413 and "101 characters" in r.json()["error"]["message"]


async def test_too_long_is_truncated_by_default_and_422_without_truncation(engine):
    long_text = "kubernetes " * 400
    async with app_client(engine, max_tokens=64) as c:
        ok = await c.post("/v1/embeddings", json={"input": long_text})
        refused = await c.post("/v1/embeddings", json={"input": long_text, "truncate": False})
        tei_refused = await c.post("/embed", json={"inputs": [long_text], "truncate": False})
    assert ok.status_code == 200 and ok.json()["usage"]["prompt_tokens"] == 64
    assert refused.status_code == 422 and "the limit is 64" in refused.json()["error"]["message"]
    assert tei_refused.status_code == 422


async def test_full_queue_is_429_with_retry_after(engine):
    async with app_client(engine, max_queue_size=2) as c:
        r = await c.post("/v1/embeddings", json={"input": ["a", "b", "c"]})
    assert r.status_code == 429
    assert int(r.headers["retry-after"]) >= 1
    assert "queue is full" in r.json()["error"]["message"]


async def test_api_key(engine, monkeypatch):
    monkeypatch.setenv("JUDE_API_KEY", "s3cret")
    async with app_client(engine) as c:
        missing = await c.post("/v1/embeddings", json={"input": "x"})
        wrong = await c.post("/embed", json={"inputs": "x"}, headers={"Authorization": "Bearer nope"})
        right = await c.post("/v1/embeddings", json={"input": "x"}, headers={"Authorization": "Bearer s3cret"})
        health = await c.get("/health")
    assert missing.status_code == 401 and "bearer" in missing.json()["error"]["message"]
    assert wrong.status_code == 401 and wrong.headers["www-authenticate"] == "Bearer"
    assert right.status_code == 200
    assert health.status_code == 200  # probes need no key


async def test_status_endpoints(engine):
    async with app_client(engine) as c:
        await c.post("/v1/embeddings", json={"input": "warm"})
        health, ready, info, metrics = [await c.get(p) for p in ("/health", "/ready", "/info", "/metrics")]
    assert health.json() == {"status": "alive"}
    assert ready.status_code == 200
    assert info.json()["dimension"] == 384 and info.json()["templates_version"] == "v1"
    assert info.json()["max_tokens"] == 256
    for name in (
        "jude_request_latency_seconds_bucket",
        "jude_batch_size_bucket",
        "jude_queue_depth",
        "jude_tokens_total",
    ):
        assert name in metrics.text


async def test_not_ready_while_the_model_loads(engine):
    release = threading.Event()

    def slow_loader():
        release.wait(30)
        return engine

    async with app_client(slow_loader) as c:
        health = await c.get("/health")
        ready = await c.get("/ready")
        early = await c.post("/v1/embeddings", json={"input": "x"})
        release.set()
        await c.app.state.service.wait_ready(30)
        late = await c.post("/v1/embeddings", json={"input": "x"})
        ready_after = await c.get("/ready")
    assert health.status_code == 200
    assert ready.status_code == 503 and "loading" in ready.json()["error"]["message"]
    assert early.status_code == 503
    assert late.status_code == 200 and ready_after.status_code == 200


async def test_failed_load_is_reported_by_ready(tmp_path):
    from jude.serving.engine import load_engine
    from jude.serving.service import NotReadyError

    async with app_client(lambda: load_engine(str(tmp_path))) as c:
        with pytest.raises(NotReadyError):
            await c.app.state.service.wait_ready(30)
        ready = await c.get("/ready")
    assert ready.status_code == 503
    assert "failed" in ready.json()["error"]["message"] and "config.json" in ready.json()["error"]["message"]


# ---- hostile text: a lone surrogate is valid JSON but not text --------------------------
PROFILE = {
    "headline": "Backend engineer",
    "title": "Engineer",
    "location": "Berlin",
    "years_experience": 4,
    "skills": "python, go",
    "summary": "Builds APIs.",
}
LONE = "\ud800"
JSON_HEADERS = {"content-type": "application/json"}
JOB_TEXT_FIELDS = ("title", "company", "location", "skills", "description")
PROFILE_TEXT_FIELDS = ("headline", "title", "location", "skills", "summary")

# (path, body with a lone surrogate in one text field, what the error message must name)
SURROGATE_CASES = [
    ("/v1/embeddings", {"input": LONE}, "input"),
    ("/v1/embeddings", {"input": ["ok", "a" + LONE]}, "input"),
    ("/v1/embeddings", {"input": "ok", "model": LONE}, "model"),
    ("/v1/embeddings", {"input": "ok", "user": LONE}, "user"),
    ("/embed", {"inputs": LONE}, "inputs"),
    ("/embed", {"inputs": ["ok", LONE]}, "inputs"),
    *[("/v1/entities/job/embed", {"entity": {**JOB, f: LONE}}, f"entity.{f}") for f in JOB_TEXT_FIELDS],
    ("/v1/entities/job/embed", {"entity": {**JOB, "skills": ["python", LONE]}}, "entity.skills"),
    ("/v1/entities/job/embed", {"entities": [JOB, {**JOB, "title": LONE}]}, "entities.1.title"),
    *[("/v1/entities/profile/embed", {"entity": {**PROFILE, f: LONE}}, f"entity.{f}") for f in PROFILE_TEXT_FIELDS],
    ("/v1/entities/resume/embed", {"entity": {"resume_text": "Java " + LONE}}, "entity.resume_text"),
]


@pytest.mark.parametrize("path,body,field", SURROGATE_CASES)
async def test_a_lone_surrogate_is_422_naming_the_field(engine, path, body, field):
    raw = json.dumps(body).encode()  # ensure_ascii: the surrogate travels as the JSON escape \ud800
    async with app_client(engine) as c:
        r = await c.post(path, content=raw, headers={"content-type": "application/json"})
    assert r.status_code == 422, r.text
    message = r.json()["error"]["message"]
    assert field in message and "surrogate" in message


async def test_a_body_that_is_not_utf8_is_422(engine):
    async with app_client(engine) as c:
        r = await c.post(
            "/v1/embeddings", content=b'{"input": "caf\xe9"}', headers={"content-type": "application/json"}
        )
    assert r.status_code == 422 and "UTF-8" in r.json()["error"]["message"]


async def test_control_characters_are_embedded_not_refused(engine):
    async with app_client(engine) as c:
        r = await c.post("/v1/embeddings", json={"input": ["a\x00b", "\x1b[31mred", "\x07"]})
    assert r.status_code == 200 and len(r.json()["data"]) == 3


# ---- content type, API key before the body, what the key protects ------------------------
@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data"])
async def test_a_wrong_content_type_is_415(engine, content_type):
    async with app_client(engine) as c:
        r = await c.post("/v1/embeddings", content=b'{"input": "x"}', headers={"content-type": content_type})
    assert r.status_code == 415
    assert "application/json" in r.json()["error"]["message"] and content_type in r.json()["error"]["message"]


async def test_json_content_types_with_parameters_are_accepted(engine):
    async with app_client(engine) as c:
        r = await c.post(
            "/embed", content=b'{"inputs": "x"}', headers={"content-type": "application/json; charset=utf-8"}
        )
    assert r.status_code == 200


async def test_the_key_is_checked_before_the_body_is_read(engine, monkeypatch):
    monkeypatch.setenv("JUDE_API_KEY", "s3cret")
    pulled = []

    async def ten_megabytes():
        for _ in range(10):
            pulled.append(1)
            yield b"x" * 1_000_000

    async with app_client(engine) as c:
        big = await c.post("/v1/embeddings", content=ten_megabytes(), headers={"content-type": "application/json"})
        malformed = await c.post(
            "/v1/embeddings", content=b'{"input": ["a",', headers={"content-type": "application/json"}
        )
    assert big.status_code == 401 and pulled == [], f"{len(pulled)} MB of the body were read before the 401"
    assert big.headers["connection"] == "close"  # the rest of the body is not read either
    assert malformed.status_code == 401


async def test_the_key_protects_everything_but_the_probes(engine, monkeypatch):
    monkeypatch.setenv("JUDE_API_KEY", "s3cret")
    key = {"Authorization": "Bearer s3cret"}
    async with app_client(engine) as c:
        closed = {p: (await c.get(p)).status_code for p in ("/info", "/docs", "/redoc", "/openapi.json", "/nowhere")}
        opened = {p: (await c.get(p, headers=key)).status_code for p in ("/info", "/docs", "/redoc", "/openapi.json")}
        probes = {p: (await c.get(p)).status_code for p in ("/health", "/ready", "/metrics")}
    assert closed == {"/info": 401, "/docs": 401, "/redoc": 401, "/openapi.json": 401, "/nowhere": 401}
    assert opened == {"/info": 200, "/docs": 200, "/redoc": 200, "/openapi.json": 200}
    assert probes == {"/health": 200, "/ready": 200, "/metrics": 200}


async def test_metrics_can_be_put_behind_the_key(engine, monkeypatch):
    monkeypatch.setenv("JUDE_API_KEY", "s3cret")
    async with app_client(engine, metrics_require_key=True) as c:
        without = await c.get("/metrics")
        with_key = await c.get("/metrics", headers={"Authorization": "Bearer s3cret"})
        metrics = with_key.text
    assert without.status_code == 401 and with_key.status_code == 200
    assert 'jude_requests_total{endpoint="/metrics",method="GET",status="401"} 1.0' in metrics


async def test_a_failed_load_fails_health_and_is_logged_once(tmp_path, caplog):
    from jude.serving.engine import load_engine
    from jude.serving.service import NotReadyError

    with caplog.at_level(logging.INFO, logger="jude.serving"):
        async with app_client(lambda: load_engine(str(tmp_path))) as c:
            with pytest.raises(NotReadyError):
                await c.app.state.service.wait_ready(30)
            health = await c.get("/health")
            await c.get("/ready")
            await c.post("/v1/embeddings", json={"input": "x"})
    assert health.status_code == 503 and "config.json" in health.json()["error"]["message"]
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "config.json" in errors[0].getMessage()
