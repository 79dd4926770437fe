"""What a stop did: ComponentReport and ShutdownReport, built directly."""

from __future__ import annotations

import json
import math
from collections.abc import AsyncIterator

import anyio
import attrs
import pytest

import lifecycle
from lifecycle import (
    ComponentError,
    ComponentReport,
    Outcome,
    Phase,
    Priority,
    ShutdownPolicy,
    ShutdownReport,
    StopReason,
)
from supervisors import Supervisor

T0 = 100.0
COLUMNS = ("component", "priority", "outcome", "phase", "start", "stop", "restarts", "error")


def component(
    path: str,
    outcome: Outcome = Outcome.GRACEFUL,
    *,
    phase: Phase | None = Phase.GRACEFUL,
    stopped_at: float | None = T0 + 1.0,
    **fields: object,
) -> ComponentReport:
    """A report for the component at *path*, with plausible times."""
    return ComponentReport(
        name=path.rpartition("/")[2],
        path=path,
        outcome=outcome,
        phase=phase,
        stopped_at=stopped_at,
        **fields,  # type: ignore[arg-type]
    )


def shutdown(root: ComponentReport, *, finished_at: float = T0 + 2.0) -> ShutdownReport:
    return ShutdownReport(
        root=root.name,
        reason=StopReason.SIGNAL,
        detail="SIGTERM received",
        requested_at=T0,
        finished_at=finished_at,
        root_report=root,
    )


def failure() -> ComponentError:
    cause = ValueError("disk full")
    return ComponentError("root/db", "stop", cause)


def service_tree() -> ShutdownReport:
    """root: api, jobs (a nested supervisor with worker), db; in the order they stopped."""
    api = component(
        "root/api",
        started_at=T0 - 10,
        ready_at=T0 - 9.75,
        stop_began=T0,
        stopped_at=T0 + 0.5,
        priority=Priority.LOW,
    )
    worker = component("root/jobs/worker", Outcome.FORCED, phase=Phase.FORCEFUL, restarts=2)
    jobs = component("root/jobs", children=(worker,))
    db = component(
        "root/db",
        Outcome.FAILED,
        error=failure(),
        stage="stop",
        priority=Priority.CRITICAL,
        stop_began=T0 + 0.5,
        stopped_at=T0 + 2.0,
    )
    root = component("root", children=(api, jobs, db), stopped_at=T0 + 2.0)
    return shutdown(root)


def table_rows(text: str) -> list[list[str]]:
    """Split the table under the summary line at the header's column starts."""
    lines = text.splitlines()[1:]
    header = lines[0]
    starts = [header.index(column) for column in COLUMNS]
    bounds = [*zip(starts, [*starts[1:], None], strict=True)]
    return [[line[a:b].strip() for a, b in bounds] for line in lines]


class TestTable:
    def test_summary_names_root_reason_detail_duration_and_counts(self) -> None:
        """The first line says which tree stopped, why, how long it took and the outcome counts."""
        summary = str(service_tree()).splitlines()[0]
        assert summary == ("Shutdown of 'root': signal (SIGTERM received); 2.000s; 1 failed, 1 forced, 3 graceful")

    def test_header_lists_the_columns(self) -> None:
        """The table header names every column, in order."""
        assert table_rows(str(service_tree()))[0] == list(COLUMNS)

    def test_rows_are_aligned_under_the_header(self) -> None:
        """Each row's cells start exactly where their header starts."""
        rows = table_rows(str(service_tree()))[1:]
        assert rows == [
            ["root/api", "LOW", "graceful", "GRACEFUL", "250.0ms", "500.0ms", "0", ""],
            ["root/jobs/worker", "NORMAL", "forced", "FORCEFUL", "-", "-", "2", ""],
            ["root/jobs", "NORMAL", "graceful", "GRACEFUL", "-", "-", "0", ""],
            ["root/db", "CRITICAL", "failed", "GRACEFUL", "-", "1.500s", "0", "stop: ValueError: disk full"],
            ["root", "NORMAL", "graceful", "GRACEFUL", "-", "-", "0", ""],
        ]

    def test_error_shows_the_original_type_and_message(self) -> None:
        """A ComponentError is shown by its cause's type and message, after the stage."""
        text = str(service_tree())
        assert "stop: ValueError: disk full" in text
        assert "ComponentError" not in text

    def test_error_without_cause_shows_its_own_type(self) -> None:
        """An error that is not wrapped is shown with its own type."""
        crashed = component("root/api", Outcome.FAILED, phase=None, error=KeyError("x"), stage="run")
        text = str(shutdown(component("root", children=(crashed,))))
        assert "run: KeyError: 'x'" in text

    def test_unknown_phase_is_a_dash(self) -> None:
        """A component that ended before any stop shows '-' as its phase."""
        done = component("root/job", Outcome.FINISHED, phase=None)
        rows = table_rows(str(shutdown(component("root", children=(done,)))))
        assert rows[1][:4] == ["root/job", "NORMAL", "finished", "-"]

    def test_multi_line_error_stays_on_its_row(self) -> None:
        """An error message with newlines does not add lines to the table: one line per component."""
        error = ValueError("bad config:\n  port: not an int")
        crashed = component("root/db", Outcome.FAILED, phase=None, error=error, stage="start")
        report = shutdown(component("root", children=(crashed,)))
        assert len(str(report).splitlines()) == 2 + len(report.components)

    def test_no_line_ends_in_whitespace(self) -> None:
        """Padding never leaves trailing spaces."""
        assert all(line == line.rstrip() for line in str(service_tree()).splitlines())


