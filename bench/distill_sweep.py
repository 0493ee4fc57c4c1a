"""Choose the teacher's and the distillation's hyper-parameters on the VALIDATION members, and time every stage.

    .venv/bin/python bench/distill_sweep.py --config configs/train.yaml \\
        --teacher-lrs 5e-5 1e-4 2e-4 --distill-lrs 3e-4 1e-3 3e-3 --out bench/results/distill_sweep

What the default chain runs (``configs/train.yaml``: fine-tune -> teacher on the fine-tuned hard negatives ->
offline scoring -> distillation), at the config's sizes (or those given), with a small grid: one teacher per
``--teacher-lrs`` (each reranking the fine-tuned top ``ablation.rerank_k``, and the top ``--rerank-ks``), then
one distillation per ``--distill-lrs`` from the chosen teacher. The choice follows a rule fixed before any
run: the config's rate stays unless another rate beats it on the validation members with the paired 95 %
bootstrap interval of the nDCG@10 difference above zero (then the best of those). Every model is scored on
the validation members only (``split.val``, judge nDCG@10, pooled over every row), never on the test members,
so what it picks can be put in a config without tuning on the test set. It also prints the measured seconds
per step of each stage, the basis of the time budget of ``make train``. Writes ``results.json`` under ``--out``.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from quality_common import prepare, start  # noqa: E402

from jude.evaluation.assemble import score_runs  # noqa: E402
from jude.evaluation.paired import compare_runs, mean_interval, paired_bootstrap, per_query_scores  # noqa: E402
from jude.evaluation.retrieval import retrieve  # noqa: E402
from jude.labels.judges import make_judge  # noqa: E402
from jude.modeling.cross_encoder import CrossEncoderTeacher, rerank  # noqa: E402
from jude.modeling.embedder import Embedder  # noqa: E402
from jude.training.distill import distill_embedder, teacher_candidate_scores  # noqa: E402
from jude.training.teacher import check_teacher, finetuned_top_k, train_cross_encoder  # noqa: E402
from jude.training.trainer import train_embedder  # noqa: E402


def _arguments(ap) -> None:
    ap.add_argument("--n-jobs", type=int, help="synthetic jobs (default: the config's)")
    ap.add_argument("--n-members", type=int, help="synthetic members (default: the config's)")
    ap.add_argument("--budget", type=int, help="judged pairs (default: the config's)")
    ap.add_argument("--finetune-steps", type=int, help="fine-tuning steps (default: the config's)")
    ap.add_argument("--teacher-steps", type=int, help="teacher steps (default: the config's; 0: its epochs)")
    ap.add_argument("--teacher-lrs", type=float, nargs="+", help="teacher learning rates to try")
    ap.add_argument("--distill-steps", type=int, help="distillation steps (default: the config's; 0: its epochs)")
    ap.add_argument("--distill-lrs", type=float, nargs="+", help="distillation learning rates to try")
    ap.add_argument("--rerank-ks", type=int, nargs="*", default=[20], help="teacher rerank depths beside the config's")
    ap.add_argument(
        "--distill-variants",
        nargs="+",
        metavar="LR:W",
        help=(
            "distillations to try as rate:infonce_weight[:steps] (e.g. 3e-3:0.1 3e-3:1 3e-3:1:81; steps default "
            "to --distill-steps or the config's); replaces --distill-lrs"
        ),
    )


def main() -> None:
    run = start(__doc__, "configs/train.yaml", "/tmp/jude-distill-sweep", _arguments)
    args, out, lap = run.args, run.out, run.lap
    cfg = run.cfg
    synth = cfg.data.synthetic.model_copy(
        update={k: v for k, v in {"n_jobs": args.n_jobs, "n_members": args.n_members}.items() if v}
    )
    cfg = cfg.model_copy(
        update={
            "data": cfg.data.model_copy(update={"synthetic": synth}),
            "labels": cfg.labels.model_copy(update={"budget": args.budget or cfg.labels.budget}),
            "train": cfg.train.model_copy(update={"max_steps": args.finetune_steps or cfg.train.max_steps}),
        }
    )
    times: dict[str, float] = {}
    m, split, base = prepare(cfg)
    val = split.val
    lap(f"data and labels: {split.stats}")

    t = time.time()
    ft = train_embedder(
        split.pairs, split.train_jobs, m.members, cfg.model, cfg.lora, cfg.train, out / "finetuned",
        loss_cfg=cfg.loss, scale=cfg.scale, show_progress=False,
    )  # fmt: skip
    times["finetune_s_per_step"] = (time.time() - t) / ft.stats["steps"]
    finetuned = Embedder.load(ft.model_dir)
    lap(f"fine-tuned {ft.stats['steps']} steps: {times['finetune_s_per_step']:.2f} s/step (incl. validation)")

    judge = make_judge(cfg.labels)
    rk = cfg.ablation.rerank_k
    t = time.time()
    mined = finetuned_top_k(finetuned, split.pairs, split.train_jobs, m.members, cfg.teacher.hard_negatives_k)
    times["mine_s"] = time.time() - t
    ft_run = retrieve(finetuned, val, k=100)
    runs = {"base": retrieve(base, val, k=100), "finetuned": ft_run}
    teacher_lrs = args.teacher_lrs or [cfg.teacher.learning_rate]
    teachers, checks = {}, {}
    teacher_steps = _steps(args.teacher_steps, cfg.teacher)
    for lr in teacher_lrs:
        tcfg = cfg.teacher.model_copy(update={"learning_rate": lr, "max_steps": teacher_steps})
        t = time.time()
        tres = train_cross_encoder(
            split.pairs, split.train_jobs, m.members, tcfg, out / f"teacher_lr{lr:g}",
            template_style=cfg.model.template_style, show_progress=False, mined=mined,
        )  # fmt: skip
        times["teacher_s_per_step"] = (time.time() - t) / tres.stats["steps"]
        teachers[lr] = CrossEncoderTeacher.load(tres.model_dir)
        t = time.time()
        checks[lr] = check_teacher(finetuned, teachers[lr], val, judge, cfg.eval, cfg.labels.relevant_grade, rk)
        times["teacher_check_s"] = time.time() - t
        for k in sorted({rk, *args.rerank_ks}):
            runs[f"teacher_lr{lr:g}_top{k}"] = rerank(teachers[lr], ft_run, val, k=k, show_progress=False)
        origins = {k: v for k, v in tres.stats.items() if "negatives" in k}
        lap(f"teacher lr {lr:g} ({tres.stats['steps']} steps, {times['teacher_s_per_step']:.2f} s/step): "
            f"{checks[lr].summary()}; negatives {json.dumps(origins)}")  # fmt: skip

    def pooled_table():
        return score_runs(runs, val, cfg.eval, 2, judge, qrels="pooled")  # the pipeline's scoring, always pooled

    teacher_default = cfg.teacher.learning_rate
    best_teacher = _choose(
        pooled_table(),
        runs,
        {lr: f"teacher_lr{lr:g}_top{rk}" for lr in teacher_lrs},
        teacher_default,
        "teacher lr",
        lap,
    )
    teacher = teachers[best_teacher]

    t = time.time()
    scores = teacher_candidate_scores(
        finetuned, teacher, split.pairs, split.train_jobs, m.members, cfg.distill.candidates_k
    )
    times["teacher_scoring_pairs_per_s"] = len(scores) / (time.time() - t)
    lap(f"teacher scored {len(scores)} pairs: {times['teacher_scoring_pairs_per_s']:.1f} pairs/s")

    w0 = cfg.distill.infonce_weight
    distill_steps = _steps(args.distill_steps, cfg.distill)
    variants = _variants(args.distill_variants, args.distill_lrs, cfg.distill.learning_rate, w0, distill_steps)
    names = {}
    for lr, w, steps in variants:
        dcfg = cfg.distill.model_copy(update={"learning_rate": lr, "max_steps": steps, "infonce_weight": w})
        name = f"distilled_lr{lr:g}" + (f"_w{w:g}" if args.distill_variants else "")
        name += f"_s{steps}" if steps != distill_steps else ""
        t = time.time()
        dres = distill_embedder(
            ft.model_dir, scores, split.train_jobs, m.members, cfg.model, cfg.lora, cfg.train, dcfg,
            out / name, pairs=split.pairs, measure=False, show_progress=False,
        )  # fmt: skip
        times["distill_s_per_step"] = (time.time() - t) / dres.stats["steps"]
        runs[name] = retrieve(Embedder.load(dres.model_dir), val, k=100)
        names[(lr, w, steps)] = name
        lap(f"{name}: {dres.stats['steps']} steps, {times['distill_s_per_step']:.2f} s/step")

    table = pooled_table()
    if args.distill_variants:
        default = (cfg.distill.learning_rate, w0, distill_steps)
        best_distill = _choose_keeping_the_tail(table, runs, names, default, cfg, lap)
    else:
        best_distill = _choose(
            table,
            runs,
            {lr: names[(lr, w0, distill_steps)] for lr, _, _ in variants},
            cfg.distill.learning_rate,
            "distill lr",
            lap,
        )
    relevant = table.judged.relevant
    per_query = {name: per_query_scores(run, relevant) for name, run in runs.items()}
    recall = {name: per_query_scores(run, relevant, "recall@100") for name, run in runs.items()}
    intervals = {}
    print(f"\nvalidation members: {len(val.queries)} (judge nDCG@10 and recall@100 pooled over every row, the 95 %")
    print("interval over members, and the paired difference against the fine-tuned model)")
    for name, metrics in table.results.items():
        _, low, high = mean_interval(per_query[name])
        d = paired_bootstrap(per_query[name], per_query["finetuned"])
        _, rlow, rhigh = mean_interval(recall[name])
        rd = paired_bootstrap(recall[name], recall["finetuned"])
        intervals[name] = {
            "ci_low": low,
            "ci_high": high,
            "vs_finetuned": vars(d),
            "recall_at_100": metrics["recall_at_100"],
            "recall_ci": [rlow, rhigh],
            "recall_vs_finetuned": vars(rd),
        }
        print(f"{name:24s} nDCG@10 {metrics['ndcg_at_10']:.4f} [{low:.4f}, {high:.4f}] "
              f"vs fine-tuned {d.delta:+.4f} [{d.ci_low:+.4f}, {d.ci_high:+.4f}] | recall@100 "
              f"{metrics['recall_at_100']:.4f} [{rlow:.4f}, {rhigh:.4f}] vs fine-tuned {rd.delta:+.4f} "
              f"[{rd.ci_low:+.4f}, {rd.ci_high:+.4f}]")  # fmt: skip
    print("seconds:", json.dumps({k: round(v, 2) for k, v in times.items()}))
    (out / "results.json").write_text(
        json.dumps(
            {
                "val_queries": len(val.queries),
                "val_ndcg_at_10": {k: v["ndcg_at_10"] for k, v in table.results.items()},
                "val_recall_at_100": {k: v["recall_at_100"] for k, v in table.results.items()},
                "intervals": intervals,
                "teacher_checks": {str(lr): vars(c) for lr, c in checks.items()},
                "chosen": {"teacher_lr": best_teacher, "distill": best_distill},
                "config": {
                    "teacher_lr": teacher_default,
                    "distill_lr": cfg.distill.learning_rate,
                    "infonce_weight": w0,
                    "candidates_k": cfg.distill.candidates_k,
                },
                "times": times,
                "split": split.stats,
            },
            indent=2,
            default=str,
        )
    )


def _steps(given: int | None, section) -> int | None:
    """max_steps for a stage: the config's when not given, None (the section's epochs) for 0, else ``given``.
    (Until 2026-11-28 a missing flag meant None, so the sweep trained a full epoch, not the config's steps.)"""
    if given is None:
        return section.max_steps
    return given or None


def _variants(
    given: list[str] | None, lrs: list[float] | None, lr0: float, w0: float, steps0: int | None = None
) -> list[tuple[float, float, int | None]]:
    """(rate, infonce_weight, max_steps) triples: ``--distill-variants`` as ``LR:W[:STEPS]``, else
    ``--distill-lrs`` at the config's weight, else the config's own rate; steps default to ``steps0``."""
    if not given:
        return [(lr, w0, steps0) for lr in (lrs or [lr0])]
    out = []
    for g in given:
        parts = g.split(":")
        try:
            if not 1 <= len(parts) <= 3:
                raise ValueError
            lr = float(parts[0])
            w = float(parts[1]) if len(parts) > 1 else w0
            steps = int(parts[2]) if len(parts) > 2 else steps0
            if steps is not None and steps <= 0:
                raise ValueError
        except ValueError:
            raise SystemExit(
                f"--distill-variants: {g!r} is not RATE:WEIGHT[:STEPS] with STEPS a positive integer "
                "(e.g. 3e-3:0.1 or 3e-3:1:81)"
            ) from None
        out.append((lr, w, steps))
    return out


def _keeps_the_tail(table, runs, name: str, cfg, lap) -> bool:
    """Whether variant ``name`` qualifies under the tail rule (see :func:`_choose_keeping_the_tail`)."""
    from jude.evaluation.rule import decide, judged_queries

    relevant = table.judged.relevant
    passes, why = decide(
        table.results[name], table.results["base"], cfg.promotion, judged_queries(relevant), "base model", "val"
    )
    rd = compare_runs(runs[name], runs["finetuned"], relevant, metric="recall@100")
    keeps = rd.ci_high >= 0
    lap(f"{name}: rule vs base {'passes' if passes else 'fails'} ({why}); recall@100 vs fine-tuned "
        f"{rd.delta:+.4f} [{rd.ci_low:+.4f}, {rd.ci_high:+.4f}] ({'kept' if keeps else 'lost'})")  # fmt: skip
    return passes and keeps


def _choose_keeping_the_tail(table, runs, names: dict, default: tuple, cfg, lap):
    """The rule for distillation that keeps the tail, fixed before the run (issue: the distilled model lost
    recall@100 to the base and fine-tuned models): a variant qualifies when it passes the promotion rule against
    the base model on validation (jude.evaluation.rule: nDCG@10 gain, recall@100 guard) and its recall@100 is not
    below the fine-tuned model's beyond the paired 95 % interval (the interval's top is >= 0). Among those, the
    highest nDCG@10; none qualifying, None (selection would then register the fine-tuned model)."""
    ok = {
        key: table.results[name]["ndcg_at_10"]
        for key, name in names.items()
        if _keeps_the_tail(table, runs, name, cfg, lap)
    }
    choice = max(ok, key=ok.get) if ok else None
    lap(f"distillation: {names[choice] if choice else 'none qualifies'} (config: {names.get(default, default)})")
    return choice


def _choose(table, runs, names: dict[float, str], default: float, what: str, lap) -> float:
    """The rule, fixed before any run: keep the config's rate ``default`` unless another rate beats it on the
    validation members with the paired 95 % interval of the nDCG@10 difference above zero; among those, the
    best by nDCG@10. Without ``default`` among the rates tried, the best by nDCG@10."""
    ndcg = {lr: table.results[name]["ndcg_at_10"] for lr, name in names.items()}
    if default not in names:
        choice = max(ndcg, key=ndcg.get)
        lap(f"{what}: {choice:g} (best on validation; the config's {default:g} was not tried)")
        return choice
    relevant = table.judged.relevant
    winners = {}
    for lr, name in names.items():
        if lr == default:
            continue
        d = compare_runs(runs[name], runs[names[default]], relevant)
        lap(f"{what} {lr:g} vs {default:g} (validation nDCG@10): {d.delta:+.4f} [{d.ci_low:+.4f}, {d.ci_high:+.4f}]")
        if d.above_zero:
            winners[lr] = ndcg[lr]
    choice = max(winners, key=winners.get) if winners else default
    why = "beats the config's value on validation" if winners else "the config's value kept: none beats it"
    lap(f"{what}: {choice:g} ({why})")
    return choice


if __name__ == "__main__":
    main()
