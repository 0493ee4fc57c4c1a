"""The decoder embedder against MiniLM: training step time, peak memory and encoding speed, same data and batch.

    python bench/decoder_bench.py [--models minilm .jude/models/smollm2-135m-instruct] [--steps 6] [--warmup 2]
                                  [--batch-size 16] [--max-len 96] [--rounds 1] [--quick] [--allow-load]

Each model trains with jude's trainer (``jude.training.trainer.train_embedder``: LoRA r=16 on Q/K/V, InfoNCE with
in-batch and one judged hard negative per pair) on the same (member profile, job, hard-negative job) triplets of
the synthetic marketplace, at the same batch size and token limit; an encoder (MiniLM) with its plain templates
and mean pooling, a decoder with the instruct templates, last-token pooling, EOS appended and left padding
(``configs/train_decoder.yaml``). Each model runs in its own subprocess, so its peak RSS is its own. Measured:

- ``step_s``: median seconds per optimiser step after ``--warmup`` steps;
- ``peak_rss_mb`` (the whole process: weights, optimiser state, activations) and ``load_rss_mb`` (after loading);
- ``encode_texts_per_s``: job texts embedded per second (``Embedder.encode``, no graph) at ``--max-len``;
- ``params`` and ``trainable_params``.

The first model is the baseline: the last lines are ``step time ratio <model> / <baseline>: <x>`` and the same
for memory. The load average is printed before and after; above 1.0 at the start the bench refuses to measure
(the ratio of two runs on shared cores says little) unless ``--allow-load`` is given, and the JSON records it.
Results go to ``bench/results/decoder/<UTC time>.json``. ``--quick``: 3 steps, 1 warm-up, batch 8, 16 texts
encoded (a check that it runs, not a measurement).

``--finetune [--config configs/train_decoder.yaml] [--steps N] [--batch-size B] [--eval-queries Q] [--jobs J]
[--members M] [--no-retrieval] [--register]`` instead fine-tunes the config's model on the config's data (the
train pipeline's data, labels and time split, ``jude.training.data.build_training_data``), scores the base and the
fine-tuned model on the held-out test members (nDCG@10, recall@10/100, MRR@10 on the judged labels and test
applies), and with ``--register`` logs the run and registers the model in MLflow (``jude-embedder``, as the
pipeline does; ``$MLFLOW_TRACKING_URI`` or ``.jude/mlflow.db``) so ``jude serve --model models:/jude-embedder/<n>``
serves it. The flags shrink the run (``--no-retrieval``: labels without the base model's candidates, so no
embedding pass over every job and member); the JSON (``finetune-<UTC time>.json``) records every override.
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
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from results_io import run_info, write_json  # noqa: E402

from jude.env import apply_offline_env  # noqa: E402

apply_offline_env()

MAX_LOAD = 1.0  # load average (1 min) above which the cores are not ours: no measurement without --allow-load
DEFAULT_MODELS = ["minilm", ".jude/models/smollm2-135m-instruct"]
RESULTS = ROOT / "bench" / "results" / "decoder"


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _data(n_pairs: int, seed: int = 0):
    """Positive pairs (rubric-judged) and judged negatives from the synthetic marketplace."""
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
    return m, pd.concat([pos, labels[labels["label"] == 0]], ignore_index=True)


def model_config(base_model: str, max_len: int):
    """MiniLM-style (plain, mean) for an encoder, configs/train_decoder.yaml's options for a decoder."""
    from transformers import AutoConfig

    from jude.config import ModelConfig
    from jude.modeling.model_format import is_decoder_config, resolve_model_path

    path = resolve_model_path(base_model)
    if not Path(path).exists():
        raise SystemExit(f"--models {base_model}: no such model folder (SmolLM2: run `make decoder-model`)")
    decoder = is_decoder_config(AutoConfig.from_pretrained(path))
    return ModelConfig(
        base_model=base_model,
        pooling="lasttoken" if decoder else "mean",
        template_style="instruct" if decoder else "plain",
        max_length_job=max_len,
        max_length_profile=max_len,
        max_length_resume=max_len,
    )


