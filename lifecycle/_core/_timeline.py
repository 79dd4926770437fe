"""A shutdown timeline as SVG: one row per component, a bar per phase its stop spent time in."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterator
from typing import TYPE_CHECKING
from xml.sax.saxutils import escape, quoteattr

from ._policy import Phase
from ._states import Outcome

if TYPE_CHECKING:
    from ._report import ComponentReport, ShutdownReport

__all__ = ["Box", "render_timeline", "text_box"]

# Colours of the phases: bars, the tint of the plot behind each phase, the legend.
COLOURS = {Phase.GRACEFUL: "#3f9b6b", Phase.FORCEFUL: "#e39b2d", Phase.TERMINATE: "#cf4236"}
FAILED = "#b3261e"
INK = "#1f2328"
MUTED = "#656d76"
GRID = "#d8dee4"

WIDTH = 960
MARGIN = 16
ROW = 24
BAR = 12
CHAR = 7.3  # width of one character of the 12px monospace labels
LABEL_FONT = "ui-monospace, SFMono-Regular, Menlo, Consolas, monospace"
TEXT_FONT = "system-ui, -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif"


# A label's box: left, top, right, bottom.
Box = tuple[float, float, float, float]

# Lanes of the marker labels ("request", "FORCEFUL begins"), above the tick labels.
LANE = 15
LANE0 = 26  # the first lane's baseline, above the top of the plot


def text_box(
    text: str, x: float, y: float, *, size: float = 12, bold: bool = False, mono: bool = False, anchor: str = "start"
) -> Box:
    """
    The box a label of the timeline covers, with generous character widths.

    Widths are estimated per character for the fonts the SVG asks for (a
    monospace or sans-serif face, bold or not); every estimate is at least the
    real width of common faces, so boxes that do not overlap mean labels that
    do not overlap. *y* is the baseline; *anchor* is ``start``, ``middle`` or ``end``.
    """
    width = len(text) * size * (0.61 if mono else 0.64 if bold else 0.58)
    left = {"start": x, "middle": x - width / 2, "end": x - width}[anchor]
    return (left, y - 0.8 * size, left + width, y + 0.25 * size)


def _overlap(a: Box, b: Box) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _place_markers(markers: list[tuple[str, float]], taken: list[Box], right: float) -> list[tuple[int, float, str]]:
    """
    Give each marker label (text, x of its line) a lane and a side of its line, so that nothing overlaps.

    A label goes right of its line unless it would pass *right*. Labels are
    placed from the rightmost line to the leftmost, each in the lowest lane
    where it overlaps no label placed before, no stem of one (the line from a
    label down to the axis) and nothing *taken* (the tick labels), and where,
    if possible, its own stem crosses no label placed before. The lane above
    every placed label is always clear, so this ends. Lanes count upwards
    from 0; boxes are relative to the top of the plot.
    """
    placed: dict[int, tuple[int, float, str]] = {}
    labels: list[Box] = []
    stems: list[Box] = []
    for index in sorted(range(len(markers)), key=lambda i: -markers[i][1]):
        text, bx = markers[index]
        candidates: list[tuple[bool, int, float, str, Box, Box]] = []
        for lane in range(1 + max((lane for lane, _, _ in placed.values()), default=-1) + 1):
            y = -LANE0 - lane * LANE
            anchor, tx = ("start", bx + 4) if text_box(text, bx + 4, y, bold=True)[2] <= right else ("end", bx - 4)
            box = text_box(text, tx, y, bold=True, anchor=anchor)
            stem: Box = (bx - 1, y - 10, bx + 1, -20.0)
            if any(_overlap(box, other) for other in (*taken, *labels, *stems)):
                continue
            crossing = any(_overlap(stem, other) for other in labels)
            candidates.append((crossing, lane, tx, anchor, box, stem))
            if not crossing:
                break
        _, lane, tx, anchor, box, stem = min(candidates, key=lambda c: (c[0], c[1]))
        labels.append(box)
        stems.append(stem)
        placed[index] = (lane, tx, anchor)
    return [placed[i] for i in range(len(markers))]


def _num(value: float) -> str:
    """Format a coordinate: fixed precision, so the output is the same for the same report."""
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def _duration(seconds: float) -> str:
    if seconds < 1:
        return f"{seconds * 1000:.1f} ms"
    return f"{seconds:.3f} s"


def _nice_step(span: float, target: int = 6) -> float:
    """A round tick step (1, 2 or 5 times a power of ten) giving about *target* ticks over *span*."""
    raw = span / target
    power = 10.0 ** math.floor(math.log10(raw))
    for factor in (1, 2, 5, 10):
        if raw <= factor * power:
            return factor * power
    return 10 * power  # pragma: no cover - the loop always returns: raw <= 10 * power


def _tick_label(value: float, step: float, unit: float, suffix: str) -> str:
    decimals = max(0, -math.floor(math.log10(step / unit) + 1e-9))
    text = f"{value / unit:.{decimals}f}"
    if text.lstrip("-").strip("0.") == "":
        return "0"
    return f"{'+' if value > 0 else ''}{text} {suffix}"


def _rows(report: ComponentReport, depth: int = 0) -> Iterator[tuple[ComponentReport, int]]:
    """A supervisor first, then its children in the order their stops ended, depth first."""
    yield report, depth
    for child in report.children:
        yield from _rows(child, depth + 1)


def _segments(
    component: ComponentReport,
    began: float,
    ended: float,
) -> list[tuple[Phase, float, float]]:
    """Split a stop from *began* to *ended* at the component's phase boundaries."""
    if component.phase_ends is None:
        return [(component.phase or Phase.GRACEFUL, began, ended)]
    graceful_end, forceful_end, _ = component.phase_ends
    spans = (
        (Phase.GRACEFUL, -math.inf, graceful_end),
        (Phase.FORCEFUL, graceful_end, forceful_end),
        (Phase.TERMINATE, forceful_end, math.inf),
    )
    if ended <= began:  # an instant stop: a bar of no width, in the phase it happened in
        return [next((phase, began, began) for phase, _, hi in spans if began < hi)]
    return [(phase, max(began, lo), min(ended, hi)) for phase, lo, hi in spans if min(ended, hi) > max(began, lo)]


