"""What the labels look like: balance, grades, and how far the two kinds agree.

Relevance (judged) and engagement (behaviour) labels disagree by design (people
apply to jobs that do not fit them), but a judge that agrees with engagement no
better than chance is a sign of a broken rubric or prompt. ``label_report``
measures that on the pairs that carry both labels (Cohen's kappa corrects the
raw agreement for chance); ``label_report_html`` shows it in the dashboard.
"""

from __future__ import annotations

import html
import math
import warnings
from typing import Any

import pandas as pd
from sklearn.metrics import cohen_kappa_score

from jude.data.schema import LABEL_SOURCES, LABELS


def label_report(labels: pd.DataFrame) -> dict[str, Any]:
    """Summarise a labels table (LABELS columns; either or both sources).

    Returns a JSON-friendly dict::

        {"n_labels": int,
         "sources": {source: {"n", "positives", "negatives", "positive_rate"}},
         "grades": {source: {"0": n, "1": n, "2": n, "3": n}},
         "agreement": {"n_pairs", "both_positive", "both_negative",
                       "relevance_only_positive", "engagement_only_positive",
                       "agreement_rate", "cohen_kappa"}}

    ``agreement_rate`` and ``cohen_kappa`` are None when no pair has both labels;
    ``cohen_kappa`` is also None when it is undefined (both sides constant and equal).
    """
    if not isinstance(labels, pd.DataFrame):
        raise ValueError(f"labels: expected a pandas DataFrame, got {type(labels).__name__}")
    if len(labels):
        # reset_index: the table is often a concat or a filter, and validate() aligns on a default index
        labels = LABELS.validate(labels.reset_index(drop=True), where="labels")
    else:
        missing = [c for c in LABELS.column_names if c not in labels.columns]
        if missing:
            raise ValueError(f"labels: missing column(s) {missing}; expected {LABELS.column_names}")

    sources: dict[str, dict[str, Any]] = {}
    grades: dict[str, dict[str, int]] = {}
    for src in LABEL_SOURCES:
        part = labels[labels["source"] == src]
        n, pos = len(part), int((part["label"] == 1).sum())
        sources[src] = {"n": n, "positives": pos, "negatives": n - pos,
                        "positive_rate": round(pos / n, 4) if n else None}
        counts = part["grade"].value_counts()
        grades[src] = {str(g): int(counts.get(g, 0)) for g in range(4)}

    rel = labels[labels["source"] == "relevance"][["member_id", "job_id", "label"]]
    eng = labels[labels["source"] == "engagement"][["member_id", "job_id", "label"]]
    both = rel.merge(eng, on=["member_id", "job_id"], suffixes=("_rel", "_eng"))
    r, e = both["label_rel"].astype(int), both["label_eng"].astype(int)
    n_pairs = len(both)
    agreement: dict[str, Any] = {
        "n_pairs": n_pairs,
        "both_positive": int(((r == 1) & (e == 1)).sum()),
        "both_negative": int(((r == 0) & (e == 0)).sum()),
        "relevance_only_positive": int(((r == 1) & (e == 0)).sum()),
        "engagement_only_positive": int(((r == 0) & (e == 1)).sum()),
        "agreement_rate": round(float((r == e).mean()), 4) if n_pairs else None,
        "cohen_kappa": None,
    }
    if n_pairs:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            kappa = float(cohen_kappa_score(r, e, labels=[0, 1]))
        agreement["cohen_kappa"] = None if math.isnan(kappa) else round(kappa, 4)
    return {"n_labels": len(labels), "sources": sources, "grades": grades, "agreement": agreement}


def _table(headers: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(_fmt(v))}</td>" for v in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _fmt(v: Any) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:.3f}"
    return str(v)


def label_report_html(report: dict[str, Any]) -> str:
    """A small self-contained HTML page (inline CSS, no scripts) for a :func:`label_report`."""
    src_rows = [[s, d["n"], d["positives"], d["negatives"], d["positive_rate"]]
                for s, d in report["sources"].items()]
    grade_rows = [[s] + [h[str(g)] for g in range(4)] for s, h in report["grades"].items()]
    a = report["agreement"]
    agree_rows = [
        ["pairs with both labels", a["n_pairs"]],
        ["both positive", a["both_positive"]],
        ["both negative", a["both_negative"]],
        ["relevant, not engaged", a["relevance_only_positive"]],
        ["engaged, not relevant", a["engagement_only_positive"]],
        ["agreement rate", a["agreement_rate"]],
        ["Cohen's kappa", a["cohen_kappa"]],
    ]
    style = ("body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}"
             "table{border-collapse:collapse;margin:0.5em 0 1.5em}"
             "th,td{border:1px solid #ccc;padding:4px 10px;text-align:right}"
             "th{background:#f3f3f3}td:first-child{text-align:left}")
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>jude labels</title>"
        f"<style>{style}</style></head><body>"
        f"<h1>Labels</h1><p>{report['n_labels']} labels.</p>"
        "<h2>Class balance</h2>"
        + _table(["source", "labels", "positives", "negatives", "positive rate"], src_rows)
        + "<h2>Grades</h2>" + _table(["source", "0", "1", "2", "3"], grade_rows)
        + "<h2>Relevance vs engagement</h2>"
        "<p>On pairs that carry both a relevance and an engagement label. "
        "Kappa corrects agreement for chance (0 = chance, 1 = perfect).</p>"
        + _table(["", "value"], agree_rows)
        + "</body></html>"
    )
