"""The evaluation table: every variant on the same held-out queries, as HTML for the dashboards and MLflow.

The page leads with the answer (how the fine-tuned model compares with the base model, and on which
judgements: the generator's truth when there is one, else the judge's), then the truths side by side (judge,
truth, applies, unseen world: nDCG@10 per variant), the judge's full table (one row per variant), a bar chart,
and the details collapsed; see :mod:`jude.htmlreport`. :func:`variant_records` and :func:`comparison_figure`
give MLflow the same table and chart (``mlflow.log_table``, ``mlflow.log_figure``).
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from jude import htmlreport as hr
from jude.evaluation.retrieval import METRICS
from jude.evaluation.variants import VariantTable

if TYPE_CHECKING:
    from matplotlib.figure import Figure

VARIANT_NOTES = {
    "base": "the base model, no fine-tuning",
    "finetuned": "two-tower LoRA fine-tuning (InfoNCE)",
    "bce": "+ BCE apply head",
    "vp": "+ VP-matrix loss",
    "distilled": "+ cross-encoder distillation",
    "teacher": "cross-encoder reranking the fine-tuned top 100",
    "control_anchor": "distillation with the teacher's terms off: the InfoNCE anchor alone",
    "control_steps": "fine-tuning continued with InfoNCE for the distillation's extra steps",
}
METRIC_LABELS = {
    "ndcg_at_10": "nDCG@10",
    "recall_at_10": "recall@10",
    "recall_at_100": "recall@100",
    "mrr_at_10": "MRR@10",
}
POOLED_TRUTH = "pooled judge judgements"  # every variant's top-k graded by the judge, plus the label budget
LABELLED_TRUTH = "labelled judgements"  # the label budget's judgements and the test-period applies only
TRUTH_LABELS = {  # the truths of jude.evaluation.truths, as the report names them
    "truth": "the generator's latent-fit truth",
    "applies": "test-period applies",
    "unseen": "the unseen world (new roles and cities, judged by the truth)",
}
TRUTH_COLUMNS = {"judge": "judge", "truth": "truth", "applies": "applies", "unseen": "unseen world"}


def metrics_table(results: Mapping[str, Mapping[str, float]]) -> list[dict]:
    """Rows of {variant, metric..., ndcg_at_10_vs_base} in the order given."""
    base = results.get("base", {}).get("ndcg_at_10")
    rows = []
    for variant, m in results.items():
        row = {"variant": variant, **{k: float(m[k]) for k in METRICS if k in m}}
        if base and "ndcg_at_10" in m:
            row["ndcg_at_10_vs_base"] = float(m["ndcg_at_10"]) / base if base > 0 else float("nan")
        rows.append(row)
    return rows


def headline(results: Mapping[str, Mapping[str, float]], truth: str, n_queries: int | None = None) -> str:
    """One sentence with the answer: fine-tuned (and, when scored, distilled) vs base nDCG@10 and what it was scored
    on.

    Without both a base and a fine-tuned row (e.g. a table of seeds), it names the best variant instead.
    """
    where = f"on {truth}" + (f" ({n_queries} test members)" if n_queries is not None else "")
    ndcg = {v: float(m["ndcg_at_10"]) for v, m in results.items() if "ndcg_at_10" in m}
    if "base" in ndcg and "finetuned" in ndcg:
        base, fine = ndcg["base"], ndcg["finetuned"]
        # the distilled student is the candidate the default chain usually registers: name it beside the
        # fine-tuned model, so the headline is not the fine-tuned ratio alone when the student is the one served
        student = ndcg.get("distilled")
        if base > 0:
            also = f"; distilled {student / base:.2f}x ({student:.3f})" if student is not None else ""
            lead = f"Fine-tuned nDCG@10 is {fine / base:.2f}x the base model's ({fine:.3f} vs {base:.3f})"
            return f"{lead}{also} {where}."
        also = f", distilled {student:.3f}" if student is not None else ""
        return f"Fine-tuned nDCG@10 is {fine:.3f}{also} and the base model's is 0 {where}."
    if ndcg:
        best = max(ndcg, key=ndcg.get)
        return f"Best nDCG@10: {best} at {ndcg[best]:.3f} {where}."
    return f"No nDCG@10 to compare {where}."


def _subline(results: Mapping[str, Mapping[str, float]], labelled: Mapping[str, Mapping[str, float]] | None) -> str:
    """The labelled-only ratio (when pooled) and the best variant when it is neither base nor fine-tuned."""
    parts = []
    if labelled:
        lb, lf = (labelled.get(v, {}).get("ndcg_at_10") for v in ("base", "finetuned"))
        if lb and lf is not None:
            parts.append(f"On the labelled judgements alone (before pooling): {lf / lb:.2f}x.")
    ndcg = {v: float(m["ndcg_at_10"]) for v, m in results.items() if "ndcg_at_10" in m}
    if ndcg:
        best = max(ndcg, key=ndcg.get)
        if best not in ("base", "finetuned"):
            parts.append(f"Best variant: {best} (nDCG@10 {ndcg[best]:.3f}).")
    return " ".join(parts)


def _table_html(results: Mapping[str, Mapping[str, float]], notes: Mapping[str, str]) -> str:
    """Variants as rows, the four metrics and the ratio to base as columns; best value per column in bold."""
    rows = metrics_table(results)
    cols = [k for k in METRICS if any(k in r for r in rows)]
    best = {c: max((r[c] for r in rows if c in r), default=None) for c in cols}
    cells = []
    for r in rows:
        variant = html.escape(r["variant"])
        row = [f'<b title="{html.escape(notes.get(r["variant"], ""))}">{variant}</b>']
        for c in cols:
            v = r.get(c)
            txt = hr.fmt(v)
            row.append(f"<b>{txt}</b>" if v is not None and v == best[c] else ("" if v is None else txt))
        ratio = r.get("ndcg_at_10_vs_base")
        row.append("" if ratio is None else f"{ratio:.2f}x")
        cells.append(row)
    return hr.table(["variant", *(METRIC_LABELS[c] for c in cols), "nDCG vs base"], cells, escape=False)


def truths_table(
    by_truth: Mapping[str, Mapping[str, Mapping[str, float]]],
    absent: Mapping[str, str] | None = None,
    metric: str = "ndcg_at_10",
    intervals: Mapping[str, float] | None = None,
) -> str:
    """Variants as rows, one ``metric`` column per truth (``judge`` first), rounded; an absent truth's column
    says ``absent`` (the reason is in :func:`absent_notes`); a variant not ranked on a truth gets a dash.

    ``intervals``: flat metrics as the pipeline logs them (``[<truth>/]<variant>/<metric>_ci_low`` and
    ``_ci_high``, no prefix for the judge's); where both ends are there the cell reads ``value [low, high]``."""
    absent, intervals = absent or {}, intervals or {}
    truths = [t for t in ("judge", "truth", "applies", "unseen") if t in by_truth or t in absent]
    truths += [t for t in by_truth if t not in truths]
    variants = list(dict.fromkeys(v for t in truths for v in by_truth.get(t, {})))
    rows = []
    for v in variants:
        row = [v]
        for t in truths:
            if t not in by_truth:
                row.append("absent")
            else:
                m = by_truth[t].get(v)
                cell = hr.fmt(None if m is None or metric not in m else float(m[metric]))
                key = f"{'' if t == 'judge' else t + '/'}{v}/{metric}"
                if m is not None and f"{key}_ci_low" in intervals and f"{key}_ci_high" in intervals:
                    cell += f" [{intervals[key + '_ci_low']:.3f}, {intervals[key + '_ci_high']:.3f}]"
                row.append(cell)
        rows.append(row)
    label = METRIC_LABELS.get(metric, metric)
    return hr.table(["variant", *(f"{TRUTH_COLUMNS.get(t, t)} {label}" for t in truths)], rows)


def absent_notes(absent: Mapping[str, str]) -> str:
    """Why each missing truth is missing, one sentence each (empty when nothing is missing)."""
    return " ".join(f"{TRUTH_COLUMNS.get(t, t).capitalize()}: absent, {why}." for t, why in absent.items())


def _chart(results: Mapping[str, Mapping[str, float]]) -> str:
    series = {v: {METRIC_LABELS[k]: float(m[k]) for k in METRICS if k in m} for v, m in results.items()}
    return hr.bar_chart(series, title="Metrics by variant")


def render_html(
    results: Mapping[str, Mapping[str, float]],
    title: str = "jude: offline retrieval evaluation",
    notes: Mapping[str, str] | None = None,
    context: Mapping[str, object] | None = None,
    labelled: Mapping[str, Mapping[str, float]] | None = None,
    truth: str | None = None,
    n_queries: int | None = None,
    truths: Mapping[str, Mapping[str, Mapping[str, float]]] | None = None,
    absent: Mapping[str, str] | None = None,
    truth_queries: Mapping[str, int] | None = None,
    closure: Mapping[str, str] | None = None,
    intervals: Mapping[str, float] | None = None,
) -> str:
    """A self-contained HTML page: the headline, one row per variant (best value per column in bold), a bar
    chart, then the details.

    ``labelled``: the same variants scored on the labelled judgements only (before pooling), shown in the
    details (and its ratio under the headline) so the effect of the pooling is visible. ``truth``: what the
    ``results`` were scored on, for the headline (default: pooled judge judgements when ``labelled`` is
    given, else the labelled judgements). ``n_queries``: the number of test members, for the headline.

    ``truths`` (truth -> variant -> metrics: ``truth``, ``applies``, ``unseen``), ``absent`` (truth -> why it is
    missing), ``truth_queries`` (truth -> queries scored) and ``closure`` (truth -> the distillation gap closure
    or why it is undefined): with them the page leads with the ratio on the generator's truth when there is one,
    and the first table puts every truth side by side, with each nDCG@10's bootstrap interval where
    ``intervals`` (the flat ``..._ci_low``/``_ci_high`` metrics) has it.
    """
    notes = notes or VARIANT_NOTES
    truth = truth or (POOLED_TRUTH if labelled else LABELLED_TRUTH)
    truths, absent, truth_queries = dict(truths or {}), dict(absent or {}), dict(truth_queries or {})
    relevant = (
        "judged relevant (label budget or the pooled top-k of every variant) or applied in the test period"
        if labelled
        else "judged relevant or applied in the test period"
    )
    extra = [
        "<h3>Variants</h3>"
        + hr.table(["variant", "what it is"], [[v, notes.get(v, "")] for v in results if notes.get(v)])
    ]
    if labelled:
        extra.append(
            "<h3>On the labelled judgements only (before pooling)</h3>"
            "<p><small>Half of the label budget is sampled from the base model's top-k, so these "
            "judgements favour the base model.</small></p>" + _table_html(labelled, notes)
        )
    for name, res in truths.items():
        extra.append(f"<h3>On {html.escape(TRUTH_LABELS.get(name, name))}</h3>" + _table_html(res, notes))
    if context:
        extra.append("<h3>Context</h3>" + hr.key_list(context))
    extra.append(
        "<p><small>Exact inner-product search (FAISS IndexFlatIP) over every job; metrics by ranx. "
        f"Relevant = {html.escape(relevant)}.</small></p>"
    )
    if not truths and not absent:
        body = (
            hr.headline(headline(results, truth, n_queries), _subline(results, labelled))
            + _table_html(results, notes)
            + _chart(results)
            + hr.details("Details: variants, labelled-only scores, evaluation set", "".join(extra))
        )
        return hr.page(title, body)
    by_truth = {"judge": results, **truths}
    if "truth" in truths:  # the headline is on the truth the models were not trained to copy
        lead = headline(truths["truth"], TRUTH_LABELS["truth"], truth_queries.get("truth"))
        others = {truth: results, **{TRUTH_LABELS.get(t, t): r for t, r in truths.items() if t != "truth"}}
    else:
        lead = headline(results, truth, n_queries)
        others = {TRUTH_LABELS.get(t, t): r for t, r in truths.items()}
    sub = " ".join(
        f"On {name}: {r['finetuned']['ndcg_at_10'] / r['base']['ndcg_at_10']:.2f}x."
        for name, r in others.items()
        if "base" in r and "finetuned" in r and r["base"].get("ndcg_at_10")
    )
    sub = " ".join(p for p in (sub, absent_notes(absent)) if p)
    closure_text = "; ".join(f"{TRUTH_COLUMNS.get(t, t)}: {c}" for t, c in (closure or {}).items())
    body = (
        hr.headline(lead, sub)
        + truths_table(by_truth, absent, intervals=intervals)
        + ("<p><small>[low, high]: 95 % bootstrap interval over the test members.</small></p>" if intervals else "")
        + (f"<p><small>Distillation, per truth: {html.escape(closure_text)}.</small></p>" if closure_text else "")
        + f"<h3>On {html.escape(truth)}</h3>"
        + _table_html(results, notes)
        + _chart(results)
        + hr.details(
            "Details: variants, every truth's full table, labelled-only scores, evaluation set", "".join(extra)
        )
    )
    return hr.page(title, body)


def _truth(table: VariantTable) -> str:
    return POOLED_TRUTH if table.pooled else LABELLED_TRUTH


def variants_headline(table: VariantTable) -> str:
    """The headline sentence of :func:`render_variants` alone (for a run description, a log line)."""
    if "truth" in table.truths:
        return headline(table.truths["truth"], TRUTH_LABELS["truth"], table.truth_queries.get("truth"))
    return headline(table.results, _truth(table), len(table.eval_set.queries))


def render_variants(
    table: VariantTable,
    title: str = "jude: offline retrieval evaluation",
    intervals: Mapping[str, float] | None = None,
) -> str:
    """The pipeline's evaluation page for ``table``: the judged table, the labelled one when pooled, and a
    context list (judgements, evaluation set size, pooling counts, the summary metrics without a ``/``).
    ``intervals``: the flat bootstrap-interval metrics (``jude.evaluation.paired.variant_intervals``)."""
    context: dict[str, object] = {"qrels": "pooled" if table.pooled else "labels", **table.eval_set.summary()}
    if table.pool is not None:
        context.update({k if k.startswith("pool_") else f"pool_{k}": v for k, v in table.pool.counts.items()})
    context.update({k: v for k, v in table.flat_metrics().items() if "/" not in k})
    return render_html(
        table.results,
        title=title,
        context=hr.rounded(context),
        labelled=table.labelled if table.pooled else None,
        truth=_truth(table),
        n_queries=len(table.eval_set.queries),
        truths=table.truths,
        absent=table.absent,
        truth_queries=table.truth_queries,
        closure=table.closure_notes(),
        intervals=intervals,
    )


def variant_records(table: VariantTable) -> list[dict[str, Any]]:
    """The table as records for ``mlflow.log_table``: variant, truth, the four metrics (rounded).

    ``truth`` is ``pooled`` or ``labelled`` (the judge's), then ``truth``, ``applies``, ``unseen`` where scored:
    when pooled, every variant has a row on each.
    """
    sets = [("pooled" if table.pooled else "labelled", table.results)]
    if table.pooled:
        sets.append(("labelled", table.labelled))
    sets += list(table.truths.items())
    return [
        {"variant": variant, "truth": truth, **{k: hr.rounded(float(m[k])) for k in METRICS if k in m}}
        for truth, results in sets
        for variant, m in results.items()
    ]


def comparison_figure(table: VariantTable) -> Figure:
    """A grouped bar chart (matplotlib) of the four metrics per variant, for ``mlflow.log_figure``.

    Built on a bare :class:`~matplotlib.figure.Figure` (no pyplot), so it needs no display and leaves no
    global figure behind.
    """
    from matplotlib.figure import Figure

    metrics = [k for k in METRICS if any(k in m for m in table.results.values())]
    fig = Figure(figsize=(7, 3.2), dpi=100, layout="constrained")
    ax = fig.add_subplot()
    width = 0.8 / max(len(table.results), 1)
    for i, (variant, m) in enumerate(table.results.items()):
        xs = [j + i * width - 0.4 + width / 2 for j in range(len(metrics))]
        ax.bar(
            xs,
            [float(m.get(k, float("nan"))) for k in metrics],
            width,
            label=variant,
            color=hr.PALETTE[i % len(hr.PALETTE)],
        )
    ax.set_xticks(range(len(metrics)), [METRIC_LABELS[k] for k in metrics])
    ax.set_ylabel("score")
    ax.set_title(f"Variants on {_truth(table)} ({len(table.eval_set.queries)} test members)", fontsize=10)
    ax.grid(axis="y", color="#e5e5e5")
    ax.set_axisbelow(True)
    fig.legend(fontsize=8, ncols=min(len(table.results), 6), loc="outside lower center")
    return fig
