"""ShutdownReport.to_svg(): the timeline of a stop, drawn from reports of real stops."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator

import anyio
import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

import lifecycle
from lifecycle import ComponentReport, Outcome, Phase, PhaseChange, ShutdownPolicy, ShutdownReport, StopReason
from lifecycle._core._timeline import Box, text_box
from supervisors import Supervisor

NS = {"svg": "http://www.w3.org/2000/svg"}
POLICY = ShutdownPolicy(graceful=1, forceful=1, terminate=1)


def service() -> Supervisor:
    """A tree whose stop spends time in GRACEFUL and FORCEFUL, with a failure and a nested tree."""
    root = Supervisor('app<&>"', policy=POLICY)

    @root.component(priority=lifecycle.Priority.CRITICAL)
    async def wal() -> AsyncIterator[None]:
        yield
        with lifecycle.shielded(until=Phase.FORCEFUL):
            await anyio.sleep(1.5)  # its stop begins at t0 + 0.25 s, so it ends 0.75 s into FORCEFUL

    @root.component
    async def cache(wal: None) -> AsyncIterator[None]:
        yield
        await anyio.sleep(0.25)

    @root.component(name="broken<x>", depends_on=("wal",))
    async def broken() -> AsyncIterator[None]:
        yield
        msg = "disk full"
        raise OSError(msg)

    jobs = Supervisor("jobs")

    @jobs.component
    async def worker(ctx: lifecycle.Context) -> None:
        ctx.ready()
        await anyio.sleep_forever()

    root.add(jobs, depends_on=("cache",))
    return root


async def stop(tree: Supervisor) -> ShutdownReport:
    async with lifecycle.running(tree) as handle:
        await handle.ready()
        return await handle.shutdown()


def parse(report: ShutdownReport) -> ET.Element:
    return ET.fromstring(report.to_svg())  # noqa: S314 - our own output


def rows(svg: ET.Element) -> list[ET.Element]:
    return svg.findall(".//svg:g[@class='row']", NS)


def bars(row: ET.Element) -> list[ET.Element]:
    return [rect for rect in row.findall("svg:rect", NS) if rect.get("class", "").startswith("bar ")]


def row_of(svg: ET.Element, path: str) -> ET.Element:
    (row,) = (r for r in rows(svg) if r.get("data-path") == path)
    return row


@pytest.mark.virtual_time
class TestFromARealStop:
    async def test_one_row_per_component_in_tree_order(self) -> None:
        """Every component has one row: a supervisor above its children, siblings in the order they stopped."""
        report = await stop(service())
        paths = [row.get("data-path") for row in rows(parse(report))]
        root = 'app<&>"'
        assert paths == [
            root,
            f"{root}/broken<x>",
            f"{root}/jobs",
            f"{root}/jobs/worker",
            f"{root}/cache",
            f"{root}/wal",
        ]
        assert sorted(p or "" for p in paths) == sorted(c.path for c in report.components)

    async def test_bars_split_a_stop_at_the_phase_boundaries(self) -> None:
        """The wal's stop is a GRACEFUL bar up to t0 + 1 s and a FORCEFUL bar up to its end at t0 + 1.75 s."""
        report = await stop(service())
        wal = row_of(parse(report), 'app<&>"/wal')
        # Virtual time: the wal's stop begins when the cache's 0.25 s teardown ends.
        assert [(b.get("data-phase"), b.get("data-start"), b.get("data-end")) for b in bars(wal)] == [
            ("GRACEFUL", "0.250000", "1.000000"),
            ("FORCEFUL", "1.000000", "1.750000"),
        ]
        assert wal.get("data-outcome") == "forced"

    async def test_bar_widths_are_proportional_to_durations(self) -> None:
        """Every bar's width is its duration times one scale, the same for all rows."""
        svg = parse(await stop(service()))
        scales = []
        for row in rows(svg):
            for bar in bars(row):
                duration = float(bar.get("data-end", "")) - float(bar.get("data-start", ""))
                if duration > 0:
                    scales.append(float(bar.get("width", "")) / duration)
        assert len(scales) >= 3
        assert max(scales) == pytest.approx(min(scales), rel=1e-3)

    async def test_a_wave_lines_up(self) -> None:
        """Components whose stops began together have their stop ticks at the same x."""
        report = await stop(service())
        svg = parse(report)
        began = {
            row.get("data-path"): row.find("svg:line[@class='began']", NS).get("x1")  # type: ignore[union-attr]
            for row in rows(svg)
        }
        assert report["jobs"].stop_began == report["broken<x>"].stop_began
        assert began['app<&>"/jobs'] == began['app<&>"/broken<x>']
        assert began['app<&>"/jobs'] != began['app<&>"/wal']

    async def test_phase_boundary_is_drawn_where_forceful_began(self) -> None:
        """A dashed line marks the start of FORCEFUL, one graceful budget after the request."""
        report = await stop(service())
        svg = parse(report)
        (line,) = svg.findall(".//svg:line[@class='boundary forceful']", NS)
        wal = bars(row_of(svg, 'app<&>"/wal'))
        assert float(line.get("x1", "")) == pytest.approx(float(wal[1].get("x", "")), abs=0.01)
        assert svg.findall(".//svg:line[@class='boundary terminate']", NS) == []

    async def test_failed_component_has_a_failure_marker(self) -> None:
        """A component whose teardown raised ends with a failure marker; the others have none."""
        svg = parse(await stop(service()))
        marked = [
            row.get("data-path") for row in rows(svg) if row.find("svg:path[@class='marker failed']", NS) is not None
        ]
        assert marked == ['app<&>"/broken<x>']

    async def test_names_and_messages_are_escaped(self) -> None:
        """Names with markup characters are escaped in text and attributes, and parse back unchanged."""
        report = await stop(service())
        text = report.to_svg()
        assert "<x>" not in text
        assert "broken&lt;x&gt;" in text
        labels = [t.text for t in parse(report).findall(".//svg:text[@class='label']", NS)]
        assert labels[:2] == ['app<&>"', "broken<x>"]

    async def test_title_gives_the_reason_and_the_duration(self) -> None:
        """The title names the tree, the reason and detail of the stop, and how long it took."""
        svg = parse(await stop(service()))
        title = svg.find("svg:text[@class='title']", NS)
        assert title is not None
        assert title.text == """Shutdown of 'app<&>"': request (shutdown() was called) in 1.750 s"""

    async def test_axis_labels_time_from_the_request(self) -> None:
        """The axis is labelled in seconds from the request, starting at 0."""
        svg = parse(await stop(service()))
        labels = [t.text for t in svg.findall(".//svg:g[@class='axis']/svg:text", NS)]
        assert labels[0] == "0"
        assert "+1.0 s" in labels
        assert labels[-1] == "+2.0 s"

    async def test_same_report_same_svg(self) -> None:
        """The output depends only on the report."""
        report = await stop(service())
        assert report.to_svg() == report.to_svg()
        assert attrs.evolve(report).to_svg() == report.to_svg()


