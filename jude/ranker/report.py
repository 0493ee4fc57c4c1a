"""The ranker's report: one sentence with the answer, the rounded table with intervals, a calibration plot.

House style (:mod:`jude.htmlreport`): the headline first, a narrow table, then the details collapsed. The
calibration plot is a matplotlib PNG embedded as base64 (no external resource), the same figure MLflow logs.
"""

from __future__ import annotations

import base64
import html
import io
from typing import TYPE_CHECKING, Any

import numpy as np

from jude import htmlreport as hr
from jude.ranker.model import FEATURE_SETS, SERVED, SET_NOTES
from jude.ranker.run import RankerResult

if TYPE_CHECKING:
    from matplotlib.figure import Figure

TITLE = "jude: apply-prediction ranker"
ROWS = (*FEATURE_SETS, SERVED)
DECIMALS = 3


def label(metric: str) -> str:
    """A column header: 'apply AUC', 'qualified apply @10', 'dismiss/apply @10'."""
    if metric == "apply_auc":
        return "apply AUC"
    if metric == "log_loss":
        return "log loss"
    stem, _, k = metric.rpartition("_at_")
    return {"qualified_apply_rate": "qualified apply", "dismiss_to_apply": "dismiss/apply"}[stem] + f" @{k}"


def _num(v: float, signed: bool = False) -> str:
    if v is None or not np.isfinite(v):
        return "–"
    return f"{v:+.{DECIMALS}f}" if signed else f"{v:.{DECIMALS}f}"


def _cell(value: tuple[float, float, float], signed: bool = False) -> str:
    v, low, high = value
    return f"{_num(v, signed)} [{_num(low, signed)}, {_num(high, signed)}]"


def headline(result: RankerResult) -> tuple[str, str]:
    """The answer (champion embeddings vs standard features, apply AUC, paired interval) and the time-travel line."""
    v, d, c = result.values, result.deltas, result.context
    pct = int(round(100 * c.get("confidence", 0.95)))
    auc = {s: v[s]["apply_auc"][0] for s in v}
    gain, low, high = d["champion_vs_standard"]["apply_auc"]
    verdict = "within the noise" if low <= 0 <= high else ("a gain" if gain > 0 else "a loss")
    first = (
        f"Champion embeddings move apply AUC from {auc['standard']:.3f} (standard features) to "
        f"{auc['champion']:.3f}: {gain:+.3f}, {verdict} ({pct}% CI {low:+.3f} to {high:+.3f}, "
        f"{c.get('test_members', '?')} held-out members)."
    )
    k = result.names[2].rpartition("_at_")[2] if len(result.names) > 2 else None
    second = (
        f"Time travel: trained and scored on today's embeddings the same model reads {auc['champion_latest']:.3f} "
        f"offline, but {auc[SERVED]:.3f} when served the embeddings of each impression's time; base embeddings: "
        f"{auc['base']:.3f}."
    )
    if k is not None:
        q = {s: v[s][f"qualified_apply_rate_at_{k}"][0] for s in ("standard", "champion")}
        second += f" Qualified-apply rate @{k}: {_num(q['standard'])} standard, {_num(q['champion'])} champion."
    return first, second


def table_rows(result: RankerResult) -> list[list[str]]:
    return [[s, *(_cell(result.values[s][n]) for n in result.names)] for s in ROWS if s in result.values]


def records(result: RankerResult) -> list[dict[str, Any]]:
    """The table for ``mlflow.log_table``: one row per feature set, value and interval per metric (rounded)."""
    out = []
    for s in ROWS:
        if s not in result.values:
            continue
        row: dict[str, Any] = {"feature_set": s}
        for n in result.names:
            value, low, high = result.values[s][n]
            row |= {n: hr.rounded(value), f"{n}_ci_low": hr.rounded(low), f"{n}_ci_high": hr.rounded(high)}
        out.append(row)
    return out


