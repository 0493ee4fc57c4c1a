"""Offline retrieval evaluation: every variant on the same held-out queries and judgements, one table."""

from typing import Annotated

import mlflow
import pandas as pd
from zenml import log_metadata, step
from zenml.types import HTMLString

from jude.config import AblationConfig, EvalConfig, LabelConfig, ModelConfig
from jude.evaluation.report import comparison_figure, render_variants, variant_records, variants_headline
from jude.evaluation.retrieval import EvalSet, retrieve
from jude.evaluation.variants import VariantTable, evaluate_variants
from jude.labels.judges import make_judge
from jude.modeling.embedder import Embedder
from jude.modeling.model_dir import ModelDir
from pipelines.stack import EXPERIMENT_TRACKER


@step(experiment_tracker=EXPERIMENT_TRACKER)
def evaluate_retrieval(
    jude_embedder: ModelDir,
    test_set: dict,
    model: dict | None = None,
    eval: dict | None = None,
    ablation: dict | None = None,
    labels: dict | None = None,
    variant_runs: dict | None = None,
    distilled: ModelDir | None = None,
    teacher: ModelDir | None = None,
) -> tuple[
    Annotated[dict, "metrics"],
    Annotated[dict, "judged_test_set"],
    Annotated[HTMLString, "evaluation_report"],
]:
    """nDCG@10, recall@10/100, MRR@10 per variant; to MLflow: the prefixed metrics, the HTML report, the variant
    table (``evaluation/variants.json``, ``mlflow.log_table``) and its bar chart (``evaluation/variants.png``).

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
    runs = {
        "base": retrieve(
            Embedder.from_base(model_cfg), eval_set, k=k, batch_size=eval_cfg.batch_size, show_progress=True
        ),
        "finetuned": finetuned_run,
    }
    runs.update(variant_runs or {})
    if distilled is not None:
        runs["distilled"] = retrieve(distilled.load(), eval_set, k=k, batch_size=eval_cfg.batch_size)
    if teacher is not None:
        from jude.modeling.cross_encoder import CrossEncoderTeacher, rerank

        runs["teacher"] = rerank(CrossEncoderTeacher.load(teacher.path), finetuned_run, eval_set, k=abl.rerank_k)

    judge = make_judge(label_cfg) if eval_cfg.qrels == "pooled" else None
    table = evaluate_variants(runs, eval_set, judge, eval_cfg, label_cfg.relevant_grade)
    flat = table.flat_metrics()
    if table.pool is not None:
        log_metadata({"pooling": table.pool.stats})
    mlflow.log_metrics(flat)
    log_metadata({"metrics": flat, "eval_set": table.judged.summary()})
    html = render_variants(table)
    mlflow.log_text(html, "evaluation/report.html")
    _log_comparison(table)
    return flat, table.judged.to_dict(), HTMLString(html)


def _log_comparison(table: VariantTable) -> None:
    """What MLflow needs to compare the variants in one place: the table (one row per variant and truth), a
    grouped bar chart, and the headline sentence as the run's description (shown on top of the run page)."""
    mlflow.log_table(pd.DataFrame(variant_records(table)), "evaluation/variants.json")
    mlflow.log_figure(comparison_figure(table), "evaluation/variants.png")
    mlflow.set_tag("mlflow.note.content", variants_headline(table))
