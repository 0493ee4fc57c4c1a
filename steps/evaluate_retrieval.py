"""Offline retrieval evaluation: every variant on the same held-out queries and judgements, one table."""

from typing import Annotated

import mlflow
import pandas as pd
from zenml import log_metadata, step
from zenml.types import HTMLString

from jude.config import AblationConfig, EvalConfig, LabelConfig, ModelConfig
from jude.evaluation.paired import distillation_vs_controls, variant_intervals
from jude.evaluation.report import comparison_figure, render_variants, variant_records, variants_headline
from jude.evaluation.retrieval import EvalSet
from jude.evaluation.variants import VariantTable, evaluate_variants, rank_variants
from jude.labels.judges import make_judge
from jude.modeling.embedder import Embedder
from jude.modeling.model_dir import ModelDir
from pipelines.stack import EXPERIMENT_TRACKER

UNSEEN_PREFIX = "unseen/"  # variant_runs keys "unseen/<variant>": a loss variant's run on the unseen world


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
    eval_set = EvalSet.from_dict(test_set)
    unseen = eval_set.unseen
    k = max(100, abl.rerank_k)
    models = {"base": Embedder.from_base(model_cfg), "finetuned": jude_embedder.load()}
    for variant, model_dir in (
        ("distilled", distilled),
        ("control_anchor", control_anchor),
        ("control_steps", control_steps),
    ):
        if model_dir is not None:
            models[variant] = model_dir.load()
    runs, unseen_runs = rank_variants(models, eval_set, k=k, batch_size=eval_cfg.batch_size, show_progress=True)
    for variant, run in (variant_runs or {}).items():  # the loss-suite rows, ranked by train_loss_variants
        if variant.startswith(UNSEEN_PREFIX):
            unseen_runs[variant[len(UNSEEN_PREFIX) :]] = run
        else:
            runs[variant] = run
    runs = {v: runs[v] for v in ("base", "finetuned", *(variant_runs or {}), *models) if v in runs}  # table order
    if teacher is not None:
        from jude.modeling.cross_encoder import CrossEncoderTeacher, rerank

        cross = CrossEncoderTeacher.load(teacher.path)
        runs["teacher"] = rerank(cross, runs["finetuned"], eval_set, k=abl.rerank_k)
        if unseen is not None:
            unseen_runs["teacher"] = rerank(cross, unseen_runs["finetuned"], unseen, k=abl.rerank_k)

    judge = make_judge(label_cfg) if eval_cfg.qrels == "pooled" else None
    table = evaluate_variants(runs, eval_set, judge, eval_cfg, label_cfg.relevant_grade, unseen_runs=unseen_runs)
    flat = table.flat_metrics()
    # bootstrap over queries (jude/evaluation/paired.py), on the judge's pooled judgements, every truth of the
    # test set, and the unseen world: every variant's nDCG@10 interval, the fine-tuned lead over base (paired),
    # and distilled vs each control (paired; nothing without the control rows)
    truth_sets = [("", runs, table.judged.relevant)]
    truth_sets += [(f"{t}/", runs, eval_set.truths[t]) for t in sorted(table.truths.keys() & eval_set.truths.keys())]
    if unseen is not None and "unseen" in table.truths:
        truth_sets.append(("unseen/", unseen_runs, unseen.relevant))
    for prefix, truth_runs, relevant in truth_sets:
        flat.update(variant_intervals(truth_runs, relevant, prefix=prefix))
        flat.update(distillation_vs_controls(truth_runs, relevant, prefix=prefix))
    if teacher_check is not None:  # train_teacher's check on the validation members
        flat["distillation_meaningful"] = float(bool(teacher_check["meaningful"]))
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
