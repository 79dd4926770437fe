"""A small SVG line chart with a logarithmic x axis: enough to show how a cost grows with N."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Final, final
from xml.sax.saxutils import escape

import attrs

WIDTH: Final = 720
HEIGHT: Final = 400
LEFT: Final = 70
RIGHT: Final = 230
TOP: Final = 40
BOTTOM: Final = 50


@final
@attrs.frozen
class Series:
    """
    One line of the chart.

    Attributes:
        label: Its name in the legend.

        color: An SVG color.

        points: ``(x, y)`` pairs; x must be positive (the axis is logarithmic).

        dashed: Whether the line is dashed (used for the floors).
    """

    label: str
    color: str
    points: Sequence[tuple[float, float]]
    dashed: bool = False


def _nice_step(span: float) -> float:
    """A round step that cuts *span* into four to eight parts."""
    raw = span / 5
    magnitude = 10.0 ** math.floor(math.log10(raw))
    for factor in (1, 2, 2.5, 5, 10):
        if raw <= factor * magnitude:
            return factor * magnitude
    return 10 * magnitude  # pragma: no cover - the loop always returns


def _number(value: float) -> str:
    if value >= 1000:
        return f"{value:,.0f}"
    return f"{value:g}"


def line_chart(title: str, x_label: str, y_label: str, series: Sequence[Series]) -> str:
    """Render *series* as an SVG document: x logarithmic (N), y linear from zero."""
    drawn = [s for s in series if s.points]
    xs = sorted({x for s in drawn for x, _ in s.points}) or [1.0, 10.0]
    y_max = max((y for s in drawn for _, y in s.points), default=1.0) or 1.0
    step = _nice_step(y_max)
    top_value = step * math.ceil(y_max * 1.05 / step)
    lo, hi = math.log10(xs[0]), math.log10(xs[-1])
    if hi == lo:
        lo, hi = lo - 0.5, hi + 0.5
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def px(x: float) -> float:
        return LEFT + (math.log10(x) - lo) / (hi - lo) * plot_w

    def py(y: float) -> float:
        return TOP + plot_h - y / top_value * plot_h

    out = [
        (
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
            f'viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12">'
        ),
        f'<rect width="{WIDTH}" height="{HEIGHT}" fill="white"/>',
        f'<text x="{LEFT}" y="22" font-size="15" font-weight="bold">{escape(title)}</text>',
    ]
    value = 0.0
    while value <= top_value + step / 2:
        y = py(value)
        out.append(f'<line x1="{LEFT}" y1="{y:.1f}" x2="{LEFT + plot_w}" y2="{y:.1f}" stroke="#ddd"/>')
        out.append(f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{_number(value)}</text>')
        value += step
    for x in xs:
        X = px(x)  # noqa: N806 - screen coordinates in capitals read better beside the data's
        out.append(f'<line x1="{X:.1f}" y1="{TOP}" x2="{X:.1f}" y2="{TOP + plot_h}" stroke="#eee"/>')
        out.append(f'<text x="{X:.1f}" y="{TOP + plot_h + 18}" text-anchor="middle">{_number(x)}</text>')
    out.append(
        f'<rect x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#333"/>',
    )
    out.append(
        f'<text x="{LEFT + plot_w / 2:.1f}" y="{HEIGHT - 12}" text-anchor="middle">{escape(x_label)}</text>',
    )
    out.append(
        f'<text x="16" y="{TOP + plot_h / 2:.1f}" text-anchor="middle" '
        f'transform="rotate(-90 16 {TOP + plot_h / 2:.1f})">{escape(y_label)}</text>',
    )
    for index, s in enumerate(drawn):
        points = sorted(s.points)
        dash = ' stroke-dasharray="6 4"' if s.dashed else ""
        path = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in points)
        out.append(f'<polyline points="{path}" fill="none" stroke="{s.color}" stroke-width="2"{dash}/>')
        out.extend(f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="3" fill="{s.color}"/>' for x, y in points)
        ly = TOP + 10 + index * 20
        lx = LEFT + plot_w + 15
        out.append(f'<line x1="{lx}" y1="{ly}" x2="{lx + 24}" y2="{ly}" stroke="{s.color}" stroke-width="2"{dash}/>')
        out.append(f'<text x="{lx + 30}" y="{ly + 4}">{escape(s.label)}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"
