"""Restarts with Erlang/OTP semantics: strategies, restart types, intensity, backoff."""

from __future__ import annotations

import gc
import itertools
import pickle
from collections.abc import AsyncIterator, Callable

import anyio
import pytest
from structlog.testing import capture_logs

import lifecycle
from lifecycle import ComponentError, Outcome
from lifecycle.lowlevel import ComponentInstance
from supervisors import Backoff, GaveUpError, Intensity, Restart, Strategy, Supervisor

pytestmark = pytest.mark.virtual_time

NO_DELAY = Backoff(initial=0.0, maximum=0.0, jitter=False)


class Log:
    """Starts and stops of resources, with the virtual time they happened at."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str, float]] = []
        self.generation: dict[str, int] = {}

    def resource(self, name: str, crash_at: dict[int, float] | None = None) -> Callable[..., object]:
        """A resource that provides ``name#generation`` and crashes (in a task) at the given times."""

        async def component(ctx: lifecycle.Context) -> AsyncIterator[str]:
            gen = self.generation[name] = self.generation.get(name, 0) + 1
            self.events.append(("start", name, anyio.current_time()))
            delay = (crash_at or {}).get(gen)
            if delay is not None:

                async def crash() -> None:
                    await anyio.sleep(delay)
                    msg = f"{name} crash #{gen}"
                    raise RuntimeError(msg)

                ctx.spawn(crash)
            yield f"{name}#{gen}"
            self.events.append(("stop", name, anyio.current_time()))

        component.__name__ = name
        return component

    def seq(self, event: str | None = None) -> list[str]:
        return [f"{e}:{n}" for e, n, _ in self.events if event is None or e == event]


async def run_for(sup: Supervisor, seconds: float) -> lifecycle.ShutdownReport:
    async with lifecycle.running(sup) as tree:
        await tree.ready()
        await anyio.sleep(seconds)
        return await tree.shutdown()


class TestStrategies:
    async def test_one_for_one_restarts_only_the_child_and_its_dependents(self) -> None:
        """ONE_FOR_ONE: the crashed child and what depends on it restart; a sibling does not."""
        log = Log()
        sup = Supervisor(backoff=NO_DELAY)
        sup.add(log.resource("db", {1: 1.0}))
        sup.add(log.resource("api"), depends_on=("db",))
        sup.add(log.resource("metrics"))
        with capture_logs() as logs:
            report = await run_for(sup, 5)
        # The crashed resource holds its teardown until its dependent has stopped,
        # then both start again, dependency first. Within a wave, any order.
        assert log.seq()[0] == "start:db"
        assert sorted(log.seq()[1:3]) == ["start:api", "start:metrics"]
        assert log.seq()[3:7] == ["stop:api", "stop:db", "start:db", "start:api"]
        assert log.generation == {"db": 2, "api": 2, "metrics": 1}
        assert (report["db"].restarts, report["api"].restarts, report["metrics"].restarts) == (1, 1, 0)
        (event,) = [e for e in logs if e["event"] == "supervisor.restarting"]
        assert (event["child"], event["attempt"], event["reason"]) == ("root/db", 1, "failed")
        assert event["error"] == "RuntimeError: db crash #1"
        assert event["restarting"] == ["api", "db"]
        assert report.ok

    async def test_dependents_get_the_new_value(self) -> None:
        """A dependent restarted with its dependency receives the dependency's new value."""
        seen: list[str] = []
        log = Log()
        sup = Supervisor(backoff=NO_DELAY)
        sup.add(log.resource("db", {1: 1.0}))

        @sup.component
        async def api(ctx: lifecycle.Context, db: str) -> None:
            seen.append(db)
            ctx.ready()
            await anyio.sleep_forever()

        await run_for(sup, 5)
        assert seen == ["db#1", "db#2"]

    async def test_one_for_all_restarts_everything_in_order(self) -> None:
        """ONE_FOR_ALL: every child stops (dependents first) and starts again (dependencies first)."""
        log = Log()
        sup = Supervisor(strategy=Strategy.ONE_FOR_ALL, backoff=NO_DELAY)
        sup.add(log.resource("db"))
        sup.add(log.resource("api", {1: 1.0}), depends_on=("db",))
        await run_for(sup, 5)
        assert log.seq() == [
            "start:db",
            "start:api",
            "stop:api",  # the crashed child's own teardown
            "stop:db",
            "start:db",
            "start:api",
            "stop:api",
            "stop:db",
        ]

    async def test_rest_for_one_restarts_the_children_registered_after(self) -> None:
        """REST_FOR_ONE: the crashed child and those registered after it restart; earlier ones do not."""
        log = Log()
        sup = Supervisor(strategy=Strategy.REST_FOR_ONE, backoff=NO_DELAY)
        sup.add(log.resource("first"))
        sup.add(log.resource("second", {1: 1.0}))
        sup.add(log.resource("third"))
        await run_for(sup, 5)
        assert log.generation == {"first": 1, "second": 2, "third": 2}


