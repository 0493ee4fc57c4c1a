"""The drift report: one standalone HTML page for a list of :class:`DriftResult`.

Rendering only: the numbers come from :mod:`jude.monitoring.drift`, which
knows nothing about HTML. The page leads with the answer (which entity types
drifted, by how much against which threshold), then a narrow table, a bar chart
of score against threshold, the details collapsed (:mod:`jude.htmlreport`), and
below them Evidently's interactive widgets for each entity type.
"""

from __future__ import annotations

from jude import htmlreport as hr
from jude.monitoring.drift import DriftInputError, DriftResult

TITLE = "jude: embedding drift"
METHOD_NAMES = {"model": "classifier ROC AUC", "mmd": "MMD^2"}
EXPLANATION = (
    "Reference = entities of the training period, current = entities created or updated recently. "
    "The first method decides the alert. model: ROC AUC of a classifier telling the windows apart "
    "(0.5 = indistinguishable). mmd: squared Maximum Mean Discrepancy (0 = same distribution). "
    "Centroid cosine distance: how far the mean embedding turned. Similarity: median cosine of an entity "
    "to the reference centroid (reference / current); a drop means the current entities left the "
    "reference's neighbourhood. Norm: median vector norm (1.0 for a normalised model)."
)


def drift_headline(results: list[DriftResult]) -> tuple[str, str]:
    """The answer: which entity types drifted (score against threshold), then what was compared with what."""
    drifted = [r for r in results if r.drifted]
    method = METHOD_NAMES.get(results[0].primary.method, results[0].primary.method)
    if drifted:
        which = ", ".join(f"{r.entity_type} ({r.primary.score:.3f} > {r.primary.threshold:g})" for r in drifted)
        sentence = f"Embedding drift in {len(drifted)} of {len(results)} entity types by {method}: {which}."
    else:
        top = max(results, key=lambda r: r.primary.score / r.primary.threshold if r.primary.threshold else 0.0)
        sentence = (
            f"No embedding drift in {len(results)} entity types: every {method} score is within its threshold "
            f"(closest: {top.entity_type} {top.primary.score:.3f} <= {top.primary.threshold:g})."
        )
    prov = results[0].provenance
    sub = (
        f"Model version {prov.get('model_version')}; reference = the training period, current = the recent window "
        f"({sum(r.n_reference for r in results)} vs {sum(r.n_current for r in results)} entities)."
    )
    return sentence, sub


def _summary_table(results: list[DriftResult]) -> str:
    """One row per entity type: the verdict, the deciding score, a second opinion, the centroid's turn."""
    rows = []
    for r in results:
        second = r.scores[1] if len(r.scores) > 1 else None
        rows.append(
            [
                r.entity_type,
                "DRIFT" if r.drifted else "ok",
                f"{r.primary.score:.4f} (thr {r.primary.threshold:g})",
                "" if second is None else f"{second.method} {second.score:.4f}",
                f"{r.stats.centroid_cosine_distance:.4f}",
                f"{r.n_reference} / {r.n_current}",
            ]
        )
    method = results[0].primary.method
    headers = ["entity", "verdict", f"{method} score", "second opinion", "centroid cosine distance", "ref / cur"]
    return hr.table(headers, rows)


def _details(results: list[DriftResult]) -> str:
    keys: dict[str, object] = {}
    for r in results:
        s, e = r.stats, r.entity_type
        keys[f"{e}.scores"] = "; ".join(m.describe() for m in r.scores)
        keys[f"{e}.similarity_to_reference_centroid_p50 (ref / cur)"] = (
            f"{s.reference_similarity_quantiles['p50']:.3f} / {s.current_similarity_quantiles['p50']:.3f}"
        )
        keys[f"{e}.norm_p50 (ref / cur)"] = (
            f"{s.reference_norm_quantiles['p50']:.3f} / {s.current_norm_quantiles['p50']:.3f}"
        )
        keys[f"{e}.sampled (ref / cur)"] = f"{r.n_sampled_reference} / {r.n_sampled_current}"
    keys.update({f"provenance.{k}": v for k, v in results[0].provenance.items()})
    return f"<p><small>{EXPLANATION}</small></p>" + hr.key_list(keys)


def _summary_body(results: list[DriftResult]) -> str:
    """The answer-first part of the page: headline, table, chart, collapsed details."""
    if not results:
        raise DriftInputError("render_html: no drift results to render")
    method = results[0].primary.method
    chart = hr.bar_chart(
        {
            f"{method} score": {r.entity_type: r.primary.score for r in results},
            "threshold": {r.entity_type: r.primary.threshold for r in results},
        },
        title=f"{method} score against its threshold (above = drift)",
    )
    body = (
        hr.headline(*drift_headline(results))
        + _summary_table(results)
        + chart
        + hr.details("Details: similarities, norms, samples, provenance", _details(results))
    )
    return body


def render_html(results: list[DriftResult]) -> str:
    """One standalone HTML page: the answer first (headline, table, chart, details), then each entity type's
    Evidently widgets.

    Built with Evidently's own renderer so the page carries its JavaScript once (about 4 MB) however many
    entity types it shows; results without an Evidently snapshot (``detect_drift(report=False)``) give a
    plain page with the summary alone.
    """
    body = _summary_body(results)
    snapshots = [r for r in results if r.snapshot is not None]
    if not snapshots:
        return hr.page(TITLE, body)
    from evidently.core.metric_types import render_widgets
    from evidently.legacy.renderers.html_widgets import group_widget

    widgets = [
        group_widget(title=f"{r.entity_type}: {r.primary.describe()}", widgets=list(r.snapshot._widgets))
        for r in snapshots
    ]
    page = render_widgets(widgets, as_iframe=False)
    at = page.index("<body>", page.index("</head>")) + len("<body>")  # the answer above Evidently's widgets
    return page[:at] + hr.fragment(TITLE, body) + page[at:]
