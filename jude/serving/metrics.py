"""Prometheus metrics of one server (its own registry, so several apps can live in one process)."""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

LATENCY_BUCKETS = (0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1.0, 2.5, 5.0, 10.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
TOKEN_BUCKETS = (16, 64, 256, 1024, 2048, 4096, 8192, 16384, 32768)


class ServerMetrics:
    """Request latency, batch sizes, queue depth and token counts."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.request_latency = Histogram(
            "jude_request_latency_seconds",
            "Request latency by endpoint.",
            ["endpoint", "method"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.requests = Counter(
            "jude_requests_total", "Requests by endpoint and status code.", ["endpoint", "method", "status"], registry=r
        )
        self.batch_size = Histogram(
            "jude_batch_size", "Texts per forward micro-batch.", buckets=BATCH_BUCKETS, registry=r
        )
        self.batch_tokens = Histogram(
            "jude_batch_tokens", "Tokens per forward micro-batch.", buckets=TOKEN_BUCKETS, registry=r
        )
        self.queue_depth = Gauge("jude_queue_depth", "Texts waiting for the model.", registry=r)
        self.queue_tokens = Gauge("jude_queue_tokens", "Tokens waiting for the model.", registry=r)
        self.throughput = Gauge(
            "jude_throughput_tokens_per_second",
            "Measured model throughput (recent batches), the denominator of the estimated queue wait.",
            registry=r,
        )
        self.rejected = Counter(
            "jude_overload_rejections_total",
            "Requests refused as overload (HTTP 429, gRPC RESOURCE_EXHAUSTED), by reason: queue_full, "
            "wait_over_budget.",
            ["reason"],
            registry=r,
        )
        self.tokens = Counter("jude_tokens_total", "Tokens embedded, by endpoint.", ["endpoint"], registry=r)
        self.inputs = Counter("jude_inputs_total", "Texts embedded, by endpoint.", ["endpoint"], registry=r)
        self.truncated = Counter("jude_truncated_inputs_total", "Texts cut to the token limit.", registry=r)
        self.model_ready = Gauge("jude_model_ready", "1 once the model is loaded.", registry=r)


class MetricsMiddleware:
    """Pure ASGI middleware: times every HTTP request and counts it by status.

    Pure ASGI (not BaseHTTPMiddleware) so it adds microseconds, not a task per request.
    The endpoint label is the route template (``/v1/entities/{entity_type}/embed``),
    never the raw path, so label cardinality stays bounded.
    """

    def __init__(self, app, metrics: ServerMetrics):
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        t0 = time.perf_counter()
        status = {"code": 500}

        async def send_wrapper(message):
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = scope.get("route")
            endpoint = getattr(route, "path", None) or "unmatched"
            method = scope.get("method", "")
            self.metrics.request_latency.labels(endpoint, method).observe(time.perf_counter() - t0)
            self.metrics.requests.labels(endpoint, method, str(status["code"])).inc()
