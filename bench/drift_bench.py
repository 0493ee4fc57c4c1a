"""Time and peak memory of each drift method on N reference vs N current embeddings.

    .venv/bin/python bench/drift_bench.py                 # 10,000 vs 10,000, 384-d
    .venv/bin/python bench/drift_bench.py --n 2000 --report   # + the full Evidently report (t-SNE picture)
    .venv/bin/python bench/drift_bench.py --mmd-full      # + MMD on all rows: an (2N)^2 kernel, ~3 GB at N=10,000
    .venv/bin/python bench/drift_bench.py --out bench/results/drift/run.json   # + every row as JSON

The windows are synthetic unit vectors (a mixture of 50 clusters; the current
window's cluster weights moved a little), because only size and shape matter
for the cost. Every row is a ratio against the baseline measured in the same
run: the centroid cosine distance (two means and a dot product). Peak memory
is what ``tracemalloc`` sees (numpy and scikit-learn allocations), the time is
wall clock on this machine. ``--out FILE`` writes every row as JSON (``bench/results_io.py``).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import tracemalloc
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from results_io import BenchResults  # noqa: E402

from jude.config import MonitorConfig  # noqa: E402
from jude.monitoring.drift import EmbeddingSet, detect_drift, embedding_stats, evidently_method  # noqa: E402


def make_windows(n: int, dim: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(n, dim) reference and current unit vectors from a 50-cluster mixture; current weights shifted."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(50, dim))
    w_ref = np.full(50, 1 / 50)
    w_cur = w_ref * np.exp(rng.normal(scale=0.3, size=50))
    w_cur /= w_cur.sum()

    def draw(w: np.ndarray) -> np.ndarray:
        x = centres[rng.choice(50, size=n, p=w)] + rng.normal(scale=1.5, size=(n, dim))
        return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)

    return draw(w_ref), draw(w_cur)


def measure(fn) -> tuple[float, float, object]:
    """(seconds, peak MiB, result) of one call."""
    tracemalloc.start()
    t = time.perf_counter()
    out = fn()
    seconds = time.perf_counter() - t
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    return seconds, peak, out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=10_000, help="entities per window")
    p.add_argument("--dim", type=int, default=384)
    p.add_argument(
        "--sample-size",
        type=int,
        default=MonitorConfig().sample_size,
        help="rows per window for the sampled methods (monitor.sample_size)",
    )
    p.add_argument("--mmd-full", action="store_true", help="also run MMD on all rows ((2n)^2 kernel matrix)")
    p.add_argument("--report", action="store_true", help="also time the whole Evidently report (adds t-SNE)")
    p.add_argument("--out", default=None, metavar="FILE", help="also write the rows as JSON (bench/results_io.py)")
    args = p.parse_args()
    results = BenchResults("drift_bench", args)
    warnings.filterwarnings("ignore")

    ref, cur = make_windows(args.n, args.dim)
    cols = [f"e{i}" for i in range(args.dim)]

    def evidently(method: str, rows: int):
        import pandas as pd

        r, c = ref[:rows], cur[:rows]
        fn = evidently_method(method, MonitorConfig())
        return lambda: fn(pd.DataFrame(c, columns=cols), pd.DataFrame(r, columns=cols))[0]

    cases = [
        ("centroid cosine distance (baseline)", args.n, lambda: embedding_stats(ref, cur).centroid_cosine_distance),
        ("model: classifier ROC AUC", args.n, evidently("model", args.n)),
        ("mmd, sampled", min(args.sample_size, args.n), evidently("mmd", min(args.sample_size, args.n))),
    ]
    if args.mmd_full:
        cases.append(("mmd, all rows", args.n, evidently("mmd", args.n)))
    if args.report:

        def report():
            a = EmbeddingSet("job", np.arange(args.n), ref, "1", "bench", "v1", "reference")
            b = EmbeddingSet("job", np.arange(args.n), cur, "1", "bench", "v1", "current")
            return detect_drift(a, b, MonitorConfig(sample_size=args.sample_size), report=True).primary.score

        cases.append(
            (
                f"Evidently report (model + mmd + t-SNE), sample {args.sample_size}",
                min(args.sample_size, args.n),
                report,
            )
        )

    print(f"$ {' '.join([os.path.relpath(sys.executable), *sys.argv])}")
    print(f"{args.n:,} reference vs {args.n:,} current embeddings, {args.dim}-d, {os.cpu_count()} CPU cores\n")
    header = (
        f"{'method':<58} {'rows/window':>11} {'score':>8} {'seconds':>9} {'x base':>9} {'peak MiB':>9} {'x base':>8}"
    )
    print(header)
    print("-" * len(header))
    base_s = base_m = None
    for name, rows, fn in cases:
        s, m, score = measure(fn)
        if base_s is None:
            base_s, base_m = s, max(m, 1e-6)
        print(
            f"{name:<58} {rows:>11,} {float(score):>8.4f} {s:>9.3f} {s / base_s:>9.1f} {m:>9.1f} {m / base_m:>8.1f}",
            flush=True,
        )
        results.row(
            method=name,
            rows_per_window=rows,
            score=float(score),
            seconds=s,
            seconds_vs_baseline=s / base_s,
            peak_mib=m,
            peak_vs_baseline=m / base_m,
        )
    results.write(args.out)


if __name__ == "__main__":
    main()