def run_one(base_model: str, args) -> dict:
    """One model, in this process: load, encode, train; the measurements as a dict."""
    import torch

    from jude.config import LoRAConfig, LossConfig, TrainConfig
    from jude.modeling.embedder import Embedder
    from jude.training.trainer import train_embedder

    torch.manual_seed(0)
    steps = args.warmup + args.steps
    m, labels = _data(args.batch_size * steps)
    cfg = model_config(base_model, args.max_len)
    t0 = time.perf_counter()
    embedder = Embedder.trainable(cfg, LoRAConfig())
    load_s = time.perf_counter() - t0
    load_rss = _rss_mb()
    texts = embedder.render("job", m.jobs.head(args.encode_texts))
    embedder.eval()
    t0 = time.perf_counter()
    embedder.encode(texts, args.max_len, batch_size=16)
    encode_s = time.perf_counter() - t0
    embedder.train()
    train = TrainConfig(
        batch_size=args.batch_size,
        max_steps=steps,
        member_views=["profile"],
        hard_negatives=1,
        warmup_ratio=0.0,
        mine_negatives=False,
        use_engagement=False,
        eval_every_steps=0,
    )
    stamps: list[float] = []

    def log(rec: dict, step: int) -> None:
        if "train/loss" in rec:
            stamps.append(time.perf_counter())

    with tempfile.TemporaryDirectory() as tmp:
        t_start = time.perf_counter()
        res = train_embedder(
            labels,
            m.jobs,
            m.members,
            cfg,
            LoRAConfig(),
            train,
            Path(tmp) / "m",
            loss_cfg=LossConfig(weights={"infonce": 1.0}),
            log=log,
            show_progress=False,
            embedder=embedder,
        )
    times = [b - a for a, b in zip([t_start, *stamps[:-1]], stamps)][args.warmup :]
    return {
        "model": base_model,
        "model_type": embedder.meta.model_type,
        "pooling": embedder.meta.pooling,
        "template_style": embedder.meta.template_style,
        "params": res.stats["total_params"],
        "trainable_params": res.stats["trainable_params"],
        "load_s": round(load_s, 2),
        "load_rss_mb": round(load_rss, 1),
        "peak_rss_mb": round(_rss_mb(), 1),
        "step_s": round(statistics.median(times), 3) if times else None,
        "step_s_all": [round(t, 3) for t in times],
        "encode_texts_per_s": round(len(texts) / encode_s, 2),
        "final_loss": round(res.final_loss, 4),
        "torch_threads": torch.get_num_threads(),
    }


