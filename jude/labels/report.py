"""What the labels look like: balance, grades, and how far the two kinds agree.

Relevance (judged) and engagement (behaviour) labels disagree by design (people
apply to jobs that do not fit them), but a judge that agrees with engagement no
better than chance is a sign of a broken rubric or prompt. ``label_report``
measures that on the pairs that carry both labels (Cohen's kappa corrects the
raw agreement for chance); ``label_report_html`` shows it in the dashboard.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import pandas as pd
from sklearn.metrics import cohen_kappa_score

from jude import htmlreport as hr
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
        sources[src] = {
            "n": n,
            "positives": pos,
            "negatives": n - pos,
            "positive_rate": round(pos / n, 4) if n else None,
        }
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


def _kappa_reading(kappa: float) -> str:
    """Landis and Koch's words for a kappa value (1977), so the headline reads without a textbook."""
    if kappa <= 0:
        return "no better than chance"
    for upper, words in ((0.2, "slight"), (0.4, "fair"), (0.6, "moderate"), (0.8, "substantial")):
        if kappa <= upper:
            return f"{words} agreement beyond chance"
    return "almost perfect agreement"


def label_headline(report: dict[str, Any]) -> tuple[str, str]:
    """The answer for a :func:`label_report`: how far the judge agrees with what members did, then the balance."""
    a, src = report["agreement"], report["sources"]
    if not a["n_pairs"]:
        sentence = (
            "No pair carries both a judged and an engagement label, so the judge cannot be checked against engagement."
        )
    elif a["cohen_kappa"] is None:
        sentence = (
            f"The judge agrees with engagement on {a['agreement_rate']:.0%} of the {a['n_pairs']} pairs that carry "
            "both labels; Cohen's kappa is undefined (both sides give one class only)."
        )
    else:
        sentence = (
            f"The judge agrees with engagement on {a['agreement_rate']:.0%} of the {a['n_pairs']} pairs that carry "
            f"both labels: Cohen's kappa {a['cohen_kappa']:.3f} ({_kappa_reading(a['cohen_kappa'])})."
        )
    parts = [
        f"{d['n']} {name} ({d['positive_rate']:.0%} positive)"
        for name, d in (("judged", src.get("relevance")), ("from engagement", src.get("engagement")))
        if d and d["n"]
    ]
    balance = f"{report['n_labels']} labels: " + ", ".join(parts) + "." if parts else ""
    return sentence, balance


def label_report_html(report: dict[str, Any]) -> str:
    """A small self-contained HTML page (inline CSS, no scripts) for a :func:`label_report`.

    The headline (agreement with engagement, kappa), one row per label source (count, positive rate, grade
    histogram), a bar chart of the grades, the relevance/engagement cross-table, then the raw report collapsed.
    """
    src_rows = [
        [s, str(d["n"]), hr.fmt(d["positive_rate"], 3), *(str(report["grades"][s][str(g)]) for g in range(4))]
        for s, d in report["sources"].items()
    ]
    grades = {s: {f"grade {g}": float(h[str(g)]) for g in range(4)} for s, h in report["grades"].items()}
    a = report["agreement"]
    cross = [
        ["judged relevant", str(a["both_positive"]), str(a["relevance_only_positive"])],
        ["judged not relevant", str(a["engagement_only_positive"]), str(a["both_negative"])],
    ]
    agree_rows = [
        ["pairs with both labels", str(a["n_pairs"])],
        ["agreement rate", hr.fmt(a["agreement_rate"], 3)],
        ["Cohen's kappa", hr.fmt(a["cohen_kappa"], 3)],
    ]
    raw = {
        "n_labels": report["n_labels"],
        **{f"{s}.{k}": v for s, d in report["sources"].items() for k, v in d.items()},
        **{f"grades.{s}.{g}": n for s, h in report["grades"].items() for g, n in h.items()},
        **{f"agreement.{k}": v for k, v in a.items()},
    }
    body = (
        hr.headline(*label_headline(report))
        + hr.table(["source", "labels", "positive rate", "grade 0", "1", "2", "3"], src_rows)
        + hr.bar_chart(grades, title="Labels per grade")
        + "<h3>Relevance vs engagement</h3>"
        "<p><small>On pairs that carry both a relevance and an engagement label (engaged = applied, not engaged "
        "= dismissed). Kappa corrects agreement for chance (0 = chance, 1 = perfect).</small></p>"
        + hr.table(["", "engaged", "not engaged"], cross)
        + hr.table(["", "value"], agree_rows)
        + hr.details("Details: the raw report", hr.key_list(raw))
    )
    return hr.page("Labels", body)
