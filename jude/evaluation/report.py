"""The evaluation table: every variant on the same held-out queries, as HTML for the dashboard."""

from __future__ import annotations

import html
from collections.abc import Mapping

from jude.evaluation.retrieval import METRICS

VARIANT_NOTES = {
    "base": "the base model, no fine-tuning",
    "finetuned": "two-tower LoRA fine-tuning (InfoNCE)",
    "bce": "+ BCE apply head",
    "vp": "+ VP-matrix loss",
    "distilled": "+ cross-encoder distillation",
    "teacher": "cross-encoder reranking the fine-tuned top 100",
}


def metrics_table(results: Mapping[str, Mapping[str, float]]) -> list[dict]:
    """Rows of {variant, metric..., delta_ndcg_vs_base} in the order given."""
    base = results.get("base", {}).get("ndcg_at_10")
    rows = []
    for variant, m in results.items():
        row = {"variant": variant, **{k: float(m[k]) for k in METRICS if k in m}}
        if base and "ndcg_at_10" in m:
            row["ndcg_at_10_vs_base"] = float(m["ndcg_at_10"]) / base if base > 0 else float("nan")
        rows.append(row)
    return rows


def _table_html(results: Mapping[str, Mapping[str, float]], notes: Mapping[str, str]) -> str:
    rows = metrics_table(results)
    cols = [k for k in METRICS if any(k in r for r in rows)]
    best = {c: max((r[c] for r in rows if c in r), default=None) for c in cols}
    head = "".join(f"<th>{html.escape(c)}</th>" for c in ["variant", *cols, "nDCG@10 / base"])
    body = []
    for r in rows:
        cells = [f"<td><b>{html.escape(r['variant'])}</b><br><small>"
                 f"{html.escape(notes.get(r['variant'], ''))}</small></td>"]
        for c in cols:
            v = r.get(c)
            txt = "" if v is None else f"{v:.4f}"
            cells.append(f"<td>{'<b>' + txt + '</b>' if v is not None and v == best[c] else txt}</td>")
        ratio = r.get("ndcg_at_10_vs_base")
        cells.append(f"<td>{'' if ratio is None else f'{ratio:.2f}x'}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def render_html(results: Mapping[str, Mapping[str, float]], title: str = "jude: offline retrieval evaluation",
                notes: Mapping[str, str] | None = None, context: Mapping[str, object] | None = None,
                labelled: Mapping[str, Mapping[str, float]] | None = None) -> str:
    """A self-contained HTML page: one row per variant, best value per column in bold.

    ``labelled``: the same variants scored on the labelled judgements only (before pooling), shown as a
    second table so the effect of the pooling is visible.
    """
    notes = notes or VARIANT_NOTES
    ctx = ""
    if context:
        ctx = "<ul>" + "".join(f"<li>{html.escape(str(k))}: {html.escape(str(v))}</li>" for k, v in context.items()) + "</ul>"
    second = ""
    if labelled:
        second = ("<h3>On the labelled judgements only (before pooling)</h3>"
                  "<p><small>Half of the label budget is sampled from the base model's top-k, so these "
                  "judgements favour the base model.</small></p>" + _table_html(labelled, notes))
    relevant = ("judged relevant (label budget or the pooled top-k of every variant) or applied in the test period"
                if labelled else "judged relevant or applied in the test period")
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:system-ui,sans-serif;margin:1.5em}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:.4em .8em;text-align:right}}td:first-child{{text-align:left}}
th{{background:#f4f4f4}}</style></head><body><h2>{html.escape(title)}</h2>{ctx}
{_table_html(results, notes)}{second}
<p><small>Exact inner-product search (FAISS IndexFlatIP) over every job; metrics by ranx.
Relevant = {relevant}.</small></p></body></html>"""


def gap_closure(finetuned: float, distilled: float, teacher: float) -> float:
    """(distilled - finetuned) / (teacher - finetuned): the share of the teacher's lead that distillation
    recovers (JUDE reports 0.5). NaN when the teacher is not ahead of the fine-tuned model."""
    gap = teacher - finetuned
    return (distilled - finetuned) / gap if gap > 0 else float("nan")
