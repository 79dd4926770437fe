"""The pictures in docs/_static are what scripts/render_docs_images.py draws from today's code."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent
STATIC = ROOT / "docs" / "_static"
SCRIPT = ROOT / "scripts" / "render_docs_images.py"
SVG = "{http://www.w3.org/2000/svg}"


def load(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def draw(function: str) -> str:
    """Call one drawing function of the script in a fresh interpreter (it configures logging)."""
    code = (
        f"import sys; sys.path.insert(0, {str(SCRIPT.parent)!r}); "
        f"import render_docs_images as r; print(r.{function}(), end='')"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT, check=True
    )
    return result.stdout


def svg(name: str) -> ET.Element:
    return ET.parse(STATIC / name).getroot()  # noqa: S314 - committed by us


class TestTutorialGraph:
    def test_committed_graph_is_todays_drawing(self) -> None:
        """docs/_static/tutorial-graph.svg is exactly what the script draws from the tutorial's service."""
        script = load(SCRIPT)
        assert (STATIC / "tutorial-graph.svg").read_text(encoding="utf-8") == script.tutorial_graph()

    def test_graph_has_every_component_and_dependency(self) -> None:
        """One box per component of the tutorial's tree, one arrow per dependency."""
        service = load(ROOT / "docs" / "examples" / "tutorial" / "service.py")
        info = service.tree.describe_tree()
        root = svg("tutorial-graph.svg")
        nodes = {g.get("data-name") for g in root.iter(f"{SVG}g") if g.get("class") == "node"}
        edges = {(p.get("data-from"), p.get("data-to")) for p in root.iter(f"{SVG}path") if p.get("class") == "edge"}
        assert nodes == {child.name for child in info.children}
        assert edges == {(child.name, dep) for child in info.children for dep in child.depends_on}


class TestTimelines:
    def test_committed_phases_timeline_is_todays_drawing(self) -> None:
        """docs/_static/phases-timeline.svg is the phases example's stop on virtual time, drawn today."""
        assert (STATIC / "phases-timeline.svg").read_text(encoding="utf-8") == draw("phases_timeline")

    def test_committed_escalation_timeline_is_todays_drawing(self) -> None:
        """docs/_static/escalation-timeline.svg is the escalation example's stop on virtual time, drawn today."""
        assert (STATIC / "escalation-timeline.svg").read_text(encoding="utf-8") == draw("escalation_timeline")

    def test_escalation_timeline_marks_each_phase_change_with_its_reason(self) -> None:
        """The FORCEFUL and TERMINATE boundaries sit at the escalations and say what began them."""
        lines = [
            (line.get("class"), line.get("data-reason"))
            for line in svg("escalation-timeline.svg").iter(f"{SVG}line")
            if (line.get("class") or "").startswith("boundary")
        ]
        assert lines == [("boundary forceful", "request"), ("boundary terminate", "request")]

    def test_demo_timeline_shows_the_demo_tree(self) -> None:
        """docs/_static/demo-timeline.svg has one row per component of the demo, every stop graceful."""
        rows = [g for g in svg("demo-timeline.svg").iter(f"{SVG}g") if g.get("class") == "row"]
        assert [(g.get("data-path"), g.get("data-outcome")) for g in rows] == [
            ("demo", "graceful"),
            ("demo/timer", "finished"),
            ("demo/sidecar", "graceful"),
            ("demo/ticker", "graceful"),
            ("demo/api", "graceful"),
            ("demo/workers", "graceful"),
            ("demo/cache", "graceful"),
            ("demo/store", "graceful"),
        ]
