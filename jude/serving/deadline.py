"""When a request was accepted, so overload is shed by the time a request has really waited.

The batcher's own estimate (queued tokens / measured throughput) sees only the
queue in front of the model. Under a burst, requests also wait before they reach
it: in the event loop, behind other requests' parsing, validation and JSON. So
every request is stamped when the server starts reading it (the first byte of its
request head, in :func:`jude.serving.guard.http_protocol`; on entry to the ASGI
app when the server is not ``jude serve``'s uvicorn), and the batcher counts that
time in: it refuses a request whose wait so far plus the estimated wait exceeds
``serve.max_queue_wait_s``, and one still queued when its budget runs out.

The stamp travels in a :class:`contextvars.ContextVar`: uvicorn creates the
request's task inside the protocol callback that set it, and a task copies the
context it was created in, so the endpoint and the batcher's ``submit`` read the
same value without any function passing it along.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

# set by the HTTP protocol at the first byte of a request head, consumed by the request's middleware
_HEAD_AT: ContextVar[float | None] = ContextVar("jude_request_head_at", default=None)
# the current request's acceptance time, for as long as the app handles it
_ACCEPTED_AT: ContextVar[float | None] = ContextVar("jude_request_accepted_at", default=None)


def head_started() -> None:
    """The first byte of a request head arrived (called by the protocol, before uvicorn creates the task)."""
    _HEAD_AT.set(time.monotonic())


@contextmanager
def accepting() -> Iterator[float]:
    """Around one request in the app: its acceptance time is the head's first byte, or now without one.

    The head's stamp is consumed, and the acceptance time is unset on the way out, so a
    later request in the same context (an in-process test client) never inherits it.
    """
    at = _HEAD_AT.get()
    if at is not None:
        _HEAD_AT.set(None)
    token = _ACCEPTED_AT.set(time.monotonic() if at is None else at)
    try:
        yield _ACCEPTED_AT.get()
    finally:
        _ACCEPTED_AT.reset(token)


def accepted_at() -> float:
    """When the current request was accepted (``time.monotonic()``); now outside a request."""
    at = _ACCEPTED_AT.get()
    return time.monotonic() if at is None else at
