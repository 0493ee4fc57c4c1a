"""Serving benchmark: jude against the machine's ceiling and against Infinity, same texts, one run.

    python bench/serve_bench.py                 # everything (about 10 minutes on 2 cores)
    python bench/serve_bench.py --quick         # fewer requests: a smoke check of the harness
    python bench/serve_bench.py --servers jude-torch jude-onnx --allow-load
    python bench/serve_bench.py --runs 3 --out bench/results/serving   # three runs: each ratio's median and range

What is measured, with the packaged all-MiniLM-L6-v2, on one pool of texts
(``make_texts``, 10 to 60 tokens):

- **ceiling**: the offline limit of this machine, ``SentenceTransformer.encode``
  of the texts in one process (sorted by length inside, batch 32), run in a
  subprocess with the default environment, as a new user would run it. Also
  jude's own engine offline (micro-batches of 32, no HTTP) for each backend.
- **servers**, each a subprocess on 127.0.0.1 driven by the same load generator:
  ``jude-torch`` (``jude serve``, the default backend), ``jude-onnx``
  (``jude serve --backend onnx``), ``infinity`` (``infinity_emb v2`` with its
  torch engine on the CPU, installed on first use into ``.jude/bench/infinity-venv``
  with ``infinity-emb[server,torch]`` and ``torch==2.13.0``; skipped with the
  reason if it cannot be installed) and ``naive`` (a FastAPI app with one forward
  per request, no batching).
- **levels**: single-text requests at concurrency 1, 8, 32, 64, and 32-text
  requests at concurrency 1 and 4.

The load generator is bounded (a fixed number of requests per level, a timeout
per request) and gives each concurrent worker its own httpx client with one
connection: one shared client's connection pool costs time in proportion to its
connections on every request, which at concurrency 64 made the generator itself
the bottleneck (on 2 cores it took the CPU the server needed).

At concurrency 1, each jude request is preceded by the bare forward of the same
text in this process with the same backend (tokenise, forward, pool: no HTTP),
so both are measured under the same load; ``c=1 p95 vs bare forward`` compares
their p95.

The load average is printed before and after. Ratios are only printed when the
1-minute load average at the start is at most ``--max-load`` (1.0, for a 2-core
machine), unless ``--allow-load``: a shared machine makes them meaningless. The
run ends with the lines

    ceiling ratio c=32: <jude texts/s at c=32 / ceiling texts/s>
    infinity ratio c=32: <jude req/s / Infinity req/s at c=32>
    infinity ratio c=64: <same at c=64>
    c=1 p95 vs bare forward: <jude c=1 p95 / bare forward p95>

for jude's default backend (``ServeConfig().backend``); the table above them has both backends.
Targets on 2 CPU cores: ceiling ratio >= 0.85; Infinity ratio >= 1.0 at every
level (>= 1.3 at c=32); c=1 p95 <= 1.1x the bare forward.
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
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from pydantic import BaseModel

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from jude.env import apply_offline_env  # noqa: E402

# This process runs the bare forwards: its OpenMP threads sleep between them, as `jude serve`'s do, so they do
# not spin on the cores the server under test needs. (Set before torch is imported.)
apply_offline_env({"OMP_WAIT_POLICY": "PASSIVE"})

INFINITY_VENV = ROOT / ".jude" / "bench" / "infinity-venv"
INFINITY_PACKAGES = ["torch==2.13.0", "infinity-emb[server,torch]"]
SERVERS = ("jude-torch", "jude-onnx", "infinity", "naive")

ROLES = [
    "Senior Python developer",
    "Registered nurse",
    "Data engineer",
    "Frontend engineer (React)",
    "Warehouse operations lead",
    "Account executive",
    "Site reliability engineer",
    "UX researcher",
]
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


@dataclass(frozen=True)
class Level:
    """One load level: ``concurrency`` workers sending ``requests`` requests of ``texts`` texts each."""

    concurrency: int
    texts: int
    requests: int

    @property
    def name(self) -> str:
        return f"c={self.concurrency}" + ("" if self.texts == 1 else f" x{self.texts}")


def levels(quick: bool) -> list[Level]:
    if quick:
        return [
            Level(1, 1, 40),
            Level(8, 1, 80),
            Level(32, 1, 160),
            Level(64, 1, 192),
            Level(1, 32, 6),
            Level(4, 32, 12),
        ]
    return [
        Level(1, 1, 200),
        Level(8, 1, 400),
        Level(32, 1, 800),
        Level(64, 1, 1024),
        Level(1, 32, 30),
        Level(4, 32, 60),
    ]


@dataclass
class Result:
    level: Level
    wall: float
    latencies: np.ndarray  # seconds, one per successful request
    errors: int = 0
    error_sample: str = ""
    bare: np.ndarray = field(default_factory=lambda: np.zeros(0))  # paired bare forwards (seconds), c=1 only
    batch_mean: float | None = None  # jude: texts per micro-batch during the level

    @property
    def rps(self) -> float:
        return len(self.latencies) / self.wall

    @property
    def texts_per_s(self) -> float:
        return self.rps * self.level.texts

    def pct(self, q: float) -> float:
        return float(np.percentile(self.latencies, q) * 1000) if len(self.latencies) else float("nan")


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
        return {
            "object": "list",
            "data": [{"object": "embedding", "index": i, "embedding": e.tolist()} for i, e in enumerate(emb)],
            "model": "minilm",
        }

    return app


def run_naive_server(port: int) -> None:
    import uvicorn

    uvicorn.run(naive_app(), host="127.0.0.1", port=port, log_level="warning")


# ---- the ceiling -----------------------------------------------------------------------
def run_ceiling(n: int, repeats: int) -> None:
    """(subprocess) Offline SentenceTransformer.encode, batch 32, best of ``repeats``: prints one JSON line."""
    from sentence_transformers import SentenceTransformer

    from jude.modeling.model_dir import packaged_minilm_path

    model = SentenceTransformer(str(packaged_minilm_path()), device="cpu")
    texts = make_texts(n)
    model.encode(texts[:64], batch_size=32)
    best = 0.0
    for _ in range(repeats):
        t0 = time.perf_counter()
        model.encode(texts, batch_size=32)
        best = max(best, n / (time.perf_counter() - t0))
    print(json.dumps({"texts_per_s": best}))


def measure_ceiling(n: int, repeats: int) -> float:
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}  # the library defaults
    out = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--ceiling-only", str(n), str(repeats)],
        env=dict(env, PYTHONPATH=str(ROOT)),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    if out.returncode != 0:
        raise RuntimeError(f"the ceiling measurement failed: {out.stderr[-2000:]}")
    return float(json.loads(out.stdout.strip().splitlines()[-1])["texts_per_s"])


def engine_offline(engine, texts: list[str], batch: int = 32) -> float:
    """jude's engine without HTTP: micro-batches of ``batch`` texts -> texts/s."""
    batches = [engine.prepare(texts[i : i + batch]) for i in range(0, len(texts), batch)]
    engine.embed_prepared(batches[0])
    t0 = time.perf_counter()
    for items in batches:
        engine.embed_prepared(items)
    return len(texts) / (time.perf_counter() - t0)