def finetune(args) -> dict:
    """Fine-tune the config's model on its data, score base and fine-tuned on the test members, maybe register."""
    import torch

    from jude.config import read_pipeline_config
    from jude.evaluation.retrieval import evaluate_embedder, prefixed
    from jude.modeling.embedder import Embedder
    from jude.training.data import build_training_data
    from jude.training.trainer import train_embedder

    cfg = read_pipeline_config("train", args.config)
    overrides = {}
    if args.steps_set:
        overrides["train.max_steps"] = args.steps
    if args.batch_size_set:
        overrides["train.batch_size"] = args.batch_size
    if args.eval_queries:
        overrides["eval.max_queries"] = args.eval_queries
    if args.jobs:
        overrides["data.synthetic.n_jobs"] = args.jobs
    if args.members:
        overrides["data.synthetic.n_members"] = args.members
    if args.no_retrieval:
        overrides["labels.retrieved_fraction"] = 0.0
        overrides["labels.random_fraction"] = cfg.labels.random_fraction + cfg.labels.retrieved_fraction
    raw = cfg.model_dump()
    for key, value in overrides.items():
        node = raw
        *path, leaf = key.split(".")
        for part in path:
            node = node[part]
        node[leaf] = value
    cfg = type(cfg).model_validate(raw)
    torch.manual_seed(cfg.train.seed)
    t0 = time.perf_counter()
    data = build_training_data(cfg)
    t_data = time.perf_counter() - t0
    test = data.split.test
    print(
        f"data: {len(data.split.pairs)} training pairs, {len(test.queries)} test queries, "
        f"{len(test.corpus)} jobs ({t_data:.0f} s)",
        flush=True,
    )
    base = Embedder.from_base(cfg.model)
    t0 = time.perf_counter()
    base_metrics = evaluate_embedder(base, test, batch_size=cfg.eval.batch_size)
    t_eval = time.perf_counter() - t0
    print(f"base: {base_metrics} ({t_eval:.0f} s)", flush=True)
    del base
    stamps: list[float] = []
    out_dir = Path(tempfile.mkdtemp(prefix="jude-decoder-finetune-")) / "model"
    t0 = time.perf_counter()
    res = train_embedder(
        data.split.pairs,
        data.split.train_jobs if data.split.train_jobs is not None else data.market.jobs,
        data.market.members,
        cfg.model,
        cfg.lora,
        cfg.train,
        out_dir,
        loss_cfg=cfg.loss,
        log=lambda rec, step: stamps.append(time.perf_counter()) if "train/loss" in rec else None,
        show_progress=False,
    )
    t_train = time.perf_counter() - t0
    tuned = Embedder.load(out_dir)
    tuned_metrics = evaluate_embedder(tuned, test, batch_size=cfg.eval.batch_size)
    print(f"finetuned: {tuned_metrics}", flush=True)
    losses = [h["train/loss"] for h in res.history if "train/loss" in h]
    step_times = [b - a for a, b in zip(stamps, stamps[1:])]
    metrics = {**prefixed("base", base_metrics), **prefixed("finetuned", tuned_metrics)}
    record = {
        "config": str(args.config),
        "overrides": overrides,
        "base_model": cfg.model.base_model,
        "train_pairs": len(data.split.pairs),
        "test_queries": len(test.queries),
        "test_jobs": len(test.corpus),
        "steps": len(losses),
        "loss_first": losses[0] if losses else None,
        "loss_last": losses[-1] if losses else None,
        "losses": [round(x, 4) for x in losses],
        "train_s": round(t_train, 1),
        "step_s_median": round(statistics.median(step_times), 2) if step_times else None,
        "eval_base_s": round(t_eval, 1),
        "peak_rss_mb": round(_rss_mb(), 1),
        "metrics": metrics,
        "model_dir": str(out_dir),
    }
    if args.register:
        import mlflow

        from jude.registry.mlflow_registry import configure, log_model_version, tag_owner

        configure(experiment="jude-decoder")
        with mlflow.start_run(run_name="decoder-finetune") as run:
            tag_owner()
            mlflow.log_params({"base_model": cfg.model.base_model, "steps": len(losses), **overrides})
            mlflow.log_metrics({k.replace("@", "_at_"): v for k, v in metrics.items()})
            for i, loss in enumerate(losses, 1):
                mlflow.log_metric("train/loss", loss, step=i)
            info = log_model_version(out_dir, "jude-embedder", metrics=metrics, data=f"{args.config} (decoder bench)")
        record.update(mlflow_run_id=run.info.run_id, registered=f"models:/jude-embedder/{info.version}")
        print(
            f"registered models:/jude-embedder/{info.version} (run {run.info.run_id}); serve it with\n"
            f"  jude serve --model models:/jude-embedder/{info.version}",
            flush=True,
        )
    return record