def calibration_figure(result: RankerResult, bins: int = 10) -> Figure:
    """Reliability curves on the test rows (quantile bins of P(apply)): mean predicted vs observed apply rate."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5.2, 4.0), dpi=100, layout="constrained")
    ax = fig.add_subplot()
    y = result.applied.astype(float)
    top = 0.0
    for i, s in enumerate(s for s in ROWS if s in result.scores):
        p = result.scores[s]
        edges = np.unique(np.quantile(p, np.linspace(0, 1, bins + 1)))
        which = np.clip(np.searchsorted(edges, p, side="right") - 1, 0, len(edges) - 2)
        mean_p = np.array([p[which == b].mean() for b in range(len(edges) - 1) if (which == b).any()])
        rate = np.array([y[which == b].mean() for b in range(len(edges) - 1) if (which == b).any()])
        ax.plot(mean_p, rate, marker="o", ms=3, lw=1.2, color=hr.PALETTE[i % len(hr.PALETTE)], label=s)
        top = max(top, float(mean_p.max(initial=0)), float(rate.max(initial=0)))
    top = min(1.0, top * 1.05 + 1e-3)
    ax.plot([0, top], [0, top], ls="--", lw=0.8, color="#888", label="perfectly calibrated")
    ax.set_xlim(0, top)
    ax.set_ylim(0, top)
    ax.set_xlabel("predicted P(apply) (mean of the bin)")
    ax.set_ylabel("observed apply rate")
    ax.set_title(f"Calibration on the test rows ({bins} quantile bins)", fontsize=10)
    ax.grid(color="#e5e5e5")
    ax.legend(fontsize=7, loc="upper left")
    return fig


def png_base64(fig: Figure) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def render_html(result: RankerResult, context: dict | None = None, figure: Figure | None = None) -> str:
    """The report page: headline, the table (value [interval] per metric), the calibration plot, the details."""
    first, second = headline(result)
    pct = int(round(100 * result.context.get("confidence", 0.95)))
    table = hr.table(["feature set", *(label(n) for n in result.names)], table_rows(result))
    png = png_base64(figure if figure is not None else calibration_figure(result))
    plot = f'<img alt="calibration plot" width="520" src="data:image/png;base64,{png}"/>'
    deltas = hr.table(
        ["difference", *(label(n) for n in result.names)],
        [
            [name.replace("_vs_", " − "), *(_cell(d[n], signed=True) for n in result.names)]
            for name, d in result.deltas.items()
        ],
    )
    kept = {k: v for k, v in result.context.items() if k.startswith("top_")}
    notes = (
        "<p><small>Test rows: every impression of the training pipeline's held-out test members in the test "
        "period; these members were picked for having an apply there, so their apply rate is above the training "
        "rows' and every model under-predicts it in the calibration plot alike. Qualified apply: an apply to a "
        "job the synthetic truth grades relevant. Intervals: percentile bootstrap over test members "
        f"({pct}%), the same resamples for every row, so the differences below are paired. "
        + html.escape(
            ", ".join(
                f"{k.removesuffix('_share_of_test_rows').replace('_', ' ')} keeps {v:.0%} of the test rows"
                for k, v in kept.items()
            )
        )
        + " (a cut-off that keeps nearly every row cannot separate the rankers).</small></p>"
    )
    sets = hr.table(["feature set", "what it is"], [[s, SET_NOTES[s]] for s in ROWS if s in result.values])
    shown = [n for n in result.names if n == "apply_auc" or n.startswith("qualified_apply_rate")]
    chart = hr.bar_chart(
        {s: {label(n): result.values[s][n][0] for n in shown} for s in ROWS if s in result.values},
        title="Apply AUC and qualified-apply rates by feature set",
        ymax=1.0,
    )
    body = (
        hr.headline(first, second)
        + table
        + chart
        + plot
        + hr.details(
            "Details: feature sets, paired differences, time travel, rows",
            "<h3>Feature sets</h3>"
            + sets
            + f"<h3>Paired differences ({pct}% CI)</h3>"
            + deltas
            + notes
            + "<h3>Context</h3>"
            + hr.key_list(hr.rounded({**result.context, **(context or {})})),
        )
    )
    return hr.page(TITLE, body)
