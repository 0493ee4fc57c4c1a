"""POST /v1/recommend and gRPC Recommend on the real app (MiniLM engine), with the job index over the machine's Redis.

Jobs and members are written to the online store under a prefix of the test's own;
the app's retriever builds the job index from it, as ``jude serve --recommend`` does.
"""

from __future__ import annotations

import contextlib

import httpx
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jude.config import RetrievalConfig, ServeConfig
from jude.retrieval.index import normalized
from jude.retrieval.service import Retriever
from jude.stores.online import OnlineRecord, RedisOnlineStore
from tests.stores.conftest import redis_client, redis_prefix  # noqa: F401 (fixtures)

pytestmark = pytest.mark.services

VERSION = "minilm-test"
CITIES = ["Berlin", "Paris", "Lisbon"]
JOB_TEXTS = [
    ("Backend Engineer", ["python", "kafka"], "Build the event pipeline."),
    ("Registered Nurse", ["patient care", "triage"], "Care for patients on the night ward."),
    ("Data Scientist", ["python", "statistics"], "Model churn and run experiments."),
    ("Truck Driver", ["driving", "logistics"], "Deliver goods across the region."),
    ("Frontend Developer", ["react", "typescript"], "Build the customer web app."),
    ("Accountant", ["bookkeeping", "tax"], "Close the monthly books."),
]


def job_entity(i: int) -> dict:
    title, skills, description = JOB_TEXTS[i % len(JOB_TEXTS)]
    return {
        "title": title,
        "company": f"Company {i}",
        "location": CITIES[i % 3],
        "remote": i % 2 == 0,
        "seniority": "mid",
        "min_years": 2,
        "skills": skills,
        "description": description,
    }


PROFILE = {
    "headline": "Python backend engineer",
    "title": "Software Engineer",
    "location": "Berlin",
    "years_experience": 4,
    "skills": ["python", "kafka"],
    "summary": "I build data pipelines and APIs.",
}


def embed(engine, entity_type: str, entities: list[dict]) -> np.ndarray:
    """What the server's entity route computes: the template, the entity's token budget, normalised (cached)."""
    key = (entity_type, repr(entities))
    if key not in _EMBEDDED:
        texts = engine.render_entities(entity_type, entities)
        _EMBEDDED[key] = engine.embed(texts, max_tokens=engine.entity_max_tokens(entity_type))
    return _EMBEDDED[key]


_EMBEDDED: dict = {}


@pytest.fixture()
def world(engine, redis_client, redis_prefix):  # noqa: F811
    """24 jobs (MiniLM vectors), two members, one deleted job, under the test's prefix; active = VERSION."""
    store = RedisOnlineStore(redis_client, prefix=redis_prefix)
    entities = [job_entity(i) for i in range(24)]
    vectors = embed(engine, "job", entities)
    records = [OnlineRecord("job", f"J{i}", VERSION, 1000 + i, "upsert", v, f"h{i}") for i, v in enumerate(vectors)]
    records.append(OnlineRecord("job", "J3", VERSION, 5000, "delete"))
    rng = np.random.default_rng(0)
    members = {"M1": rng.standard_normal(vectors.shape[1]).astype(np.float32), "M2": vectors[5] + 0.01}
    records += [OnlineRecord("profile", m, VERSION, 10, "upsert", v, f"p{m}") for m, v in members.items()]
    store.write_many(records)
    from jude.retrieval.feed import IndexFeed

    IndexFeed(redis_client, prefix=redis_prefix).write_attrs(
        (f"J{i}", 1000 + i, e["location"], e["remote"]) for i, e in enumerate(entities)
    )
    store.set_active("job", VERSION)
    store.set_active("profile", VERSION)
    live = {f"J{i}": vectors[i] for i in range(24) if i != 3}
    return store, live, members, entities


@contextlib.asynccontextmanager
async def recommend_client(engine, store, serve: dict | None = None, **retrieval):
    from jude.serving.app import create_app

    retriever = Retriever(store, RetrievalConfig(enabled=True, prefix=store.prefix, **retrieval))
    retriever.load()
    app = create_app(engine, ServeConfig(**(serve or {})), retriever=retriever)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://jude.test", timeout=60) as client:
            client.app = app
            yield client


def brute_force(live: dict[str, np.ndarray], q: np.ndarray, k: int, keep=lambda j: True) -> list[tuple[str, float]]:
    ids = [j for j in live if keep(j)]
    scores = normalized(np.stack([live[j] for j in ids])) @ normalized(q)[0]
    order = np.argsort(-scores, kind="stable")[:k]
    return [(ids[i], float(scores[i])) for i in order]