# ---- Infinity --------------------------------------------------------------------------
def ensure_infinity(venv: Path = INFINITY_VENV) -> tuple[Path | None, str]:
    """The ``infinity_emb`` executable, installed into ``venv`` on first use -> (path or None, why not)."""
    exe = venv / "bin" / "infinity_emb"
    if exe.exists():
        return exe, ""
    print(f"installing Infinity into {venv.relative_to(ROOT)} (once; a few minutes) ...", flush=True)
    try:
        if not (venv / "bin" / "pip").exists():
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True, timeout=300)
        constraints = venv / "constraints.txt"
        constraints.write_text("torch==2.13.0\n")  # never let pip resolve another torch
        out = subprocess.run(
            [str(venv / "bin" / "pip"), "install", "--quiet", *INFINITY_PACKAGES, "-c", str(constraints)],
            capture_output=True,
            text=True,
            timeout=1800,
        )
    except (OSError, subprocess.SubprocessError) as e:
        return None, f"could not create its venv: {e}"
    if out.returncode != 0 or not exe.exists():
        tail = " | ".join((out.stderr or out.stdout).strip().splitlines()[-4:])
        return None, f"pip install {' '.join(INFINITY_PACKAGES)} failed: {tail}"
    return exe, ""


# ---- harness ---------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    name: str
    proc: subprocess.Popen
    url: str
    path: str  # the embeddings route


