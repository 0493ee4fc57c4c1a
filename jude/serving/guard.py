"""What the HTTP server refuses before a request reaches the API, and before its body is parsed.

Two layers, both cheap:

- :func:`http_protocol` (per connection, inside uvicorn): a connection must send a
  complete request head (request line and headers) within ``header_timeout_s`` --
  a new connection from its first moment, a kept-alive one from the first byte of
  its next request -- in at most ``max_header_bytes``; otherwise it gets 408 or 431
  and is closed. uvicorn has no such deadline of its own: a client that sends half
  a header line would hold the connection for ever (idle kept-alive connections
  are closed by uvicorn's ``timeout_keep_alive``).
- :class:`RequestGuard` (per request, ASGI middleware), in this order: the API
  key (401, before a byte of the body is read); for a POST, the content type (415
  unless JSON); then the body, which must arrive within ``body_timeout_s`` (408)
  and be UTF-8 (422). The app then parses the body the guard has already read.

A refusal of a request whose body was not read closes the connection, so the rest
of that body is never read either.
"""

from __future__ import annotations

import asyncio
import hmac
import json
from collections.abc import Awaitable, Callable, Collection
from typing import Any

from starlette.routing import Match

from jude.serving import deadline
from jude.serving.schemas import error_body

_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


def _header(headers: list[tuple[bytes, bytes]], name: bytes) -> bytes | None:
    for key, value in headers:
        if key == name:
            return value
    return None


def _is_json(content_type: bytes) -> bool:
    media_type = content_type.split(b";", 1)[0].strip().lower()
    if media_type == b"application/json":
        return True
    return media_type.startswith(b"application/") and media_type.endswith(b"+json")


def _has_body(headers: list[tuple[bytes, bytes]]) -> bool:
    length = _header(headers, b"content-length")
    return _header(headers, b"transfer-encoding") is not None or (length is not None and length.strip() != b"0")


class RequestGuard:
    """Pure ASGI middleware: the API key, the content type and the body deadline, before the app reads anything.

    ``api_key``: the bearer token every path but ``open_paths`` needs (None: no key).
    ``router``: the app's router, only to label refused requests with their route in the metrics.
    """

    def __init__(
        self,
        app,
        *,
        api_key: str | None,
        open_paths: Collection[str],
        body_timeout_s: float,
        router: Any = None,
    ):
        self.app = app
        self.api_key = api_key.encode() if api_key else None
        self.open_paths = frozenset(open_paths)
        self.body_timeout_s = body_timeout_s
        self.router = router

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        with deadline.accepting():  # the request's wait counts from here (or its head's first byte)
            await self._guarded(scope, receive, send)

    async def _guarded(self, scope, receive, send) -> None:
        headers = scope["headers"]
        unread = _has_body(headers)
        if self.api_key is not None and scope["path"] not in self.open_paths:
            problem = self._key_problem(headers)
            if problem:
                return await self._refuse(scope, send, 401, problem, close=unread, www_authenticate=True)
        if scope["method"] in _BODY_METHODS:
            content_type = _header(headers, b"content-type")
            if content_type is not None and not _is_json(content_type):
                got = content_type.decode("latin-1")
                message = f"content-type must be application/json, got {got!r}"
                return await self._refuse(scope, send, 415, message, param="content-type", close=unread)
            try:
                body = await self._read_body(receive)
            except TimeoutError:
                message = f"the request body did not arrive within {self.body_timeout_s:g}s (body_timeout_s)"
                return await self._refuse(scope, send, 408, message, close=True)
            if body is None:  # the client went away; nobody reads this answer, the metrics do
                return await self._refuse(scope, send, 499, "the client closed the connection", close=True)
            try:
                body.decode("utf-8")
            except UnicodeDecodeError as e:
                where = f"byte 0x{body[e.start]:02x} at offset {e.start}"
                return await self._refuse(scope, send, 422, f"the body is not valid UTF-8 ({where}); send UTF-8 JSON")
            receive = _replay(body, receive)
        await self.app(scope, receive, send)

    def _key_problem(self, headers: list[tuple[bytes, bytes]]) -> str | None:
        scheme, _, token = (_header(headers, b"authorization") or b"").partition(b" ")
        if scheme.lower() != b"bearer" or not token.strip():
            return "missing bearer token: send 'Authorization: Bearer <key>'"
        if not hmac.compare_digest(token.strip(), self.api_key):
            return "wrong API key"
        return None

    async def _read_body(self, receive: Callable[[], Awaitable[dict]]) -> bytes | None:
        """The whole body within ``body_timeout_s`` (TimeoutError otherwise); None if the client disconnected."""

        async def read_all() -> bytes | None:
            chunks: list[bytes] = []
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return None
                chunks.append(message.get("body", b""))
                if not message.get("more_body", False):
                    return b"".join(chunks)

        try:
            return await asyncio.wait_for(read_all(), self.body_timeout_s)
        except asyncio.TimeoutError:  # an alias of TimeoutError only from Python 3.11
            raise TimeoutError from None

    async def _refuse(
        self,
        scope,
        send,
        status: int,
        message: str,
        param: str | None = None,
        close: bool = False,
        www_authenticate: bool = False,
    ) -> None:
        self._label_route(scope)
        body = json.dumps(error_body(status, message, param)).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        if www_authenticate:
            headers.append((b"www-authenticate", b"Bearer"))
        if close:
            headers.append((b"connection", b"close"))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    def _label_route(self, scope) -> None:
        """Set ``scope["route"]`` as the router would, so the metrics count the refusal under its endpoint."""
        for route in getattr(self.router, "routes", ()):
            match, child_scope = route.matches(scope)
            if match != Match.NONE:
                scope["route"] = child_scope.get("route", route)
                return