class TestToDict:
    def test_json_round_trip(self) -> None:
        """to_json() parses back to exactly to_dict()."""
        report = service_tree()
        assert json.loads(report.to_json()) == report.to_dict()

    def test_compact_json_is_one_line(self) -> None:
        """to_json(indent=None) is a single line."""
        assert "\n" not in service_tree().to_json(indent=None)

    def test_summary_fields(self) -> None:
        """The dict carries root, reason, detail, duration, ok and counts by outcome value."""
        data = service_tree().to_dict()
        assert {k: v for k, v in data.items() if k != "components"} == {
            "root": "root",
            "reason": "signal",
            "detail": "SIGTERM received",
            "duration": 2.0,
            "ok": False,
            "clean": False,
            "phase_changes": [],
            "counts": {"graceful": 3, "forced": 1, "failed": 1},
            "phase_ends": None,
        }

    def test_times_are_relative_to_the_request(self) -> None:
        """Component times are seconds after requested_at; unknown times stay None."""
        api = json.loads(service_tree().to_json())["components"][0]
        assert (api["started_at"], api["ready_at"]) == (-10.0, -9.75)
        assert (api["stop_began"], api["stopped_at"]) == (0.0, 0.5)

    def test_unknown_times_are_null(self) -> None:
        """Times a component never reached are None."""
        worker = service_tree().to_dict()["components"]
        assert isinstance(worker, list)
        assert isinstance(worker[1], dict)
        assert (worker[1]["started_at"], worker[1]["stop_began"]) == (None, None)

    def test_components_are_flat_and_in_report_order(self) -> None:
        """Every component, nested ones included, appears once in `components` order."""
        report = service_tree()
        data = json.loads(report.to_json())
        assert [c["path"] for c in data["components"]] == [c.path for c in report.components]

    def test_component_entry(self) -> None:
        """A component entry holds enum names and values, stage, restarts and the error."""
        db = json.loads(service_tree().to_json())["components"][3]
        assert db == {
            "name": "db",
            "path": "root/db",
            "outcome": "failed",
            "phase": "GRACEFUL",
            "priority": "CRITICAL",
            "error": {"type": "ValueError", "message": "disk full", "raised": "ComponentError"},
            "stage": "stop",
            "restarts": 0,
            "started_at": None,
            "ready_at": None,
            "stop_began": 0.5,
            "stopped_at": 2.0,
            "task_errors": [],
            "phase_ends": None,
            "earlier_errors": [],
            "cut_off": False,
            "handled": False,
            "containment": None,
        }

    def test_task_errors_are_listed(self) -> None:
        """Failures of non-critical tasks are listed with type and message."""
        api = component("root/api", task_errors=(RuntimeError("lost"),))
        data = shutdown(component("root", children=(api,))).to_dict()
        components = data["components"]
        assert isinstance(components, list)
        assert isinstance(components[0], dict)
        assert components[0]["task_errors"] == [{"type": "RuntimeError", "message": "lost", "raised": "RuntimeError"}]

    def test_component_dict_excludes_children(self) -> None:
        """ComponentReport.to_dict() describes only that component, with times from origin 0 by default."""
        jobs = service_tree()["jobs"]
        data = jobs.to_dict()
        assert "children" not in data
        assert data["stopped_at"] == T0 + 1.0


