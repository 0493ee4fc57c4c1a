"""The bootstrap report: what a run embedded, what dedup saved, how fast (HTML for the ZenML dashboard)."""

from __future__ import annotations

from jude import htmlreport as hr


def bootstrap_html(report: dict) -> str:
    """A page from ``BootstrapReport.to_dict()``: headline, counts table, chart, details."""
    rows, inferences = report["rows"], report["inferences"]
    saved = rows / inferences if inferences else float("inf")
    saving = (
        f"{hr.fmt(saved, 1)}x fewer than the {rows} rows selected"
        if inferences < rows
        else f"one per row selected: the {rows} rows held no text twice"
    )
    head = hr.headline(
        f"{report['entities']} entities bootstrapped into {report['embedding_version']} with {inferences} "
        f"inferences ({saving})",
        f"{hr.fmt(report['entities_per_s'], 1)} entities/s end to end; "
        f"{report['skipped_stored']} entities were already stored; active flipped: {report['flipped']}",
    )
    counts = {
        "rows selected": rows,
        "entities": report["entities"],
        "distinct texts": report["distinct_texts"],
        "inferences": inferences,
        "reused from history": report["reused_from_history"],
        "skipped as stored": report["skipped_stored"],
    }
    table = hr.table(["count", "value"], [(k, hr.fmt(v)) for k, v in counts.items()])
    chart = hr.bar_chart({"count": {k: float(v) for k, v in counts.items()}}, "What the run did")
    return hr.page("jude bootstrap", head + table + chart + hr.details("all fields", hr.key_list(report)))
