"""Building blocks of jude's HTML reports (evaluation, labels, drift): a page that leads with the answer.

Every report has the same shape, so its first screen answers the question in ZenML's 384-pixel-high
visualisation frame and in MLflow's narrow artifact pane:

1. a headline: one sentence with the figure that matters and what it was measured against;
2. a narrow comparison table (one row per thing compared, a few columns), numbers rounded;
3. a bar chart of the same rows (inline SVG: no script, no external resource);
4. the details (raw keys, context) in a collapsed ``<details>`` block.

:func:`page` makes a standalone page; :func:`fragment` the same content as a block at the top of another page
(the drift report's Evidently page), its CSS scoped to the block. Plain strings in, HTML out; nothing here
knows what a metric or a label is.
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

DECIMALS = 4  # the most decimals any number in a report carries (3-4 significant digits for metrics in [0, 1])

# One colour per bar series, colour-blind safe (Okabe-Ito), in series order.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000")

_RULES = (  # (selector, declarations); "" is the report's root (the page body, or a fragment's wrapper)
    ("", "font-family:system-ui,sans-serif;font-size:14px;margin:.8em 1em;color:#222"),
    ("h2", "font-size:1.15em;margin:.2em 0 .4em"),
    ("h3", "font-size:1em;margin:1em 0 .3em"),
    ("p.headline", "font-size:1.05em;margin:.3em 0 .6em"),
    ("p.sub", "margin:.2em 0 .6em;color:#555"),
    ("table", "border-collapse:collapse;margin:.3em 0 .8em"),
    ("th,td", "border:1px solid #ccc;padding:3px 8px;text-align:right;white-space:nowrap"),
    ("th", "background:#f3f3f3"),
    ("td:first-child,th:first-child", "text-align:left"),
    ("details", "margin-top:1em"),
    ("summary", "cursor:pointer;color:#555"),
    ("small", "color:#666"),
    ("svg text", "font-family:system-ui,sans-serif;font-size:11px;fill:#333"),
)
FRAGMENT_CLASS = "jude-report"


def _style(root: str) -> str:
    """The report CSS with every rule under ``root`` ("body" for a page, ".jude-report" for a fragment)."""
    out = []
    for selector, rule in _RULES:
        scoped = root if not selector else ",".join(f"{root} {part}" for part in selector.split(","))
        out.append(f"{scoped}{{{rule}}}")
    return "".join(out)


def fmt(value: Any, decimals: int = DECIMALS) -> str:
    """A value as report text: floats rounded to ``decimals`` (trailing zeros kept), None and NaN as a dash."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        return "–" if math.isnan(value) else f"{value:.{decimals}f}"
    return str(value)


def rounded(value: Any, decimals: int = DECIMALS) -> Any:
    """``value`` with every float inside (dicts, lists, tuples) rounded to ``decimals``."""
    if isinstance(value, bool):
        return value
    if isinstance(value, float):
        return value if math.isnan(value) else round(value, decimals)
    if isinstance(value, Mapping):
        return {k: rounded(v, decimals) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(rounded(v, decimals) for v in value)
    return value


def headline(sentence: str, sub: str = "") -> str:
    """The answer: one sentence (escaped), and an optional second, quieter line."""
    out = f'<p class="headline">{html.escape(sentence)}</p>'
    return out + (f'<p class="sub">{html.escape(sub)}</p>' if sub else "")


def table(headers: Sequence[str], rows: Iterable[Sequence[str]], escape: bool = True) -> str:
    """A table; ``rows`` hold cell text (escaped unless ``escape=False``, for cells already written as HTML)."""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(c) if escape else c}</td>" for c in row) + "</tr>" for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def key_list(items: Mapping[str, Any]) -> str:
    """``key: value`` lines, floats rounded to at most ``DECIMALS`` decimals (``0.5``, ``2.9423``): the raw
    context a curious reader can open."""

    def text(v: Any) -> str:
        v = rounded(v)
        return fmt(v) if v is None or isinstance(v, float) and math.isnan(v) else str(v)

    lines = "".join(f"<li>{html.escape(str(k))}: {html.escape(text(v))}</li>" for k, v in items.items())
    return f"<ul>{lines}</ul>"


def details(summary: str, body: str) -> str:
    """A collapsed block: closed by default, so it never pushes the answer off the first screen."""
    return f"<details><summary>{html.escape(summary)}</summary>{body}</details>"


