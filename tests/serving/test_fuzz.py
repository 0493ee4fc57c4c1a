"""Fuzzing over real HTTP and gRPC: no input yields a server error, and hostile text is refused by name.

- schemathesis against the app's own OpenAPI spec, over real HTTP, with every free-text
  string in the spec generated from :data:`HOSTILE_TEXT` as well as ordinary text;
- every text field of every HTTP endpoint, on its own: strings with lone surrogates
  and control characters (JSON carries them as escapes), and bytes that are not UTF-8
  spliced into the raw body;
- every text field of every gRPC method (raw protobuf, since a well-behaved client
  cannot build them): the same strings and bytes, and NaN/infinity in the numbers.
"""

from __future__ import annotations

import copy
import json
import math
import socket
from urllib.parse import urlsplit

import grpc
import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jude.config import ServeConfig
from jude.serving import embedding_pb2 as pb
from jude.serving.app import create_app
from jude.serving.schemas import invalid_unicode
from tests.serving.conftest import live_server, raw_embed_request, raw_entities_request

SPECIALS = [
    "\ud800",
    "\udbff",
    "\udc00",
    "\udfff",
    "\x00",
    "\x07",
    "\x1b",
    "\x7f",
    "\x85",
    "\u202e",
    "\ufeff",
    "\uffff",
]
HOSTILE_TEXT = st.one_of(
    st.text(st.characters(categories=["Cs", "Cc"]), min_size=1, max_size=6),  # lone surrogates, control characters
    st.lists(st.one_of(st.sampled_from(SPECIALS), st.text(max_size=4)), min_size=1, max_size=5).map("".join),
)
BAD_UTF8 = [b"\xff", b"\xfe\xff", b"\xc3(", b"\xed\xa0\x80", b"\xe2\x82", b"\xc0\xaf", b"\xf4\x90\x80\x80"]


def _not_utf8(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


# the bytes around a bad sequence can complete it (b"\xe2\x82" + b"\x86" is "₆"): keep only what stays invalid
NOT_UTF8 = (
    st.tuples(st.binary(max_size=3), st.sampled_from(BAD_UTF8), st.binary(max_size=3)).map(b"".join).filter(_not_utf8)
)
FUZZ = settings(max_examples=10, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))

JOB = {
    "title": "Backend Engineer",
    "company": "Acme",
    "location": "Berlin",
    "remote": True,
    "seniority": "senior",
    "min_years": 5,
    "skills": ["python"],
    "description": "APIs.",
}
PROFILE = {
    "headline": "Engineer",
    "title": "Engineer",
    "location": "Lyon",
    "years_experience": 3,
    "skills": "go",
    "summary": "APIs.",
}
RESUME = {"resume_text": "Ten years of Java."}
ENTITIES = {"job": JOB, "profile": PROFILE, "resume": RESUME}
TEXT_FIELDS = {  # the string fields of each entity (skills, a string or a list, comes on its own)
    "job": ("title", "company", "location", "description"),
    "profile": ("headline", "title", "location", "summary"),
    "resume": ("resume_text",),
}


def _http_fields():
    """(id, path, body with the value in one text field, what an error about it must name)."""
    yield "openai-input", "/v1/embeddings", lambda v: {"input": v}, "input"
    yield "openai-input-item", "/v1/embeddings", lambda v: {"input": ["ok", v]}, "input"
    yield "openai-model", "/v1/embeddings", lambda v: {"input": "ok", "model": v}, "model"
    yield "openai-user", "/v1/embeddings", lambda v: {"input": "ok", "user": v}, "user"
    yield "tei-inputs", "/embed", lambda v: {"inputs": v}, "inputs"
    yield "tei-inputs-item", "/embed", lambda v: {"inputs": ["ok", v]}, "inputs"
    for kind, entity in ENTITIES.items():
        path = f"/v1/entities/{kind}/embed"
        for f in TEXT_FIELDS[kind]:
            yield f"{kind}-{f}", path, lambda v, e=entity, f=f: {"entity": {**e, f: v}}, f"entity.{f}"
    for kind in ("job", "profile"):
        path = f"/v1/entities/{kind}/embed"
        entity = ENTITIES[kind]
        yield f"{kind}-skills", path, lambda v, e=entity: {"entity": {**e, "skills": v}}, "entity.skills"
        yield f"{kind}-skills-item", path, lambda v, e=entity: {"entities": [{**e, "skills": ["a", v]}]}, "skills"


