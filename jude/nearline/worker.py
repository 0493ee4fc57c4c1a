"""The nearline worker: read a batch, process it, repeat; with metrics, probes and a clean stop.

    python -m jude.nearline.worker --config configs/nearline.yaml     (= jude nearline run)

:func:`build_worker` turns a :class:`jude.config.NearlineConfig` into a :class:`Worker`:
the source (Redis Streams or Kafka; the consumer group is one per embedding version),
the model of each target (gRPC to ``jude serve``, or in-process), the online store and
the offline history. It makes each target's version *live* for every entity type (a
worker writes what it is configured to write) and, with ``activate_if_unset``, points
readers of an entity type that has no active version yet at the first target.

:meth:`Worker.run` loops until asked to stop:

- ``source.read(batch_size, block_ms)``, then ``processor.prepare`` (bad events are
  dead-lettered) and ``processor.commit`` (embed, write both stores, acknowledge).
- When the stores or the model fail (:func:`jude.nearline.processor.is_transient`), the
  same batch is tried again after an exponential backoff with jitter, the worker
  reporting not-ready meanwhile; nothing is acknowledged, so a worker stopped or killed
  then leaves the batch to be redelivered. A source that cannot be read is waited for
  the same way.
- Any other failure may be one event's: the batch is committed event by event and the
  events that fail are released with the error as the reason; the source redelivers
  them and dead-letters them after ``max_deliveries``.
- :class:`~jude.nearline.inference.ModelChanged` (the server now serves another model)
  stops the worker with exit status 3: one embedding version never mixes two models.

**Stop.** SIGINT or SIGTERM lets the batch in flight finish (written and acknowledged),
then the worker closes its source and exits 0; a second signal stops at once (the
batch is redelivered). Kubernetes sends SIGTERM and waits ``terminationGracePeriodSeconds``.

**HTTP** (``metrics_host:metrics_port``, a small stdlib server): ``/metrics``
(Prometheus), ``/ready`` (200 once started and while batches succeed, 503 while the
stores or the model are failing: a readiness probe takes the pod out of rotation, a
dashboard shows it), ``/health`` (200 while the loop turns; 503 when it has not for
``health_timeout_s``: the liveness probe restarts a stuck worker).

Metrics (``jude_nearline_*``): ``events_total``, ``skipped_unchanged_total``,
``embedded_total`` (inferences), ``written_total{store,status}``,
``dead_lettered_total``, ``retries_total{kind}`` (gRPC codes, ``batch``), ``acked_total``,
``lag_events`` (the group's backlog), ``event_to_online_seconds`` (histogram: event time
to online write), ``batch_seconds``, ``ready``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import signal
import socket
import sys
import threading
import time
import weakref
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from jude.config import NearlineConfig, NearlineTargetConfig, describe_validation_error
from jude.nearline.inference import GrpcInference, Inference, LocalInference, ModelChanged, RetryPolicy
from jude.nearline.processor import BatchResult, Item, Processor, Target, is_transient
from jude.nearline.sources import KafkaSource, RedisStreamSource, Source

log = logging.getLogger(__name__)

CONFIG_ENV = "JUDE_NEARLINE_CONFIG"  # JSON merged over the config file (how the Kubernetes Deployment sets it)
EXIT_MODEL_CHANGED = 3
_KAFKA_SHARED = ("security.", "sasl.", "ssl.", "client.", "socket.", "log_level", "debug")
LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 3600.0)


# ----------------------------------------------------------------------------- metrics


class NearlineMetrics:
    """The worker's Prometheus metrics, in a registry of their own (several workers can share a process)."""

    def __init__(self, registry: CollectorRegistry | None = None):
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.events = Counter(
            "jude_nearline_events_total", "Change events read and parsed.", ["entity_type"], registry=r
        )
        self.skipped_unchanged = Counter(
            "jude_nearline_skipped_unchanged_total",
            "Upserts whose templated text was already stored (no inference), per embedding version.",
            ["entity_type"],
            registry=r,
        )
        self.embedded = Counter(
            "jude_nearline_embedded_total",
            "Texts embedded (inferences, after the in-batch dedup).",
            ["entity_type"],
            registry=r,
        )
        self.written = Counter(
            "jude_nearline_written_total",
            "Writes by store (online, offline) and outcome (applied, refused: older than the stored one).",
            ["entity_type", "store", "status"],
            registry=r,
        )
        self.dead_lettered = Counter(
            "jude_nearline_dead_lettered_total", "Events given up on (bad, or poison).", ["entity_type"], registry=r
        )
        self.retries = Counter(
            "jude_nearline_retries_total",
            "Retries: of a gRPC call (by status code) or of a whole batch.",
            ["kind"],
            registry=r,
        )
        self.acked = Counter("jude_nearline_acked_total", "Events acknowledged after both writes.", registry=r)
        self.released = Counter(
            "jude_nearline_released_total", "Events handed back for redelivery after an error.", registry=r
        )
        self.lag = Gauge("jude_nearline_lag_events", "Events the consumer group has not acknowledged yet.", registry=r)
        self.latency = Histogram(
            "jude_nearline_event_to_online_seconds",
            "From an event's event_time to its online write.",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.batch_seconds = Histogram("jude_nearline_batch_seconds", "Time to process one batch.", registry=r)
        self.ready = Gauge("jude_nearline_ready", "1 while the worker reads and writes normally.", registry=r)

    def observe(self, result: BatchResult, seconds: float) -> None:
        for t, n in result.events.items():
            self.events.labels(t).inc(n)
        for t, n in result.unchanged.items():
            self.skipped_unchanged.labels(t).inc(n)
        for t, n in result.embedded.items():
            self.embedded.labels(t).inc(n)
        for (t, status), n in result.online.items():
            self.written.labels(t, "online", status).inc(n)
        for t, n in result.history_rows.items():
            self.written.labels(t, "offline", "applied").inc(n)
        self.acked.inc(result.acked)
        for ms in result.latencies_ms:
            self.latency.observe(max(ms, 0) / 1000)
        self.batch_seconds.observe(seconds)


def count_dead_letters(source: Source, metric: Counter) -> None:
    """Count every dead letter of ``source``: the processor's and the source's own (poison after N deliveries).

    The source dead-letters poison messages inside ``read``, so the count is taken on
    its ``dead_letter`` method (wrapped on this instance).
    """
    original = weakref.WeakMethod(source.dead_letter)  # no cycle through the instance: it is freed when dropped

    def dead_letter(message, reason: str) -> None:
        original()(message, reason)
        metric.labels(message.entity_type).inc()

    source.dead_letter = dead_letter  # type: ignore[method-assign]


# ----------------------------------------------------------------------------- probes


class ProbeServer:
    """``/metrics``, ``/ready`` and ``/health`` on a small threaded HTTP server (a daemon thread)."""

    def __init__(self, worker: Worker, host: str, port: int):
        metrics = worker.metrics

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _send(self, code: int, body: bytes, content_type: str = "application/json") -> None:
                self.send_response(code)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                path = self.path.split("?")[0]
                if path == "/metrics":
                    return self._send(200, generate_latest(metrics.registry), CONTENT_TYPE_LATEST)
                if path == "/ready":
                    ok, why = worker.ready, worker.status
                elif path == "/health":
                    ok, why = worker.alive(), worker.status
                else:
                    return self._send(404, json.dumps({"error": f"no such path {path}"}).encode())
                return self._send(200 if ok else 503, json.dumps({"ok": ok, "status": why}).encode())

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name="jude-nearline-http", daemon=True)

    def start(self) -> ProbeServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


