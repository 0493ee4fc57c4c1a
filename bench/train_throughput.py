"""Training throughput and peak memory: jude's trainer (full loss suite) vs a plain
sentence-transformers MultipleNegativesRankingLoss loop, same model, data and batch size.

    python bench/train_throughput.py [--steps 6] [--warmup 2] [--batch-size 32] [--rounds 2]

Both sides train on the same (member, positive job, hard-negative job) triplets
rendered by jude's templates, at the same token budgets:

- **jude**: `jude.training.trainer.train_embedder` with LoRA (r=16 on Q/K/V) and
  the full loss suite (InfoNCE with in-batch + hard negatives and false-negative
  masking, BCE interaction head, VP-matrix), one curriculum phase;
- **baseline**: a plain loop over `SentenceTransformer` + `MultipleNegativesRankingLoss`
  (anchor, positive, negative), full fine-tuning, AdamW.

Each measurement runs in its own subprocess (so peak RSS is its own), the two
alternate for `--rounds` rounds, and the median pairs/s of each is compared.
The last line is `ratio: <jude pairs/s / baseline pairs/s>`.
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
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _data(n_pairs: int, seed: int = 0):
    """Triplets from the synthetic marketplace: positives from the rubric judge, judged negatives."""
    import pandas as pd

    from jude.config import LabelConfig, SyntheticConfig
    from jude.data.synthetic import generate_marketplace
    from jude.labels.judges import RubricJudge
    from jude.labels.sampling import judge_pairs, sample_pairs

    m = generate_marketplace(SyntheticConfig(n_jobs=300, n_members=200, seed=seed))
    cfg = LabelConfig(budget=4000, retrieved_fraction=0.0, random_fraction=0.5, interacted_fraction=0.5)
    pairs = sample_pairs(m.jobs, m.members, m.interactions, cfg, rng_seed=seed)
    labels, _ = judge_pairs(RubricJudge(), pairs, m.jobs, m.members, cfg.relevant_grade)
    pos = labels[labels["label"] == 1]
    if len(pos) < n_pairs:
        pos = pd.concat([pos] * (n_pairs // max(1, len(pos)) + 1), ignore_index=True)
    pos = pos.head(n_pairs).reset_index(drop=True)
    labels = pd.concat([pos, labels[labels["label"] == 0]], ignore_index=True)
    return m, labels


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def run_jude(args) -> dict:
    from jude.config import LossConfig, LoRAConfig, ModelConfig, TrainConfig
    from jude.training.trainer import train_embedder

    m, labels = _data(args.batch_size * (args.steps + args.warmup))
    model = ModelConfig(max_length_job=args.max_len, max_length_profile=args.max_len, max_length_resume=args.max_len)
    train = TrainConfig(batch_size=args.batch_size, max_steps=args.steps + args.warmup, member_views=["profile"],
                        hard_negatives=1, warmup_ratio=0.0, mine_negatives=False, use_engagement=False)
    loss = LossConfig(weights={"infonce": 1.0, "bce": 0.5, "vp_matrix": 0.5})
    stamps: list[float] = []
    rss_before = _peak_rss_mb()
    with tempfile.TemporaryDirectory() as tmp:
        train_embedder(labels, m.jobs, m.members, model, LoRAConfig(), train, Path(tmp) / "m", loss_cfg=loss,
                       log=lambda rec, step: stamps.append(time.perf_counter()) if "train/loss" in rec else None,
                       show_progress=False)
    timed = stamps[args.warmup - 1:]  # from the end of the last warm-up step to the end of the last step
    seconds = timed[-1] - timed[0]
    return {"pairs_per_s": args.batch_size * (len(timed) - 1) / seconds, "peak_rss_mb": _peak_rss_mb(),
            "rss_before_train_mb": rss_before}


def run_baseline(args) -> dict:
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.losses import MultipleNegativesRankingLoss

    from jude.modeling import templates
    from jude.modeling.embedder import packaged_minilm_path

    torch.manual_seed(0)
    m, labels = _data(args.batch_size * (args.steps + args.warmup))
    jobs = m.jobs.set_index("job_id", drop=False)
    members = m.members.set_index("member_id", drop=False)
    pos = labels[labels["label"] == 1].reset_index(drop=True)
    neg = labels[labels["label"] == 0].groupby("member_id")["job_id"].first()
    rng = __import__("numpy").random.default_rng(0)
    job_ids = m.jobs["job_id"].tolist()
    model = SentenceTransformer(str(packaged_minilm_path()), device="cpu")
    model.max_seq_length = args.max_len
    loss_fn = MultipleNegativesRankingLoss(model)
    opt = torch.optim.AdamW(model.parameters(), lr=2e-5)
    rss_before = _peak_rss_mb()
    model.train()
    stamps = []
    for step in range(args.steps + args.warmup):
        rows = pos.iloc[step * args.batch_size:(step + 1) * args.batch_size]
        anchors = [templates.render("profile", members.loc[mid]) for mid in rows["member_id"]]
        positives = [templates.render("job", jobs.loc[j]) for j in rows["job_id"]]
        negatives = [templates.render("job", jobs.loc[neg.get(mid, job_ids[int(rng.integers(len(job_ids)))])])
                     for mid in rows["member_id"]]
        features = [model.tokenize(t) for t in (anchors, positives, negatives)]
        loss = loss_fn(features, None)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        stamps.append(time.perf_counter())
    timed = stamps[args.warmup - 1:]
    return {"pairs_per_s": args.batch_size * (len(timed) - 1) / (timed[-1] - timed[0]), "peak_rss_mb": _peak_rss_mb(),
            "rss_before_train_mb": rss_before}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=6, help="timed optimiser steps per measurement")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--max-len", type=int, default=128, help="token budget of every text, both sides")
    p.add_argument("--rounds", type=int, default=2, help="alternating jude/baseline measurements")
    p.add_argument("--worker", choices=["jude", "baseline"], help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        out = run_jude(args) if args.worker == "jude" else run_baseline(args)
        print("RESULT " + json.dumps(out))
        return

    results: dict[str, list[dict]] = {"jude": [], "baseline": []}
    for r in range(args.rounds):
        for side in ("baseline", "jude"):
            cmd = [sys.executable, __file__, "--worker", side, "--steps", str(args.steps), "--warmup",
                   str(args.warmup), "--batch-size", str(args.batch_size), "--max-len", str(args.max_len)]
            proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
            line = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
            if proc.returncode != 0 or not line:
                sys.exit(f"{side} run failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
            res = json.loads(line[-1][7:])
            results[side].append(res)
            print(f"round {r + 1} {side:9s} {res['pairs_per_s']:7.2f} pairs/s  peak RSS {res['peak_rss_mb']:7.0f} MB",
                  flush=True)
    med = {s: statistics.median(x["pairs_per_s"] for x in v) for s, v in results.items()}
    rss = {s: max(x["peak_rss_mb"] for x in v) for s, v in results.items()}
    print()
    print(f"command: python bench/train_throughput.py --steps {args.steps} --warmup {args.warmup} "
          f"--batch-size {args.batch_size} --max-len {args.max_len} --rounds {args.rounds}")
    print(f"model: all-MiniLM-L6-v2 (packaged), batch {args.batch_size} triplets, {args.max_len} tokens per text, "
          f"{os.cpu_count()} CPU cores, torch threads {__import__('torch').get_num_threads()}")
    print(f"{'':28s}{'pairs/s (median)':>18s}{'peak RSS MB':>14s}")
    print(f"{'sentence-transformers MNRL':28s}{med['baseline']:18.2f}{rss['baseline']:14.0f}")
    print(f"{'jude (LoRA, full suite)':28s}{med['jude']:18.2f}{rss['jude']:14.0f}")
    print(f"memory ratio (jude / baseline): {rss['jude'] / rss['baseline']:.3f}")
    print(f"ratio: {med['jude'] / med['baseline']:.3f}")


if __name__ == "__main__":
    main()