@pytest.mark.anyio
async def test_a_member_gets_the_exact_top_k_with_the_version_and_the_watermark(engine, world):
    store, live, members, _ = world
    async with recommend_client(engine, store) as client:
        r = await client.post("/v1/recommend", json={"member_id": "M1", "k": 5})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["embedding_version"] == VERSION and body["index"] == "exact"  # 23 jobs: below min_train
        assert body["watermark_ms"] == 5000 and body["watermark"] == "1970-01-01T00:00:05.000Z"
        want = brute_force(live, members["M1"], 5)
        assert [d["job_id"] for d in body["data"]] == [j for j, _ in want]
        np.testing.assert_allclose([d["score"] for d in body["data"]], [s for _, s in want], atol=1e-5)
        assert "J3" not in {
            d["job_id"] for d in (await client.post("/v1/recommend", json={"member_id": "M2", "k": 30})).json()["data"]
        }


@pytest.mark.anyio
async def test_filters_remote_location_and_exclusions(engine, world):
    store, live, members, entities = world
    async with recommend_client(engine, store) as client:
        body = {"member_id": "M2", "k": 10, "filters": {"remote": True, "location": "paris", "exclude_job_ids": ["J5"]}}
        r = await client.post("/v1/recommend", json=body)
        assert r.status_code == 200, r.text
        got = [d["job_id"] for d in r.json()["data"]]

        def keep(j):
            e = entities[int(j[1:])]
            return e["remote"] and e["location"] == "Paris" and j != "J5"

        assert got == [j for j, _ in brute_force(live, members["M2"], 10, keep)] and got


@pytest.mark.anyio
async def test_a_profile_is_embedded_on_the_fly_by_the_served_model(engine, world):
    store, live, _, _ = world
    async with recommend_client(engine, store) as client:
        r = await client.post("/v1/recommend", json={"profile": PROFILE, "k": 3})
        assert r.status_code == 200, r.text
        q = embed(engine, "profile", [PROFILE])[0]
        assert [d["job_id"] for d in r.json()["data"]] == [j for j, _ in brute_force(live, q, 3)]
        assert r.json()["data"][0]["job_id"] in {"J0", "J6", "J12", "J18"}  # the backend engineer postings


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("body", "status", "fragment"),
    [
        ({"member_id": "NOBODY"}, 404, "member 'NOBODY' has no profile embedding of version 'minilm-test'"),
        ({"member_id": "M1", "k": 0}, 422, "k must be between 1 and 100"),
        ({"member_id": "M1", "k": 101}, 422, "k must be between 1 and 100"),
        ({"member_id": "M1", "k": "ten"}, 422, "k"),
        ({"member_id": "M1", "filters": {"remote": "maybe"}}, 422, "filters.remote"),
        ({"member_id": "M1", "filters": {"location": ""}}, 422, "filters.location"),
        ({"member_id": "M1", "filters": {"salary": 5}}, 422, "filters.salary"),
        ({"member_id": "M1", "filters": {"exclude_job_ids": "J1"}}, 422, "exclude_job_ids"),
        ({"member_id": "M1", "filters": {"exclude_job_ids": ["J"] * 1001}}, 422, "at most 1000"),
        ({}, 422, "exactly one of member_id or profile"),
        ({"member_id": "M1", "profile": PROFILE}, 422, "exactly one of member_id or profile"),
        ({"profile": {**PROFILE, "years_experience": -1}}, 422, "profile.years_experience"),
    ],
)
async def test_errors_are_named_and_never_500(engine, world, body, status, fragment):
    store = world[0]
    async with recommend_client(engine, store) as client:
        r = await client.post("/v1/recommend", json=body)
        assert r.status_code == status, r.text
        assert fragment in r.json()["error"]["message"]


@pytest.mark.anyio
async def test_overload_is_429_with_retry_after_like_embedding(engine, world):
    async with recommend_client(engine, world[0], max_inflight=2) as client:
        _, limiter = client.app.state.recommend
        limiter.inflight = 2  # two searches in flight already
        r = await client.post("/v1/recommend", json={"member_id": "M1"})
        assert r.status_code == 429 and r.headers["Retry-After"] == "1"
        assert "retrieval.max_inflight" in r.json()["error"]["message"]
        limiter.inflight = 0
        assert (await client.post("/v1/recommend", json={"member_id": "M1"})).status_code == 200


