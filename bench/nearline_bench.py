"""The nearline updater on the synthetic change stream: inferences saved by change detection, throughput, latency.

    .venv/bin/python bench/nearline_bench.py                       # 24,000 events, MiniLM in-process
    .venv/bin/python bench/nearline_bench.py --events 2000 --model hash   # a quick check of the harness
    .venv/bin/python bench/nearline_bench.py --server 127.0.0.1:50051     # through a running `jude serve --grpc-port`
    .venv/bin/python bench/nearline_bench.py --out bench/results/nearline/run.json   # + the results as JSON

One run, Redis Streams as the source (this machine's Redis), the real processor,
online store and Delta history (under a temporary directory and a key prefix of the
run's own, deleted at the end):

1. **Naive updater** (the baseline): every upsert is embedded; no stored hash is
   compared, no text shared within a batch. All events are published first, then
   drained: inferences and events per second.
2. **Change detection** (``jude.nearline.processor``): the same events, the same way.
   ``inference reduction`` = naive inferences / change-detection inferences.
3. **Latency**: the change-detection updater consuming while the stream is published
   at a steady rate (``--rate``; default half of step 2's throughput, so the worker
   keeps up), each event stamped with the wall clock when published. Latency = the
   online write's time minus the event time: p50 / p95 / p99.

The events of steps 1 and 2 keep the stream's own event times (weeks of simulated
history), so only step 3 measures latency. The last line is ``inference reduction: <n>``. ``--out FILE``
writes every row and summary line as JSON (``bench/results_io.py``).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from pathlib import Path
from uuid import uuid4

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from results_io import BenchResults  # noqa: E402

from jude.data.changes import stream_summary  # noqa: E402
from jude.nearline.inference import GrpcInference, HashInference, Inference, LocalInference  # noqa: E402
from jude.nearline.processor import BatchResult, Processor, Target  # noqa: E402
from jude.nearline.publish import synthetic_events  # noqa: E402
from jude.nearline.sources import RedisStreamPublisher, RedisStreamSource, publish_events  # noqa: E402
from jude.nearline.worker import Worker  # noqa: E402
from jude.stores.offline import DeltaHistory  # noqa: E402
from jude.stores.online import RedisOnlineStore  # noqa: E402

ENTITY_TYPES = ("job", "profile", "resume")


class Counting(Inference):
    """Counts the texts the model is really asked to embed."""

    def __init__(self, inner: Inference):
        self.inner = inner
        self.info = inner.info
        self.texts = 0

    def embed(self, entity_type, entities):
        self.texts += len(entities)
        return self.inner.embed(entity_type, entities)

    def embed_texts(self, entity_type, texts):
        self.texts += len(texts)
        return self.inner.embed_texts(entity_type, texts)


def load_model(args) -> Inference:
    if args.server:
        return GrpcInference(args.server)
    if args.model == "hash":
        return HashInference(dimension=384)
    return LocalInference(args.model)


def run_updater(client, model: Inference, events, args, *, naive: bool, rate: float | None = None) -> dict:
    """Publish ``events`` (all at once, or at ``rate`` per second stamped with the wall clock), drain them."""
    prefix = f"jude-bench:{uuid4().hex}:"
    version = "bench-1"
    counting = Counting(model)
    store = RedisOnlineStore(client, prefix=prefix)
    for t in ENTITY_TYPES:
        store.set_active(t, version)
    source = RedisStreamSource(client, group=version, consumer="bench", prefix=prefix)
    with tempfile.TemporaryDirectory() as tmp:
        history = DeltaHistory(f"{tmp}/history")
        processor = Processor(
            source, store, history, [Target(version, counting)], change_detection=not naive, dedupe=not naive
        )
        worker = Worker(source, processor)
        worker._set_ready(True, "bench")
        publisher = RedisStreamPublisher(client, prefix=prefix, pipeline_size=50)
        published = threading.Event()
        if rate is None:
            publish_events(events, publisher)
            published.set()
        else:
            threading.Thread(target=_paced, args=(events, publisher, rate, published), daemon=True).start()
        latencies: list[int] = []
        n = 0
        start = time.perf_counter()
        try:
            while True:
                messages = source.read(args.batch_size, block_ms=100)
                if messages:
                    result: BatchResult = worker.handle(messages)
                    n += len(messages)
                    latencies += result.latencies_ms
                elif published.is_set() and source.backlog() == 0:
                    break
            seconds = time.perf_counter() - start
        finally:
            keys = list(client.scan_iter(match=prefix + "*", count=1000))
            for i in range(0, len(keys), 1000):
                client.delete(*keys[i : i + 1000])
    return {"events": n, "inferences": counting.texts, "seconds": seconds, "latencies_ms": latencies}


def _paced(events, publisher, rate: float, done: threading.Event) -> None:
    """Publish at ``rate`` events/s, each stamped now (strictly increasing per entity: one event per millisecond)."""
    last: dict[tuple[str, str], int] = {}
    start = time.perf_counter()
    for i, e in enumerate(events):
        wait = start + i / rate - time.perf_counter()
        if wait > 0:
            time.sleep(wait)
        key = (e["entity_type"], e["entity_id"])
        ms = max(int(time.time() * 1000), last.get(key, 0) + 1)
        last[key] = ms
        stamped = {**e, "event_time": np.datetime_as_string(np.datetime64(ms, "ms"), unit="ms") + "Z"}
        publish_events([stamped], _NoFlush(publisher))
        if i % 10 == 9:
            publisher.flush()
    publisher.flush()
    done.set()


class _NoFlush:
    """``publish_events`` flushes after every call; pacing flushes every few events instead."""

    def __init__(self, inner):
        self.inner = inner

    def publish(self, entity_type, key, payload):
        self.inner.publish(entity_type, key, payload)

    def flush(self):
        pass


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--events", type=int, default=24_000, help="events in the synthetic stream (the issue asks >= 20,000)"
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--model", default="minilm", help="a model URI for in-process inference, or 'hash' (no model)")
    p.add_argument("--server", default=None, help="host:port of `jude serve --grpc-port` (instead of --model)")
    p.add_argument("--batch-size", type=int, default=64, dest="batch_size")
    p.add_argument("--redis-url", default="redis://127.0.0.1:6379/0", dest="redis_url")
    p.add_argument("--rate", type=float, default=None, help="latency step: events/s (default: half the throughput)")
    p.add_argument("--latency-events", type=int, default=3000, dest="latency_events", help="events in the latency step")
    p.add_argument("--out", default=None, metavar="FILE", help="also write the results as JSON (bench/results_io.py)")
    args = p.parse_args()

    import redis

    results = BenchResults("nearline_bench", args)
    print(f"machine: {os.cpu_count()} CPUs, load average before: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    if args.events < 20_000:
        print(f"note: {args.events} events (the benchmark's figures are for >= 20,000)")
    client = redis.Redis.from_url(args.redis_url, socket_connect_timeout=5)
    client.ping()
    events, stream = synthetic_events(n_events=args.events, seed=args.seed)
    summary = stream_summary(stream)
    print(
        f"stream: {summary['events']} events, {summary['upserts']} upserts ({summary['text_changing_upserts']} change "
        f"the templated text), {summary['deletes']} deletes; kinds: {summary['kinds']}"
    )
    model = load_model(args)
    model.embed("resume", [{"resume_text": "warm-up"}])
    print(f"model: {model.info.model} ({type(model).__name__}, dimension {model.info.dimension})")
    results.extra.update(stream=summary, model=model.info.model)

    naive = run_updater(client, model, events, args, naive=True)
    detect = run_updater(client, model, events, args, naive=False)
    rate = args.rate or max(1.0, 0.5 * detect["events"] / detect["seconds"])
    paced = run_updater(client, model, events[: args.latency_events], args, naive=False, rate=rate)

    print()
    print(f"{'updater':<22}{'events':>8}{'inferences':>12}{'seconds':>10}{'events/s':>10}")
    for name, r in (("naive (embed all)", naive), ("change detection", detect)):
        print(
            f"{name:<22}{r['events']:>8}{r['inferences']:>12}{r['seconds']:>10.1f}{r['events'] / r['seconds']:>10.0f}"
        )
        results.row(
            step=name,
            events=r["events"],
            inferences=r["inferences"],
            seconds=r["seconds"],
            events_per_s=r["events"] / r["seconds"],
        )
    lat = np.array(paced["latencies_ms"], dtype=float)
    p50, p95, p99 = np.percentile(lat, [50, 95, 99]) if lat.size else (float("nan"),) * 3
    results.row(
        step="latency (change detection, paced)",
        events=paced["events"],
        inferences=paced["inferences"],
        seconds=paced["seconds"],
        rate_events_per_s=rate,
        latency_p50_ms=p50,
        latency_p95_ms=p95,
        latency_p99_ms=p99,
    )
    results.say(
        f"latency at {rate:.0f} events/s ({paced['events']} events, change detection), event time -> online write: "
        f"p50 {p50:.0f} ms, p95 {p95:.0f} ms, p99 {p99:.0f} ms",
        latency_p50_ms=p50,
        latency_p95_ms=p95,
        latency_p99_ms=p99,
    )
    results.say(
        f"stream's own upserts / text-changing upserts: {summary['inference_reduction']:.2f}",
        stream_inference_reduction=summary["inference_reduction"],
    )
    print(f"load average after: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    reduction = naive["inferences"] / max(detect["inferences"], 1)
    results.say(f"inference reduction: {reduction:.2f}", inference_reduction=reduction)
    results.write(args.out)


if __name__ == "__main__":
    main()