class _Svg:
    """Accumulates SVG elements; every text and attribute value is escaped."""

    def __init__(self) -> None:
        self.parts: list[str] = []

    def element(self, tag: str, text: str | None = None, /, **attrs: str | float) -> None:
        self.parts.append(self._open(tag, attrs) + ("/>" if text is None else f">{escape(text)}</{tag}>"))

    def open(self, tag: str, /, **attrs: str | float) -> None:
        self.parts.append(self._open(tag, attrs) + ">")

    def close(self, tag: str) -> None:
        self.parts.append(f"</{tag}>")

    @staticmethod
    def _open(tag: str, attrs: dict[str, str | float]) -> str:
        rendered = " ".join(
            f"{name.rstrip('_').replace('_', '-')}={quoteattr(value if isinstance(value, str) else _num(value))}"
            for name, value in attrs.items()
        )
        return f"<{tag} {rendered}" if rendered else f"<{tag}"


def render_timeline(report: ShutdownReport) -> str:  # noqa: C901, PLR0912, PLR0915 - one drawing, top to bottom
    """Return the SVG text of *report*'s timeline (see :meth:`ShutdownReport.to_svg`)."""
    t0 = report.requested_at
    rows = list(_rows(report.root_report))

    def rel(value: float) -> float:
        return value - t0

    # The time range: from the request (or a little earlier, for stops that began
    # before it) to the end of the last component.
    hi = max(report.duration, *(rel(c.stopped_at) for c, _ in rows if c.stopped_at is not None), 0.0)
    earliest = min((rel(t) for c, _ in rows for t in (c.stop_began, c.stopped_at) if t is not None), default=0.0)
    span_guess = hi if hi > 0 else 1e-3
    lo = max(min(0.0, earliest), -span_guess)
    if hi - lo <= 0:
        hi = lo + 1e-3
    step = _nice_step(hi - lo)
    hi = math.ceil(hi / step - 1e-9) * step
    if report.phase_changes and report.phase_changes[-1].at - t0 >= hi - 1e-9:
        hi += step  # room for the label of a phase that began as the stop ended
    if lo < 0:  # a little room left of the earliest event, not a whole tick
        lo -= (hi - lo) * 0.02
    span = hi - lo
    unit, suffix = (1e-3, "ms") if span < 2 else (1.0, "s")  # noqa: PLR2004 - milliseconds below two seconds

    labels = [c.name if depth else c.path for c, depth in rows]
    label_w = max(len(text) + 2 * depth for text, (_, depth) in zip(labels, rows, strict=True)) * CHAR + 2 * MARGIN
    outcome_texts = []
    for c, _ in rows:
        text = c.outcome.value
        if c.stop_duration is not None:
            text += f" {_duration(c.stop_duration)}"
        outcome_texts.append(text)
    outcome_w = max(len(text) for text in outcome_texts) * CHAR + MARGIN
    x0 = label_w
    x1 = WIDTH - outcome_w - MARGIN
    plot_w = x1 - x0

    def x(t: float) -> float:
        return x0 + (min(max(t, lo), hi) - lo) / span * plot_w

    # The phase boundaries of the tree's stop, and the labels above the plot: ticks,
    # then the request and each boundary in lanes that keep every label clear of
    # the others (positions relative to the top of the plot, placed below).
    boundaries: list[tuple[Phase, float]] = []
    if report.phase_ends is not None:
        for phase, start in zip((Phase.FORCEFUL, Phase.TERMINATE), report.phase_ends[:2], strict=True):
            if lo < rel(start) <= report.duration:
                boundaries.append((phase, rel(start)))
    first = math.ceil(lo / step - 1e-9)
    ticks: list[tuple[float, str | None]] = []
    tick_boxes: list[Box] = []
    for i in range(first, math.floor(hi / step + 1e-9) + 1):
        t = i * step
        text = _tick_label(t, step, unit, suffix)
        box = text_box(text, x(t), -8, anchor="middle")
        if tick_boxes and _overlap(box, tick_boxes[-1]):
            ticks.append((t, None))  # too close to the last label: a tick without one
            continue
        tick_boxes.append(box)
        ticks.append((t, text))
    reasons = {change.phase: change.reason for change in report.phase_changes}
    markers: list[tuple[str, float]] = [("request", x(0))] if lo <= 0 <= hi else []
    for phase, at in boundaries:
        reason = reasons.get(phase)
        markers.append((f"{phase.name} begins" if reason is None else f"{phase.name} begins ({reason})", x(at)))
    placements = _place_markers(markers, tick_boxes, WIDTH - MARGIN)
    lanes = 1 + max((lane for lane, _, _ in placements), default=0)

    title_h = 58
    axis_h = 30 + (lanes - 1) * LANE
    top = title_h + axis_h
    plot_h = len(rows) * ROW
    legend_y = top + plot_h + 34
    height = legend_y + 30

    svg = _Svg()
    svg.open(
        "svg",
        xmlns="http://www.w3.org/2000/svg",
        width=WIDTH,
        height=height,
        viewBox=f"0 0 {WIDTH} {_num(height)}",
        role="img",
        font_family=TEXT_FONT,
        font_size=12,
    )
    title = f"Shutdown of {report.root!r}: {report.reason.value} ({report.detail}) in {_duration(report.duration)}"
    svg.element("title", title)
    svg.element("rect", class_="background", x=0, y=0, width=WIDTH, height=height, fill="#ffffff")
    svg.element("text", title, class_="title", x=MARGIN, y=24, font_size=15, font_weight="600", fill=INK)
    counts = Counter(c.outcome for c, _ in rows)
    summary = ", ".join(f"{n} {o.value}" for o, n in sorted(counts.items(), key=lambda kv: kv[0].value))
    if report.phase_ends is not None:
        ends = ", ".join(
            f"{phase.name} {'never' if math.isinf(end) else f'at +{_duration(rel(end))}'}"
            for phase, end in zip(Phase, report.phase_ends, strict=True)
        )
        summary += f"; phases end: {ends}"
    svg.element("text", summary, class_="subtitle", x=MARGIN, y=44, fill=MUTED)

    # Phase tints behind the plot.
    if report.phase_ends is not None:
        starts = (t0, *report.phase_ends[:2])
        for phase, start, end in zip(Phase, starts, report.phase_ends, strict=True):
            a, b = x(rel(start)), x(rel(end))
            if b > a:
                svg.element(
                    "rect",
                    class_=f"zone {phase.name.lower()}",
                    x=a,
                    y=top,
                    width=b - a,
                    height=plot_h,
                    fill=COLOURS[phase],
                    fill_opacity=0.08,
                )

    # The time axis: ticks, labels and grid lines.
    svg.open("g", class_="axis")
    svg.element("line", x1=x0, y1=top, x2=x1, y2=top, stroke=MUTED)
    for t, tick_text in ticks:
        tx = x(t)
        svg.element("line", class_="grid", x1=tx, y1=top, x2=tx, y2=top + plot_h, stroke=GRID)
        svg.element("line", x1=tx, y1=top - 4, x2=tx, y2=top, stroke=MUTED)
        if tick_text is not None:
            svg.element("text", tick_text, x=tx, y=top - 8, text_anchor="middle", fill=MUTED)
    svg.close("g")

    # The request, and when FORCEFUL and TERMINATE began for the tree: a line through
    # the plot, and a stem up to its label, which stays clear of the tick labels.
    kinds: list[tuple[str, str, dict[str, str | float]]] = []
    if lo <= 0 <= hi:
        kinds.append(("request", INK, {}))
    for phase, _ in boundaries:
        style: dict[str, str | float] = {"stroke_width": 1.5, "stroke_dasharray": "5 3"}
        kinds.append(
            (f"boundary {phase.name.lower()}", COLOURS[phase], {**style, "data_reason": reasons.get(phase) or ""})
        )
    for (text, bx), (lane, tx, anchor), (kind, colour, style) in zip(markers, placements, kinds, strict=True):
        baseline = top - LANE0 - lane * LANE
        svg.element("line", class_=kind, x1=bx, y1=top, x2=bx, y2=top + plot_h, stroke=colour, **style)
        svg.element("line", class_="stem", x1=bx, y1=baseline - 10, x2=bx, y2=top - 20, stroke=colour, stroke_width=1)
        svg.element(
            "text", text, class_="marker-label", x=tx, y=baseline, text_anchor=anchor, fill=colour, font_weight="600"
        )

    # One row per component.
    for index, ((c, depth), label, outcome) in enumerate(zip(rows, labels, outcome_texts, strict=True)):
        y = top + index * ROW
        mid = y + ROW / 2
        svg.open("g", class_="row", data_path=c.path, data_outcome=c.outcome.value)
        if index % 2:
            svg.element("rect", class_="stripe", x=0, y=y, width=x1, height=ROW, fill=INK, fill_opacity=0.03)
        svg.element("title", f"{c.path}: {outcome}")
        svg.element(
            "text",
            label,
            class_="label",
            x=MARGIN + 2 * depth * CHAR,
            y=mid + 4,
            font_family=LABEL_FONT,
            fill=INK,
        )
        end = c.stopped_at if c.stopped_at is not None else t0 + hi
        if c.stop_began is not None:
            began = rel(c.stop_began)
            for phase, start, stop in _segments(c, c.stop_began, end):
                a, b = x(rel(start)), x(rel(stop))
                svg.open(
                    "rect",
                    class_=f"bar {phase.name.lower()}",
                    x=a,
                    y=mid - BAR / 2,
                    width=b - a,
                    height=BAR,
                    fill=COLOURS[phase],
                    data_phase=phase.name,
                    data_start=f"{rel(start):.6f}",
                    data_end=f"{rel(stop):.6f}",
                )
                svg.element("title", f"{c.path}: {phase.name} for {_duration(stop - start)}")
                svg.close("rect")
            # Where the stop began: bars of one wave line up on these ticks.
            svg.element(
                "line",
                class_="began",
                x1=x(began),
                y1=mid - BAR / 2 - 3,
                x2=x(began),
                y2=mid + BAR / 2 + 3,
                stroke=INK,
                stroke_width=1.5,
            )
            if began < lo:
                svg.element("text", "◂", x=x0 + 2, y=mid + 4, fill=INK)
        if c.outcome is Outcome.FAILED and c.stopped_at is not None:
            fx = x(rel(c.stopped_at))
            svg.element(
                "path",
                class_="marker failed",
                d=f"M{_num(fx - 5)},{_num(mid - 5)} l10,10 m0,-10 l-10,10",
                stroke=FAILED,
                stroke_width=2.5,
            )
        elif c.outcome is Outcome.STUBBORN:
            sx = x(hi)
            svg.element(
                "path",
                class_="marker stubborn",
                d=f"M{_num(sx)},{_num(mid - 7)} l9,7 l-9,7 z",
                fill=COLOURS[Phase.TERMINATE],
            )
        elif c.stop_began is None and c.stopped_at is not None:
            svg.element(
                "circle",
                class_="marker finished",
                cx=x(rel(c.stopped_at)),
                cy=mid,
                r=4,
                fill="#ffffff",
                stroke=INK,
                stroke_width=1.5,
            )
        colour = FAILED if c.outcome in {Outcome.FAILED, Outcome.STUBBORN} else MUTED
        svg.element("text", outcome, class_="outcome", x=x1 + MARGIN, y=mid + 4, fill=colour)
        svg.close("g")

    # The legend.
    svg.open("g", class_="legend")
    lx = float(MARGIN)
    for phase in Phase:
        svg.element("rect", x=lx, y=legend_y - 9, width=14, height=BAR, fill=COLOURS[phase])
        svg.element("text", phase.name, x=lx + 19, y=legend_y + 1, fill=INK)
        lx += 19 + len(phase.name) * CHAR + 18
    svg.element("line", x1=lx + 7, y1=legend_y - 11, x2=lx + 7, y2=legend_y + 5, stroke=INK, stroke_width=1.5)
    svg.element("text", "stop began", x=lx + 14, y=legend_y + 1, fill=INK)
    lx += 14 + 10 * CHAR + 18
    svg.element(
        "line",
        x1=lx + 7,
        y1=legend_y - 11,
        x2=lx + 7,
        y2=legend_y + 5,
        stroke=MUTED,
        stroke_width=1.5,
        stroke_dasharray="5 3",
    )
    svg.element("text", "phase boundary", x=lx + 14, y=legend_y + 1, fill=INK)
    lx += 14 + 14 * CHAR + 18
    svg.element("path", d=f"M{_num(lx)},{legend_y - 8} l10,10 m0,-10 l-10,10", stroke=FAILED, stroke_width=2.5)
    svg.element("text", "failed", x=lx + 15, y=legend_y + 1, fill=INK)
    lx += 15 + 6 * CHAR + 18
    svg.element("path", d=f"M{_num(lx)},{legend_y - 10} l9,7 l-9,7 z", fill=COLOURS[Phase.TERMINATE])
    svg.element("text", "stubborn", x=lx + 14, y=legend_y + 1, fill=INK)
    lx += 14 + 8 * CHAR + 18
    svg.element("circle", cx=lx + 4, cy=legend_y - 3, r=4, fill="#ffffff", stroke=INK, stroke_width=1.5)
    svg.element("text", "ended before its stop", x=lx + 13, y=legend_y + 1, fill=INK)
    svg.close("g")
    svg.close("svg")
    return "\n".join(svg.parts) + "\n"
