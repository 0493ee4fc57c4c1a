"""Fixtures for the serving tests: the real MiniLM engine (once per session) and the real app over httpx."""

from __future__ import annotations

import contextlib
import struct

import httpx
import pytest

from jude.config import ServeConfig


@pytest.fixture(scope="session")
def engine(minilm):
    """The packaged MiniLM behind the serving engine (shares the session's loaded weights)."""
    from jude.serving.engine import InferenceEngine

    return InferenceEngine.from_embedder(minilm, model_uri="minilm", model_name="all-MiniLM-L6-v2")


@pytest.fixture()
def anyio_backend():
    return "asyncio"


@contextlib.asynccontextmanager
async def app_client(engine, **cfg):
    """The real FastAPI app (lifespan entered) behind an httpx client on an in-process transport."""
    from jude.serving.app import create_app

    app = create_app(engine, ServeConfig(**cfg))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://jude.test", timeout=60) as client:
            client.app = app
            yield client


@contextlib.contextmanager
def live_server(app):
    """The app under a real uvicorn server on 127.0.0.1 (a free port), in a thread -> base URL.

    The server is configured as ``jude serve`` configures it (``uvicorn_config``), with the app's ServeConfig.
    """
    import threading
    import time

    import uvicorn

    from jude.serving.app import uvicorn_config

    cfg = app.state.cfg.model_copy(update={"host": "127.0.0.1", "port": 0})
    server = uvicorn.Server(uvicorn_config(app, cfg, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


# ---- raw protobuf: requests a well-behaved client cannot build (strings that are not UTF-8) ----
def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field (strings, bytes, messages)."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _value(v) -> bytes:
    """A google.protobuf.Value: bytes -> string_value as they are, str -> UTF-8 (surrogates pass through)."""
    if isinstance(v, bool):
        return _varint(4 << 3) + _varint(int(v))  # bool_value
    if isinstance(v, float | int):
        return _varint(2 << 3 | 1) + struct.pack("<d", float(v))  # number_value (fixed64)
    if isinstance(v, list):
        return _field(6, b"".join(_field(1, _value(x)) for x in v))  # list_value
    raw = v if isinstance(v, bytes) else v.encode("utf-8", "surrogatepass")
    return _field(3, raw)  # string_value


def raw_embed_request(inputs: list[bytes | str]) -> bytes:
    """A serialised jude.v1.EmbedRequest whose inputs are these bytes, UTF-8 or not."""
    return b"".join(_field(1, t if isinstance(t, bytes) else t.encode("utf-8", "surrogatepass")) for t in inputs)


def raw_entities_request(entity_type: str, entities: list[dict]) -> bytes:
    """A serialised jude.v1.EmbedEntitiesRequest; entity values may be bytes that are not UTF-8."""

    def struct_bytes(entity: dict) -> bytes:  # google.protobuf.Struct: map<string, Value> fields = 1
        return b"".join(_field(1, _field(1, k.encode()) + _field(2, _value(v))) for k, v in entity.items())

    return _field(1, entity_type.encode()) + b"".join(_field(2, struct_bytes(e)) for e in entities)