class TestCountsAndFailures:
    def test_counts_cover_every_component(self) -> None:
        """counts counts the root and every nested component by outcome."""
        assert service_tree().counts == {Outcome.GRACEFUL: 3, Outcome.FORCED: 1, Outcome.FAILED: 1}

    def test_failures_are_failed_and_stubborn(self) -> None:
        """failures lists the FAILED and STUBBORN components, in component order."""
        stuck = component("root/stuck", Outcome.STUBBORN, phase=Phase.TERMINATE, stopped_at=None)
        broken = component("root/broken", Outcome.FAILED, error=RuntimeError("x"), stage="run")
        fine = component("root/fine")
        report = shutdown(component("root", children=(fine, broken, stuck)))
        assert [c.path for c in report.failures] == ["root/broken", "root/stuck"]
        assert report.ok is False

    @pytest.mark.parametrize("outcome", [Outcome.GRACEFUL, Outcome.FORCED, Outcome.TERMINATED, Outcome.FINISHED])
    def test_ok_without_failures(self, outcome: Outcome) -> None:
        """A report whose components ended without failing or sticking is ok."""
        report = shutdown(component("root", children=(component("root/a", outcome),)))
        assert report.ok is True
        assert report.failures == ()

    def test_duration_is_from_request_to_finish(self) -> None:
        """duration is finished_at - requested_at."""
        assert shutdown(component("root"), finished_at=T0 + 3.25).duration == 3.25


class TestLookup:
    def test_by_name(self) -> None:
        """report["name"] finds a component by its unique name, nested ones included."""
        report = service_tree()
        assert report["worker"].path == "root/jobs/worker"
        assert report["db"].outcome is Outcome.FAILED

    def test_by_path(self) -> None:
        """report["root/name"] finds a component by its path."""
        assert service_tree()["root/jobs/worker"].restarts == 2

    def test_root_by_name(self) -> None:
        """The root is found by its name."""
        report = service_tree()
        assert report["root"] is report.root_report

    def test_unknown_name_is_a_key_error(self) -> None:
        """An unknown name raises KeyError saying it is not in the report."""
        with pytest.raises(KeyError) as excinfo:
            service_tree()["cache"]
        assert excinfo.value.args[0] == "No component 'cache' in this report."

    def test_ambiguous_name_is_a_key_error_listing_paths(self) -> None:
        """A name used in two nested trees raises KeyError that lists both paths."""
        left = component("root/a", children=(component("root/a/worker"),))
        right = component("root/b", children=(component("root/b/worker"),))
        report = shutdown(component("root", children=(left, right)))
        with pytest.raises(KeyError) as excinfo:
            report["worker"]
        message = excinfo.value.args[0]
        assert "'worker'" in message
        assert "root/a/worker" in message
        assert "root/b/worker" in message

    def test_path_resolves_an_ambiguous_name(self) -> None:
        """The full path finds one of two components with the same name."""
        left = component("root/a", children=(component("root/a/worker", restarts=1),))
        right = component("root/b", children=(component("root/b/worker", restarts=2),))
        report = shutdown(component("root", children=(left, right)))
        assert report["root/b/worker"].restarts == 2


class TestOrder:
    def test_nested_components_precede_their_supervisor_and_root_is_last(self) -> None:
        """components walks depth first: a nested tree's components just before it, the root last."""
        paths = [c.path for c in service_tree().components]
        assert paths == ["root/api", "root/jobs/worker", "root/jobs", "root/db", "root"]

    def test_recorded_stop_order_is_kept(self) -> None:
        """components keeps the order the tree recorded, even where stop times tie or disagree."""
        first = component("root/first", stopped_at=T0 + 1.0)
        second = component("root/second", stopped_at=T0 + 1.0)
        stuck = component("root/stuck", Outcome.STUBBORN, stopped_at=None)
        report = shutdown(component("root", children=(second, first, stuck)))
        assert [c.name for c in report.components] == ["second", "first", "stuck", "root"]


