"""Inline SVG charts for the portal: no script, no web font, no request.

Each chart is a self-describing image (role="img" with <title> and <desc>) and the page
also prints the same numbers as a table, so a screen reader or a printout loses nothing.
Text sizes are in viewBox units; the box is narrow (400 units) so labels stay legible
(~10px) when a phone scales the chart down to ~340 CSS pixels.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

WIDTH, HEIGHT = 400, 240
PAD_LEFT, PAD_RIGHT, PAD_TOP, PAD_BOTTOM = 50, 8, 22, 30

Point = tuple[dt.date, float]


@dataclass(frozen=True)
class BurnSeries:
    """What the burn chart draws; values are cumulative use in the budget's unit."""

    actual: Sequence[Point]
    projected: Sequence[Point]  # starts at the last actual point; may be empty
    budget: float | None  # horizontal line; None when the project has no budget
    label: Callable[[float], str]  # formats an axis/budget value: "120 h", "€4,000"
    day: Callable[[dt.date], str] = lambda d: f"{d.day} {d.strftime('%b')}"  # an axis date: "17 Mar"
    budget_label: str = "Budget %(amount)s"  # the budget line's caption, in the page's language


def nice_ticks(top: float, count: int = 4) -> list[float]:
    """Round tick values from 0 to at least `top` (1, 2, 2.5 or 5 times a power of ten)."""
    if top <= 0:
        return [0.0, 1.0]
    raw = top / count
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    n = math.ceil(top / step - 1e-9)
    return [round(i * step, 10) for i in range(n + 1)]


def fmt_num(v: float) -> str:
    return f"{v:.1f}".rstrip("0").rstrip(".")


def burn_chart(series: BurnSeries, *, title: str, desc: str, accent: str, chart_id: str) -> Markup:
    """Cumulative use over time, the budget line and a dashed projection."""
    pts = list(series.actual) + list(series.projected)
    if not pts:
        return Markup("")
    d0 = min(p[0] for p in pts)
    d1 = max(p[0] for p in pts)
    span = max((d1 - d0).days, 1)
    top = max([p[1] for p in pts] + [series.budget or 0.0]) * 1.05
    ticks = nice_ticks(top)
    y_max = ticks[-1] or 1.0
    # room for the longest axis label ("$80,000"): ~7.2 units per character at 12.5px
    pad_left = max(PAD_LEFT, 10 + 7.2 * max(len(series.label(t)) for t in ticks))
    plot_w = WIDTH - pad_left - PAD_RIGHT
    plot_h = HEIGHT - PAD_TOP - PAD_BOTTOM

    def x(d: dt.date) -> float:
        return pad_left + plot_w * (d - d0).days / span

    def y(v: float) -> float:
        return PAD_TOP + plot_h * (1 - v / y_max)

    def path(points: Sequence[Point]) -> str:
        return " ".join(f"{'M' if i == 0 else 'L'}{x(d):.1f},{y(v):.1f}" for i, (d, v) in enumerate(points))

    out: list[str] = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-labelledby="{chart_id}-t {chart_id}-d" xmlns="http://www.w3.org/2000/svg">',
        f'<title id="{chart_id}-t">{escape(title)}</title>',
        f'<desc id="{chart_id}-d">{escape(desc)}</desc>',
        '<g class="grid" aria-hidden="true">',
    ]
    for t in ticks:
        out.append(
            f'<line x1="{pad_left:.1f}" x2="{WIDTH - PAD_RIGHT}" y1="{y(t):.1f}" y2="{y(t):.1f}"/>'
            f'<text x="{pad_left - 6:.1f}" y="{y(t) + 4:.1f}" text-anchor="end">{escape(series.label(t))}</text>'
        )
    dticks = _date_ticks(d0, d1, most=4)
    for i, d in enumerate(dticks):
        # the outer labels hang inwards so they are never clipped at the edges
        anchor = "start" if i == 0 and len(dticks) > 1 else "end" if i == len(dticks) - 1 else "middle"
        out.append(
            f'<text x="{x(d):.1f}" y="{HEIGHT - PAD_BOTTOM + 18}" text-anchor="{anchor}">'
            f"{escape(series.day(d))}</text>"
        )
    out.append("</g>")
    if series.actual:
        area = path(series.actual) + (
            f" L{x(series.actual[-1][0]):.1f},{y(0):.1f} L{x(series.actual[0][0]):.1f},{y(0):.1f} Z"
        )
        out.append(f'<path class="area" d="{area}" fill="{accent}" aria-hidden="true"/>')
        out.append(f'<path class="actual" d="{path(series.actual)}" stroke="{accent}" aria-hidden="true"/>')
        ld, lv = series.actual[-1]
        out.append(f'<circle cx="{x(ld):.1f}" cy="{y(lv):.1f}" r="4" fill="{accent}" aria-hidden="true"/>')
    if series.projected:
        out.append(f'<path class="projected" d="{path(series.projected)}" stroke="{accent}" aria-hidden="true"/>')
    if series.budget is not None:
        by = y(series.budget)
        out.append(
            f'<line class="budget" x1="{pad_left:.1f}" x2="{WIDTH - PAD_RIGHT}" y1="{by:.1f}" y2="{by:.1f}" aria-hidden="true"/>'
            f'<text class="budget-label" x="{WIDTH - PAD_RIGHT}" y="{by - 6:.1f}" text-anchor="end" aria-hidden="true">'
            f"{escape(series.budget_label % {'amount': series.label(series.budget)})}</text>"
        )
    out.append("</svg>")
    return Markup("".join(out))


def _date_ticks(d0: dt.date, d1: dt.date, most: int = 5) -> list[dt.date]:
    span = (d1 - d0).days
    if span <= 0:
        return [d0]
    step = max(1, math.ceil(span / (most - 1)))
    ticks = [d0 + dt.timedelta(days=i * step) for i in range(most) if i * step < span]
    # the last label would collide with a tick that sits too close to the end
    if ticks and (d1 - ticks[-1]).days < step * 0.6:
        ticks.pop()
    return [*ticks, d1]


def meter(fraction: float, *, label: str, accent: str, over: bool) -> Markup:
    """A slim horizontal budget meter; `label` is its text alternative ("62% of budget used")."""
    f = max(0.0, min(fraction, 1.0))
    cls = "meter over" if over else "meter"
    fill = "#b3261e" if over else accent
    return Markup(
        f'<svg class="{cls}" viewBox="0 0 100 8" preserveAspectRatio="none" role="img" '
        f'aria-label="{escape(label)}" xmlns="http://www.w3.org/2000/svg">'
        f'<rect width="100" height="8" rx="4" class="track"/>'
        f'<rect width="{f * 100:.2f}" height="8" rx="4" fill="{fill}"/></svg>'
    )