class TestRestartTypes:
    async def test_transient_child_that_returns_is_not_restarted(self) -> None:
        """TRANSIENT: a normal exit is final, reported as finished."""
        sup = Supervisor(backoff=NO_DELAY)
        runs: list[int] = []

        @sup.component(restart=Restart.TRANSIENT)
        async def job(ctx: lifecycle.Context) -> None:
            runs.append(1)
            ctx.ready()
            await anyio.sleep(1)

        report = await run_for(sup, 5)
        assert runs == [1]
        assert report["job"].outcome is Outcome.FINISHED

    async def test_transient_child_that_fails_is_restarted(self) -> None:
        """TRANSIENT: a failure restarts it."""
        log = Log()
        sup = Supervisor(backoff=NO_DELAY)
        sup.add(log.resource("worker", {1: 1.0}), restart=Restart.TRANSIENT)
        await run_for(sup, 5)
        assert log.generation == {"worker": 2}

    async def test_permanent_child_that_returns_is_restarted(self) -> None:
        """PERMANENT: even a normal exit restarts it."""
        sup = Supervisor(backoff=NO_DELAY, intensity=Intensity(max_restarts=100, within=1.0))
        runs: list[float] = []

        @sup.component
        async def poller(ctx: lifecycle.Context) -> None:
            runs.append(anyio.current_time())
            ctx.ready()
            await anyio.sleep(1)

        await run_for(sup, 3.5)
        assert len(runs) == 4

    async def test_temporary_child_failure_is_reported_not_raised(self) -> None:
        """TEMPORARY: never restarted; its failure is logged and in the report, and nothing is raised."""
        log = Log()
        sup = Supervisor(backoff=NO_DELAY)
        sup.add(log.resource("probe", {1: 1.0}), restart=Restart.TEMPORARY)
        sup.add(log.resource("api"))
        with capture_logs() as logs:
            report = await run_for(sup, 5)
        assert log.generation == {"probe": 1, "api": 1}
        assert report["probe"].outcome is Outcome.FAILED
        assert report["api"].outcome is Outcome.GRACEFUL
        assert any(e["event"] == "supervisor.child_ended" for e in logs)


class TestExitRequests:
    @pytest.mark.parametrize("restart", [Restart.PERMANENT, Restart.TRANSIENT])
    @pytest.mark.parametrize("error", [SystemExit, KeyboardInterrupt])
    @pytest.mark.parametrize("nested", [False, True], ids=["flat", "nested"])
    async def test_a_child_asking_the_program_to_exit_is_not_restarted(
        self, restart: Restart, error: type[BaseException], nested: bool
    ) -> None:
        """sys.exit() or KeyboardInterrupt in any child ends the tree in order, as in a plain script: no restart."""
        runs: list[float] = []
        closed: list[str] = []
        inner = Supervisor("inner", backoff=NO_DELAY, intensity=Intensity(max_restarts=100, within=1.0))

        @inner.component
        async def db() -> AsyncIterator[str]:
            yield "db"
            closed.append("db")

        @inner.component(restart=restart)
        async def job(ctx: lifecycle.Context, db: str) -> None:
            runs.append(anyio.current_time())
            ctx.ready()
            await anyio.sleep(1)
            raise error

        root = Supervisor("root", backoff=NO_DELAY, intensity=Intensity(max_restarts=100, within=1.0))
        root.add(inner, name="inner")
        top = root if nested else inner
        with capture_logs() as logs, pytest.raises(BaseExceptionGroup) as info:
            async with lifecycle.running(top):
                await anyio.sleep(10)
        assert runs == [pytest.approx(0.0)]
        assert closed == ["db"]
        assert info.group_contains(error)
        path = "root/inner/job" if nested else "inner/job"
        giving_up = [e for e in logs if e["event"] == "supervisor.giving_up"]
        assert giving_up[0]["child"] == path
        assert f"it raised {error.__name__}" in giving_up[0]["reason"]
        assert not any(e["event"] == "supervisor.restarting" for e in logs)