class TestComponentReport:
    def test_durations(self) -> None:
        """start_duration is ready - start; stop_duration is stopped - stop began."""
        report = component("a", started_at=1.0, ready_at=1.5, stop_began=10.0, stopped_at=12.0)
        assert (report.start_duration, report.stop_duration) == (0.5, 2.0)

    def test_durations_unknown_without_both_ends(self) -> None:
        """A duration is None when either end is unknown."""
        never_ready = component("a", started_at=1.0, stop_began=2.0, stopped_at=None)
        assert (never_ready.start_duration, never_ready.stop_duration) == (None, None)

    def test_defaults(self) -> None:
        """A bare report has NORMAL priority, no error, no restarts and no children."""
        report = ComponentReport(name="a", path="root/a", outcome=Outcome.FINISHED)
        assert (report.phase, report.priority, report.error, report.restarts) == (None, Priority.NORMAL, None, 0)
        assert (report.children, report.task_errors) == ((), ())

    def test_walk_yields_children_before_self(self) -> None:
        """walk() yields nested children depth first, then the component itself."""
        tree = component("r", children=(component("r/a", children=(component("r/a/x"),)), component("r/b")))
        assert [c.path for c in tree.walk()] == ["r/a/x", "r/a", "r/b", "r"]

    def test_is_frozen(self) -> None:
        """Reports are immutable values."""
        report = component("a")
        with pytest.raises(attrs.exceptions.FrozenInstanceError):
            report.restarts = 3  # type: ignore[misc]

    @pytest.mark.parametrize(
        ("phase", "outcome"),
        [(Phase.GRACEFUL, Outcome.GRACEFUL), (Phase.FORCEFUL, Outcome.FORCED), (Phase.TERMINATE, Outcome.TERMINATED)],
    )
    def test_outcome_for_phase(self, phase: Phase, outcome: Outcome) -> None:
        """A stop that finished in a phase has that phase's outcome."""
        assert Outcome.for_phase(phase) is outcome


class TestPhaseEnds:
    """Reports of real stops say when each phase ended, for the tree and for each component."""

    @staticmethod
    def tree() -> Supervisor:
        sup = Supervisor("root", policy=ShutdownPolicy(graceful=1, forceful=2, terminate=3))

        @sup.component
        async def db() -> AsyncIterator[None]:
            yield

        @sup.component(policy=ShutdownPolicy(graceful=0.5, forceful=math.inf, terminate=10))
        async def api(ctx: lifecycle.Context, db: None) -> None:
            ctx.ready()
            await anyio.sleep_forever()

        return sup

    @pytest.mark.virtual_time
    async def test_tree_phase_ends_are_its_deadlines_from_the_request(self) -> None:
        """ShutdownReport.phase_ends are the request time plus the cumulative budgets."""
        async with lifecycle.running(self.tree()) as handle:
            await handle.ready()
            report = await handle.shutdown()
        t0 = report.requested_at
        assert report.phase_ends == (t0 + 1, t0 + 3, t0 + 6)
        assert report["db"].phase_ends == (t0 + 1, t0 + 3, t0 + 6)

    @pytest.mark.virtual_time
    async def test_a_component_policy_restricts_its_own_phase_ends(self) -> None:
        """A component's own policy makes a phase end earlier, never later."""
        async with lifecycle.running(self.tree()) as handle:
            await handle.ready()
            report = await handle.shutdown()
        t0 = report.requested_at
        assert report["api"].phase_ends == (t0 + 0.5, t0 + 3, t0 + 6)

    @pytest.mark.virtual_time
    async def test_escalation_moves_the_reported_phase_ends(self) -> None:
        """After an escalation the report gives the phase ends as they moved."""
        async with lifecycle.running(self.tree()) as handle:
            await handle.ready()
            handle.escalate(Phase.FORCEFUL)
            report = await handle.wait()
        t0 = report.requested_at
        assert report.phase_ends == (t0, t0 + 2, t0 + 5)

    def test_component_without_a_stop_has_none(self) -> None:
        """A component that ended before any stop began has no phase ends."""
        assert component("root/job", Outcome.FINISHED, phase=None).phase_ends is None

    def test_dict_gives_phase_ends_after_the_request_and_infinity_as_null(self) -> None:
        """to_dict() names each phase; times are relative to the request and an endless phase is None."""
        ends = (T0 + 1, T0 + 3, math.inf)
        root = component("root", stop_began=T0, phase_ends=ends)
        report = attrs.evolve(shutdown(root), phase_ends=ends)
        data = report.to_dict()
        assert data["phase_ends"] == {"GRACEFUL": 1.0, "FORCEFUL": 3.0, "TERMINATE": None}
        assert data["components"] == [root.to_dict(origin=T0)]
        assert root.to_dict(origin=T0)["phase_ends"] == {"GRACEFUL": 1.0, "FORCEFUL": 3.0, "TERMINATE": None}
