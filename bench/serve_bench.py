"""Serving benchmark: jude's micro-batching server against a naive server, same model, same run.

    python bench/serve_bench.py [--requests 100 200 400] [--concurrency 1 8 32]

Both servers run as subprocesses on 127.0.0.1 with the packaged MiniLM:

- **jude**: ``jude serve`` (dynamic micro-batching, length-sorted batches).
- **naive**: a FastAPI app with one forward pass per request, no batching
  (``Embedder.encode([text])`` inside the handler; requests are served one at a time).

An async httpx load generator sends a fixed number of single-text
``POST /v1/embeddings`` requests at each concurrency level and reports
p50/p95/p99 latency and requests/s for both, and their ratios. It also times
the model's bare single-text forward pass (``Embedder.encode([text])`` in this
process, no server) and prints the jude c=1 p95 against it.

Targets on 2 CPU cores: c=32 throughput >= 3x naive; c=1 p95 <= 1.25x the bare forward.
The last line is ``throughput ratio c=32: <number>``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from pydantic import BaseModel

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROLES = ["Senior Python developer", "Registered nurse", "Data engineer", "Frontend engineer (React)",
         "Warehouse operations lead", "Account executive", "Site reliability engineer", "UX researcher"]
CITIES = ["Berlin", "Lyon", "Austin", "Toronto", "Bangalore", "Madrid"]
SKILLS = ["python", "kubernetes", "sql", "kafka", "react", "typescript", "patient care", "excel", "go", "terraform"]


def make_texts(n: int, seed: int = 0) -> list[str]:
    """Short member/job texts of varied length (about 10 to 60 tokens), like real queries."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        skills = ", ".join(rng.sample(SKILLS, rng.randint(1, 6)))
        text = f"{rng.choice(ROLES)} in {rng.choice(CITIES)}. Skills: {skills}."
        if rng.random() < 0.5:
            text += " Looking for a team that ships often and cares about quality." * rng.randint(1, 2)
        out.append(text)
    return out


# ---- the naive baseline server ---------------------------------------------------------
class NaiveRequest(BaseModel):
    input: str | list[str]
    model: str | None = None


def naive_app():
    """One forward pass per request, no batching, no queue: what a first FastAPI wrapper looks like."""
    from fastapi import FastAPI

    from jude.modeling.embedder import Embedder

    model = Embedder.load("minilm")
    app = FastAPI()

    @app.get("/ready")
    async def ready():
        return {"status": "ready"}

    @app.post("/v1/embeddings")
    async def embed(req: NaiveRequest):
        texts = [req.input] if isinstance(req.input, str) else req.input
        emb = model.encode(texts)
        return {"object": "list", "data": [{"object": "embedding", "index": i, "embedding": e.tolist()}
                                           for i, e in enumerate(emb)], "model": "minilm"}

    return app


def run_naive_server(port: int) -> None:
    import uvicorn

    uvicorn.run(naive_app(), host="127.0.0.1", port=port, log_level="warning")


# ---- harness ---------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(kind: str) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    if kind == "jude":
        cmd = [sys.executable, "-m", "jude.cli", "serve", "--model", "minilm", "--port", str(port),
               "--log-level", "warning"]
    else:
        cmd = [sys.executable, str(Path(__file__).resolve()), "--naive-server", str(port)]
    proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    import httpx

    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{kind} server exited: {proc.stderr.read().decode()[-2000:]}")
        try:
            if httpx.get(f"{url}/ready", timeout=1).status_code == 200:
                return proc, url
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    proc.kill()
    raise RuntimeError(f"{kind} server not ready after 300 s")


