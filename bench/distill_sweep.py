"""Choose the teacher's and the distillation's hyper-parameters on the VALIDATION members, and time every stage.

    .venv/bin/python bench/distill_sweep.py --config configs/train.yaml --n-jobs 300 --n-members 200 \\
        --finetune-steps 20 --teacher-steps 20 --teacher-lrs 5e-5 1e-4 --distill-steps 16 --distill-lrs 2e-4 5e-4 1e-3

What the default chain runs (``configs/train.yaml``: fine-tune -> teacher on the fine-tuned hard negatives ->
offline scoring -> distillation), at the sizes given, with a small grid: one teacher per ``--teacher-lrs``
(the best by the validation check, teacher reranking the fine-tuned top ``ablation.rerank_k``), then one
distillation per ``--distill-lrs`` from that teacher. Every model is scored on the validation members only
(``split.val``, judge nDCG@10, pooled over every row), never on the test members, so what it picks can be put
in a config without tuning on the test set. It also prints the measured seconds per step of each stage, the
basis of the time budget of ``make train``. Writes ``results.json`` under ``--out``.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from quality_common import prepare, start  # noqa: E402

from jude.evaluation.retrieval import retrieve  # noqa: E402
from jude.evaluation.variants import evaluate_variants  # noqa: E402
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
    ap.add_argument("--teacher-steps", type=int, help="teacher steps (default: the config's)")
    ap.add_argument("--teacher-lrs", type=float, nargs="+", help="teacher learning rates to try")
    ap.add_argument("--distill-steps", type=int, help="distillation steps (default: the config's)")
    ap.add_argument("--distill-lrs", type=float, nargs="+", help="distillation learning rates to try")


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
    m, split, _ = prepare(cfg)
    val = split.val
    lap(f"data and labels: {split.stats}")

    t = time.time()
    ft = train_embedder(
        split.pairs, m.jobs, m.members, cfg.model, cfg.lora, cfg.train, out / "finetuned",
        loss_cfg=cfg.loss, scale=cfg.scale, show_progress=False,
    )  # fmt: skip
    times["finetune_s_per_step"] = (time.time() - t) / ft.stats["steps"]
    finetuned = Embedder.load(ft.model_dir)
    lap(f"fine-tuned {ft.stats['steps']} steps: {times['finetune_s_per_step']:.2f} s/step (incl. validation)")

    judge = make_judge(cfg.labels)
    rk = cfg.ablation.rerank_k
    t = time.time()
    mined = finetuned_top_k(finetuned, split.pairs, m.jobs, m.members, cfg.teacher.hard_negatives_k)
    times["mine_s"] = time.time() - t
    teachers = {}
    for lr in args.teacher_lrs or [cfg.teacher.learning_rate]:
        tcfg = cfg.teacher.model_copy(update={"learning_rate": lr, "max_steps": args.teacher_steps or None})
        t = time.time()
        tres = train_cross_encoder(
            split.pairs, m.jobs, m.members, tcfg, out / f"teacher_lr{lr:g}",
            template_style=cfg.model.template_style, show_progress=False, mined=mined,
        )  # fmt: skip
        times["teacher_s_per_step"] = (time.time() - t) / tres.stats["steps"]
        t = time.time()
        check = check_teacher(
            finetuned, CrossEncoderTeacher.load(tres.model_dir), val, judge, cfg.eval, cfg.labels.relevant_grade, rk
        )
        times["teacher_check_s"] = time.time() - t
        teachers[lr] = (tres, check)
        origins = {k: v for k, v in tres.stats.items() if "negatives" in k}
        lap(f"teacher lr {lr:g} ({tres.stats['steps']} steps, {times['teacher_s_per_step']:.2f} s/step): "
            f"{check.summary()}; negatives {json.dumps(origins)}")  # fmt: skip
    best_lr = max(teachers, key=lambda lr: teachers[lr][1].teacher_ndcg)
    teacher = CrossEncoderTeacher.load(teachers[best_lr][0].model_dir)
    lap(f"teacher chosen on validation: lr {best_lr:g}")

    t = time.time()
    scores = teacher_candidate_scores(finetuned, teacher, split.pairs, m.jobs, m.members, cfg.distill.candidates_k)
    times["teacher_scoring_pairs_per_s"] = len(scores) / (time.time() - t)
    lap(f"teacher scored {len(scores)} pairs: {times['teacher_scoring_pairs_per_s']:.1f} pairs/s")

    ft_run = retrieve(finetuned, val, k=100)
    runs = {"finetuned": ft_run, "teacher": rerank(teacher, ft_run, val, k=rk, show_progress=False)}
    for lr in args.distill_lrs or [cfg.distill.learning_rate]:
        dcfg = cfg.distill.model_copy(update={"learning_rate": lr, "max_steps": args.distill_steps or None})
        t = time.time()
        dres = distill_embedder(
            ft.model_dir, scores, m.jobs, m.members, cfg.model, cfg.lora, cfg.train, dcfg,
            out / f"distilled_lr{lr:g}", pairs=split.pairs, measure=False, show_progress=False,
        )  # fmt: skip
        times["distill_s_per_step"] = (time.time() - t) / dres.stats["steps"]
        runs[f"distilled_lr{lr:g}"] = retrieve(Embedder.load(dres.model_dir), val, k=100)
        lap(f"distilled lr {lr:g}: {dres.stats['steps']} steps, {times['distill_s_per_step']:.2f} s/step")

    table = evaluate_variants(runs, val, judge, cfg.eval.model_copy(update={"qrels": "pooled"}), 2)
    print(f"\nvalidation members: {len(val.queries)} (judge nDCG@10, pooled over every row)")
    for name, metrics in table.results.items():
        print(f"{name:24s} {metrics['ndcg_at_10']:.4f}")
    print("seconds:", json.dumps({k: round(v, 2) for k, v in times.items()}))
    (out / "results.json").write_text(
        json.dumps(
            {
                "val_queries": len(val.queries),
                "val_ndcg_at_10": {k: v["ndcg_at_10"] for k, v in table.results.items()},
                "teacher_checks": {str(lr): vars(c) for lr, (_, c) in teachers.items()},
                "times": times,
                "split": split.stats,
            },
            indent=2,
            default=str,
        )
    )


if __name__ == "__main__":
    main()
