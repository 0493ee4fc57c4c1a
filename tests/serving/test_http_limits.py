"""Slow and oversized clients on a real socket, under uvicorn configured as `jude serve` configures it."""

from __future__ import annotations

import socket
import time
from urllib.parse import urlsplit

import httpx
import pytest

from jude.config import ServeConfig
from jude.serving.app import create_app
from tests.serving.conftest import live_server

TIMEOUT_S = 0.5
# What the server may take beyond its timeout before the test calls it hung (a shared 2-core machine).
SLACK_S = 2.5


@pytest.fixture(scope="module")
def server(engine):
    cfg = ServeConfig(
        header_timeout_s=TIMEOUT_S, body_timeout_s=TIMEOUT_S, keep_alive_timeout_s=TIMEOUT_S, max_header_bytes=4096
    )
    with live_server(create_app(engine, cfg)) as url:
        yield url


def _connect(url: str) -> socket.socket:
    parts = urlsplit(url)
    return socket.create_connection((parts.hostname, parts.port), timeout=TIMEOUT_S + SLACK_S)


def _until_closed(sock: socket.socket) -> tuple[bytes, float]:
    """Everything the server sends until it closes the connection, and how long that took."""
    t0 = time.monotonic()
    data = b""
    while chunk := sock.recv(65536):  # socket.timeout (the test fails) if the server holds the connection
        data += chunk
    return data, time.monotonic() - t0


def test_half_a_request_head_is_cut_off_with_408(server):
    with _connect(server) as s:
        s.sendall(b"POST /v1/embeddings HTTP/1.1\r\nHost: jude\r\nContent-Ty")
        data, waited = _until_closed(s)
    assert data.startswith(b"HTTP/1.1 408") and b"did not arrive" in data
    assert waited < TIMEOUT_S + SLACK_S


def test_a_connection_that_sends_nothing_is_closed(server):
    with _connect(server) as s:
        data, waited = _until_closed(s)
    assert data == b"" and waited < TIMEOUT_S + SLACK_S


def test_a_body_that_trickles_in_is_cut_off_with_408(server):
    head = b"POST /embed HTTP/1.1\r\nHost: jude\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n"
    with _connect(server) as s:
        s.sendall(head + b'{"inputs": ')
        data, waited = _until_closed(s)
    assert data.startswith(b"HTTP/1.1 408") and b"body_timeout_s" in data
    assert waited < TIMEOUT_S + SLACK_S


def test_an_oversized_request_head_is_431(server):
    with _connect(server) as s:
        s.sendall(b"GET /health HTTP/1.1\r\nHost: jude\r\nX-Padding: " + b"a" * 8192)
        data, _ = _until_closed(s)
    assert data.startswith(b"HTTP/1.1 431") and b"max_header_bytes" in data


def test_the_next_request_on_a_kept_alive_connection_gets_the_same_deadline(server):
    with _connect(server) as s:
        s.sendall(b"GET /health HTTP/1.1\r\nHost: jude\r\n\r\n")
        first = s.recv(65536)
        s.sendall(b"GET /health HTTP/1.1\r\nHost: ju")
        data, waited = _until_closed(s)
    assert first.startswith(b"HTTP/1.1 200")
    assert data.startswith(b"HTTP/1.1 408") and waited < TIMEOUT_S + SLACK_S


def test_ordinary_requests_are_unaffected(server):
    with httpx.Client(base_url=server, timeout=30) as client:
        health = client.get("/health")
        embedded = client.post("/v1/embeddings", json={"input": ["hello", "world"]})
        again = client.get("/ready")
    assert health.status_code == 200 and embedded.status_code == 200 and again.status_code == 200