def _replay(body: bytes, receive: Callable[[], Awaitable[dict]]) -> Callable[[], Awaitable[dict]]:
    """A ``receive`` that hands the app the body already read, then passes on to the real one (disconnects)."""
    sent = False

    async def replay() -> dict:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


def http_protocol(header_timeout_s: float, max_header_bytes: int) -> type[asyncio.Protocol]:
    """uvicorn's HTTP protocol class (httptools, else h11) with a deadline and a size limit on every request head.

    Pass it as ``uvicorn.Config(http=...)``. It relies on what both of uvicorn's
    protocols share: ``self.cycle`` is replaced when a request head is complete,
    and ``self.cycle.response_complete`` marks the end of a request.
    """
    from uvicorn.protocols.http.auto import AutoHTTPProtocol

    class GuardedHTTPProtocol(AutoHTTPProtocol):  # type: ignore[misc, valid-type]
        _head_timer: asyncio.TimerHandle | None = None
        _head_cycle: Any = None
        _head_bytes = 0

        def connection_made(self, transport) -> None:
            super().connection_made(transport)
            self._arm_head_deadline()

        def data_received(self, data: bytes) -> None:
            if self._head_timer is None and (self.cycle is None or self.cycle.response_complete):
                self._arm_head_deadline()  # the first bytes of the next request on a kept-alive connection
            if self._head_timer is not None and self._head_bytes == 0:
                # the first bytes of a request head: the request's wait starts here (jude/serving/deadline.py);
                # uvicorn creates the request's task inside super().data_received, which copies this context
                deadline.head_started()
            super().data_received(data)
            if self._head_timer is None:
                return
            if self.cycle is not self._head_cycle:  # uvicorn parsed a complete head: the request has started
                self._disarm_head_deadline()
                return
            self._head_bytes += len(data)
            if self._head_bytes > max_header_bytes:
                message = f"the request head is over {max_header_bytes} bytes (max_header_bytes)"
                self._refuse(431, "Request Header Fields Too Large", message)

        def connection_lost(self, exc) -> None:
            self._disarm_head_deadline()
            super().connection_lost(exc)

        def _arm_head_deadline(self) -> None:
            self._head_cycle = self.cycle
            self._head_bytes = 0
            self._head_timer = self.loop.call_later(header_timeout_s, self._head_timed_out)

        def _disarm_head_deadline(self) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
                self._head_timer = None

        def _head_timed_out(self) -> None:
            self._head_timer = None
            if self.transport.is_closing():
                return
            if self._head_bytes == 0:  # a connection that never sent anything: nothing to answer
                self.transport.close()
                return
            self._refuse(408, "Request Timeout", f"the request head did not arrive within {header_timeout_s:g}s")

        def _refuse(self, status: int, reason: str, message: str) -> None:
            self._disarm_head_deadline()
            body = json.dumps(error_body(status, message)).encode()
            head = (
                f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\n"
                f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
            )
            self.transport.write(head.encode("ascii") + body)
            self.transport.close()

    return GuardedHTTPProtocol
