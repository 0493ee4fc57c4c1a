"""Training throughput and peak memory: jude's trainer (full loss suite) vs a plain
sentence-transformers MultipleNegativesRankingLoss loop, same model, data and batch size.

    python bench/train_throughput.py [--steps 6] [--warmup 2] [--batch-size 32] [--rounds 2]
    python bench/train_throughput.py --profile [--profile-steps 2]   # where the time goes, both sides
    python bench/train_throughput.py --out bench/results/train_throughput/run.json   # + the results as JSON

Both sides train on the same (member, positive job, hard-negative job) triplets
rendered by jude's templates, at the same token budgets:

- **jude**: `jude.training.trainer.train_embedder` with LoRA (r=16 on Q/K/V) and
  the full loss suite (InfoNCE with in-batch + hard negatives and false-negative
  masking, BCE interaction head, VP-matrix), one curriculum phase;
- **baseline**: a plain loop over `SentenceTransformer` + `MultipleNegativesRankingLoss`
  (anchor, positive, negative), full fine-tuning, AdamW.

Each measurement runs in its own subprocess (so peak RSS is its own), the two
alternate for `--rounds` rounds, and the median pairs/s of each is compared.
The load average is printed before and after; above 1.0 at the start the bench
refuses to measure (the ratio of two runs on shared cores says little) unless
`--allow-load` is given. `--bf16` runs both sides under bf16 autocast.
The last line is `ratio: <jude pairs/s / baseline pairs/s>`. `--out FILE` writes every measurement and
the summary lines as JSON (`bench/results_io.py`).

`--profile` runs each side once with `torch.profiler` over `--profile-steps`
steps after the warm-up and prints the top operators by self CPU time, then the
labelled regions (`jude.*`: step texts, embed, loss, backward, optimizer;
`st.*`: the same parts of the baseline loop). It prints no ratio: the profiler
slows both sides.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from results_io import BenchResults  # noqa: E402

from jude.env import apply_offline_env  # noqa: E402

apply_offline_env()

MAX_LOAD = 1.0  # load average (1 min) above which the cores are not ours: no ratio without --allow-load
TOP_OPS = 15  # rows of the --profile operator table


def _data(n_pairs: int, seed: int = 0):
    """Triplets from the synthetic marketplace: positives from the rubric judge, judged negatives."""
    import pandas as pd

    from jude.config import LabelConfig, SyntheticConfig
    from jude.data.synthetic import generate_marketplace
    from jude.labels.build import build_labels
    from jude.labels.rubric import RubricJudge

    m = generate_marketplace(SyntheticConfig(n_jobs=300, n_members=200, seed=seed))
    cfg = LabelConfig(budget=4000, retrieved_fraction=0.0, random_fraction=0.5, interacted_fraction=0.5, seed=seed)
    labels = build_labels(m.jobs, m.members, m.interactions, cfg, judge=RubricJudge()).relevance
    pos = labels[labels["label"] == 1]
    if len(pos) < n_pairs:
        pos = pd.concat([pos] * (n_pairs // max(1, len(pos)) + 1), ignore_index=True)
    pos = pos.head(n_pairs).reset_index(drop=True)
    labels = pd.concat([pos, labels[labels["label"] == 0]], ignore_index=True)
    return m, labels


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


class StepProfiler:
    """torch.profiler over the steps after the warm-up (``--profile``); a no-op otherwise."""

    def __init__(self, args):
        self.on = bool(args.profile)
        self.first, self.last = args.warmup, args.warmup + args.profile_steps
        self.prof = None
        if self.on:
            from torch.profiler import ProfilerActivity, profile

            self.prof = profile(activities=[ProfilerActivity.CPU])

    def after_step(self, step: int) -> None:
        """Called with the number of steps done: starts after the warm-up, stops after the profiled steps."""
        if not self.on:
            return
        if step == self.first:
            self.prof.start()
        elif step == self.last:
            self.prof.stop()

    def tables(self, prefix: str) -> str:
        """Top operators by self CPU time, then the ``prefix.*`` regions (record_function labels)."""
        if not self.on:
            return ""
        events = self.prof.key_averages()
        ops = events.table(sort_by="self_cpu_time_total", row_limit=TOP_OPS, max_name_column_width=40)
        total = sum(e.self_cpu_time_total for e in events) or 1.0
        regions = sorted((e for e in events if e.key.startswith(prefix + ".")), key=lambda e: -e.cpu_time_total)
        lines = [f"{'region':24s}{'CPU total s':>12s}{'share':>8s}{'calls':>7s}"]
        lines += [
            f"{e.key:24s}{e.cpu_time_total / 1e6:12.2f}{e.cpu_time_total / total:8.1%}{e.count:7d}" for e in regions
        ]
        return ops + "\n" + "\n".join(lines)


def run_jude(args) -> dict:
    from jude.config import LoRAConfig, LossConfig, ModelConfig, ScaleConfig, TrainConfig
    from jude.training.trainer import train_embedder

    steps = _steps(args)
    m, labels = _data(args.batch_size * steps)
    model = ModelConfig(max_length_job=args.max_len, max_length_profile=args.max_len, max_length_resume=args.max_len)
    train = TrainConfig(
        batch_size=args.batch_size,
        max_steps=steps,
        member_views=["profile"],
        hard_negatives=1,
        warmup_ratio=0.0,
        mine_negatives=False,
        use_engagement=False,
    )
    loss = LossConfig(weights={"infonce": 1.0, "bce": 0.5, "vp_matrix": 0.5})
    profiler = StepProfiler(args)
    stamps: list[float] = []

    def log(rec: dict, step: int) -> None:
        if "train/loss" in rec:
            stamps.append(time.perf_counter())
            profiler.after_step(step)

    rss_before = _peak_rss_mb()
    with tempfile.TemporaryDirectory() as tmp:
        train_embedder(
            labels,
            m.jobs,
            m.members,
            model,
            LoRAConfig(),
            train,
            Path(tmp) / "m",
            loss_cfg=loss,
            log=log,
            show_progress=False,
            scale=ScaleConfig(bf16=args.bf16),
        )
    return _result(args, stamps, rss_before, profiler.tables("jude"))


def run_baseline(args) -> dict:
    import numpy as np
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.losses import MultipleNegativesRankingLoss
    from torch.profiler import record_function

    from jude.modeling import templates
    from jude.modeling.model_dir import packaged_minilm_path

    torch.manual_seed(0)
    steps = _steps(args)
    m, labels = _data(args.batch_size * steps)
    jobs = m.jobs.set_index("job_id", drop=False)
    members = m.members.set_index("member_id", drop=False)
    pos = labels[labels["label"] == 1].reset_index(drop=True)
    neg = labels[labels["label"] == 0].groupby("member_id")["job_id"].first()
    rng = np.random.default_rng(0)
    job_ids = m.jobs["job_id"].tolist()
    triplets = []  # rendered up front, as jude renders every text before its first step
    for step in range(steps):
        rows = pos.iloc[step * args.batch_size : (step + 1) * args.batch_size]
        negs = [neg.get(mid, job_ids[int(rng.integers(len(job_ids)))]) for mid in rows["member_id"]]
        triplets.append(
            (
                [templates.render("profile", members.loc[mid]) for mid in rows["member_id"]],
                [templates.render("job", jobs.loc[j]) for j in rows["job_id"]],
                [templates.render("job", jobs.loc[j]) for j in negs],
            )
        )
    model = SentenceTransformer(str(packaged_minilm_path()), device="cpu")
    model.max_seq_length = args.max_len
    loss_fn = MultipleNegativesRankingLoss(model)
    opt = torch.optim.AdamW(model.parameters(), lr=2e-5)
    profiler = StepProfiler(args)
    rss_before = _peak_rss_mb()
    model.train()
    stamps = []
    for step, texts in enumerate(triplets):
        with record_function("st.tokenize"):
            features = [model.preprocess(t) for t in texts]
        with torch.autocast("cpu", dtype=torch.bfloat16) if args.bf16 else nullcontext():
            with record_function("st.forward_loss"):
                loss = loss_fn(features, None)
        with record_function("st.backward"):
            loss.backward()
        with record_function("st.optimizer"):
            opt.step()
            opt.zero_grad(set_to_none=True)
        stamps.append(time.perf_counter())
        profiler.after_step(step + 1)
    return _result(args, stamps, rss_before, profiler.tables("st"))


def _steps(args) -> int:
    """Optimiser steps a worker runs: the warm-up, then the timed (or profiled) steps."""
    return args.warmup + (args.profile_steps if args.profile else args.steps)


def _result(args, stamps: list[float], rss_before: float, profile: str) -> dict:
    timed = stamps[args.warmup - 1 :]  # from the end of the last warm-up step to the end of the last step
    return {
        "pairs_per_s": args.batch_size * (len(timed) - 1) / (timed[-1] - timed[0]),
        "peak_rss_mb": _peak_rss_mb(),
        "rss_before_train_mb": rss_before,
        "profile": profile,
    }


def _worker(side: str, args) -> dict:
    cmd = [sys.executable, __file__, "--worker", side, "--steps", str(args.steps), "--warmup", str(args.warmup)]
    cmd += ["--batch-size", str(args.batch_size), "--max-len", str(args.max_len)]
    cmd += ["--profile-steps", str(args.profile_steps)] + (["--profile"] if args.profile else [])
    cmd += ["--bf16"] if args.bf16 else []
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode != 0 or not line:
        sys.exit(f"{side} run failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
    return json.loads(line[-1][7:])


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=6, help="timed optimiser steps per measurement")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps first (at least 1)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--max-len", type=int, default=128, help="token budget of every text, both sides")
    p.add_argument("--rounds", type=int, default=2, help="alternating jude/baseline measurements")
    p.add_argument("--bf16", action="store_true", help="bf16 autocast on both sides (CPUs with avx512_bf16/AMX)")
    p.add_argument("--allow-load", action="store_true", help=f"measure even with a load average above {MAX_LOAD}")
    p.add_argument("--profile", action="store_true", help="print torch.profiler tables of both sides, no ratio")
    p.add_argument("--profile-steps", type=int, default=2, help="steps profiled after the warm-up")
    p.add_argument("--worker", choices=["jude", "baseline"], help=argparse.SUPPRESS)
    p.add_argument("--out", default=None, metavar="FILE", help="also write the results as JSON (bench/results_io.py)")
    args = p.parse_args()
    if args.warmup < 1 or args.steps < 1 or args.profile_steps < 1:
        p.error(
            f"--warmup, --steps and --profile-steps must be >= 1, got {args.warmup}, {args.steps}, {args.profile_steps}"
        )
    if args.worker:
        out = run_jude(args) if args.worker == "jude" else run_baseline(args)
        print("RESULT " + json.dumps(out))
        return

    import torch

    results_file = BenchResults("train_throughput", {k: v for k, v in vars(args).items() if k != "worker"})
    load_start = os.getloadavg()[0]
    print(f"load average at start: {_load()}  (1, 5, 15 min; {os.cpu_count()} CPU cores)", flush=True)
    if load_start > MAX_LOAD and not args.allow_load and not args.profile:
        sys.exit(
            f"load average {load_start:.2f} > {MAX_LOAD}: the cores are shared, a ratio would say little. "
            "Wait for a quiet machine or pass --allow-load (and say so next to the numbers)."
        )
    if args.profile:
        for side in ("baseline", "jude"):
            res = _worker(side, args)
            print(f"\n== {side}: {args.profile_steps} profiled steps after {args.warmup} warm-up ==", flush=True)
            print(res["profile"], flush=True)
            results_file.row(side=side, **res)
        print(f"\nload average at end: {_load()}")
        results_file.write(args.out)
        return

    results: dict[str, list[dict]] = {"jude": [], "baseline": []}
    for r in range(args.rounds):
        for side in ("baseline", "jude"):
            res = _worker(side, args)
            results[side].append(res)
            results_file.row(round=r + 1, side=side, **{k: v for k, v in res.items() if k != "profile"})
            print(
                f"round {r + 1} {side:9s} {res['pairs_per_s']:7.2f} pairs/s  peak RSS {res['peak_rss_mb']:7.0f} MB",
                flush=True,
            )
    load_end = _load()
    med = {s: statistics.median(x["pairs_per_s"] for x in v) for s, v in results.items()}
    rss = {s: max(x["peak_rss_mb"] for x in v) for s, v in results.items()}
    print()
    flags = (" --bf16" if args.bf16 else "") + (" --allow-load" if args.allow_load else "")
    print(
        f"command: python bench/train_throughput.py --steps {args.steps} --warmup {args.warmup} "
        f"--batch-size {args.batch_size} --max-len {args.max_len} --rounds {args.rounds}{flags}"
    )
    print(
        f"model: all-MiniLM-L6-v2 (packaged), batch {args.batch_size} triplets, {args.max_len} tokens per text, "
        f"{os.cpu_count()} CPU cores, torch threads {torch.get_num_threads()}, "
        f"{'bf16 autocast' if args.bf16 else 'float32'}"
    )
    print(
        f"load average at end: {load_end}" + ("  (measured under load: --allow-load)" if load_start > MAX_LOAD else "")
    )
    print(f"{'':28s}{'pairs/s (median)':>18s}{'peak RSS MB':>14s}")
    results_file.summary.update(torch_threads=torch.get_num_threads(), shared=load_start > MAX_LOAD)
    results_file.say(
        f"{'sentence-transformers MNRL':28s}{med['baseline']:18.2f}{rss['baseline']:14.0f}",
        pairs_per_s_median=med,
        peak_rss_mb=rss,
    )
    results_file.say(f"{'jude (LoRA, full suite)':28s}{med['jude']:18.2f}{rss['jude']:14.0f}")
    results_file.say(
        f"memory ratio (jude / baseline): {rss['jude'] / rss['baseline']:.3f}  (target <= 1.2)",
        memory_ratio=rss["jude"] / rss["baseline"],
    )
    results_file.say(f"ratio: {med['jude'] / med['baseline']:.3f}", ratio=med["jude"] / med["baseline"])
    results_file.write(args.out)


if __name__ == "__main__":
    main()
