"""Where `jude serve` spends its time at c=32: py-spy samples the server while the serve bench's load generator
sends single-text requests (issue #31 item 2, the "before" profile).

    .venv/bin/python bench/serve_profile.py --out bench/results/serving/profile/onnx_c32.json

The server is `jude serve --model minilm --backend onnx` (the CPU default), started and driven by
bench/serve_bench.py's own functions; py-spy records every thread of it (``--idle`` off: only samples where a
thread is on the CPU) for the whole level. py-spy is in the `dev` extra (`make setup`). The JSON holds the top
functions by own samples and by inclusive samples (a function counted once per stack it is in), the level's
req/s and p50/p95, the CPU cores the server and the load generator used, and the load average.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))

import serve_bench as sb  # noqa: E402
from results_io import run_info, write_json  # noqa: E402


def _proc_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process (and its waited-for children), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return sum(int(x) for x in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def _self_cpu_s() -> float:
    t = os.times()
    return t.user + t.system


def top(stacks: collections.Counter, n: int) -> tuple[list, list]:
    own, incl = collections.Counter(), collections.Counter()
    total = sum(stacks.values())
    for stack, count in stacks.items():
        frames = stack.split(";")
        own[frames[-1]] += count
        for f in set(frames):
            incl[f] += count
    fmt = lambda c: [{"frame": f, "share": round(k / total, 4), "samples": k} for f, k in c.most_common(n)]  # noqa: E731
    return fmt(own), fmt(incl)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--requests", type=int, default=3000)
    ap.add_argument("--backend", default="onnx", choices=["onnx", "torch"])
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--serve-config", help="serve settings as JSON ($JUDE_SERVE_CONFIG), e.g. '{\"threads\": 1}'")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    (ROOT / ".jude" / "bench").mkdir(parents=True, exist_ok=True)
    load_before = os.getloadavg()
    server = sb.start_server(f"jude-{args.backend}", args.serve_config, None)
    pool = sb.make_texts(4000)
    raw = Path(tempfile.mkdtemp(prefix="jude-pyspy-")) / "stacks.txt"
    try:
        asyncio.run(sb.drive(server, sb.Level(args.concurrency, 1, 200), pool))  # warm-up
        spy = subprocess.Popen(
            [str(Path(sys.executable).with_name("py-spy")), "record", "--pid", str(server.proc.pid), "--rate", "200",
             "--format", "raw", "--output", str(raw), "--nonblocking", "--threads"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )  # fmt: skip
        time.sleep(1.0)
        cpu0, mine0, t0 = _proc_cpu_s(server.proc.pid), _self_cpu_s(), time.monotonic()
        result = asyncio.run(sb.drive(server, sb.Level(args.concurrency, 1, args.requests), pool))
        cpu1, mine1, wall = _proc_cpu_s(server.proc.pid), _self_cpu_s(), time.monotonic() - t0
        spy.send_signal(2)  # SIGINT: py-spy writes what it has
        _, err = spy.communicate(timeout=60)
    finally:
        sb.stop_server(server)
    stacks = collections.Counter()
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        # drop the thread label py-spy puts first ("thread (0x...)") so the same code in two threads adds up
        frames = [f for f in stack.split(";") if not f.startswith("thread (") and not f.startswith("process ")]
        stacks[";".join(frames)] += int(count)
    own, incl = top(stacks, args.top)
    payload = {
        **run_info(__file__, None),
        "server": f"jude serve --model minilm --backend {args.backend}",
        "serve_config": args.serve_config,
        "level": {"concurrency": args.concurrency, "texts_per_request": 1, "requests": args.requests},
        "req_per_s": result.rps,
        "p50_ms": result.pct(50),
        "p95_ms": result.pct(95),
        "errors": result.errors,
        "load_before": load_before,
        "load_after": os.getloadavg(),
        "samples": sum(stacks.values()),
        # CPU seconds per wall second during the level (2 cores = 2.0): the server's, and this process's (the load
        # generator, on the same two cores, as in bench/serve_bench.py)
        "server_cores_used": (cpu1 - cpu0) / wall,
        "load_generator_cores_used": (mine1 - mine0) / wall,
        "top_own": own,
        "top_inclusive": incl,
        "py_spy_stderr_tail": err.decode(errors="replace")[-500:],
    }
    write_json(args.out, payload)
    print(f"c={args.concurrency}: {result.rps:.1f} req/s, p95 {result.pct(95):.0f} ms; {payload['samples']} samples")
    used = payload["server_cores_used"], payload["load_generator_cores_used"]
    print(f"cores used: server {used[0]:.2f}, load generator {used[1]:.2f}")
    for row in own[:15]:
        print(f"{row['share']:6.1%}  {row['frame'][:150]}")


if __name__ == "__main__":
    main()