HTTP_FIELDS = list(_http_fields())


@pytest.fixture(scope="module")
def server(engine):
    """One live server, HTTP and gRPC, for the whole module -> (base URL, gRPC port)."""
    app = create_app(engine, ServeConfig(max_client_batch_size=16, max_input_chars=2000, grpc_port=0))
    with live_server(app) as url:
        yield url, app.state.grpc_port


@pytest.fixture(scope="module")
def http(server):
    with httpx.Client(base_url=server[0], timeout=30) as client:
        yield client


def _assert_error_body(r: httpx.Response) -> None:
    assert r.status_code < 500, f"{r.request.url.path} -> {r.status_code}: {r.text[:300]}"
    if r.status_code >= 400:
        assert r.json()["error"]["message"]  # every error body says what was wrong


# ---- schemathesis over the spec, with hostile text in every free-text string -----------------
def _hostile_strings(node):
    """The spec with ``format: jude-hostile-text`` on every string that has no enum, format or pattern."""
    if isinstance(node, dict):
        node = {k: _hostile_strings(v) for k, v in node.items()}
        if node.get("type") == "string" and not {"enum", "const", "format", "pattern"} & node.keys():
            node["format"] = "jude-hostile-text"
        return node
    if isinstance(node, list):
        return [_hostile_strings(v) for v in node]
    return node


schemathesis.openapi.format("jude-hostile-text", st.one_of(st.text(min_size=1), HOSTILE_TEXT))
# The spec needs no model: build it from an app that is never started.
schema = schemathesis.openapi.from_dict(_hostile_strings(copy.deepcopy(create_app(lambda: None).openapi())))