class TestIntensity:
    async def test_too_many_restarts_make_the_supervisor_give_up(self) -> None:
        """More than max_restarts within the window: children stop in order, the last error is raised."""
        log = Log()
        sup = Supervisor(backoff=NO_DELAY, intensity=Intensity(max_restarts=2, within=10.0))
        sup.add(log.resource("db"))
        sup.add(log.resource("flaky", {1: 1.0, 2: 1.0, 3: 1.0}), depends_on=("db",))
        with pytest.raises(ExceptionGroup) as info, capture_logs() as logs:
            async with lifecycle.running(sup) as tree:
                await tree.ready()
                await anyio.sleep_forever()
        (error,) = info.value.exceptions
        assert isinstance(error, GaveUpError)
        assert isinstance(error, ComponentError)
        assert (error.supervisor, error.path, error.child) == ("root", "root", "root/flaky")
        assert error.reason == "more than 2 restarts within 10 s"
        assert [str(e.__cause__) for e in error.errors] == ["flaky crash #1", "flaky crash #2", "flaky crash #3"]
        assert error.__cause__ is error.errors[-1]
        assert log.generation == {"db": 1, "flaky": 3}
        assert log.seq("stop")[-1] == "stop:db"
        (gave_up,) = [e for e in logs if e["event"] == "supervisor.giving_up"]
        assert gave_up["reason"] == "more than 2 restarts within 10 s"

    async def test_a_crash_loop_of_normal_exits_gives_up_and_fails(self) -> None:
        """Issue 16: a PERMANENT child that returns over and over exhausts the intensity, and the root fails."""
        sup = Supervisor(intensity=Intensity(max_restarts=2, within=3600), backoff=NO_DELAY)
        runs: list[float] = []

        @sup.component
        async def child(ctx: lifecycle.Context) -> None:
            runs.append(anyio.current_time())
            ctx.ready()
            await anyio.sleep(0.05)

        with pytest.RaisesGroup(GaveUpError) as info, capture_logs() as logs:
            async with lifecycle.running(sup) as tree:
                await tree.wait()
        (error,) = info.value.exceptions
        assert isinstance(error, GaveUpError)
        assert (error.supervisor, error.child, error.errors, error.failed) == ("root", "root/child", (), False)
        assert error.__cause__ is None
        assert str(error) == (
            "supervisor 'root' gave up after 'root/child' returned: more than 2 restarts within 3600 s"
        )
        assert len(runs) == 3
        (gave_up,) = [e for e in logs if e["event"] == "supervisor.giving_up"]
        assert gave_up["ended"] == "returned"
        assert tree.report is not None
        assert not tree.report.ok
        assert tree.report.reason is lifecycle.StopReason.FAILURE

    def test_gave_up_error_pickles(self) -> None:
        """A GaveUpError survives pickling with its attributes (to hand it to another process)."""
        cause = ComponentError("root/db", "run", RuntimeError("lost"))
        error = GaveUpError("root", "root/db", "more than 0 restarts within 5 s", (cause,), failed=True)
        copy = pickle.loads(pickle.dumps(error))  # noqa: S301 - our own object
        assert (copy.supervisor, copy.child, copy.reason, copy.failed) == ("root", "root/db", error.reason, True)
        assert str(copy) == str(error)
        assert str(copy) == (
            "supervisor 'root' gave up after 'root/db' failed: more than 0 restarts within 5 s; "
            "last error: component 'root/db' failed: RuntimeError: lost"
        )

    async def test_a_nested_supervisor_that_gives_up_on_normal_exits_is_restarted(self) -> None:
        """A nested supervisor giving up after normal exits is a failed child: its parent restarts it."""
        inner = Supervisor("inner", intensity=Intensity(max_restarts=0), backoff=NO_DELAY)
        runs: list[int] = []

        @inner.component
        async def job(ctx: lifecycle.Context) -> None:
            runs.append(1)
            ctx.ready()
            if len(runs) == 1:
                return
            await anyio.sleep_forever()

        root = Supervisor(backoff=NO_DELAY)
        root.add(inner)
        report = await run_for(root, 5)
        assert len(runs) == 2
        assert report["inner"].restarts == 1
        (earlier,) = report["inner"].earlier_errors
        assert isinstance(earlier, ExceptionGroup)
        (gave_up,) = earlier.exceptions
        assert isinstance(gave_up, GaveUpError)
        assert gave_up.child == "root/inner/job"
        assert report.ok

    async def test_restarts_spread_wider_than_the_window_go_on(self) -> None:
        """Crashes further apart than the window never exceed the intensity."""
        log = Log()
        sup = Supervisor(backoff=NO_DELAY, intensity=Intensity(max_restarts=1, within=2.0))
        sup.add(log.resource("worker", dict.fromkeys(range(1, 6), 3.0)))
        report = await run_for(sup, 16)
        assert log.generation == {"worker": 6}
        assert report["worker"].restarts == 5

    async def test_runs_that_ended_outside_the_window_are_not_kept(self) -> None:
        """A window that allows many restarts keeps only the runs that ended within it, not every run."""
        restarted = anyio.Event()
        runs = 0

        async def crasher(ctx: lifecycle.Context) -> None:
            nonlocal runs
            ctx.ready()
            runs += 1
            if runs > 60:
                restarted.set()
                await anyio.sleep_forever()
            await anyio.sleep(1.0)
            msg = "crash"
            raise RuntimeError(msg)

        sup = Supervisor(backoff=NO_DELAY, intensity=Intensity(max_restarts=1000, within=2.5))
        sup.add(crasher)
        async with lifecycle.running(sup) as tree:
            await restarted.wait()
            gc.collect()
            alive = [o for o in gc.get_objects() if isinstance(o, ComponentInstance) and o.spec.name == "crasher"]
            await tree.shutdown()
        # Not one per run: the current one, the ones that ended in the last 2.5 s (one a
        # second), and those whose errors the report keeps (the last 16, with their tracebacks).
        assert len(alive) <= 20

    async def test_a_failed_nested_supervisor_is_a_failed_child_of_its_parent(self) -> None:
        """A nested supervisor that gives up is restarted by its parent's strategy."""
        log = Log()
        inner = Supervisor("inner", backoff=NO_DELAY, intensity=Intensity(max_restarts=0))
        inner.add(log.resource("job", {1: 1.0}))
        root = Supervisor(backoff=NO_DELAY)
        root.add(inner)
        report = await run_for(root, 5)
        assert log.generation == {"job": 2}
        assert report["inner"].restarts == 1