# ----------------------------------------------------------------------------- the loop


class Worker:
    """The read-process loop (module docstring). ``run(stop)`` returns when ``stop`` is set."""

    def __init__(
        self,
        source: Source,
        processor: Processor,
        *,
        batch_size: int = 64,
        block_ms: int = 1000,
        retry_backoff_max_s: float = 30.0,
        health_timeout_s: float = 120.0,
        lag_interval_s: float = 5.0,
        metrics: NearlineMetrics | None = None,
    ):
        self.source = source
        self.processor = processor
        self.batch_size = batch_size
        self.block_ms = block_ms
        self.retry_backoff_max_s = retry_backoff_max_s
        self.health_timeout_s = health_timeout_s
        self.lag_interval_s = lag_interval_s
        self.metrics = metrics or NearlineMetrics()
        self.ready = False
        self.status = "starting"
        self._beat = time.monotonic()
        self._lag_at = 0.0
        self._rng = random.Random()
        count_dead_letters(source, self.metrics.dead_lettered)

    def alive(self) -> bool:
        """The loop has turned within ``health_timeout_s`` (a batch retrying its writes still turns it)."""
        return time.monotonic() - self._beat < self.health_timeout_s

    def _set_ready(self, ready: bool, status: str) -> None:
        self.ready, self.status = ready, status
        self.metrics.ready.set(1 if ready else 0)

    def run(self, stop: threading.Event) -> None:
        """Read and handle batches until ``stop`` is set; the source is closed on the way out."""
        self._set_ready(True, "running")
        failures = 0
        try:
            while not stop.is_set():
                self._beat = time.monotonic()
                self._measure_lag()
                try:
                    messages = self.source.read(self.batch_size, self.block_ms)
                    if failures and not self.ready:
                        self._set_ready(True, "running")
                    failures = 0
                    if messages:
                        self.handle(messages, stop)
                except Exception as e:  # the source itself failing (Redis or Kafka unreachable)
                    if not is_transient(e):
                        raise
                    wait = self._backoff(failures)
                    failures += 1
                    self._set_ready(False, f"the source is failing ({type(e).__name__}: {e})")
                    log.warning("reading failed (%s: %s); retry in %.1fs", type(e).__name__, e, wait)
                    stop.wait(wait)
        finally:
            self._set_ready(False, "stopped")
            self.source.close()

    def _backoff(self, attempt: int) -> float:
        """Exponential backoff with jitter: U(d/2, d), d = min(retry_backoff_max_s, 0.5 s * 2**attempt)."""
        d = min(self.retry_backoff_max_s, 0.5 * 2**attempt)
        return d * self._rng.uniform(0.5, 1.0)

    def _measure_lag(self) -> None:
        now = time.monotonic()
        if now - self._lag_at < self.lag_interval_s:
            return
        self._lag_at = now
        try:
            self.metrics.lag.set(self.source.backlog())
        except Exception as e:  # the lag is a gauge, not a reason to stop
            log.warning("could not measure the backlog: %s", e)

    def handle(self, messages, stop: threading.Event | None = None) -> BatchResult:
        """Process one batch: retry it on infrastructure errors, isolate the event that fails otherwise."""
        stop = stop or threading.Event()
        started = time.monotonic()
        result = BatchResult()
        items = self.processor.prepare(messages, result)
        attempt = 0
        while True:
            try:
                self.processor.commit(items, result)
                break
            except ModelChanged:
                raise
            except Exception as e:
                if not is_transient(e):
                    log.warning(
                        "batch of %d failed (%s: %s); committing event by event", len(items), type(e).__name__, e
                    )
                    self._one_by_one(items, result)
                    break
                wait = self._backoff(attempt)
                attempt += 1
                self.metrics.retries.labels("batch").inc()
                self._set_ready(False, f"retrying a batch ({type(e).__name__}: {e})")
                log.warning("batch failed (%s: %s); retry %d in %.1fs", type(e).__name__, e, attempt, wait)
                self._beat = time.monotonic()
                if stop.wait(wait):
                    log.info("stopping: the batch in flight is left to be redelivered")
                    return result
        if not self.ready:
            self._set_ready(True, "running")
        self.metrics.observe(result, time.monotonic() - started)
        return result

    def _one_by_one(self, items: list[Item], result: BatchResult) -> None:
        for item in items:
            if item.key in result.rejected:
                continue
            try:
                self.processor.commit([item], result)
            except ModelChanged:
                raise
            except Exception as e:
                reason = f"{type(e).__name__}: {e}"
                log.warning("releasing %s %s for redelivery: %s", item.message.entity_type, item.message.id, reason)
                self.source.release([item.message], reason)
                self.metrics.released.inc()