def _loadavg() -> float:
    return os.getloadavg()[0]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=DEFAULT_MODELS, help="the first is the baseline")
    ap.add_argument("--steps", type=int, default=6, help="measured steps per model (after --warmup)")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--max-len", type=int, default=96, help="token limit of every text (both models)")
    ap.add_argument("--encode-texts", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=1, help="alternate the models this many times; medians kept")
    ap.add_argument("--quick", action="store_true", help="3 steps, 1 warm-up, batch 8, 16 texts: runs, measures little")
    ap.add_argument("--allow-load", action="store_true", help=f"measure even with a load average above {MAX_LOAD}")
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument("--child", help=argparse.SUPPRESS)  # run one model here and print its JSON
    ap.add_argument("--finetune", action="store_true", help="fine-tune --config's model and score it (see above)")
    ap.add_argument("--config", type=Path, default=ROOT / "configs" / "train_decoder.yaml")
    ap.add_argument("--eval-queries", type=int, help="--finetune: eval.max_queries")
    ap.add_argument("--jobs", type=int, help="--finetune: data.synthetic.n_jobs")
    ap.add_argument("--members", type=int, help="--finetune: data.synthetic.n_members")
    ap.add_argument("--no-retrieval", action="store_true", help="--finetune: labels without base-model candidates")
    ap.add_argument("--register", action="store_true", help="--finetune: log and register the model in MLflow")
    given = set(argv if argv is not None else sys.argv[1:])
    args = ap.parse_args(argv)
    args.steps_set, args.batch_size_set = "--steps" in given, "--batch-size" in given
    if args.finetune:
        load_before = _loadavg()
        record = {
            **run_info(__file__, argv),
            "load_before": load_before,
            **finetune(args),
            "load_after": _loadavg(),
            "cpu_count": os.cpu_count(),
        }
        record["shared_machine"] = max(record["load_before"], record["load_after"]) > MAX_LOAD
        args.out.mkdir(parents=True, exist_ok=True)
        out = write_json(args.out / f"finetune-{datetime.now(timezone.utc).strftime('%Y%m%dT%H%M%SZ')}.json", record)
        print(f"wrote {out}")
        return 0
    if args.quick:
        args.steps, args.warmup, args.batch_size, args.encode_texts = 3, 1, 8, 16
    if args.child:
        print("RESULT " + json.dumps(run_one(args.child, args)), flush=True)
        return 0

    load_before = _loadavg()
    print(f"load average before: {load_before:.2f}", flush=True)
    if load_before > MAX_LOAD and not args.allow_load:
        print(
            f"load average {load_before:.2f} > {MAX_LOAD}: the cores are shared; rerun on a quiet machine "
            "or pass --allow-load (the numbers are then marked shared)",
            file=sys.stderr,
        )
        return 2
    passthrough = [
        "--steps",
        str(args.steps),
        "--warmup",
        str(args.warmup),
        "--batch-size",
        str(args.batch_size),
        "--max-len",
        str(args.max_len),
        "--encode-texts",
        str(args.encode_texts),
    ]
    runs: dict[str, list[dict]] = {m: [] for m in args.models}
    for _ in range(args.rounds):
        for model in args.models:
            cmd = [sys.executable, __file__, "--child", model, *passthrough]
            proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
            lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
            if proc.returncode != 0 or not lines:
                print(proc.stdout[-2000:] + proc.stderr[-3000:], file=sys.stderr)
                raise SystemExit(f"decoder_bench: {model} failed ({proc.returncode})")
            r = json.loads(lines[-1].removeprefix("RESULT "))
            runs[model].append(r)
            print(
                f"{model}: {r['step_s']} s/step, peak {r['peak_rss_mb']:.0f} MB, "
                f"encode {r['encode_texts_per_s']} texts/s",
                flush=True,
            )
    load_after = _loadavg()
    summary = {}
    for model, rs in runs.items():
        summary[model] = {
            **rs[-1],
            "step_s": statistics.median(r["step_s"] for r in rs),
            "peak_rss_mb": max(r["peak_rss_mb"] for r in rs),
            "encode_texts_per_s": statistics.median(r["encode_texts_per_s"] for r in rs),
        }
    base = args.models[0]
    print(f"\n{'model':40s}{'params':>12s}{'s/step':>9s}{'peak MB':>9s}{'enc/s':>8s}")
    for model, s in summary.items():
        print(f"{model:40s}{s['params']:12,d}{s['step_s']:9.2f}{s['peak_rss_mb']:9.0f}{s['encode_texts_per_s']:8.1f}")
    print(f"load average after: {load_after:.2f}")
    ratios = {}
    for model in args.models[1:]:
        ratios[model] = {
            "step_time": summary[model]["step_s"] / summary[base]["step_s"],
            "peak_memory": summary[model]["peak_rss_mb"] / summary[base]["peak_rss_mb"],
            "encode_speed": summary[model]["encode_texts_per_s"] / summary[base]["encode_texts_per_s"],
        }
        print(f"step time ratio {model} / {base}: {ratios[model]['step_time']:.2f}")
        print(f"peak memory ratio {model} / {base}: {ratios[model]['peak_memory']:.2f}")
    args.out.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    out = args.out / f"{stamp}{'-quick' if args.quick else ''}.json"
    record = {
        **run_info(__file__, argv),
        "settings": {k: v for k, v in vars(args).items() if k not in ("child", "out")},
        "cpu_count": os.cpu_count(),
        "load_before": load_before,
        "load_after": load_after,
        "shared_machine": load_before > MAX_LOAD or load_after > MAX_LOAD,
        "baseline": base,
        "results": summary,
        "rounds": runs,
        "ratios": ratios,
    }
    write_json(out, record)
    print(f"wrote {out.relative_to(ROOT) if out.is_relative_to(ROOT) else out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