class TestHandledFailures:
    async def test_a_temporary_childs_failure_leaves_the_stop_clean(self) -> None:
        """Issue 16: a TEMPORARY child's failure stays in the report with its error, and the stop is still ok."""
        log = Log()
        sup = Supervisor(backoff=NO_DELAY)
        sup.add(log.resource("probe", {1: 1.0}), restart=Restart.TEMPORARY)
        sup.add(log.resource("api"))
        with capture_logs() as logs:
            report = await run_for(sup, 5)
        probe = report["probe"]
        assert (probe.outcome, probe.handled, str(probe.error)) == (Outcome.FAILED, True, "probe crash #1")
        assert report.failures == ()
        assert report.ok
        assert "run (handled): RuntimeError: probe crash #1" in str(report)
        assert report.to_dict()["components"][0]["handled"] is True  # type: ignore[index]
        assert any(e["event"] == "component.failed" for e in logs)

    async def test_a_stop_during_the_backoff_is_clean(self) -> None:
        """A failed run whose restart was still waiting when the tree stopped is a handled failure."""
        log = Log()
        sup = Supervisor(backoff=Backoff(initial=60.0, maximum=60.0, jitter=False))
        sup.add(log.resource("worker", {1: 1.0}))
        report = await run_for(sup, 2)
        assert (report["worker"].outcome, report["worker"].handled) == (Outcome.FAILED, True)
        assert report.ok

    async def test_a_dynamic_temporary_childs_failure_stays_in_the_report(self) -> None:
        """A dynamic TEMPORARY child that failed is forgotten, but its report and error stay."""
        sup = Supervisor(backoff=NO_DELAY)

        async def probe(ctx: lifecycle.Context) -> None:
            ctx.ready()
            await anyio.sleep(1)
            msg = "probe lost"
            raise RuntimeError(msg)

        async with lifecycle.running(sup) as tree:
            await tree.ready()
            await sup.start_child(probe, restart=Restart.TEMPORARY)
            await anyio.sleep(2)
            with pytest.raises(KeyError):
                await sup.stop_child("probe")  # forgotten: its name is free
            report = await tree.shutdown()
        assert (report["probe"].handled, str(report["probe"].error)) == (True, "probe lost")
        assert report.ok