def bar_chart(
    series: Mapping[str, Mapping[str, float]],
    title: str,
    width: int = 520,
    height: int = 190,
    ymax: float | None = None,
) -> str:
    """A grouped bar chart as inline SVG: one group per category, one coloured bar per series.

    ``series`` maps a series name (a legend entry, e.g. a variant) to ``{category: value}`` (e.g. metric ->
    score); categories are taken in first-seen order and a missing value leaves a gap. ``ymax`` fixes the top
    of the axis (default: the largest value rounded up so that the four grid steps are round numbers). Each
    bar carries its exact value (rounded) as a tooltip. No ``xmlns`` attribute: inline SVG in HTML needs
    none, and the page stays free of URLs.
    """
    names = list(series)
    categories: list[str] = []
    for values in series.values():
        categories += [c for c in values if c not in categories]
    if not names or not categories:
        return ""
    finite = [float(v) for values in series.values() for v in values.values() if v is not None and math.isfinite(v)]
    peak = max(finite, default=0.0)
    top = ymax if ymax is not None else (4 * _nice_step(peak / 4) if peak > 0 else 1.0)
    left, right, legend_h, bottom = 34, 8, 18 * math.ceil(len(names) / 4), 34
    plot_w, plot_h = width - left - right, height - bottom - legend_h - 20
    y0 = 20 + plot_h  # pixel row of the value 0
    group_w = plot_w / len(categories)
    bar_w = group_w * 0.8 / len(names)
    parts = [
        f'<svg width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{html.escape(title)}">',
        f'<text x="{left}" y="13" style="font-weight:600">{html.escape(title)}</text>',
    ]
    for i in range(5):  # four horizontal grid lines and their labels
        v = top * i / 4
        y = y0 - plot_h * i / 4
        parts.append(f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e5e5e5"/>')
        parts.append(f'<text x="{left - 4}" y="{y + 4:.1f}" text-anchor="end">{_tick(v)}</text>')
    for ci, cat in enumerate(categories):
        gx = left + ci * group_w + group_w * 0.1
        for si, name in enumerate(names):
            v = series[name].get(cat)
            if v is None or not math.isfinite(v):
                continue
            h = plot_h * max(0.0, min(float(v), top)) / top
            x = gx + si * bar_w
            parts.append(
                f'<rect x="{x:.1f}" y="{y0 - h:.1f}" width="{max(bar_w - 1, 1):.1f}" height="{h:.1f}" '
                f'fill="{PALETTE[si % len(PALETTE)]}"><title>{html.escape(name)} {html.escape(cat)}: '
                f"{_value(float(v))}</title></rect>"
            )
        cx = left + (ci + 0.5) * group_w
        parts.append(f'<text x="{cx:.1f}" y="{y0 + 14:.1f}" text-anchor="middle">{html.escape(cat)}</text>')
    for si, name in enumerate(names):  # the legend, four entries a row
        lx = left + (si % 4) * (plot_w / 4)
        ly = height - legend_h + 18 * (si // 4) + 4
        parts.append(f'<rect x="{lx:.1f}" y="{ly:.1f}" width="10" height="10" fill="{PALETTE[si % len(PALETTE)]}"/>')
        parts.append(f'<text x="{lx + 14:.1f}" y="{ly + 9:.1f}">{html.escape(name)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _nice_step(raw: float) -> float:
    """The smallest of 1, 1.5, 2, 2.5, 3, 5 (times a power of ten) that is >= ``raw``: readable grid steps."""
    power = 10 ** math.floor(math.log10(raw))
    return next(m * power for m in (1, 1.5, 2, 2.5, 3, 5, 10) if m * power >= raw * (1 - 1e-9))


def _tick(v: float) -> str:
    return f"{round(v, DECIMALS):g}"


def _value(v: float) -> str:
    return str(int(v)) if v.is_integer() else fmt(v)


def page(title: str, body: str) -> str:
    """A self-contained HTML page (inline CSS, no script, no external resource)."""
    return (
        f'<!DOCTYPE html><html><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f"<style>{_style('body')}</style></head><body><h2>{html.escape(title)}</h2>{body}</body></html>"
    )


def fragment(title: str, body: str) -> str:
    """The same report as a block to put at the top of another page (e.g. Evidently's), its CSS scoped to the
    block so the host page's own tables keep their look."""
    root = f".{FRAGMENT_CLASS}"
    return f'<div class="{FRAGMENT_CLASS}"><style>{_style(root)}</style><h2>{html.escape(title)}</h2>{body}</div>'
