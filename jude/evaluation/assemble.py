"""The train pipeline's evaluation, assembled: every variant ranked, judged, scored on every truth, with intervals.

``steps/evaluate_retrieval.py`` is a thin step over :func:`evaluate_all`: it loads the model directories, calls
this, and logs what comes back. Here, testable without ZenML:

- the bi-encoders (base, fine-tuned, distilled, distillation's controls) rank the test members over every job,
  and the unseen world's members over its jobs (:func:`jude.evaluation.variants.rank_variants`);
- the loss-suite rows come ranked already (``variant_runs``; a key ``unseen/<variant>`` is that variant's run
  on the unseen world: :func:`split_variant_runs`);
- the teacher reranks the fine-tuned top ``rerank_k`` (its own row);
- :func:`score_runs` pools and scores every row on the judge and the truths
  (:func:`jude.evaluation.variants.evaluate_variants`); the quality benches score their own rows through it too;
- every row's nDCG@10 gets its bootstrap interval on every truth, and the distilled row its paired difference
  against each control (:mod:`jude.evaluation.paired`);
- the bi-encoders are scored on the foreign set, a guard (:func:`jude.evaluation.foreign.foreign_metrics`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from jude.config import EvalConfig
from jude.evaluation.foreign import foreign_metrics
from jude.evaluation.paired import distillation_vs_controls, variant_intervals
from jude.evaluation.retrieval import EvalSet
from jude.evaluation.variants import VariantTable, evaluate_variants, rank_variants

UNSEEN_PREFIX = "unseen/"  # variant_runs keys "unseen/<variant>": a loss variant's run on the unseen world
BI_ENCODERS = ("base", "finetuned", "distilled", "control_anchor", "control_steps")  # table order
FOREIGN_ROWS = ("base", "finetuned", "distilled")


@dataclass
class Evaluation:
    table: VariantTable
    metrics: dict[str, float]  # every flat metric the run logs (the table's, the intervals, foreign/, flags)


def split_variant_runs(variant_runs: Mapping[str, Any] | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """(test-set runs, unseen-world runs) of the loss-suite rows, from their ``unseen/``-prefixed keys."""
    runs, unseen = {}, {}
    for variant, run in (variant_runs or {}).items():
        if variant.startswith(UNSEEN_PREFIX):
            unseen[variant[len(UNSEEN_PREFIX) :]] = run
        else:
            runs[variant] = run
    return runs, unseen


def score_runs(
    runs: Mapping[str, Any],
    eval_set: EvalSet,
    eval_cfg: EvalConfig,
    relevant_grade: int,
    judge: Any = None,
    unseen_runs: Mapping[str, Any] | None = None,
    qrels: Literal["labels", "pooled"] | None = None,
) -> VariantTable:
    """Ranked rows (variant -> ``{query: {job: score}}``, in table order) scored as the train run scores them.

    ``judge`` grades the pool of every row's top ``eval_cfg.pool_depth`` when the judgements are pooled, and is
    not used otherwise (the labelled judgements only); ``qrels`` overrides ``eval_cfg.qrels`` (the quality benches
    pool whatever their config says). ``unseen_runs``: the rows' runs on the unseen world.
    """
    if qrels not in (None, "labels", "pooled"):
        raise ValueError(f"qrels must be 'labels' or 'pooled' (None: eval_cfg.qrels), got {qrels!r}")
    cfg = eval_cfg if qrels is None else eval_cfg.model_copy(update={"qrels": qrels})
    pool_judge = judge if cfg.qrels == "pooled" else None
    return evaluate_variants(runs, eval_set, pool_judge, cfg, relevant_grade, unseen_runs=unseen_runs)


def evaluate_all(
    models: Mapping[str, Any],
    eval_set: EvalSet,
    eval_cfg: EvalConfig,
    relevant_grade: int,
    judge: Any = None,
    variant_runs: Mapping[str, Any] | None = None,
    teacher: Any = None,
    rerank_k: int = 100,
    teacher_check: Mapping[str, Any] | None = None,
    foreign: bool = True,
    show_progress: bool = False,
) -> Evaluation:
    """Every row of the evaluation table and every figure the train run logs.

    ``models``: name -> bi-encoder (at least ``base`` and ``finetuned``); ``judge``: grades the pool when
    ``eval_cfg.qrels == 'pooled'`` (None: the labelled judgements only); ``teacher``: a cross-encoder
    (:class:`jude.modeling.cross_encoder.CrossEncoderTeacher`) that reranks the fine-tuned top ``rerank_k``;
    ``teacher_check``: the validation check (its ``meaningful`` becomes ``distillation_meaningful``);
    ``foreign``: score the bi-encoders on the foreign set.
    """
    missing = [m for m in ("base", "finetuned") if m not in models]
    if missing:
        raise ValueError(f"evaluate_all: no {missing} model: the table compares every row with them")
    unseen = eval_set.unseen
    k = max(100, rerank_k)
    runs, unseen_runs = rank_variants(
        dict(models), eval_set, k=k, batch_size=eval_cfg.batch_size, show_progress=show_progress
    )
    loss_runs, loss_unseen = split_variant_runs(variant_runs)
    runs.update(loss_runs)
    unseen_runs.update(loss_unseen)
    order = ("base", "finetuned", *loss_runs, *[m for m in BI_ENCODERS if m in models], *models)
    runs = {v: runs[v] for v in dict.fromkeys(order) if v in runs}  # table order
    if teacher is not None:
        from jude.modeling.cross_encoder import rerank

        runs["teacher"] = rerank(teacher, runs["finetuned"], eval_set, k=rerank_k)
        if unseen is not None:
            unseen_runs["teacher"] = rerank(teacher, unseen_runs["finetuned"], unseen, k=rerank_k)

    table = score_runs(runs, eval_set, eval_cfg, relevant_grade, judge, unseen_runs=unseen_runs)
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
    if foreign:  # a guard the promotion rule may veto by, never a target
        flat.update(foreign_metrics({v: m for v, m in models.items() if v in FOREIGN_ROWS}))
    if teacher_check is not None:  # train_teacher's check on the validation members
        flat["distillation_meaningful"] = float(bool(teacher_check["meaningful"]))
    return Evaluation(table=table, metrics=flat)