# ----------------------------------------------------------------------------- from a config


def load_config(path: str | os.PathLike | None = None, overrides: dict[str, Any] | None = None) -> NearlineConfig:
    """A :class:`NearlineConfig` from (lowest first) the defaults, a YAML file, ``$JUDE_NEARLINE_CONFIG``, overrides.

    The file holds a ``nearline:`` mapping (or is that mapping). Raises ``ValueError``
    naming the file and each bad field.
    """
    import yaml
    from pydantic import ValidationError

    values: dict[str, Any] = {}
    where = "defaults"
    if path:
        where = str(path)
        p = Path(path)
        if not p.is_file():
            raise ValueError(f"nearline config {p} does not exist")
        doc = yaml.safe_load(p.read_text()) or {}
        if not isinstance(doc, dict):
            raise ValueError(f"nearline config {p}: expected a mapping, got {type(doc).__name__}")
        values = dict(doc.get("nearline", doc) or {})
    env = os.environ.get(CONFIG_ENV)
    if env:
        try:
            values.update(json.loads(env))
        except json.JSONDecodeError as e:
            raise ValueError(f"${CONFIG_ENV} is not valid JSON: {e}") from e
        where += f" + ${CONFIG_ENV}"
    values.update({k: v for k, v in (overrides or {}).items() if v is not None})
    try:
        return NearlineConfig.model_validate(values)
    except ValidationError as e:
        raise ValueError(f"invalid nearline config ({where}):\n  " + "\n  ".join(describe_validation_error(e))) from e