@schema.parametrize()
@settings(max_examples=8, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
def test_no_input_yields_a_server_error(case, server):
    response = case.call(base_url=server[0], timeout=30)
    assert response.status_code < 500, f"{case.method} {case.path} -> {response.status_code}: {response.text[:300]}"
    if response.status_code >= 400:
        assert "message" in response.json()["error"]  # every error body says what was wrong


# ---- HTTP: every text field on its own ------------------------------------------------------
@pytest.mark.parametrize("path,make,field", [f[1:] for f in HTTP_FIELDS], ids=[f[0] for f in HTTP_FIELDS])
@FUZZ
@given(text=HOSTILE_TEXT)
def test_hostile_text_in_every_http_field(http, path, make, field, text):
    r = http.post(path, content=json.dumps(make(text)).encode(), headers={"content-type": "application/json"})
    _assert_error_body(r)
    if invalid_unicode(json.loads(json.dumps(text))):  # what the server decodes (escaped surrogate pairs join)
        message = r.json()["error"]["message"]
        assert r.status_code == 422 and field in message and "surrogate" in message, message


@pytest.mark.parametrize("path,make,field", [f[1:] for f in HTTP_FIELDS], ids=[f[0] for f in HTTP_FIELDS])
@FUZZ
@given(raw=NOT_UTF8)
def test_bytes_that_are_not_utf8_in_every_http_field(http, path, make, field, raw):
    body = json.dumps(make("@@HOSTILE@@")).encode().replace(b"@@HOSTILE@@", raw)
    r = http.post(path, content=body, headers={"content-type": "application/json"})
    assert r.status_code == 422 and "UTF-8" in r.json()["error"]["message"], r.text[:300]


def test_the_connection_outlives_a_hostile_request(server):
    """A lone surrogate used to end in a 500 and a reset connection; now the next request is answered."""
    parts = urlsplit(server[0])
    body = b'{"input": "\\ud800"}'
    request = b"POST /v1/embeddings HTTP/1.1\r\nHost: jude\r\nContent-Type: application/json\r\n"
    with socket.create_connection((parts.hostname, parts.port), timeout=30) as s:
        s.sendall(request + b"Content-Length: %d\r\n\r\n" % len(body) + body)
        first = s.recv(65536)
        s.sendall(b"GET /health HTTP/1.1\r\nHost: jude\r\n\r\n")
        second = s.recv(65536)
    assert first.startswith(b"HTTP/1.1 422") and b"surrogate" in first
    assert second.startswith(b"HTTP/1.1 200")


# ---- gRPC: every text field, raw protobuf ---------------------------------------------------
def _grpc_fields():
    """(id, method, request bytes with the value in one text field)."""
    yield "embed-inputs", "Embed", lambda v: raw_embed_request(["ok", v])
    for kind, entity in ENTITIES.items():
        for f in TEXT_FIELDS[kind]:
            yield (
                f"{kind}-{f}",
                "EmbedEntities",
                lambda v, k=kind, e=entity, f=f: raw_entities_request(k, [{**e, f: v}]),
            )
    for kind in ("job", "profile"):
        entity = ENTITIES[kind]
        yield (
            f"{kind}-skills",
            "EmbedEntities",
            lambda v, k=kind, e=entity: raw_entities_request(k, [{**e, "skills": v}]),
        )
        yield (
            f"{kind}-skills-item",
            "EmbedEntities",
            lambda v, k=kind, e=entity: raw_entities_request(k, [{**e, "skills": ["a", v]}]),
        )


GRPC_FIELDS = list(_grpc_fields())


@pytest.fixture(scope="module")
def grpc_channel(server):
    with grpc.insecure_channel(f"127.0.0.1:{server[1]}") as channel:
        yield channel


def _grpc_code(channel, method: str, request: bytes) -> tuple[grpc.StatusCode, str]:
    call = channel.unary_unary(f"/jude.v1.Embedder/{method}", response_deserializer=pb.EmbedResponse.FromString)
    try:
        call(request, timeout=30)
    except grpc.RpcError as e:
        return e.code(), e.details()
    return grpc.StatusCode.OK, ""


@pytest.mark.parametrize("method,make", [f[1:] for f in GRPC_FIELDS], ids=[f[0] for f in GRPC_FIELDS])
@FUZZ
@given(value=st.one_of(HOSTILE_TEXT, NOT_UTF8))
def test_hostile_text_and_bytes_in_every_grpc_field(grpc_channel, method, make, value):
    code, details = _grpc_code(grpc_channel, method, make(value))
    raw = value if isinstance(value, bytes) else value.encode("utf-8", "surrogatepass")
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        assert code == grpc.StatusCode.INVALID_ARGUMENT and "UTF-8" in details, (code, details)
    else:
        assert code in (grpc.StatusCode.OK, grpc.StatusCode.INVALID_ARGUMENT), (code, details)


@pytest.mark.parametrize("kind,field", [("job", "min_years"), ("profile", "years_experience")])
@FUZZ
@given(number=st.floats(allow_nan=True, allow_infinity=True))
def test_any_number_in_a_grpc_entity(grpc_channel, kind, field, number):
    code, details = _grpc_code(
        grpc_channel, "EmbedEntities", raw_entities_request(kind, [{**ENTITIES[kind], field: number}])
    )
    whole = math.isfinite(number) and (field != "min_years" or number == int(number))
    if 0 <= number <= 80 and whole:  # min_years: a whole number of years (the entity contract)
        assert code == grpc.StatusCode.OK, details
    else:  # NaN, infinity, out of range, a fraction of a year asked for
        assert code == grpc.StatusCode.INVALID_ARGUMENT and field in details, (code, details)
