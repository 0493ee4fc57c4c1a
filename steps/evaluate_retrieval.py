"""Offline retrieval evaluation: every variant on the same held-out queries, one table."""

from typing import Annotated, Optional

import mlflow
from zenml import log_metadata, step
from zenml.types import HTMLString

from jude.config import AblationConfig, EvalConfig, ModelConfig
from jude.evaluation.report import gap_closure, render_html
from jude.evaluation.retrieval import EvalSet, evaluate_embedder, prefixed, ranking_metrics, retrieve
from jude.modeling.embedder import Embedder, ModelDir
from pipelines.stack import EXPERIMENT_TRACKER


@step(experiment_tracker=EXPERIMENT_TRACKER)
def evaluate_retrieval(jude_embedder: ModelDir, test_set: dict, model: Optional[dict] = None,
                       eval: Optional[dict] = None, ablation: Optional[dict] = None,
                       variant_metrics: Optional[dict] = None, distilled: Optional[ModelDir] = None,
                       teacher: Optional[ModelDir] = None) -> tuple[
    Annotated[dict, "metrics"],
    Annotated[HTMLString, "evaluation_report"],
]:
    """nDCG@10, recall@10/100, MRR@10 per variant; prefixed metrics and the HTML table to MLflow."""
    model_cfg = ModelConfig.model_validate(model or {})
    eval_cfg = EvalConfig.model_validate(eval or {})
    abl = AblationConfig.model_validate(ablation or {})
    eval_set = EvalSet.from_dict(test_set)
    finetuned = jude_embedder.load()
    finetuned_run = retrieve(finetuned, eval_set, k=max(100, abl.rerank_k), batch_size=eval_cfg.batch_size,
                             show_progress=True)
    results = {
        "base": evaluate_embedder(Embedder.from_base(model_cfg), eval_set, batch_size=eval_cfg.batch_size,
                                  show_progress=True),
        "finetuned": ranking_metrics(finetuned_run, eval_set.relevant),
    }
    results.update(variant_metrics or {})
    if distilled is not None:
        results["distilled"] = evaluate_embedder(distilled.load(), eval_set, batch_size=eval_cfg.batch_size)
    if teacher is not None:
        from jude.modeling.cross_encoder import CrossEncoderTeacher, rerank

        reranked = rerank(CrossEncoderTeacher.load(teacher.path), finetuned_run, eval_set, k=abl.rerank_k)
        results["teacher"] = ranking_metrics(reranked, eval_set.relevant)
    flat: dict[str, float] = {}
    for variant, m in results.items():
        flat.update(prefixed(variant, m))
    if "distilled" in results and "teacher" in results:
        flat["distill_gap_closure"] = gap_closure(results["finetuned"]["ndcg_at_10"],
                                                  results["distilled"]["ndcg_at_10"],
                                                  results["teacher"]["ndcg_at_10"])
    if results["base"]["ndcg_at_10"] > 0:
        flat["finetuned_vs_base_ndcg_ratio"] = results["finetuned"]["ndcg_at_10"] / results["base"]["ndcg_at_10"]
    mlflow.log_metrics(flat)
    log_metadata({"metrics": flat, "eval_set": eval_set.summary()})
    html = render_html(results, context={**eval_set.summary(),
                                         **{k: round(v, 4) for k, v in flat.items() if "/" not in k}})
    mlflow.log_text(html, "evaluation/report.html")
    return flat, HTMLString(html)