class TestMarkers:
    @staticmethod
    def report(*children: ComponentReport) -> ShutdownReport:
        root = ComponentReport(name="root", path="root", outcome=Outcome.STUBBORN, stop_began=10.0, children=children)
        return ShutdownReport(
            root="root",
            reason=StopReason.SIGNAL,
            detail="SIGTERM received",
            requested_at=10.0,
            finished_at=13.0,
            root_report=root,
            phase_ends=(11.0, 12.0, 13.0),
        )

    def test_stubborn_component_runs_to_the_right_edge_with_an_arrow(self) -> None:
        """A stubborn component's bars go through TERMINATE to the end of the axis, with an arrow."""
        stuck = ComponentReport(
            name="stuck",
            path="root/stuck",
            outcome=Outcome.STUBBORN,
            stop_began=10.0,
            phase_ends=(11.0, 12.0, 13.0),
        )
        svg = parse(self.report(stuck))
        row = row_of(svg, "root/stuck")
        assert [b.get("data-phase") for b in bars(row)] == ["GRACEFUL", "FORCEFUL", "TERMINATE"]
        assert row.find("svg:path[@class='marker stubborn']", NS) is not None
        assert {line.get("class") for line in svg.findall(".//svg:line", NS)} >= {
            "boundary forceful",
            "boundary terminate",
        }

    def test_component_that_ended_before_the_stop_is_a_circle(self) -> None:
        """A component that finished before any stop has no bar, only a circle where it ended."""
        done = ComponentReport(name="job", path="root/job", outcome=Outcome.FINISHED, stopped_at=9.5)
        row = row_of(parse(self.report(done)), "root/job")
        assert bars(row) == []
        assert row.find("svg:circle[@class='marker finished']", NS) is not None

    def test_instant_stop_is_a_bar_of_no_width_in_its_phase(self) -> None:
        """A stop that took no time still has its bar, of width 0, in the phase it happened in."""
        instant = ComponentReport(
            name="quick",
            path="root/quick",
            outcome=Outcome.FORCED,
            stop_began=11.5,
            stopped_at=11.5,
            phase_ends=(11.0, 12.0, 13.0),
        )
        (bar,) = bars(row_of(parse(self.report(instant)), "root/quick"))
        assert (bar.get("data-phase"), bar.get("width")) == ("FORCEFUL", "0")

    def test_report_without_phase_ends_colours_by_the_final_phase(self) -> None:
        """Without phase ends (a report built by hand), the whole stop is one bar of its final phase."""
        forced = ComponentReport(
            name="api",
            path="root/api",
            outcome=Outcome.FORCED,
            phase=Phase.FORCEFUL,
            stop_began=10.0,
            stopped_at=11.0,
        )
        report = attrs.evolve(self.report(forced), phase_ends=None)
        (bar,) = bars(row_of(parse(report), "root/api"))
        assert bar.get("data-phase") == "FORCEFUL"
        assert parse(report).findall(".//svg:line[@class='boundary forceful']", NS) == []