def make_inference(
    target: NearlineTargetConfig, cfg: NearlineConfig, on_retry: Callable[[str], None] | None = None
) -> Inference:
    """The model of one target: a gRPC client of ``target.server``, or ``target.model_uri`` loaded in-process."""
    if target.server is not None:
        return GrpcInference(
            target.server,
            request_size=cfg.request_size,
            timeout_s=cfg.grpc_timeout_s,
            retry=RetryPolicy(cfg.grpc_max_attempts, cfg.grpc_backoff_s, cfg.grpc_backoff_max_s),
            api_key=os.environ.get(cfg.api_key_env) or None,
            on_retry=on_retry,
        )
    return LocalInference(target.model_uri, device=cfg.device)


def build_worker(
    cfg: NearlineConfig,
    *,
    inference_factory: Callable[[NearlineTargetConfig], Inference] | None = None,
    metrics: NearlineMetrics | None = None,
) -> Worker:
    """Source, models, stores and processor from ``cfg`` (module docstring).

    ``inference_factory(target)`` replaces the models (tests, benchmarks).
    """
    import redis

    from jude.stores.offline import DeltaHistory
    from jude.stores.online import RedisOnlineStore

    metrics = metrics or NearlineMetrics()
    targets = []
    for i, t in enumerate(cfg.targets):
        if inference_factory is not None:
            inference = inference_factory(t)
        else:
            inference = make_inference(t, cfg, on_retry=lambda code: metrics.retries.labels(code).inc())
        version = t.embedding_version or inference.info.default_embedding_version()
        if version is None:
            raise ValueError(
                f"nearline.targets[{i}].embedding_version: the model {inference.info.model!r} is not a registry "
                f"version, so no version can be derived from it; set embedding_version"
            )
        targets.append(Target(version, inference))
    versions = [t.embedding_version for t in targets]
    group = cfg.group or "+".join(versions)
    consumer = cfg.worker_name or f"{socket.gethostname()}-{os.getpid()}"

    online_client = redis.Redis.from_url(cfg.online_redis_url or cfg.redis_url, socket_connect_timeout=5)
    store = RedisOnlineStore(
        online_client, prefix=cfg.online_prefix, dtype=cfg.online_dtype, tombstone_ttl_s=cfg.tombstone_ttl_s
    )
    for entity_type in cfg.entity_types:
        for v in versions:
            store.add_live_version(entity_type, v)
        if cfg.activate_if_unset and store.active_version(entity_type) is None:
            store.set_active(entity_type, versions[0])
            log.info("no active %s version yet: readers now get %s", entity_type, versions[0])
    history = DeltaHistory(cfg.history_path, storage_options=cfg.history_storage_options or None)

    if cfg.source == "redis":
        source: Source = RedisStreamSource(
            redis.Redis.from_url(cfg.redis_url, socket_connect_timeout=5),
            group=group,
            consumer=consumer,
            entity_types=cfg.entity_types,
            prefix="jude:" if cfg.stream_prefix is None else cfg.stream_prefix,
            max_deliveries=cfg.max_deliveries,
            claim_idle_ms=cfg.claim_idle_ms,
            start_id="0" if cfg.start_from == "earliest" else "$",
        )
    else:
        source = KafkaSource(
            cfg.kafka_bootstrap,
            group=group,
            consumer=consumer,
            entity_types=cfg.entity_types,
            prefix="jude." if cfg.stream_prefix is None else cfg.stream_prefix,
            max_deliveries=cfg.max_deliveries,
            config={"auto.offset.reset": cfg.start_from, **cfg.kafka_config},
            # the dead-letter producer shares the connection settings, not the consumer's
            producer_config={k: v for k, v in cfg.kafka_config.items() if k.startswith(_KAFKA_SHARED)},
        )
    log.info("nearline worker %s in group %s: versions %s, source %s", consumer, group, versions, cfg.source)
    listeners = []
    if cfg.index_feed:
        from jude.config import RetrievalConfig
        from jude.retrieval.feed import IndexFeed

        # every applied job write goes to its version's index feed, which the servers' job indexes follow
        listeners.append(IndexFeed(online_client, prefix=cfg.online_prefix, maxlen=RetrievalConfig().feed_maxlen))
    else:
        log.info("index feed off (nearline.index_feed: false): job writes are not fed to /v1/recommend's index")
    processor = Processor(source, store, history, targets, listeners=listeners)
    return Worker(
        source,
        processor,
        batch_size=cfg.batch_size,
        block_ms=cfg.block_ms,
        retry_backoff_max_s=cfg.retry_backoff_max_s,
        health_timeout_s=cfg.health_timeout_s,
        lag_interval_s=cfg.lag_interval_s,
        metrics=metrics,
    )