def start_server(name: str, serve_config: str | None, infinity: Path | None) -> Server:
    from jude.modeling.model_dir import packaged_minilm_path

    port = free_port()
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("OMP_WAIT_POLICY", None)  # each server runs with its own defaults (jude serve sets PASSIVE itself)
    path = "/v1/embeddings"
    if name.startswith("jude-"):
        cmd = [sys.executable, "-m", "jude.cli", "serve", "--model", "minilm", "--port", str(port)]
        cmd += ["--backend", name.removeprefix("jude-"), "--log-level", "warning"]
        if serve_config:
            env["JUDE_SERVE_CONFIG"] = serve_config
    elif name == "infinity":
        cmd = [str(infinity), "v2", "--model-id", str(packaged_minilm_path()), "--host", "127.0.0.1"]
        cmd += ["--port", str(port), "--engine", "torch", "--device", "cpu", "--log-level", "warning"]
        env.update(INFINITY_ANONYMOUS_USAGE_STATS="0", DO_NOT_TRACK="1")
        path = "/embeddings"
    else:
        cmd = [sys.executable, str(Path(__file__).resolve()), "--naive-server", str(port)]
    log = open(ROOT / ".jude" / "bench" / f"serve-{name}.log", "w")
    proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    server = Server(name, proc, f"http://127.0.0.1:{port}", path)
    import httpx

    deadline = time.monotonic() + 600  # the first ONNX export and Infinity's warm-up take a while
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited with status {proc.returncode}; see {log.name}")
        try:
            if httpx.post(f"{server.url}{path}", json={"input": ["ready?"]}, timeout=5).status_code == 200:
                return server
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    stop_server(server)
    raise RuntimeError(f"{name} did not answer within 600 s; see {log.name}")


def stop_server(server: Server) -> None:
    server.proc.terminate()
    try:
        server.proc.wait(30)
    except subprocess.TimeoutExpired:
        server.proc.kill()
        server.proc.wait(10)


def batch_counts(url: str) -> tuple[float, float] | None:
    """jude's (texts, micro-batches) so far, from /metrics; None for other servers."""
    import httpx

    try:
        text = httpx.get(f"{url}/metrics", timeout=5).text
    except httpx.HTTPError:
        return None
    values = {}
    for line in text.splitlines():
        for key in ("jude_batch_size_sum", "jude_batch_size_count"):
            if line.startswith(key + " "):
                values[key] = float(line.split()[-1])
    if len(values) < 2:
        return None
    return values["jude_batch_size_sum"], values["jude_batch_size_count"]


