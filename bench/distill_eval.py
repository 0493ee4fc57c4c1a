"""The JUDE evaluation table at full size, without ZenML: base; fine-tuned; loss variants; teacher; distilled.

    .venv/bin/python bench/distill_eval.py --config configs/train_full.yaml --out /tmp/jude-table

Runs the same core functions as ``python run.py --pipeline train --config
configs/train_full.yaml`` (data, labels, split, fine-tuning, loss variants,
cross-encoder teacher, offline scoring, distillation, teacher reranking the
fine-tuned top ``ablation.rerank_k``) and scores every row on three relevance
judgements of the same test members (see ``bench/quality_common.py``):
labelled, pooled (what the pipeline logs) and exhaustive (rubric judge only).

``--finetuned DIR`` / ``--teacher DIR`` reuse a model trained by an earlier run
(its ``--out``) instead of training it again; ``--no-variants`` skips the
BCE / VP rows and ``--no-distill`` the teacher and distilled rows;
``--distill-seeds 0 1 2`` distils once per ``distill.seed``
(rows ``distilled``, ``distilled_s1``, ...) from the same teacher scores and
reports the gap closure of each and their mean and standard deviation. Prints
the table and ``distill_gap_closure`` under each judgement, and writes
``results.json`` under ``--out``.
"""

from __future__ import annotations

import json
import math
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from quality_common import prepare, score_variants, start  # noqa: E402

from jude.config import LOSS_VARIANTS  # noqa: E402
from jude.evaluation.retrieval import retrieve  # noqa: E402
from jude.evaluation.variants import gap_closure  # noqa: E402
from jude.modeling.cross_encoder import CrossEncoderTeacher, rerank  # noqa: E402
from jude.modeling.embedder import Embedder  # noqa: E402
from jude.training.distill import distill_embedder, teacher_candidate_scores  # noqa: E402
from jude.training.teacher import finetuned_top_k, train_cross_encoder  # noqa: E402
from jude.training.trainer import train_embedder  # noqa: E402


def _arguments(ap) -> None:
    ap.add_argument("--finetuned", help="reuse this fine-tuned model directory")
    ap.add_argument("--teacher", help="reuse this teacher directory")
    ap.add_argument("--no-variants", action="store_true", help="skip the loss-variant rows")
    ap.add_argument("--no-distill", action="store_true", help="only the base, fine-tuned and loss-variant rows")
    ap.add_argument(
        "--distill-seeds",
        type=int,
        nargs="+",
        default=None,
        help="distil once per seed (default: distill.seed of the config)",
    )


