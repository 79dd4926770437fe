"""
Render the pictures of the documentation into ``docs/_static/``.

- ``tutorial-graph.svg``: the dependency graph of the tutorial's service
  (``docs/examples/tutorial/service.py``), drawn in its start waves, one
  column per wave, from what ``lifecycle graph`` reads (:class:`lifecycle.abc.TreeInfo`).
- ``demo-timeline.svg``: :meth:`lifecycle.ShutdownReport.to_svg` of a real
  stop of ``lifecycle demo`` (on asyncio, so its times vary from run to run).
- ``phases-timeline.svg``: the timeline of ``docs/examples/phases.py``, run on
  Trio's ``MockClock``, so the picture is the same on every run.
- ``escalation-timeline.svg``: the timeline of ``docs/examples/escalation.py``
  (a stop escalated twice), on ``MockClock`` too.

Usage: ``python scripts/render_docs_images.py`` from the project root. The
test suite checks that the committed graph and phases timeline are what this
script draws today.
"""

from __future__ import annotations

import importlib.util
import io
import logging
import sys
from contextlib import redirect_stdout
from pathlib import Path
from types import ModuleType
from xml.sax.saxutils import escape, quoteattr

import anyio
import structlog
import trio.testing

import lifecycle
from lifecycle.abc import TreeInfo

ROOT = Path(__file__).resolve().parent.parent
STATIC = ROOT / "docs" / "_static"
EXAMPLES = ROOT / "docs" / "examples"

# The layout of the graph: columns are start waves, rows are their components.
COLUMN = 170
NODE_W = 130
NODE_H = 40
GAP = 18
LANE = 14
PAD = 20
HEAD = 44
FONT = "system-ui, -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif"
PRIORITY_FILL = {
    "CRITICAL": "#f6d5d1",
    "HIGH": "#fbe5c8",
    "NORMAL": "#e3eefb",
    "LOW": "#e4f2e7",
    "LOWEST": "#eeeeee",
}


def load(path: Path) -> ModuleType:
    """Import the Python file at *path* as a module (it is not in a package)."""
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None  # noqa: S101 - a .py file always has a spec
    assert spec.loader is not None  # noqa: S101 - and a loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def graph_svg(info: TreeInfo) -> str:  # noqa: C901 - one drawing, top to bottom
    """
    Draw the dependency graph of *info*'s top level, one column per start wave.

    Each component is a box with its name and its priority (and the one it
    stops as, when inherited); an arrow goes from each component to each of its
    dependencies, so arrows point left, to what starts earlier. Nested
    supervisors are drawn as one box.
    """
    by_name = {child.name: child for child in info.children}
    waves = info.start_waves
    column_of = {name: column for column, wave in enumerate(waves) for name in wave}
    # An edge between neighbouring columns is a curve; a longer one would cross
    # the boxes between, so it climbs to a lane of its own above them.
    long_edges = [
        (child.name, dep)
        for child in info.children
        for dep in child.depends_on
        if column_of[child.name] - column_of[dep] > 1
    ]
    lanes = len(long_edges) * LANE
    top = HEAD + lanes
    height = top + max(len(wave) for wave in waves) * (NODE_H + GAP) - GAP + 2 * PAD + 20
    width = PAD * 2 + (len(waves) - 1) * COLUMN + NODE_W
    where: dict[str, tuple[float, float]] = {}
    for column, wave in enumerate(waves):
        for row, name in enumerate(wave):
            where[name] = (PAD + column * COLUMN, top + PAD + row * (NODE_H + GAP))
    out = [
        (
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}" font-family={quoteattr(FONT)} font-size="13" role="img">'
        ),
        f"<title>{escape(f'Dependency graph of {info.name!r}, in start waves')}</title>",
        (
            '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" '
            'orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#57606a"/></marker></defs>'
        ),
        f'<rect width="{width}" height="{height}" fill="#ffffff"/>',
    ]
    for column in range(len(waves)):
        x = PAD + column * COLUMN + NODE_W / 2
        out.append(
            f'<text class="wave" x="{x:g}" y="{PAD + 10}" text-anchor="middle" fill="#57606a">'
            f"start wave {column + 1}</text>"
        )

    def edge(name: str, dep: str, d: str) -> str:
        return (
            f'<path class="edge" data-from={quoteattr(name)} data-to={quoteattr(dep)} d="{d}" '
            'fill="none" stroke="#57606a" stroke-width="1.3" marker-end="url(#arrow)"/>'
        )

    for child in info.children:
        x, y = where[child.name]
        for dep in child.depends_on:
            if (child.name, dep) in long_edges:
                continue
            dx, dy = where[dep]
            x1, y1, x2, y2 = x, y + NODE_H / 2, dx + NODE_W, dy + NODE_H / 2
            bend = (x1 - x2) / 2
            out.append(
                edge(child.name, dep, f"M{x1:g},{y1:g} C{x1 - bend:g},{y1:g} {x2 + bend:g},{y2:g} {x2:g},{y2:g}")
            )
    for lane, (name, dep) in enumerate(long_edges):
        (x, y), (dx, dy) = where[name], where[dep]
        level = top + PAD - 10 - lane * LANE
        x1, y1 = x, y + NODE_H * 0.3
        gap = x - 10 - lane * 4  # the gap left of the source's column, clear of boxes
        x2 = dx + NODE_W * 0.6 + lane * 6
        # Leave the box to the left, climb in the gap to the lane, come down into the dependency.
        out.append(
            edge(
                name,
                dep,
                f"M{x1:g},{y1:g} H{gap + 6:g} Q{gap:g},{y1:g} {gap:g},{y1 - 6:g} V{level + 6:g} "
                f"Q{gap:g},{level:g} {gap - 6:g},{level:g} H{x2 + 6:g} Q{x2:g},{level:g} {x2:g},{level + 6:g} V{dy:g}",
            )
        )
    out.append(
        f'<text x="{PAD}" y="{height - PAD + 4}" fill="#57606a" font-size="12">'
        "An arrow goes from a component to a component it depends on; the colour is the priority it stops with.</text>"
    )
    for name, (x, y) in where.items():
        child = by_name[name]
        priority = child.priority.name
        if child.effective != child.priority:
            priority += f" → {child.effective.name}"
        out.extend(
            [
                f'<g class="node" data-name={quoteattr(name)}>',
                (
                    f'<rect x="{x:g}" y="{y:g}" width="{NODE_W}" height="{NODE_H}" rx="6" '
                    f'fill="{PRIORITY_FILL[child.effective.name]}" stroke="#57606a"/>'
                ),
                (
                    f'<text x="{x + NODE_W / 2:g}" y="{y + 17:g}" text-anchor="middle" font-weight="600" '
                    f'fill="#1f2328">{escape(name + (" (main)" if child.main else ""))}</text>'
                ),
                (
                    f'<text x="{x + NODE_W / 2:g}" y="{y + 32:g}" text-anchor="middle" font-size="11" '
                    f'fill="#57606a">{escape(priority)}</text>'
                ),
                "</g>",
            ]
        )
    out.append("</svg>")
    return "\n".join(out) + "\n"


