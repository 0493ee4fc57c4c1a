"""Offline retrieval evaluation: every variant on the same held-out queries and judgements, one table."""

from typing import Annotated

import mlflow
import pandas as pd
from zenml import log_metadata, step
from zenml.types import HTMLString

from jude.config import AblationConfig, EvalConfig, LabelConfig, ModelConfig
from jude.evaluation.assemble import evaluate_all
from jude.evaluation.report import comparison_figure, render_variants, variant_records, variants_headline
from jude.evaluation.retrieval import EvalSet
from jude.evaluation.variants import VariantTable
from jude.labels.judges import make_judge
from jude.modeling.embedder import Embedder
from jude.modeling.model_dir import ModelDir
from zenml_glue.stack import EXPERIMENT_TRACKER


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
    control_anchor: ModelDir | None = None,
    control_steps: ModelDir | None = None,
    teacher_check: dict | None = None,
) -> tuple[
    Annotated[dict, "metrics"],
    Annotated[dict, "judged_test_set"],
    Annotated[HTMLString, "evaluation_report"],
]:
    """nDCG@10, recall@10/100, MRR@10 per variant, each nDCG@10 with its 95 % bootstrap interval over queries
    (``<variant>/ndcg_at_10_ci_low``/``_ci_high``, per truth too); to MLflow: the prefixed metrics, the HTML
    report, the variant table (``evaluation/variants.json``, ``mlflow.log_table``) and its bar chart
    (``evaluation/variants.png``).

    With ``eval.qrels='pooled'`` the judge first grades the top ``eval.pool_depth`` of every variant, and every
    variant is scored on those judgements; the labelled-only figures are logged too, under ``labelled/``. Every
    variant is also scored on the test set's other truths (``truth/``, ``applies/``) and, ranking the unseen
    world's members over its jobs, under ``unseen/``. ``control_anchor`` and ``control_steps`` (the
    distillation controls) are scored like ``distilled``, under their names.
    """
    model_cfg = ModelConfig.model_validate(model or {})
    eval_cfg = EvalConfig.model_validate(eval or {})
    abl = AblationConfig.model_validate(ablation or {})
    label_cfg = LabelConfig.model_validate(labels or {})
    models = {"base": Embedder.from_base(model_cfg), "finetuned": jude_embedder.load()}
    for variant, model_dir in (
        ("distilled", distilled),
        ("control_anchor", control_anchor),
        ("control_steps", control_steps),
    ):
        if model_dir is not None:
            models[variant] = model_dir.load()
    cross = None
    if teacher is not None:
        from jude.modeling.cross_encoder import CrossEncoderTeacher

        cross = CrossEncoderTeacher.load(teacher.path)
    judge = make_judge(label_cfg) if eval_cfg.qrels == "pooled" else None
    result = evaluate_all(
        models,
        EvalSet.from_dict(test_set),
        eval_cfg,
        label_cfg.relevant_grade,
        judge=judge,
        variant_runs=variant_runs,
        teacher=cross,
        rerank_k=abl.rerank_k,
        teacher_check=teacher_check,
        show_progress=True,
    )
    table, flat = result.table, result.metrics
    if table.pool is not None:
        log_metadata({"pooling": table.pool.stats})
    if getattr(judge, "errors", None) is not None:
        log_metadata(
            {"judge_errors": {"pooled_pairs_misread": judge.stats.misread, "pooled_grades_changed": judge.changed}}
        )
    mlflow.log_metrics(flat)
    log_metadata(
        {
            "metrics": flat,
            "eval_set": table.judged.summary(),
            "truth_queries": table.truth_queries,
            "truths_absent": table.absent,
            "distill_closure": table.closure_notes(),
        }
    )
    html = render_variants(table, title=_title(teacher_check), intervals=flat)
    mlflow.log_text(html, "evaluation/report.html")
    _log_comparison(table)
    return flat, table.judged.to_dict(), HTMLString(html)


def _title(teacher_check: dict | None) -> str:
    """The report's title; it says so when the teacher did not beat the fine-tuned model on validation members."""
    title = "jude: offline retrieval evaluation"
    if teacher_check is not None and not teacher_check["meaningful"]:
        title += " (distillation NOT meaningful: the teacher did not beat the fine-tuned model on validation members)"
    return title


def _log_comparison(table: VariantTable) -> None:
    """What MLflow needs to compare the variants in one place: the table (one row per variant and truth), a
    grouped bar chart, and the headline sentence as the run's description (shown on top of the run page)."""
    mlflow.log_table(pd.DataFrame(variant_records(table)), "evaluation/variants.json")
    mlflow.log_figure(comparison_figure(table), "evaluation/variants.png")
    mlflow.set_tag("mlflow.note.content", variants_headline(table))
