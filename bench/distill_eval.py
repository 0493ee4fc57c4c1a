"""Does the cross-encoder teacher beat the fine-tuned bi-encoder, and how much of the gap does distillation close?

One CPU-affordable run on the default synthetic marketplace (configs/train.yaml
data: 600 jobs, 400 members), every variant measured in the same process on the
same held-out test members:

    base MiniLM  ->  fine-tuned (LoRA)  ->  teacher reranks fine-tuned top-k  ->  distilled

    .venv/bin/python bench/distill_eval.py --out /tmp/distill_eval > /tmp/distill_eval.log 2>&1

Prints a metric table, the share of the fine-tuned -> teacher nDCG@10 gap that
the distilled student closes, and writes ``results.json`` under ``--out``.
Step counts, batch sizes and token budgets are small so the whole run fits in ~20
minutes on 2 heavily shared cores; the numbers are a smoke-scale signal, not a benchmark.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import pandas as pd

from jude.config import (DistillConfig, LabelConfig, LoRAConfig, ModelConfig, SyntheticConfig, TeacherConfig,
                         TrainConfig)
from jude.data.synthetic import generate_marketplace
from jude.evaluation.retrieval import prefixed, ranking_metrics, retrieve, top_k_candidates
from jude.labels.engagement import engagement_labels
from jude.labels.judges import RubricJudge
from jude.labels.sampling import judge_pairs, sample_pairs
from jude.modeling.cross_encoder import CrossEncoderTeacher, rerank, score_candidates, train_cross_encoder
from jude.modeling.embedder import Embedder
from jude.training.distill import distill_embedder
from jude.training.pairs import split_and_pair
from jude.training.trainer import train_embedder


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="/tmp/distill_eval")
    ap.add_argument("--queries", type=int, default=300, help="held-out test members used as queries")
    ap.add_argument("--rerank-k", type=int, default=10, help="fine-tuned top-k the teacher rescores")
    ap.add_argument("--max-len", type=int, default=128, help="token budget of jobs and resumes (profiles: 3/4)")
    ap.add_argument("--finetune-steps", type=int, default=12)
    ap.add_argument("--finetune-batch", type=int, default=16)
    ap.add_argument("--teacher-steps", type=int, default=30)
    ap.add_argument("--teacher-batch", type=int, default=4, help="groups per step (1 positive + 3 negatives each)")
    ap.add_argument("--distill-steps", type=int, default=15)
    ap.add_argument("--distill-members", type=int, default=60, help="training members whose candidates are scored")
    ap.add_argument("--distill-loss", default="kl")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()

    def lap(msg: str) -> None:
        print(f"[{time.time() - t0:7.1f}s] {msg}", flush=True)

    # ---- data and labels, as the train pipeline makes them ------------------------------
    m = generate_marketplace(SyntheticConfig(n_jobs=600, n_members=400, seed=0))
    model_cfg = ModelConfig(max_length_job=args.max_len, max_length_resume=args.max_len,
                            max_length_profile=args.max_len * 3 // 4)
    label_cfg = LabelConfig(budget=3000)
    base = Embedder.from_base(model_cfg)
    base_cands = top_k_candidates(base, m.jobs, m.members, k=label_cfg.retrieve_k)
    sampled = sample_pairs(m.jobs, m.members, m.interactions, label_cfg, candidates=base_cands, rng_seed=0)
    relevance, _ = judge_pairs(RubricJudge(), sampled, m.jobs, m.members, label_cfg.relevant_grade)
    labels = pd.concat([relevance, engagement_labels(m.interactions, label_cfg)], ignore_index=True)
    split = split_and_pair(m.jobs, m.members, m.interactions, labels, 0.15, 0.2, max_queries=args.queries)
    test = split.test
    lap(f"data: {split.stats}")

    results: dict[str, float] = {}
    base_run = retrieve(base, test)
    results.update(prefixed("base", ranking_metrics(base_run, test.relevant)))
    lap("base evaluated")

    # ---- fine-tuned bi-encoder ---------------------------------------------------------
    train_cfg = TrainConfig(epochs=2, batch_size=args.finetune_batch, max_steps=args.finetune_steps)
    ft = train_embedder(split.pairs, m.jobs, m.members, model_cfg, LoRAConfig(), train_cfg, out / "finetuned")
    finetuned = Embedder.load(ft.model_dir)
    ft_run = retrieve(finetuned, test)
    results.update(prefixed("finetuned", ranking_metrics(ft_run, test.relevant)))
    lap(f"fine-tuned: {ft.stats}")

    # ---- teacher -----------------------------------------------------------------------
    teacher_cfg = TeacherConfig(max_steps=args.teacher_steps, batch_size=args.teacher_batch,
                                max_length=args.max_len + args.max_len * 3 // 4, learning_rate=5e-5)
    tres = train_cross_encoder(split.pairs, m.jobs, m.members, teacher_cfg, out / "teacher")
    losses = [h["teacher/loss"] for h in tres.history]
    lap(f"teacher trained: {tres.stats}; mean loss first 10 steps {sum(losses[:10]) / len(losses[:10]):.3f}, "
        f"last 10 {sum(losses[-10:]) / len(losses[-10:]):.3f}")
    teacher = CrossEncoderTeacher.load(tres.model_dir)
    teacher_run = rerank(teacher, ft_run, test, k=args.rerank_k, batch_size=32)
    results.update(prefixed("teacher", ranking_metrics(teacher_run, test.relevant)))
    lap("teacher reranking evaluated")

    # ---- distillation ------------------------------------------------------------------
    distill_cfg = DistillConfig(loss=args.distill_loss, candidates_k=10, group_size=6, batch_size=4,
                                max_steps=args.distill_steps, learning_rate=2e-4, infonce_weight=0.1)
    train_members = sorted(set(split.pairs.loc[split.pairs["label"] == 1, "member_id"]))[:args.distill_members]
    mrows = m.members[m.members["member_id"].isin(train_members)]
    cands = top_k_candidates(finetuned, m.jobs, mrows, k=distill_cfg.candidates_k)
    scores = score_candidates(teacher, cands, m.jobs, m.members, member_view="profile")
    scores.to_parquet(out / "teacher_scores.parquet")
    lap(f"teacher scored {len(scores)} candidate pairs")
    dres = distill_embedder(ft.model_dir, scores, m.jobs, m.members, model_cfg, LoRAConfig(), train_cfg, distill_cfg,
                            out / "distilled", pairs=split.pairs)
    distilled = Embedder.load(dres.model_dir)
    results.update(prefixed("distilled", ranking_metrics(retrieve(distilled, test), test.relevant)))
    lap(f"distilled: {dres.stats}")

    # ---- table -------------------------------------------------------------------------
    names = ["ndcg_at_10", "recall_at_10", "recall_at_100", "mrr_at_10"]
    print(f"\n{'variant':<11}" + "".join(f"{n:>15}" for n in names))
    for v in ("base", "finetuned", "teacher", "distilled"):
        print(f"{v:<11}" + "".join(f"{results[f'{v}/{n}']:>15.4f}" for n in names))
    gap = results["teacher/ndcg_at_10"] - results["finetuned/ndcg_at_10"]
    closed = (results["distilled/ndcg_at_10"] - results["finetuned/ndcg_at_10"]) / gap if gap > 0 else float("nan")
    print(f"\nteacher - finetuned nDCG@10 gap: {gap:+.4f}; share closed by distillation: {closed:.1%}")
    print(f"(teacher reranks the fine-tuned top-{args.rerank_k}; {len(test.queries)} test queries; "
          f"total {time.time() - t0:.0f}s)")
    (out / "results.json").write_text(json.dumps({"metrics": results, "gap_closed": closed, "args": vars(args),
                                                  "distill_stats": dres.stats, "teacher_stats": tres.stats,
                                                  "finetune_stats": ft.stats, "split": split.stats}, indent=2))


if __name__ == "__main__":
    main()
