"""Fixtures for the serving tests: the real MiniLM engine (once per session) and the real app over httpx."""

from __future__ import annotations

import contextlib

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
    """The app under a real uvicorn server on 127.0.0.1 (a free port), in a thread -> base URL."""
    import threading
    import time

    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
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