def tutorial_graph() -> str:
    """The graph of the tutorial's service."""
    service = load(EXAMPLES / "tutorial" / "service.py")
    return graph_svg(service.tree.describe_tree())


def _quiet() -> None:
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.CRITICAL))


def phases_timeline() -> str:
    """The timeline of docs/examples/phases.py, on virtual time: the same on every run."""
    _quiet()
    phases = load(EXAMPLES / "phases.py")

    async def main() -> lifecycle.ShutdownReport:
        async with lifecycle.running(phases.tree) as handle:
            await handle.ready()
            await anyio.sleep(0.2)  # as the example does
            return await handle.shutdown()

    with redirect_stdout(io.StringIO()):
        report = anyio.run(
            main, backend="trio", backend_options={"clock": trio.testing.MockClock(autojump_threshold=0)}
        )
    return report.to_svg()


def escalation_timeline() -> str:
    """The timeline of docs/examples/escalation.py, escalated twice, on virtual time."""
    _quiet()
    escalation = load(EXAMPLES / "escalation.py")

    async def main() -> lifecycle.ShutdownReport:
        async with lifecycle.running(escalation.tree) as handle:
            return await escalation.stop(handle)  # type: ignore[no-any-return]

    with redirect_stdout(io.StringIO()):
        report = anyio.run(
            main, backend="trio", backend_options={"clock": trio.testing.MockClock(autojump_threshold=0)}
        )
    return report.to_svg()


def demo_timeline() -> str:
    """The timeline of a real stop of ``lifecycle demo``, stopped by its timer after a second."""
    _quiet()
    from supervisors._demo import build  # noqa: PLC0415 - the demo program, as `lifecycle demo` loads it

    async def main() -> lifecycle.ShutdownReport:
        async with lifecycle.running(build(1.0)) as handle:
            return await handle.wait()

    return anyio.run(main).to_svg()


def main() -> int:
    """Write every picture into docs/_static."""
    STATIC.mkdir(exist_ok=True)
    for name, draw in (
        ("tutorial-graph.svg", tutorial_graph),
        ("phases-timeline.svg", phases_timeline),
        ("escalation-timeline.svg", escalation_timeline),
        ("demo-timeline.svg", demo_timeline),
    ):
        (STATIC / name).write_text(draw(), encoding="utf-8")
        print(f"wrote {(STATIC / name).relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