async def drive(server: Server, level: Level, pool: list[str], bare=None, timeout_s: float = 60.0) -> Result:
    """Send ``level.requests`` requests with ``level.concurrency`` workers, each with its own connection.

    With ``bare`` (a callable text -> seconds) at concurrency 1, each single-text
    request is preceded by the bare forward of the same text in this process.
    """
    import httpx

    n, k = level.requests, level.texts
    bodies = [pool[(i * k) % len(pool) : (i * k) % len(pool) + k] for i in range(n)]
    bodies = [b[0] if k == 1 else b for b in bodies]
    latencies: list[float] = []
    bare_s: list[float] = []
    errors: list[str] = []
    todo = list(range(n))
    spent_on_bare = 0.0
    clients = [
        httpx.AsyncClient(base_url=server.url, limits=httpx.Limits(max_connections=1), timeout=timeout_s)
        for _ in range(level.concurrency)
    ]

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal spent_on_bare
        while todo:
            i = todo.pop()
            if bare is not None:
                t0 = time.perf_counter()
                bare_s.append(bare(bodies[i]))
                spent_on_bare += time.perf_counter() - t0
            t0 = time.perf_counter()
            try:
                r = await client.post(server.path, json={"input": bodies[i], "model": "minilm"})
            except httpx.HTTPError as e:
                errors.append(f"{type(e).__name__}: {e}")
                continue
            if r.status_code == 200:
                latencies.append(time.perf_counter() - t0)
            else:
                errors.append(f"{r.status_code}: {r.text[:200]}")

    try:
        # warm-up: every connection opened, a few batches formed (not measured)
        await asyncio.gather(*[c.post(server.path, json={"input": bodies[j % n]}) for j, c in enumerate(clients)])
        before = batch_counts(server.url)
        t0 = time.perf_counter()
        await asyncio.gather(*[worker(c) for c in clients])
        wall = time.perf_counter() - t0 - spent_on_bare
        after = batch_counts(server.url)
    finally:
        await asyncio.gather(*[c.aclose() for c in clients])
    batch_mean = None
    if before and after and after[1] > before[1]:
        batch_mean = (after[0] - before[0]) / (after[1] - before[1])
    return Result(
        level,
        wall,
        np.array(latencies),
        errors=len(errors),
        error_sample=errors[0] if errors else "",
        bare=np.array(bare_s),
        batch_mean=batch_mean,
    )


def bare_forward(backend: str):
    """A callable text -> seconds: jude's engine on one text in this process (tokenise, forward, pool)."""
    from jude.serving.engine import load_engine

    engine = load_engine("minilm", backend=backend)
    for t in make_texts(20, seed=99):
        engine.embed_prepared(engine.prepare([t]))

    def run(text: str) -> float:
        t0 = time.perf_counter()
        engine.embed_prepared(engine.prepare([text]))
        return time.perf_counter() - t0

    return engine, run


def load_average() -> str:
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


