"""Offline retrieval evaluation: every variant on the same held-out queries and judgements, one table."""

from typing import Annotated, Optional

import mlflow
from zenml import log_metadata, step
from zenml.types import HTMLString

from jude.config import AblationConfig, EvalConfig, LabelConfig, ModelConfig
from jude.evaluation.pooling import pooled_relevance
from jude.evaluation.report import gap_closure, render_html
from jude.evaluation.retrieval import EvalSet, prefixed, ranking_metrics, retrieve
from jude.labels.judges import make_judge
from jude.modeling.embedder import Embedder, ModelDir
from pipelines.stack import EXPERIMENT_TRACKER


@step(experiment_tracker=EXPERIMENT_TRACKER)
def evaluate_retrieval(jude_embedder: ModelDir, test_set: dict, model: Optional[dict] = None,
                       eval: Optional[dict] = None, ablation: Optional[dict] = None, labels: Optional[dict] = None,
                       variant_runs: Optional[dict] = None, distilled: Optional[ModelDir] = None,
                       teacher: Optional[ModelDir] = None) -> tuple[
    Annotated[dict, "metrics"],
    Annotated[dict, "judged_test_set"],
    Annotated[HTMLString, "evaluation_report"],
]:
    """nDCG@10, recall@10/100, MRR@10 per variant; prefixed metrics and the HTML table to MLflow.

    With ``eval.qrels='pooled'`` the judge first grades the top ``eval.pool_depth`` of every variant, and every
    variant is scored on those judgements; the labelled-only figures are logged too, under ``labelled/``.
    """
    model_cfg = ModelConfig.model_validate(model or {})
    eval_cfg = EvalConfig.model_validate(eval or {})
    abl = AblationConfig.model_validate(ablation or {})
    label_cfg = LabelConfig.model_validate(labels or {})
    eval_set = EvalSet.from_dict(test_set)
    k = max(100, abl.rerank_k)
    finetuned_run = retrieve(jude_embedder.load(), eval_set, k=k, batch_size=eval_cfg.batch_size, show_progress=True)
    runs = {"base": retrieve(Embedder.from_base(model_cfg), eval_set, k=k, batch_size=eval_cfg.batch_size,
                             show_progress=True),
            "finetuned": finetuned_run}
    runs.update(variant_runs or {})
    if distilled is not None:
        runs["distilled"] = retrieve(distilled.load(), eval_set, k=k, batch_size=eval_cfg.batch_size)
    if teacher is not None:
        from jude.modeling.cross_encoder import CrossEncoderTeacher, rerank

        runs["teacher"] = rerank(CrossEncoderTeacher.load(teacher.path), finetuned_run, eval_set, k=abl.rerank_k)

    labelled = {variant: ranking_metrics(run, eval_set.relevant) for variant, run in runs.items()}
    context: dict = {"qrels": eval_cfg.qrels, **eval_set.summary()}
    judged = eval_set
    if eval_cfg.qrels == "pooled":
        pool = pooled_relevance(eval_set, runs, make_judge(label_cfg), eval_cfg.pool_depth, label_cfg.relevant_grade)
        judged = pool.eval_set(eval_set)
        context.update({f"pool_{k}": v for k, v in pool.counts.items()})
        log_metadata({"pooling": pool.stats})
    results = {variant: ranking_metrics(run, judged.relevant) for variant, run in runs.items()}

    flat: dict[str, float] = {}
    for variant, m in results.items():
        flat.update(prefixed(variant, m))
    if eval_cfg.qrels == "pooled":
        for variant, m in labelled.items():
            flat.update(prefixed(f"labelled/{variant}", m))
    if "distilled" in results and "teacher" in results:
        flat["distill_gap_closure"] = gap_closure(results["finetuned"]["ndcg_at_10"],
                                                  results["distilled"]["ndcg_at_10"],
                                                  results["teacher"]["ndcg_at_10"])
    if results["base"]["ndcg_at_10"] > 0:
        flat["finetuned_vs_base_ndcg_ratio"] = results["finetuned"]["ndcg_at_10"] / results["base"]["ndcg_at_10"]
    if eval_cfg.qrels == "pooled" and labelled["base"]["ndcg_at_10"] > 0:
        flat["labelled/finetuned_vs_base_ndcg_ratio"] = (labelled["finetuned"]["ndcg_at_10"]
                                                         / labelled["base"]["ndcg_at_10"])
    mlflow.log_metrics(flat)
    log_metadata({"metrics": flat, "eval_set": judged.summary()})
    html = render_html(results, context={**context, **{k: round(v, 4) for k, v in flat.items() if "/" not in k}},
                       labelled=labelled if eval_cfg.qrels == "pooled" else None)
    mlflow.log_text(html, "evaluation/report.html")
    return flat, judged.to_dict(), HTMLString(html)