# -- Labels never overlap ---------------------------------------------------------


def label_boxes(svg: ET.Element) -> list[tuple[str, Box]]:
    """Every drawn label of the timeline with its box, from the SVG's own attributes (tooltips excluded)."""
    found: list[tuple[str, Box]] = []
    for text in svg.iter(f"{{{NS['svg']}}}text"):
        content = text.text or ""
        box = text_box(
            content,
            float(text.get("x", "0")),
            float(text.get("y", "0")),
            size=float(text.get("font-size", "12")),
            bold=text.get("font-weight") == "600",
            mono=text.get("class") == "label",
            anchor=text.get("text-anchor", "start"),
        )
        found.append((content, box))
    return found


def assert_no_overlap(report: ShutdownReport) -> None:
    labels = label_boxes(parse(report))
    for i, (a, box_a) in enumerate(labels):
        for b, box_b in labels[i + 1 :]:
            overlap = box_a[0] < box_b[2] and box_b[0] < box_a[2] and box_a[1] < box_b[3] and box_b[1] < box_a[3]
            assert not overlap, f"{a!r} {box_a} overlaps {b!r} {box_b}"
    markers = [box for text, box in labels if text == "request" or " begins" in text]
    assert all(box[0] >= 0 and box[2] <= 960 for box in markers)