def print_table(results: dict[tuple[str, str], Result], ceiling: float, offline: dict[str, float], names, lvls):
    print(f"\nceiling: SentenceTransformer.encode, batch 32, one process: {ceiling:.1f} texts/s")
    for backend, tps in offline.items():
        print(f"jude engine offline ({backend}, micro-batches of 32, no HTTP): {tps:.1f} texts/s")
    head = f"{'server':<11}{'level':>9}{'requests':>9}{'errors':>7}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}"
    print("\n" + head + f"{'req/s':>9}{'texts/s':>9}{'x ceil':>8}{'batch':>7}")
    for lv in lvls:
        for name in names:
            r = results.get((name, lv.name))
            if r is None:
                continue
            batch = f"{r.batch_mean:.1f}" if r.batch_mean else "-"
            print(
                f"{name:<11}{lv.name:>9}{len(r.latencies):>9}{r.errors:>7}{r.pct(50):>9.1f}{r.pct(95):>9.1f}"
                f"{r.pct(99):>9.1f}{r.rps:>9.1f}{r.texts_per_s:>9.1f}{r.texts_per_s / ceiling:>8.2f}{batch:>7}"
            )
    for (name, lv), r in results.items():
        if r.errors:
            print(f"  {name} {lv}: {r.errors} errors, e.g. {r.error_sample}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="fewer requests per level (a smoke check)")
    ap.add_argument("--servers", nargs="+", choices=SERVERS, default=list(SERVERS))
    ap.add_argument("--allow-load", action="store_true", help="print the ratios even on a busy machine")
    ap.add_argument("--max-load", type=float, default=1.0, help="highest 1-minute load average at the start")
    ap.add_argument(
        "--serve-config", default=None, help="JSON ServeConfig overrides for jude (e.g. '{\"threads\": 1}')"
    )
    ap.add_argument("--runs", type=int, default=1, help="repeat the whole run; the ratios' median and range")
    ap.add_argument("--out", default=None, help="write every run's table and ratios as JSON into this folder")
    ap.add_argument(
        "--settle-s", type=float, default=300, help="between runs, wait up to this long for the load to settle"
    )
    ap.add_argument("--naive-server", type=int, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--ceiling-only", type=int, nargs=2, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.naive_server:
        run_naive_server(args.naive_server)
        return 0
    if args.ceiling_only:
        run_ceiling(*args.ceiling_only)
        return 0

    from jude.config import ServeConfig

    # 'auto' (the default) is ONNX Runtime on this CPU where the onnx extra is installed and exact
    default_backend = ServeConfig().backend
    if default_backend == "auto":
        try:
            import onnxruntime  # noqa: F401

            default_backend = "onnx"
        except ImportError:
            default_backend = "torch"
    runs = []
    stamp = time.strftime("%Y%m%dT%H%M%S")
    for i in range(args.runs):
        if args.runs > 1:
            print(f"\n==== run {i + 1} of {args.runs} ====", flush=True)
        if i > 0:  # the previous run's own load: let the 1-minute average settle before measuring again
            settle_until = time.monotonic() + args.settle_s
            while os.getloadavg()[0] > args.max_load and time.monotonic() < settle_until:
                time.sleep(5)
            print(f"load average after settling: {load_average()}", flush=True)
        runs.append(run_once(args, default_backend))
        summary = summarise(runs)
        if args.out:  # after every run, so a run cut short keeps the runs it finished
            out = Path(args.out)
            out.mkdir(parents=True, exist_ok=True)
            payload = {
                "command": " ".join(sys.argv),
                "default_backend": default_backend,
                "runs": runs,
                "summary": summary,
            }
            (out / f"serve_bench_{stamp}.json").write_text(json.dumps(payload, indent=1, default=str))
            print(f"results so far ({len(runs)} runs): {out / f'serve_bench_{stamp}.json'}", flush=True)
    if args.runs > 1 and summary:
        print(f"\nover {args.runs} runs (median [min, max]), for jude-{default_backend}:")
        for name, s_ in summary.items():
            print(f"{name}: {s_['median']:.2f} [{s_['min']:.2f}, {s_['max']:.2f}]")
    return 0


def summarise(runs: list[dict]) -> dict[str, dict[str, float]]:
    """Each ratio's median and range over the runs that printed it (busy runs and n/a values left out)."""
    values: dict[str, list[float]] = {}
    for run in runs:
        for name, value in run.get("ratios", {}).items():
            try:
                number = float(value)
            except ValueError:  # "n/a"
                continue
            values.setdefault(name, []).append(number)
    return {
        name: {"median": float(np.median(v)), "min": min(v), "max": max(v), "runs": len(v)}
        for name, v in values.items()
    }


def run_once(args: argparse.Namespace, default_backend: str) -> dict:
    """One full run: ceiling, every server at every level, the four ratios -> its record."""
    load_at_start = os.getloadavg()[0]
    print(f"machine: {os.cpu_count()} CPUs, load average before: {load_average()}", flush=True)
    busy = load_at_start > args.max_load and not args.allow_load
    if busy:
        print(
            f"the load average at the start ({load_at_start:.2f}) is over {args.max_load:g}: the figures below are "
            "measured, the ratios will not be printed (--allow-load prints them anyway)",
            flush=True,
        )
    lvls = levels(args.quick)
    pool = make_texts(max(lv.requests * lv.texts for lv in lvls) + 64)
    (ROOT / ".jude" / "bench").mkdir(parents=True, exist_ok=True)

    ceiling = measure_ceiling(256 if args.quick else 1024, 2 if args.quick else 3)
    print(f"  measured ceiling: {ceiling:.1f} texts/s (load average {os.getloadavg()[0]:.2f})", flush=True)

    names = list(args.servers)
    infinity, why_not = (None, "not asked for")
    if "infinity" in names:
        infinity, why_not = ensure_infinity()
        if infinity is None:
            print(f"Infinity skipped: {why_not}", flush=True)
            names.remove("infinity")

    results: dict[tuple[str, str], Result] = {}
    offline: dict[str, float] = {}
    for name in names:
        bare = None
        if name.startswith("jude-"):
            backend = name.removeprefix("jude-")
            try:
                server = start_server(name, args.serve_config, infinity)  # exports the ONNX graph on first use
            except RuntimeError as e:
                print(f"{name} skipped: {e}", flush=True)
                continue
            engine, bare = bare_forward(backend)
            offline[backend] = engine_offline(engine, pool[:512])
        else:
            try:
                server = start_server(name, None, infinity)
            except RuntimeError as e:
                print(f"{name} skipped: {e}", flush=True)
                continue
        try:
            for lv in lvls:
                paired = bare if (bare is not None and lv.concurrency == 1 and lv.texts == 1) else None
                r = asyncio.run(drive(server, lv, pool, paired))
                results[(name, lv.name)] = r
                print(
                    f"  measured {name} {lv.name}: {r.rps:.1f} req/s, p95 {r.pct(95):.1f} ms, {r.errors} errors "
                    f"(load average {os.getloadavg()[0]:.2f})",
                    flush=True,
                )
        finally:
            stop_server(server)
            if bare is not None:
                del engine, bare

    print_table(results, ceiling, offline, names, lvls)
    record = {
        "load_before": load_at_start,
        "load_after": os.getloadavg()[0],
        "ceiling_texts_per_s": ceiling,
        "offline_texts_per_s": offline,
        "infinity": why_not if infinity is None else "ran",
        "rows": [
            {
                "server": name,
                "level": lv,
                "requests": len(r.latencies),
                "errors": r.errors,
                "p50_ms": r.pct(50),
                "p95_ms": r.pct(95),
                "p99_ms": r.pct(99),
                "req_per_s": r.rps,
                "texts_per_s": r.texts_per_s,
                "bare_p95_ms": float(np.percentile(r.bare, 95) * 1000) if len(r.bare) else None,
            }
            for (name, lv), r in results.items()
        ],
        "busy": False,
        "ratios": {},
    }
    print(f"\nload average after: {load_average()}")
    if busy:
        print(f"ratios not printed: the load average at the start was {load_at_start:.2f} (over {args.max_load:g})")
        record["busy"] = True
        return record

    jude = f"jude-{default_backend}"

    def ratio(a: Result | None, b: Result | None, attr: str = "rps") -> str:
        if a is None or b is None or a.errors or b.errors:
            return "n/a"
        return f"{getattr(a, attr) / getattr(b, attr):.2f}"

    for name in [n for n in names if n.startswith("jude-")]:
        r1 = results.get((name, "c=1"))
        if r1 is not None and len(r1.bare):
            print(
                f"{name}: bare forward just before each c=1 request: p50 {np.percentile(r1.bare, 50) * 1e3:.2f} ms, "
                f"p95 {np.percentile(r1.bare, 95) * 1e3:.2f} ms; the request's p95 {r1.pct(95):.2f} ms"
            )
        if "infinity" in names:
            line = "  ".join(
                f"{lv.name} x{ratio(results.get((name, lv.name)), results.get(('infinity', lv.name)))}" for lv in lvls
            )
            print(f"{name} / infinity: {line}")
    print(f"ratios for {jude} (the default backend on this machine):")
    j32 = results.get((jude, "c=32"))
    value = f"{j32.texts_per_s / ceiling:.2f}" if j32 is not None and not j32.errors else "n/a"
    print(f"ceiling ratio c=32: {value}")
    record["ratios"]["ceiling ratio c=32"] = value
    for c in (32, 64):
        inf = results.get(("infinity", f"c={c}"))
        value = ratio(results.get((jude, f"c={c}")), inf) if infinity else f"n/a (Infinity skipped: {why_not})"
        print(f"infinity ratio c={c}: {value}")
        record["ratios"][f"infinity ratio c={c}"] = value
    r1 = results.get((jude, "c=1"))
    if r1 is not None and len(r1.bare):
        value = f"{r1.pct(95) / (np.percentile(r1.bare, 95) * 1000):.2f}"
    else:
        value = "n/a"
    print(f"c=1 p95 vs bare forward: {value}")
    record["ratios"]["c=1 p95 vs bare forward"] = value
    return record


if __name__ == "__main__":
    sys.exit(main())
