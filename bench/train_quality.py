"""Fine-tuned vs base nDCG@10 on a train config, over several training seeds, under three relevance judgements.

    .venv/bin/python bench/train_quality.py --config configs/train.yaml --seeds 0 1 2

The data, labels and held-out split are made once, exactly as the train pipeline
makes them (same core functions, no ZenML); then one model is fine-tuned per
``train.seed`` (LoRA initialisation, batch order, negatives) and every model and
the base model are scored on the same test members with

- ``labelled``: the label budget's judgements plus test applies (biased towards
  the base model, whose top-k the budget sampled);
- ``pooled``: plus the judge's grades of the top ``eval.pool_depth`` of every
  model compared (what the pipeline logs; ``jude/evaluation/pooling.py``);
- ``exhaustive``: the rubric judge grades every (test member, job) pair: the
  complete truth of the synthetic marketplace, affordable only because the
  rubric is free.

Prints one row per seed, the mean and sample standard deviation of each ratio, and
ends with ``ratio: <mean pooled ratio>``. Writes ``results.json`` under ``--out``.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from quality_common import prepare, score_variants, start  # noqa: E402

from jude.evaluation.retrieval import retrieve  # noqa: E402
from jude.modeling.embedder import Embedder  # noqa: E402
from jude.training.trainer import train_embedder  # noqa: E402


def main() -> None:
    run = start(
        __doc__,
        "configs/train.yaml",
        "/tmp/jude-train-quality",
        lambda ap: ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2]),
    )
    args, cfg, out, lap = run.args, run.cfg, run.out, run.lap

    m, split, base = prepare(cfg)
    jobs, members = split.train_jobs, m.members  # training sees only the jobs posted before t_val
    test = split.test
    lap(f"data and labels: {split.stats}")

    runs = {"base": retrieve(base, test)}
    for seed in args.seeds:
        train = cfg.train.model_copy(update={"seed": seed})
        res = train_embedder(
            split.pairs,
            jobs,
            members,
            cfg.model,
            cfg.lora,
            train,
            out / f"seed{seed}",
            loss_cfg=cfg.loss,
            scale=cfg.scale,
        )
        runs[f"seed{seed}"] = retrieve(Embedder.load(res.model_dir), test)
        lap(f"seed {seed}: {res.stats['steps']} steps")

    scores = score_variants(test, runs, cfg)  # judgement -> variant -> metrics
    qrels = list(scores)

    print(
        f"\n{len(test.queries)} test queries; {split.stats['train_positives']} positive training pairs; "
        f"{cfg.train.max_steps or '-'} steps of batch {cfg.train.batch_size}; pool depth {cfg.eval.pool_depth}"
    )
    print(f"{'nDCG@10':<10}" + "".join(f"{n:>12}" for n in qrels) + "".join(f"{n + ' x':>14}" for n in qrels))
    ratios: dict[str, list[float]] = {n: [] for n in qrels}
    for v in runs:
        row = f"{v:<10}" + "".join(f"{scores[n][v]['ndcg_at_10']:>12.4f}" for n in qrels)
        if v != "base":
            for n in qrels:
                ratios[n].append(scores[n][v]["ndcg_at_10"] / scores[n]["base"]["ndcg_at_10"])
            row += "".join(f"{ratios[n][-1]:>14.3f}" for n in qrels)
        print(row)
    summary = {
        n: {"mean": statistics.mean(r), "std": statistics.stdev(r) if len(r) > 1 else 0.0, "min": min(r), "max": max(r)}
        for n, r in ratios.items()
    }
    for n, s in summary.items():
        print(
            f"fine-tuned / base nDCG@10 ({n}): mean {s['mean']:.3f}, std {s['std']:.3f} "
            f"(min {s['min']:.3f}, max {s['max']:.3f}) over {len(args.seeds)} seeds"
        )
    print(f"(total {time.time() - run.t0:.0f}s; {' '.join(sys.argv)})")
    (out / "results.json").write_text(
        json.dumps(
            {
                "config": args.config,
                "seeds": args.seeds,
                "scores": scores,
                "ratios": ratios,
                "summary": summary,
                "split": split.stats,
            },
            indent=2,
            default=str,
        )
    )
    print(f"ratio: {summary['pooled']['mean']:.3f}")


if __name__ == "__main__":
    main()