def main() -> None:
    run = start(__doc__, "configs/train_full.yaml", "/tmp/jude-table", _arguments)
    args, cfg, out, lap = run.args, run.cfg, run.out, run.lap

    m, split, base = prepare(cfg)
    test, k = split.test, max(100, cfg.ablation.rerank_k)
    lap(f"data and labels: {split.stats}")
    runs = {"base": retrieve(base, test, k=k)}

    ft_dir = (
        Path(args.finetuned)
        if args.finetuned
        else train_embedder(
            split.pairs,
            split.train_jobs,
            m.members,
            cfg.model,
            cfg.lora,
            cfg.train,
            out / "finetuned",
            loss_cfg=cfg.loss,
            scale=cfg.scale,
            show_progress=False,
        ).model_dir
    )
    finetuned = Embedder.load(ft_dir)
    runs["finetuned"] = retrieve(finetuned, test, k=k)
    lap(f"fine-tuned: {ft_dir}")

    for variant in [] if args.no_variants else cfg.ablation.loss_variants:
        loss_cfg = cfg.loss.model_copy(update={"weights": LOSS_VARIANTS[variant]})
        res = train_embedder(
            split.pairs,
            split.train_jobs,
            m.members,
            cfg.model,
            cfg.lora,
            cfg.train,
            out / variant,
            loss_cfg=loss_cfg,
            scale=cfg.scale,
            show_progress=False,
        )
        runs[variant] = retrieve(Embedder.load(res.model_dir), test, k=k)
        lap(f"variant {variant}: {res.stats['losses']}")

    seeds, distilled_rows, distill_stats, teacher_dir = [], [], {}, None
    if not args.no_distill:
        if args.teacher:
            teacher_dir = Path(args.teacher)
        else:
            tres = train_cross_encoder(
                split.pairs,
                split.train_jobs,
                m.members,
                cfg.teacher,
                out / "teacher",
                template_style=cfg.model.template_style,
                show_progress=False,
                # the pipeline's teacher: negatives from the fine-tuned model's top-k (train_teacher)
                mined=finetuned_top_k(
                    finetuned, split.pairs, split.train_jobs, m.members, cfg.teacher.hard_negatives_k
                ),
            )
            teacher_dir = tres.model_dir
            lap(f"teacher: {tres.stats}")
        teacher = CrossEncoderTeacher.load(teacher_dir)
        runs["teacher"] = rerank(teacher, runs["finetuned"], test, k=cfg.ablation.rerank_k)
        lap(f"teacher reranked the fine-tuned top {cfg.ablation.rerank_k}")

        scores = teacher_candidate_scores(
            finetuned, teacher, split.pairs, split.train_jobs, m.members, cfg.distill.candidates_k
        )
        lap(f"teacher scored {len(scores)} candidate pairs")
        seeds = args.distill_seeds or [cfg.distill.seed]
        for i, seed in enumerate(seeds):
            row = "distilled" if i == 0 else f"distilled_s{seed}"
            dres = distill_embedder(
                ft_dir,
                scores,
                split.train_jobs,
                m.members,
                cfg.model,
                cfg.lora,
                cfg.train,
                cfg.distill.model_copy(update={"seed": seed}),
                out / row,
                pairs=split.pairs,
                show_progress=False,
            )
            runs[row] = retrieve(Embedder.load(dres.model_dir), test, k=k)
            distilled_rows.append(row)
            distill_stats[row] = {"seed": seed, **dres.stats}
            lap(f"{row} (distill.seed {seed}): {dres.stats}")

    table = score_variants(test, runs, cfg)
    names = ["ndcg_at_10", "recall_at_10", "recall_at_100", "mrr_at_10"]
    closure = {}
    for judged, rows in table.items():
        print(f"\n{judged} judgements ({len(test.queries)} test queries)")
        print(f"{'variant':<13}" + "".join(f"{n:>15}" for n in names) + f"{'nDCG / base':>13}")
        for v, mtr in rows.items():
            print(
                f"{v:<13}"
                + "".join(f"{mtr[n]:>15.4f}" for n in names)
                + f"{mtr['ndcg_at_10'] / rows['base']['ndcg_at_10']:>12.3f}x"
            )
        if not distilled_rows:
            continue
        closure[judged] = [
            gap_closure(rows["finetuned"]["ndcg_at_10"], rows[r]["ndcg_at_10"], rows["teacher"]["ndcg_at_10"])
            for r in distilled_rows
        ]
        finite = [c for c in closure[judged] if math.isfinite(c)]  # nan where the teacher trails the student's start
        spread = (
            (f"; mean {statistics.mean(finite):.3f}, std {statistics.stdev(finite):.3f} over distill seeds {seeds}")
            if len(finite) > 1
            else ""
        )
        print(f"distill_gap_closure ({judged}): " + ", ".join(f"{c:.3f}" for c in closure[judged]) + spread)
    print(f"\n(total {time.time() - run.t0:.0f}s; {' '.join(sys.argv)})")
    (out / "results.json").write_text(
        json.dumps(
            {
                "config": args.config,
                "table": table,
                "gap_closure": closure,
                "distill_seeds": seeds,
                "distill_stats": distill_stats,
                "split": split.stats,
                "finetuned": str(ft_dir),
                "teacher": str(teacher_dir),
            },
            indent=2,
            default=str,
        )
    )


if __name__ == "__main__":
    main()