def run(cfg: NearlineConfig, *, worker: Worker | None = None) -> int:
    """Serve the probes and run ``worker`` (built from ``cfg`` when None) until SIGINT/SIGTERM -> exit status."""
    stop = threading.Event()

    def on_signal(signum, frame):
        if stop.is_set():  # the second signal: stop now, the batch in flight is redelivered
            raise KeyboardInterrupt
        log.info("%s: finishing the batch in flight, then stopping", signal.Signals(signum).name)
        stop.set()

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, on_signal)
        signal.signal(signal.SIGTERM, on_signal)
    worker = worker or build_worker(cfg)
    probes = None
    if cfg.metrics_port is not None:
        probes = ProbeServer(worker, cfg.metrics_host, cfg.metrics_port).start()
        log.info("metrics and probes on http://%s:%d (/metrics, /ready, /health)", cfg.metrics_host, probes.port)
    try:
        worker.run(stop)
    except ModelChanged as e:
        log.error("%s", e)
        return EXIT_MODEL_CHANGED
    except KeyboardInterrupt:
        log.info("stopped at once; unacknowledged events will be redelivered")
        return 130
    finally:
        for target in worker.processor.targets:
            target.inference.close()
        if probes is not None:
            probes.stop()
    log.info("stopped cleanly")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m jude.nearline.worker", description="Run one nearline worker.")
    parser.add_argument("--config", default=None, help="a YAML with a nearline: section (configs/nearline.yaml)")
    parser.add_argument("--log-level", default="info")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    try:
        cfg = load_config(args.config)
    except ValueError as e:
        raise SystemExit(f"jude nearline: {e}") from e
    return run(cfg)


if __name__ == "__main__":
    sys.exit(main())
