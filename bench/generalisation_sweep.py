"""Training that keeps general ability, chosen on the VALIDATION members: LoRA rank, general text, teacher's reach.

    .venv/bin/python bench/generalisation_sweep.py --config configs/train.yaml \\
        --lora-ranks 4 16 --candidates-ks 10 20 --out bench/results/generalisation_sweep

The default chain (``configs/train.yaml``: fine-tune -> teacher on the fine-tuned hard negatives -> offline
scoring -> distillation) with three choices varied, each by a rule fixed before the run and applied on the
validation members only (``split.val``, judge nDCG@10 pooled over every row, as ``bench/distill_sweep.py``):

- ``--lora-ranks``: one fine-tune per LoRA rank (alpha = 2 x rank, so the LoRA scale alpha / r stays the config's
  2). Fewer trainable directions keep the model nearer the base; more let it fit the generator. The config's rank
  stays unless another rank beats it with the paired 95 % interval of the nDCG@10 difference above zero. The
  chosen fine-tuned model feeds the teacher and the distillation.
- ``--candidates-ks``: the teacher's reach, how far down the fine-tuned model's list the teacher's scores go
  (``distill.candidates_k``): the teacher scores the top max(K) once and each distillation learns from the top K.
  A K qualifies as in ``distill_sweep.py`` (passes the promotion rule against the base model on validation and
  keeps recall@100 within the paired interval of the fine-tuned model's); the config's K stays unless a
  qualifying K beats it on nDCG@10 with the paired interval above zero.
- ``--general-mixes``: ``train.general_mix`` weights tried at the chosen rank (``jude.training.general``: an
  InfoNCE term over a batch of general text pairs, O*NET titles and descriptions outside every jude world and
  evaluation set, beside each fine-tuning step). The config's weight stays unless another beats it as above.
- ``--fine-tune-only``: stop after the fine-tune choices (no teacher, no distillation) and measure those.

Every model is then MEASURED, never chosen on, against what lies outside validation: the in-world truth (test
members, nDCG@10), the test period's applies (recall@100), the unseen world (nDCG@10), each paired against the
base model over its queries, and the foreign set (``jude/data/foreign``, pairwise accuracy paired over its
members). Writes ``results.json`` under ``--out`` and prints one table.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from distill_sweep import _choose, _keeps_the_tail  # noqa: E402
from quality_common import prepare, start  # noqa: E402

from jude.evaluation.assemble import score_runs  # noqa: E402
from jude.evaluation.foreign import embedder_entity_fns, load_foreign_set, paired_foreign, score_foreign  # noqa: E402
from jude.evaluation.paired import compare_runs, mean_interval, per_query_scores  # noqa: E402
from jude.evaluation.retrieval import retrieve  # noqa: E402
from jude.evaluation.truths import APPLIES, TRUTH, attach_truths  # noqa: E402
from jude.labels.judges import make_judge  # noqa: E402
from jude.modeling.cross_encoder import CrossEncoderTeacher  # noqa: E402
from jude.modeling.embedder import Embedder  # noqa: E402
from jude.training.distill import distill_embedder, teacher_candidate_scores  # noqa: E402
from jude.training.teacher import check_teacher, finetuned_top_k, train_cross_encoder  # noqa: E402
from jude.training.trainer import train_embedder  # noqa: E402


def _arguments(ap) -> None:
    ap.add_argument("--lora-ranks", type=int, nargs="+", help="LoRA ranks of the fine-tune (default: the config's)")
    ap.add_argument(
        "--candidates-ks", type=int, nargs="+", help="teacher's reach: distill.candidates_k values (default: config's)"
    )
    ap.add_argument(
        "--general-mixes",
        type=float,
        nargs="+",
        help="train.general_mix weights tried at the chosen rank (general text beside each step; default: config's)",
    )
    ap.add_argument(
        "--fine-tune-only",
        action="store_true",
        help="stop after the fine-tune choices (no teacher, no distillation); measure the fine-tuned models",
    )


def reach_subsets(scores, ks: list[int]) -> dict[int, object]:
    """The teacher's scores of each member's top K candidates, for every K in ``ks``, from the scores of the top
    max(K) (``score_candidates`` keeps the candidates' order, best first)."""
    if min(ks) < 2:
        raise SystemExit(f"--candidates-ks: every K must be at least 2 (distill.candidates_k), got {min(ks)}")
    rank = scores.groupby("member_id", sort=False).cumcount()
    return {k: scores[rank < k].reset_index(drop=True) for k in ks}


def guard_figures(models: dict, test, fs, resamples: int = 1000) -> dict[str, dict]:
    """Every model on what validation does not see, each paired against ``models['base']``."""
    runs = {name: retrieve(m, test, k=100) for name, m in models.items()}
    unseen = {name: retrieve(m, test.unseen, k=100) for name, m in models.items()} if test.unseen else {}
    foreign = {name: score_foreign(*embedder_entity_fns(m), fs, resamples=resamples) for name, m in models.items()}
    out: dict[str, dict] = {}
    measures = [("truth_ndcg_at_10", runs, test.truths[TRUTH], "ndcg@10")]
    measures.append(("applies_recall_at_100", runs, test.truths[APPLIES], "recall@100"))
    if unseen:
        measures.append(("unseen_ndcg_at_10", unseen, test.unseen.relevant, "ndcg@10"))
    for name in models:
        row: dict[str, dict] = {}
        for key, rs, relevant, metric in measures:
            value, low, high = mean_interval(per_query_scores(rs[name], relevant, metric), resamples=resamples)
            d = compare_runs(rs[name], rs["base"], relevant, metric=metric, resamples=resamples)
            row[key] = {"value": value, "ci": [low, high], "vs_base": [d.delta, d.ci_low, d.ci_high]}
        f = foreign[name]
        d = paired_foreign(f, foreign["base"], resamples=resamples)
        row["foreign_pairwise_accuracy"] = {
            "value": f["pairwise_accuracy"],
            "ci": [f["ci_low"], f["ci_high"]],
            "vs_base": [d["delta"], d["ci_low"], d["ci_high"]],
        }
        out[name] = row
    return out


def main() -> None:
    run = start(__doc__, "configs/train.yaml", "/tmp/jude-generalisation-sweep", _arguments)
    args, out, lap, cfg = run.args, run.out, run.lap, run.cfg
    ranks = args.lora_ranks or [cfg.lora.r]
    ks = args.candidates_ks or [cfg.distill.candidates_k]
    times: dict[str, float] = {}
    m, split, base = prepare(cfg)
    val = split.val
    test = attach_truths(split.test, m.jobs, m.members, m.interactions, split.t_test, cfg.data, cfg.eval)
    lap(f"data and labels: {split.stats}")

    judge = make_judge(cfg.labels)
    runs = {"base": retrieve(base, val, k=100)}
    models = {"base": base}
    ft_dirs = {}
    default_mix = cfg.train.general_mix
    mixes = args.general_mixes or [default_mix]

    def finetune(r: int, mix: float) -> str:
        lora = cfg.lora.model_copy(update={"r": r, "alpha": 2 * r})
        name = f"finetuned_r{r}" if mix == default_mix else f"finetuned_r{r}_mix{mix:g}"
        t = time.time()
        ft = train_embedder(
            split.pairs, split.train_jobs, m.members, cfg.model, lora,
            cfg.train.model_copy(update={"general_mix": mix}), out / name,
            loss_cfg=cfg.loss, scale=cfg.scale, show_progress=False,
        )  # fmt: skip
        times[f"{name}_s"] = time.time() - t
        ft_dirs[name], models[name] = ft.model_dir, Embedder.load(ft.model_dir)
        runs[name] = retrieve(models[name], val, k=100)
        lap(f"{name}: {ft.stats['steps']} steps in {times[f'{name}_s']:.0f} s")
        return name

    def pooled_table():
        return score_runs(runs, val, cfg.eval, cfg.labels.relevant_grade, judge, qrels="pooled")

    by_rank = {r: finetune(r, default_mix) for r in ranks}
    rank = _choose(pooled_table(), runs, by_rank, cfg.lora.r, "LoRA rank", lap)
    by_mix = {default_mix: by_rank[rank]} | {x: finetune(rank, x) for x in mixes if x != default_mix}
    mix = _choose(pooled_table(), runs, by_mix, default_mix, "general_mix", lap) if len(by_mix) > 1 else default_mix
    chosen_ft = by_mix[mix]
    finetuned = models[chosen_ft]
    runs["finetuned"] = runs[chosen_ft]  # what the distillation rule's tail is kept against
    check, reach, default_k = None, None, cfg.distill.candidates_k
    if args.fine_tune_only:
        table = pooled_table()
        lap("--fine-tune-only: no teacher, no distillation")
    else:
        t = time.time()
        mined = finetuned_top_k(finetuned, split.pairs, split.train_jobs, m.members, cfg.teacher.hard_negatives_k)
        tres = train_cross_encoder(
            split.pairs, split.train_jobs, m.members, cfg.teacher, out / "teacher",
            template_style=cfg.model.template_style, show_progress=False, mined=mined,
        )  # fmt: skip
        teacher = CrossEncoderTeacher.load(tres.model_dir)
        check = check_teacher(
            finetuned, teacher, val, judge, cfg.eval, cfg.labels.relevant_grade, cfg.ablation.rerank_k
        )
        times["teacher_s"] = time.time() - t
        lap(f"teacher ({tres.stats['steps']} steps): {check.summary()}")

        t = time.time()
        all_scores = teacher_candidate_scores(finetuned, teacher, split.pairs, split.train_jobs, m.members, max(ks))
        times["teacher_scoring_s"] = time.time() - t
        lap(f"teacher scored {len(all_scores)} pairs (top {max(ks)}) in {times['teacher_scoring_s']:.0f} s")

        names = {}
        for k, scores in reach_subsets(all_scores, ks).items():
            name = f"distilled_k{k}"
            dcfg = cfg.distill.model_copy(update={"candidates_k": k, "group_size": min(cfg.distill.group_size, k)})
            t = time.time()
            dres = distill_embedder(
                ft_dirs[chosen_ft], scores, split.train_jobs, m.members, cfg.model, cfg.lora, cfg.train, dcfg,
                out / name, pairs=split.pairs, measure=False, show_progress=False,
            )  # fmt: skip
            times[f"{name}_s"] = time.time() - t
            models[name] = Embedder.load(dres.model_dir)
            runs[name] = retrieve(models[name], val, k=100)
            names[k] = name
            lap(f"{name}: {dres.stats['steps']} steps in {times[f'{name}_s']:.0f} s ({len(scores)} teacher scores)")

        table = pooled_table()
        qualifying = {k for k in ks if _keeps_the_tail(table, runs, names[k], cfg, lap)}
        reach = default_k if default_k in qualifying else None
        ndcg = {k: table.results[names[k]]["ndcg_at_10"] for k in qualifying}
        winners = [
            k
            for k in qualifying - {default_k}
            if default_k not in names
            or compare_runs(runs[names[k]], runs[names[default_k]], table.judged.relevant).above_zero
        ]
        if winners:
            reach = max(winners, key=ndcg.get)
        lap(f"teacher's reach: {reach} (config: {default_k}; qualifying: {sorted(qualifying)})")

    relevant = table.judged.relevant
    validation = {}
    for name, metrics in table.results.items():
        if name == "finetuned":
            continue
        nd = compare_runs(runs[name], runs["base"], relevant)
        rc = compare_runs(runs[name], runs["base"], relevant, metric="recall@100")
        validation[name] = {
            "ndcg_at_10": metrics["ndcg_at_10"],
            "ndcg_vs_base": [nd.delta, nd.ci_low, nd.ci_high],
            "recall_at_100": metrics["recall_at_100"],
            "recall_vs_base": [rc.delta, rc.ci_low, rc.ci_high],
        }
    t = time.time()
    guards = guard_figures(models, test, load_foreign_set())
    times["guards_s"] = time.time() - t
    lap("measured every model on the truth, applies, the unseen world and the foreign set")

    print(f"\nchosen on {len(val.queries)} validation members: LoRA rank {rank} (config {cfg.lora.r}), general_mix "
          f"{mix:g} (config {default_mix:g}), teacher's reach "
          f"{'not run' if args.fine_tune_only else reach} (config {default_k}).")  # fmt: skip
    print("Measured (never chosen on): value, then minus base [paired 95 %]")
    cols = ["truth_ndcg_at_10", "applies_recall_at_100", "unseen_ndcg_at_10", "foreign_pairwise_accuracy"]
    print(f"{'model':22s} {'val nDCG@10':>11s} " + " ".join(f"{c:>34s}" for c in cols))
    for name, row in guards.items():
        v = validation.get(name, {}).get("ndcg_at_10", float("nan"))
        cells = []
        for c in cols:
            if c in row:
                g = row[c]
                cells.append(
                    f"{g['value']:.3f} {g['vs_base'][0]:+.3f} [{g['vs_base'][1]:+.3f}, {g['vs_base'][2]:+.3f}]"
                )
            else:
                cells.append("-")
        print(f"{name:22s} {v:11.4f} " + " ".join(f"{c:>34s}" for c in cells))
    print("seconds:", json.dumps({k: round(v, 1) for k, v in times.items()}))
    (out / "results.json").write_text(
        json.dumps(
            {
                "val_queries": len(val.queries),
                "test_queries": {t: sum(1 for r in rel.values() if r) for t, rel in test.truths.items()},
                "validation": validation,
                "measured": guards,
                "chosen": {"lora_rank": rank, "general_mix": mix, "candidates_k": reach},
                "config": {"lora_rank": cfg.lora.r, "general_mix": default_mix, "candidates_k": default_k},
                "teacher_check": vars(check) if check else None,
                "times": times,
                "split": split.stats,
            },
            indent=2,
            default=str,
        )
    )


if __name__ == "__main__":
    main()