class TestBackoff:
    async def test_delays_grow_exponentially(self) -> None:
        """Without jitter the restarts come initial, initial*2, initial*4 seconds after each crash."""
        log = Log()
        backoff = Backoff(initial=1.0, maximum=10.0, multiplier=2.0, jitter=False)
        sup = Supervisor(backoff=backoff, intensity=Intensity(max_restarts=10, within=100.0))
        sup.add(log.resource("worker", {1: 0.5, 2: 0.5, 3: 0.5}))
        await run_for(sup, 20)
        starts = [t for e, _, t in log.events if e == "start"]
        gaps = [round(b - a, 6) for a, b in itertools.pairwise(starts)]
        assert gaps == [1.5, 2.5, 4.5]

    async def test_backoff_resets_after_a_long_enough_run(self) -> None:
        """A child that stayed up for the whole intensity window restarts after the initial delay again."""
        log = Log()
        backoff = Backoff(initial=1.0, maximum=10.0, multiplier=2.0, jitter=False)
        sup = Supervisor(backoff=backoff, intensity=Intensity(max_restarts=10, within=5.0))
        sup.add(log.resource("worker", {1: 0.5, 2: 6.0}))
        await run_for(sup, 20)
        starts = [t for e, _, t in log.events if e == "start"]
        assert [round(b - a, 6) for a, b in itertools.pairwise(starts)] == [1.5, 7.0]

    async def test_a_stop_during_the_backoff_does_not_wait_for_it(self) -> None:
        """Stopping the tree while a restart waits its delay ends at once, without restarting."""
        log = Log()
        sup = Supervisor(backoff=Backoff(initial=60.0, maximum=60.0, jitter=False))
        sup.add(log.resource("worker", {1: 1.0}))
        async with lifecycle.running(sup) as tree:
            await tree.ready()
            await anyio.sleep(2)
            t0 = anyio.current_time()
            await tree.shutdown()
            assert anyio.current_time() - t0 == 0
        assert log.generation == {"worker": 1}


class TestFailedResourceTeardown:
    async def test_dependents_stop_before_a_crashed_resource_tears_down(self) -> None:
        """When a resource fails and its supervisor gives up, its dependents stop before its teardown runs."""
        log = Log()
        sup = Supervisor(backoff=NO_DELAY, intensity=Intensity(max_restarts=0))
        sup.add(log.resource("db", {1: 1.0}))
        sup.add(log.resource("api"), depends_on=("db",))
        sup.add(log.resource("web"), depends_on=("api",))
        with pytest.raises(ExceptionGroup):
            async with lifecycle.running(sup) as tree:
                await tree.ready()
                await anyio.sleep_forever()
        assert log.seq("stop") == ["stop:web", "stop:api", "stop:db"]


class TestFirstStart:
    async def test_a_child_that_fails_right_after_ready_is_restarted(self) -> None:
        """A failure after readiness, while the rest of the first start is still waiting, is a runtime failure."""
        runs: list[str] = []
        release = anyio.Event()
        sup = Supervisor(backoff=NO_DELAY)

        @sup.component
        async def eager(ctx: lifecycle.Context) -> None:
            runs.append("eager")
            ctx.ready()
            if len(runs) == 1:
                msg = "crashed at once"
                raise RuntimeError(msg)
            await anyio.sleep_forever()

        @sup.component
        async def slow() -> AsyncIterator[None]:
            await release.wait()
            yield

        async with lifecycle.running(sup) as tree:
            await anyio.wait_all_tasks_blocked()
            release.set()
            await tree.ready()
            await anyio.sleep(1)
            report = await tree.shutdown()
        assert runs == ["eager", "eager"]
        assert report["eager"].restarts == 1
        assert report.ok


class TestRestartWaves:
    async def test_a_member_that_fails_to_start_does_not_stall_the_wave(self) -> None:
        """In a restart wave, one member failing to start while another becomes ready later is still handled."""
        runs: dict[str, int] = {}
        sup = Supervisor(strategy=Strategy.ONE_FOR_ALL, backoff=NO_DELAY, intensity=Intensity(max_restarts=1))

        @sup.component
        async def slow(ctx: lifecycle.Context) -> None:
            runs["slow"] = runs.get("slow", 0) + 1
            await anyio.sleep(0.5)  # ready after the other member's start failed
            ctx.ready()
            await anyio.sleep_forever()

        @sup.component
        async def flaky(ctx: lifecycle.Context) -> None:
            runs["flaky"] = runs.get("flaky", 0) + 1
            if runs["flaky"] > 1:
                msg = "cannot start again"
                raise RuntimeError(msg)
            ctx.ready()
            await anyio.sleep(1)
            msg = "crashed"
            raise RuntimeError(msg)

        with anyio.fail_after(60), pytest.RaisesGroup(GaveUpError) as info:
            async with lifecycle.running(sup) as tree:
                await tree.ready()
                await anyio.sleep_forever()
        (error,) = info.value.exceptions
        assert isinstance(error, GaveUpError)
        assert [str(e.__cause__) for e in error.errors] == ["crashed", "cannot start again"]
        assert runs == {"slow": 2, "flaky": 2}