async def load(url: str, texts: list[str], concurrency: int, bare_model=None) -> tuple[np.ndarray, float, np.ndarray]:
    """Send every text once with ``concurrency`` workers -> (latencies s, wall s, paired bare forwards s).

    At concurrency 1 with ``bare_model``, each request is preceded by the bare
    forward of the same text in this process, so both are measured under the same
    (shared-machine) load; the wall time then excludes the bare forwards.
    """
    import httpx

    queue = list(enumerate(texts))
    latencies = np.zeros(len(texts))
    bare = np.zeros(len(texts)) if bare_model is not None and concurrency == 1 else np.zeros(0)
    spent_on_bare = 0.0
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=900) as client:
        async def worker():
            nonlocal spent_on_bare
            while queue:
                i, text = queue.pop()
                if len(bare):
                    t0 = time.perf_counter()
                    bare_model.encode([text])
                    bare[i] = time.perf_counter() - t0
                    time.sleep(0.005)  # let this process's OpenMP threads stop spinning before the request
                    spent_on_bare += time.perf_counter() - t0
                t0 = time.perf_counter()
                r = await client.post("/v1/embeddings", json={"input": text})
                latencies[i] = time.perf_counter() - t0
                if r.status_code != 200:
                    raise RuntimeError(f"{url} answered {r.status_code}: {r.text[:200]}")

        # warm-up (connections, first batches), not measured
        await asyncio.gather(*[client.post("/v1/embeddings", json={"input": t}) for t in texts[:concurrency]])
        t0 = time.perf_counter()
        await asyncio.gather(*[worker() for _ in range(concurrency)])
        wall = time.perf_counter() - t0 - spent_on_bare
    return latencies, wall, bare


def bare_model():
    """The model alone, in this process: Embedder.encode([text]) = tokenise + forward + pool + normalise."""
    from jude.modeling.embedder import Embedder

    model = Embedder.load("minilm")
    for t in make_texts(10, seed=99):
        model.encode([t])
    return model


def pct(a: np.ndarray, q: float) -> float:
    return float(np.percentile(a, q) * 1000)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32])
    ap.add_argument("--requests", type=int, nargs="+", default=[100, 200, 400],
                    help="requests per concurrency level (same order as --concurrency)")
    ap.add_argument("--naive-server", type=int, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.naive_server:
        run_naive_server(args.naive_server)
        return 0
    if len(args.requests) != len(args.concurrency):
        ap.error("--requests needs one number per --concurrency level")

    print(f"machine: {os.cpu_count()} CPUs, load average before: {', '.join(f'{x:.2f}' for x in os.getloadavg())}",
          flush=True)
    model = bare_model()

    results: dict[tuple[str, int], dict] = {}
    for kind in ("jude", "naive"):
        proc, url = start(kind)
        try:
            for c, n in zip(args.concurrency, args.requests):
                lat, wall, bare = asyncio.run(load(url, make_texts(n, seed=c), c, model))
                results[(kind, c)] = r = {"p50": pct(lat, 50), "p95": pct(lat, 95), "p99": pct(lat, 99),
                                          "rps": n / wall, "n": n, "bare": bare}
                print(f"  measured {kind} c={c}: p95 {r['p95']:.1f} ms, {r['rps']:.1f} req/s "
                      f"(load average {os.getloadavg()[0]:.2f})", flush=True)
        finally:
            proc.terminate()
            proc.wait(30)

    print(f"\n{'server':<7}{'c':>4}{'requests':>10}{'p50 ms':>10}{'p95 ms':>10}{'p99 ms':>10}{'req/s':>10}")
    for c in args.concurrency:
        for kind in ("jude", "naive"):
            r = results[(kind, c)]
            print(f"{kind:<7}{c:>4}{r['n']:>10}{r['p50']:>10.2f}{r['p95']:>10.2f}{r['p99']:>10.2f}{r['rps']:>10.1f}")
    print("\nratios (jude / naive):")
    for c in args.concurrency:
        j, b = results[("jude", c)], results[("naive", c)]
        print(f"  c={c:<3} throughput x{j['rps'] / b['rps']:.2f}   p95 x{j['p95'] / b['p95']:.2f}")
    if 1 in args.concurrency:
        bare = results[("jude", 1)]["bare"]
        print(f"bare forward, same text just before each jude c=1 request: p50 {pct(bare, 50):.2f} ms  "
              f"p95 {pct(bare, 95):.2f} ms  p99 {pct(bare, 99):.2f} ms")
        ratio = results[("jude", 1)]["p95"] / pct(bare, 95)
        print(f"c=1 p95 ratio to bare forward: {ratio:.2f} (target <= 1.25)")
    print(f"load average after: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    if 32 in args.concurrency:
        print(f"throughput ratio c=32: {results[('jude', 32)]['rps'] / results[('naive', 32)]['rps']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