@pytest.mark.anyio
async def test_no_index_or_an_unreachable_store_is_503_not_500(engine, world):
    import redis

    from jude.serving.app import create_app

    store = world[0]
    retriever = Retriever(store, RetrievalConfig(enabled=True, prefix=store.prefix))  # not loaded yet
    app = create_app(engine, ServeConfig(), retriever=None)
    from jude.serving.recommend import add_recommend_route

    add_recommend_route(app, app.state.service, retriever)
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            r = await client.post("/v1/recommend", json={"member_id": "M1"})
            assert r.status_code == 503 and "no job index" in r.json()["error"]["message"]
            retriever.load()
            retriever.store = RedisOnlineStore(redis.Redis(port=1, socket_connect_timeout=0.2), prefix=store.prefix)
            r = await client.post("/v1/recommend", json={"member_id": "M1"})
            assert r.status_code == 503, r.text


@pytest.mark.anyio
async def test_grpc_recommend_answers_and_names_errors(engine, world):
    import grpc

    from jude.serving import embedding_pb2 as pb
    from jude.serving import embedding_pb2_grpc as pb_grpc

    store, live, members, _ = world
    async with recommend_client(engine, store, serve={"grpc_port": 0}) as client:
        port = client.app.state.grpc_port
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = pb_grpc.EmbedderStub(channel)
            got = await stub.Recommend(pb.RecommendRequest(member_id="M1", k=4, exact=True))
            assert [j.job_id for j in got.jobs] == [j for j, _ in brute_force(live, members["M1"], 4)]
            assert got.embedding_version == VERSION and got.watermark_ms == 5000
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await stub.Recommend(pb.RecommendRequest(member_id="NOBODY"))
            assert err.value.code() == grpc.StatusCode.NOT_FOUND
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await stub.Recommend(pb.RecommendRequest(member_id="M1", k=500))
            assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "k must be" in err.value.details()


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    k=st.integers(1, 40),
    remote=st.sampled_from([None, True, False]),
    location=st.sampled_from([None, "Berlin", "paris", "Nowhere"]),
    exclude=st.lists(st.sampled_from([f"J{i}" for i in range(24)]), max_size=5),
    seed=st.integers(0, 10_000),
)
def test_property_recommend_at_k_with_the_exact_index_is_exact_top_k(engine, world, k, remote, location, exclude, seed):
    from fastapi.testclient import TestClient

    from jude.serving.app import create_app

    store, live, _, entities = world
    q = np.random.default_rng(seed).standard_normal(next(iter(live.values())).shape[0]).astype(np.float32)
    store.write(OnlineRecord("profile", f"P{seed}", VERSION, 1, "upsert", q, "q"))  # one member per seed
    global _PROPERTY_APP
    if _PROPERTY_APP is None or _PROPERTY_APP[0] is not store:
        retriever = Retriever(store, RetrievalConfig(enabled=True, prefix=store.prefix, index="exact"))
        retriever.load()
        _PROPERTY_APP = (store, create_app(engine, ServeConfig(), retriever=retriever))
    filters = {"exclude_job_ids": exclude}
    if remote is not None:
        filters["remote"] = remote
    if location is not None:
        filters["location"] = location
    with TestClient(_PROPERTY_APP[1]) as client:
        r = client.post("/v1/recommend", json={"member_id": f"P{seed}", "k": k, "filters": filters, "exact": True})
    assert r.status_code == 200, r.text

    def keep(j):
        e = entities[int(j[1:])]
        return (
            (remote is None or e["remote"] == remote)
            and (location is None or e["location"].lower() == location.lower())
            and j not in exclude
        )

    want = brute_force(live, q, k, keep) if any(keep(j) for j in live) else []
    got = [(d["job_id"], d["score"]) for d in r.json()["data"]]
    assert len(got) == len(want)
    np.testing.assert_allclose([s for _, s in got], [s for _, s in want], atol=1e-5)
    scores = [s for _, s in want]
    tied = any(abs(a - b) <= 1e-5 for a, b in zip(scores, scores[1:]))  # equal scores may come in any order
    assert tied or [j for j, _ in got] == [j for j, _ in want]


_PROPERTY_APP = None


def test_the_cli_prints_a_members_jobs_from_a_running_server(engine, world, capsys):
    from jude.cli import main
    from jude.serving.app import create_app
    from tests.serving.conftest import live_server

    store, live, members, _ = world
    retriever = Retriever(store, RetrievalConfig(enabled=True, prefix=store.prefix))
    retriever.load()
    with live_server(create_app(engine, ServeConfig(), retriever=retriever)) as url:
        assert main(["recommend", "M1", "--url", url, "--k", "3", "--exact"]) == 0
        out = capsys.readouterr().out
        with pytest.raises(SystemExit, match="404: member 'NOBODY'"):
            main(["recommend", "NOBODY", "--url", url])
    assert f"embedding version {VERSION}" in out
    assert [line.split()[1] for line in out.splitlines()[1:]] == [j for j, _ in brute_force(live, members["M1"], 3)]