class TestChildrenThatEndForGood:
    async def test_dependents_of_a_temporary_child_stop_before_its_teardown(self) -> None:
        """A TEMPORARY resource that fails: its dependents stop first, for good, then it tears down."""
        log = Log()
        sup = Supervisor(backoff=NO_DELAY)
        sup.add(log.resource("db", {1: 1.0}), restart=Restart.TEMPORARY)
        sup.add(log.resource("api"), depends_on=("db",))
        sup.add(log.resource("metrics"))
        report = await run_for(sup, 5)
        assert log.seq("stop")[:2] == ["stop:api", "stop:db"]
        assert log.generation == {"db": 1, "api": 1, "metrics": 1}
        assert report["db"].outcome is Outcome.FAILED
        assert report["api"].restarts == 0

    async def test_a_dependent_never_starts_against_a_child_that_already_returned(self) -> None:
        """A child that returns during startup is restarted before its dependent first starts."""
        sup = Supervisor(backoff=NO_DELAY)
        seen: list[int] = []
        runs = itertools.count(1)

        @sup.component
        async def job(ctx: lifecycle.Context) -> None:
            run = next(runs)
            ctx.ready(run)
            if run == 1:
                return
            await anyio.sleep_forever()

        @sup.component
        async def user(ctx: lifecycle.Context, job: int) -> None:
            seen.append(job)
            ctx.ready()
            await anyio.sleep_forever()

        report = await run_for(sup, 1)
        assert seen == [2]
        assert (report["job"].restarts, report["user"].restarts) == (1, 0)


class TestEarlierErrors:
    async def test_the_errors_of_restarted_runs_are_in_the_report(self) -> None:
        """Each restarted run's failure stays in the report, oldest first."""
        log = Log()
        sup = Supervisor(backoff=NO_DELAY, intensity=Intensity(max_restarts=10, within=100.0))
        sup.add(log.resource("worker", {1: 1.0, 2: 1.0}))
        report = await run_for(sup, 5)
        assert [str(e) for e in report["worker"].earlier_errors] == ["worker crash #1", "worker crash #2"]
        assert report["worker"].to_dict()["earlier_errors"] == [
            {"type": "RuntimeError", "message": f"worker crash #{n}", "raised": "RuntimeError"} for n in (1, 2)
        ]

    @pytest.mark.parametrize("strategy", [Strategy.ONE_FOR_ALL, Strategy.REST_FOR_ONE])
    async def test_a_transient_child_that_returned_restarts_with_its_group(self, strategy: Strategy) -> None:
        """Issue 16: as in OTP, a group restart starts a TRANSIENT child that had already returned again."""
        sup = Supervisor(strategy=strategy, backoff=NO_DELAY)
        log = Log()
        runs: list[float] = []
        sup.add(log.resource("worker", {1: 2.0}))

        @sup.component(restart=Restart.TRANSIENT)  # registered after: in the "rest" of REST_FOR_ONE
        async def setup(ctx: lifecycle.Context) -> None:
            runs.append(anyio.current_time())
            ctx.ready()

        report = await run_for(sup, 5)
        assert runs == [0.0, 2.0]
        assert (report["setup"].outcome, report["setup"].restarts) == (Outcome.FINISHED, 1)
        assert log.generation == {"worker": 2}

    async def test_a_temporary_child_stopped_by_a_restart_stays_in_the_report(self) -> None:
        """ONE_FOR_ALL stops a TEMPORARY sibling for good; it is still reported."""
        log = Log()
        sup = Supervisor(strategy=Strategy.ONE_FOR_ALL, backoff=NO_DELAY)
        sup.add(log.resource("probe"), restart=Restart.TEMPORARY)
        sup.add(log.resource("worker", {1: 1.0}))
        report = await run_for(sup, 5)
        assert log.generation == {"probe": 1, "worker": 2}
        assert report["probe"].outcome is Outcome.GRACEFUL