def escalated(graceful: float, forceful: float, duration: float, reasons: tuple[str, str]) -> ShutdownReport:
    """A stop requested at t=10 whose FORCEFUL began *graceful* s later and TERMINATE *forceful* s after that."""
    t0 = 10.0
    ends = (t0 + graceful, t0 + graceful + forceful, t0 + graceful + forceful + 5.0)
    children = tuple(
        ComponentReport(
            name=name,
            path=f"root/{name}",
            outcome=outcome,
            stop_began=t0 + began * duration,
            stopped_at=t0 + duration,
            phase_ends=ends,
        )
        for name, outcome, began in (
            ("api", Outcome.GRACEFUL, 0.0),
            ("worker-with-a-long-name", Outcome.FORCED, 0.3),
            ("db", Outcome.TERMINATED, 0.6),
        )
    )
    root = ComponentReport(
        name="root", path="root", outcome=Outcome.TERMINATED, stop_began=t0, stopped_at=t0 + duration, children=children
    )
    changes = (
        PhaseChange(Phase.GRACEFUL, t0, "request"),
        PhaseChange(Phase.FORCEFUL, ends[0], reasons[0]),  # type: ignore[arg-type]
        PhaseChange(Phase.TERMINATE, ends[1], reasons[1]),  # type: ignore[arg-type]
    )
    return ShutdownReport(
        root="root",
        reason=StopReason.SIGNAL,
        detail="SIGINT received",
        requested_at=t0,
        finished_at=t0 + duration,
        root_report=root,
        phase_ends=ends,
        phase_changes=changes,
    )


class TestLabels:
    @pytest.mark.parametrize(
        ("graceful", "forceful", "duration"),
        [
            (0.004, 0.002, 0.015),  # three Ctrl-C in a few milliseconds: request, FORCEFUL, TERMINATE together
            (0.5, 0.0, 0.6),  # FORCEFUL and TERMINATE at the same instant
            (1.0, 1.0, 2.0),  # TERMINATE as the stop ends, at the right edge
            (4.0, 4.0, 8.007),  # the slow demo, stopped by its deadlines
            (0.0, 0.0, 0.001),  # escalated straight to TERMINATE
        ],
    )
    def test_no_label_overlaps_another(self, graceful: float, forceful: float, duration: float) -> None:
        """The request, phase, tick, row and legend labels never overlap, however close the phases began."""
        assert_no_overlap(escalated(graceful, forceful, duration, ("signal", "signal")))

    @given(
        graceful=st.floats(0, 30),
        forceful=st.floats(0, 30),
        extra=st.floats(0, 30),
        reasons=st.tuples(*[st.sampled_from(["request", "signal", "deadline"])] * 2),
    )
    def test_no_label_overlaps_another_in_any_stop(
        self, graceful: float, forceful: float, extra: float, reasons: tuple[str, str]
    ) -> None:
        """For any phase boundaries and stop length, every label's box is clear of every other."""
        duration = max(graceful + forceful + extra, 1e-4)
        assert_no_overlap(escalated(graceful, forceful, duration, reasons))

    def test_a_crowded_axis_leaves_out_tick_labels_that_would_touch(self) -> None:
        """Long component names squeeze the plot: ticks whose labels would overlap keep their tick, not the label."""
        report = escalated(0.2, 0.2, 1.0, ("signal", "signal"))
        long_name = "a-component-whose-name-goes-on-and-on-and-on-for-a-very-long-time-indeed-and-more"
        child = attrs.evolve(report.root_report.children[0], name=long_name, path=f"root/{long_name}")
        root = attrs.evolve(report.root_report, children=(child, *report.root_report.children[1:]))
        crowded = attrs.evolve(report, root_report=root)
        assert_no_overlap(crowded)
        svg = parse(crowded)
        grid = svg.findall(".//svg:g[@class='axis']/svg:line[@class='grid']", NS)
        labels = svg.findall(".//svg:g[@class='axis']/svg:text", NS)
        assert 0 < len(labels) < len(grid)

    def test_markers_take_lanes_above_the_tick_labels(self) -> None:
        """Phases that began together get stacked labels, all above the axis labels, with the "0" left clear."""
        svg = parse(escalated(0.004, 0.002, 0.015, ("signal", "signal")))
        markers = svg.findall(".//svg:text[@class='marker-label']", NS)
        assert [m.text for m in markers] == ["request", "FORCEFUL begins (signal)", "TERMINATE begins (signal)"]
        assert len({m.get("y") for m in markers}) >= 2  # stacked where they would overlap
        ticks = [float(t.get("y", "")) for t in svg.findall(".//svg:g[@class='axis']/svg:text", NS)]
        assert max(float(m.get("y", "")) for m in markers) < min(ticks) - 12
