"""Dynamic children: Supervisor.start_child() and Supervisor.stop_child()."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator

import anyio
import pytest
from helpers import Recorder
from structlog.testing import capture_logs

import lifecycle
from lifecycle import ComponentError, ConfigurationError, Outcome, Priority, StoppedError, UsageError
from lifecycle.testing import Fault, assert_start_order, assert_stop_order, inject_fault, open_tree
from supervisors import Backoff, Intensity, Restart, Strategy, Supervisor

NO_DELAY = Backoff(initial=0.0, maximum=0.0, jitter=False)


def tree(rec: Recorder, **options: object) -> Supervisor:
    """A supervisor with one registered resource, ``db``."""
    sup = Supervisor(backoff=NO_DELAY, **options)  # type: ignore[arg-type]
    sup.add(rec.resource("db", "db-pool"))
    return sup


class TestStartChild:
    async def test_returns_the_value_and_injects_dependencies(self) -> None:
        """start_child() returns once the child is ready, with what it provided; dependencies are injected."""
        rec = Recorder()
        sup = tree(rec)

        async def tenant(ctx: lifecycle.Context, db: str) -> None:
            ctx.ready(f"tenant on {db}")
            await anyio.sleep_forever()

        async with lifecycle.running(sup) as handle:
            await handle.ready()
            assert await sup.start_child(tenant) == "tenant on db-pool"
            report = await handle.shutdown()
        assert [c.path for c in report.components] == ["root/tenant", "root/db", "root"]
        assert report.ok

    async def test_stops_before_its_dependencies_with_the_tree(self) -> None:
        """A dynamic child stops in order with the tree: before what it depends on."""
        rec = Recorder()
        sup = tree(rec)
        async with open_tree(sup) as handle:
            await sup.start_child(rec.service("api"), depends_on=("db",))
        assert handle.report is not None
        assert_start_order(handle.report, "db", "api")
        assert_stop_order(handle.report, "api", "db")

    async def test_waits_for_dependencies_still_starting(self) -> None:
        """Called while the tree starts, a child waits until its dependencies are ready."""
        rec = Recorder()
        sup = Supervisor()
        release = anyio.Event()

        @sup.component
        async def slow() -> AsyncIterator[str]:
            await release.wait()
            rec.add("start", "slow")
            yield "slow"

        async with lifecycle.running(sup) as handle:
            async with anyio.create_task_group() as tg:
                await anyio.wait_all_tasks_blocked()  # the tree is starting: `slow` is not ready
                tg.start_soon(functools.partial(sup.start_child, rec.service("api"), depends_on=("slow",)))
                await anyio.wait_all_tasks_blocked()
                assert rec.events == []
                release.set()
            await handle.ready()
        assert rec.events[:2] == [("start", "slow"), ("start", "api")]

    async def test_a_start_failure_is_raised_and_frees_the_name(self) -> None:
        """A child that fails to start is removed and its error raised; the tree is unaffected."""
        rec = Recorder()
        sup = tree(rec)
        with inject_fault("flaky", Fault.START, error=OSError("no such tenant")):
            async with open_tree(sup) as handle:
                with pytest.raises(ComponentError, match="no such tenant") as info:
                    await sup.start_child(rec.service("flaky"))
                assert (info.value.path, info.value.stage) == ("root/flaky", "start")
                await sup.start_child(rec.service("flaky"))  # the name is free again; this start is healthy
        assert handle.report is not None
        assert sorted(c.name for c in handle.report.components) == ["db", "flaky", "root"]

    async def test_a_taken_name_is_a_configuration_error(self) -> None:
        """A name already in use is refused before anything starts."""
        rec = Recorder()
        sup = tree(rec)
        async with lifecycle.running(sup) as handle:
            await handle.ready()
            with pytest.raises(ConfigurationError, match=r"already has a child named 'db'.*stop_child"):
                await sup.start_child(rec.resource("db"))

    async def test_unknown_dependencies_are_named(self) -> None:
        """An unknown dependency is a ConfigurationError with a suggestion."""
        rec = Recorder()
        sup = tree(rec)
        async with lifecycle.running(sup) as handle:
            await handle.ready()
            with pytest.raises(ConfigurationError, match=r"depends on 'dbb'.*Did you mean 'db'\?"):
                await sup.start_child(rec.service("api"), depends_on=("dbb",))

    async def test_refused_when_the_supervisor_is_not_running(self) -> None:
        """start_child() and stop_child() need a running supervisor."""
        rec = Recorder()
        sup = tree(rec)
        with pytest.raises(UsageError, match=r"not running, so `start_child\(\)` cannot act on 'api'"):
            await sup.start_child(rec.service("api"))
        with pytest.raises(UsageError, match=r"`stop_child\(\)`"):
            await sup.stop_child("db")

    async def test_refused_once_the_stop_began(self) -> None:
        """Nothing new starts once the supervisor's stop has begun."""
        rec = Recorder()
        sup = tree(rec)
        errors: list[BaseException] = []

        async def late(ctx: lifecycle.Context) -> None:
            ctx.ready()
            await ctx.stopping.wait()
            with lifecycle.shielded():
                try:
                    await sup.start_child(rec.service("latecomer"))
                except StoppedError as exc:
                    errors.append(exc)

        async with lifecycle.running(sup) as handle:
            await handle.ready()
            await sup.start_child(late)
        assert [str(e) for e in errors] == ["Supervisor 'root' is stopping; child 'latecomer' was not started."]
        assert "latecomer" not in rec.names("start")

    async def test_cancelling_the_caller_stops_the_child(self) -> None:
        """A caller cancelled before the child is ready leaves nothing behind: the child is stopped and removed."""
        rec = Recorder()
        sup = tree(rec)
        started = anyio.Event()

        async def stuck(ctx: lifecycle.Context) -> None:
            rec.add("start", "stuck")
            started.set()
            try:
                await anyio.sleep_forever()
            finally:
                rec.add("stop", "stuck")

        async with lifecycle.running(sup) as handle:
            await handle.ready()
            with anyio.CancelScope() as scope:
                async with anyio.create_task_group() as tg:
                    tg.start_soon(sup.start_child, stuck)
                    await started.wait()
                    scope.cancel()
            assert rec.names("stop") == ["stuck"]
            with pytest.raises(KeyError):
                await sup.stop_child("stuck")
            report = await handle.shutdown()
        assert [c.name for c in report.components] == ["db", "root"]

    async def test_a_child_started_from_outside_the_tree_belongs_to_the_supervisor(self) -> None:
        """Started by the host program, a dynamic child is still part of the tree: value() finds it."""
        rec = Recorder()
        sup = tree(rec)
        async with lifecycle.running(sup) as handle:
            await handle.ready()
            await sup.start_child(rec.service("api"))
            assert handle.value("api") == "api"
            await handle.shutdown()

    async def test_a_caller_cancelled_once_the_child_is_ready_leaves_it_running(self) -> None:
        """A child that became ready stays, even if its caller is cancelled before start_child() returns."""
        sup = Supervisor()

        async with lifecycle.running(sup) as handle:
            await handle.ready()
            with anyio.CancelScope() as scope:

                async def job(ctx: lifecycle.Context) -> None:
                    ctx.ready("v")
                    scope.cancel()  # in the same step: the caller is cancelled as the child becomes ready
                    await anyio.sleep_forever()

                await sup.start_child(job)
                await anyio.sleep_forever()
            assert handle.value("job") == "v"
            report = await handle.shutdown()
        assert report["job"].outcome is Outcome.GRACEFUL

    async def test_a_dependency_that_ended_for_good_is_refused(self) -> None:
        """A child cannot depend on a TEMPORARY child that has ended."""
        rec = Recorder()
        sup = tree(rec)

        @sup.component(restart=Restart.TEMPORARY)
        async def once(ctx: lifecycle.Context) -> None:
            ctx.ready()

        async with lifecycle.running(sup) as handle:
            await handle.ready()
            await anyio.wait_all_tasks_blocked()
            with pytest.raises(StoppedError, match=r"depends on 'once', which has ended"):
                await sup.start_child(rec.service("api"), depends_on=("once",))

    async def test_dependents_of_a_child_that_fails_to_start_are_not_started(self) -> None:
        """A child waiting for a dependency that fails to start is removed with it."""
        sup = Supervisor()
        go = anyio.Event()

        async def base() -> AsyncIterator[None]:
            await go.wait()
            raise OSError("base is broken")
            yield  # pragma: no cover - never reached

        async def user(ctx: lifecycle.Context, base: None) -> None:
            ctx.ready()  # pragma: no cover - never started

        results: list[BaseException] = []

        async def attempt(target: object) -> None:
            try:
                await sup.start_child(target)
            except (ComponentError, StoppedError) as exc:
                results.append(exc)

        async with lifecycle.running(sup) as handle:
            await handle.ready()
            async with anyio.create_task_group() as tg:
                tg.start_soon(attempt, base)
                await anyio.wait_all_tasks_blocked()
                tg.start_soon(attempt, user)
                await anyio.wait_all_tasks_blocked()
                go.set()
            report = await handle.shutdown()
        assert sorted(type(e).__name__ for e in results) == ["ComponentError", "StoppedError"]
        assert [c.name for c in report.components] == ["root"]


class TestStartChildReturnsOnceReady:
    """As OTP's ``start_child/2`` returns ``{ok, Pid}`` once the child started, whatever it does next."""

    @pytest.mark.parametrize(
        ("restart", "ending"),
        [
            (Restart.TEMPORARY, "returns"),
            (Restart.TEMPORARY, "raises"),
            (Restart.TRANSIENT, "returns"),
            (Restart.PERMANENT, "returns"),
        ],
    )
    async def test_a_child_that_ends_right_after_ready_still_returns_its_value(
        self, restart: Restart, ending: str
    ) -> None:
        """start_child() returns the value of a child that ends at once after ctx.ready(), on every backend."""
        sup = Supervisor(backoff=NO_DELAY, intensity=Intensity(max_restarts=100))
        runs: dict[str, int] = {}

        async def job(ctx: lifecycle.Context) -> None:
            run = runs[ctx.name] = runs.get(ctx.name, 0) + 1
            ctx.ready(f"{ctx.name}#{run}")
            if run > 1:  # a PERMANENT child's restart stays up
                await anyio.sleep_forever()
            if ending == "raises":
                msg = "done badly"
                raise RuntimeError(msg)

        async with lifecycle.running(sup) as handle:
            await handle.ready()
            # The race lost about half of the runs on Trio.
            values = [await sup.start_child(job, name=f"job{i}", restart=restart) for i in range(40)]
            report = await handle.shutdown()
        assert values == [f"job{i}#1" for i in range(40)]
        assert report.ok

    async def test_a_thousand_children_ending_right_after_ready(self) -> None:
        """Stress: 1,000 ready-then-return and 1,000 ready-then-raise TEMPORARY children all return their value."""
        sup = Supervisor(backoff=NO_DELAY)

        async def returns(ctx: lifecycle.Context) -> None:
            ctx.ready("returned")

        async def raises(ctx: lifecycle.Context) -> None:
            ctx.ready("raised")
            msg = "after ready"
            raise RuntimeError(msg)

        values: list[object] = []
        with capture_logs():  # a thousand handled failures, each logged
            async with lifecycle.running(sup) as handle:
                await handle.ready()
                for i in range(1000):
                    values.append(await sup.start_child(returns, name=f"r{i}", restart=Restart.TEMPORARY))
                    values.append(await sup.start_child(raises, name=f"e{i}", restart=Restart.TEMPORARY))
                report = await handle.shutdown()
        assert values == ["returned", "raised"] * 1000
        assert report.ok


class TestStopChild:
    async def test_stops_the_child_and_its_dependents_in_order(self) -> None:
        """stop_child() stops dependents first, then the child, and returns the child's report."""
        rec = Recorder()
        sup = tree(rec)
        async with lifecycle.running(sup) as handle:
            await handle.ready()
            await sup.start_child(rec.resource("cache"), depends_on=("db",))
            await sup.start_child(rec.service("api"), depends_on=("cache",))
            await sup.start_child(rec.service("other"), depends_on=("db",))
            with capture_logs() as logs:
                report = await sup.stop_child("cache")
            assert (report.path, report.outcome) == ("root/cache", Outcome.GRACEFUL)
            assert rec.names("stop") == ["api", "cache"]
            assert [(e["child"], e["reason"]) for e in logs if e["event"] == "supervisor.child_stopped"] == [
                ("root/api", "stop_child()"),
                ("root/cache", "stop_child()"),
            ]
            await sup.start_child(rec.resource("cache"))  # free again
            final = await handle.shutdown()
        assert sorted(c.name for c in final.components) == ["cache", "db", "other", "root"]

    async def test_works_for_registered_children(self) -> None:
        """A registered child can be stopped too; it is not restarted."""
        rec = Recorder()
        sup = tree(rec)
        sup.add(rec.service("api"), depends_on=("db",))
        async with lifecycle.running(sup) as handle:
            await handle.ready()
            report = await sup.stop_child("db")
            assert report.outcome is Outcome.GRACEFUL
            assert rec.names("stop") == ["api", "db"]
            final = await handle.shutdown()
        assert [c.name for c in final.components] == ["root"]
        assert rec.names("start") == ["db", "api"]

    async def test_an_unknown_name_is_a_key_error(self) -> None:
        """Stopping a child that does not exist raises KeyError naming it."""
        sup = tree(Recorder())
        async with lifecycle.running(sup) as handle:
            await handle.ready()
            with pytest.raises(KeyError, match="has no child named 'nope'"):
                await sup.stop_child("nope")

    async def test_a_child_cannot_stop_itself(self) -> None:
        """A component stopping itself (or a dependency of itself) gets a UsageError instead of a deadlock."""
        rec = Recorder()
        sup = tree(rec)
        errors: list[UsageError] = []

        @sup.component
        async def api(ctx: lifecycle.Context, db: str) -> None:
            ctx.ready()
            try:
                await sup.stop_child("db")
            except UsageError as exc:
                errors.append(exc)
            await anyio.sleep_forever()

        async with lifecycle.running(sup) as handle:
            await handle.ready()
            await anyio.wait_all_tasks_blocked()
        assert len(errors) == 1
        assert "stops 'root/api' itself" in str(errors[0])

    async def test_during_the_supervisor_stop_it_waits_for_that_stop(self) -> None:
        """stop_child() while the supervisor stops returns the child's report from that stop."""
        rec = Recorder()
        sup = tree(rec)
        sup.add(rec.service("api"), depends_on=("db",))
        async with lifecycle.running(sup) as handle:
            await handle.ready()
            handle.request_shutdown()
            report = await sup.stop_child("api")
            assert rec.names("stop")[0] == "api"
        assert (report.name, report.outcome) == ("api", Outcome.GRACEFUL)

    async def test_a_child_not_started_yet_is_removed(self) -> None:
        """A child still waiting for its dependencies is removed; its start_child() raises StoppedError."""
        sup = Supervisor()
        release = anyio.Event()
        errors: list[StoppedError] = []

        @sup.component
        async def slow() -> AsyncIterator[None]:
            await release.wait()
            yield

        async def waiter(ctx: lifecycle.Context, slow: None) -> None:
            ctx.ready()  # pragma: no cover - never started

        async def attempt() -> None:
            try:
                await sup.start_child(waiter)
            except StoppedError as exc:
                errors.append(exc)

        async with lifecycle.running(sup) as handle, anyio.create_task_group() as tg:
            await anyio.wait_all_tasks_blocked()  # the tree is starting: `slow` is not ready
            tg.start_soon(attempt)
            await anyio.wait_all_tasks_blocked()
            report = await sup.stop_child("waiter")
            assert report.started_at is None
            release.set()
            await handle.ready()
        assert "was stopped before it was ready" in str(errors[0])


@pytest.mark.virtual_time
class TestSupervision:
    async def test_a_crashed_dynamic_child_is_restarted(self) -> None:
        """A dynamic child is supervised like a registered one: PERMANENT restarts, counted in the report."""
        generations: list[str] = []
        sup = Supervisor(backoff=NO_DELAY)

        async def worker(ctx: lifecycle.Context) -> None:
            generations.append("start")
            ctx.ready()
            await anyio.sleep(1)
            if len(generations) == 1:
                raise RuntimeError("worker crashed")
            await anyio.sleep_forever()

        async with lifecycle.running(sup) as handle:
            await handle.ready()
            await sup.start_child(worker)
            await anyio.sleep(5)
            report = await handle.shutdown()
        assert generations == ["start", "start"]
        assert report["worker"].restarts == 1
        assert report.ok

    async def test_a_temporary_dynamic_child_is_forgotten_when_it_ends(self) -> None:
        """A TEMPORARY dynamic child that ends is removed, freeing its name (OTP deletes temporary children)."""
        sup = Supervisor()

        async def job(ctx: lifecycle.Context) -> None:
            ctx.ready()
            await anyio.sleep(1)

        async with lifecycle.running(sup) as handle:
            await handle.ready()
            await sup.start_child(job, restart=Restart.TEMPORARY)
            await anyio.sleep(2)
            with pytest.raises(KeyError):
                await sup.stop_child("job")
            await sup.start_child(job, restart=Restart.TEMPORARY)
            report = await handle.shutdown()
        assert [c.name for c in report.components] == ["job", "root"]

    async def test_rest_for_one_includes_children_started_later(self) -> None:
        """REST_FOR_ONE: dynamic children count as registered after every registered child."""
        rec = Recorder()
        sup = Supervisor(strategy=Strategy.REST_FOR_ONE, backoff=NO_DELAY)

        @sup.component
        async def first(ctx: lifecycle.Context) -> None:
            rec.add("start", "first")
            ctx.ready()
            await anyio.sleep(1)
            if rec.names("start").count("first") == 1:
                raise RuntimeError("first crashed")
            await anyio.sleep_forever()

        async with lifecycle.running(sup) as handle:
            await handle.ready()
            await sup.start_child(rec.service("later"))
            await anyio.sleep(5)
            await handle.shutdown()
        starts = rec.names("start")
        assert starts[:2] == ["first", "later"]
        assert sorted(starts[2:]) == ["first", "later"]  # one start wave: either order

    async def test_dependents_of_an_ended_temporary_child_stop(self) -> None:
        """When a TEMPORARY child ends, what depends on it stops too, before its held teardown runs."""
        rec = Recorder()
        sup = Supervisor()

        @sup.component(restart=Restart.TEMPORARY)
        async def session(ctx: lifecycle.Context) -> AsyncIterator[str]:
            rec.add("start", "session")

            async def expire() -> None:
                await anyio.sleep(1)
                raise TimeoutError("session expired")

            ctx.spawn(expire)
            yield "session"
            rec.add("stop", "session")

        sup.add(rec.service("user"), depends_on=("session",))
        sup.add(rec.service("other"))
        with capture_logs() as logs:
            async with lifecycle.running(sup) as handle:
                await handle.ready()
                await anyio.sleep(2)
                assert rec.names("stop") == ["user", "session"]
                report = await handle.shutdown()
        (event,) = [e for e in logs if e["event"] == "supervisor.dependents_stopping"]
        assert (event["child"], event["dependents"]) == ("root/session", ["user"])
        assert report["session"].outcome is Outcome.FAILED
        assert report["user"].outcome is Outcome.GRACEFUL
        assert report["session"].handled  # the handled failure is reported, but the stop is clean
        assert report.ok
        assert rec.names("stop") == ["user", "session", "other"]

    async def test_a_main_child_whose_dependency_ended_stops_the_tree(self) -> None:
        """A main child stopped because its TEMPORARY dependency ended ends the tree."""
        sup = Supervisor()

        @sup.component(restart=Restart.TEMPORARY)
        async def lease(ctx: lifecycle.Context) -> None:
            ctx.ready()
            await anyio.sleep(1)

        @sup.component(main=True, depends_on=("lease",))
        async def job(ctx: lifecycle.Context) -> None:
            ctx.ready()
            await anyio.sleep_forever()

        async with lifecycle.running(sup) as handle:
            report = await handle.wait()
        assert report.detail == "'job' (main) stopped: 'lease', which it depends on, ended"
        assert anyio.current_time() == 1


class TestPriority:
    async def test_a_dynamic_child_raises_and_releases_its_dependency_priority(self) -> None:
        """A CRITICAL dynamic child makes its dependency CRITICAL; removing it restores NORMAL."""
        rec = Recorder()
        sup = Supervisor()
        sup.add(rec.resource("cache"))
        sup.add(rec.resource("db"))
        async with lifecycle.running(sup) as handle:
            await handle.ready()
            await sup.start_child(rec.service("audit"), depends_on=("cache",), priority=Priority.CRITICAL)
            await sup.start_child(rec.service("probe"), depends_on=("audit",))
            await sup.stop_child("probe")
            report = await handle.shutdown()
        assert report["cache"].priority is Priority.CRITICAL
        # db (NORMAL) stops first; cache now outlives it, after audit.
        assert rec.names("stop") == ["probe", "db", "audit", "cache"]

        rec = Recorder()
        sup = Supervisor()
        sup.add(rec.resource("cache"))
        sup.add(rec.resource("db"), depends_on=("cache",))
        async with lifecycle.running(sup) as handle:
            await handle.ready()
            await sup.start_child(rec.service("audit"), depends_on=("db",), priority=Priority.CRITICAL)
            await sup.stop_child("audit")
            report = await handle.shutdown()
        assert (report["db"].priority, report["cache"].priority) == (Priority.NORMAL, Priority.NORMAL)


async def test_many_dynamic_children_start_and_stop() -> None:
    """Thousands of dynamic children on one supervisor start, stop and leave no trace."""
    sup = Supervisor()
    sup.add(Recorder().resource("pool"))

    async def conn(ctx: lifecycle.Context, pool: str) -> None:
        ctx.ready()
        await anyio.sleep_forever()

    count = 2000
    async with lifecycle.running(sup) as handle:
        await handle.ready()
        for n in range(count):
            await sup.start_child(conn, name=f"conn{n}")
        for n in range(0, count, 2):
            await sup.stop_child(f"conn{n}")
        report = await handle.shutdown()
    assert len(report.components) == count // 2 + 2
    assert report.components[-2].name == "pool"
    assert report.ok


class TestConcurrency:
    async def test_two_stop_child_calls_for_one_child_both_get_its_report(self) -> None:
        """A second stop_child() of a child being stopped waits for that stop and returns the same outcome."""
        sup = Supervisor()
        release = anyio.Event()

        async def slow_to_stop() -> AsyncIterator[None]:
            yield
            await release.wait()

        reports: list[lifecycle.ComponentReport] = []

        async def stop() -> None:
            reports.append(await sup.stop_child("slow_to_stop"))

        async with lifecycle.running(sup) as handle:
            await handle.ready()
            await sup.start_child(slow_to_stop)
            async with anyio.create_task_group() as tg:
                tg.start_soon(stop)
                await anyio.wait_all_tasks_blocked()
                tg.start_soon(stop)
                await anyio.wait_all_tasks_blocked()
                release.set()
            final = await handle.shutdown()
        assert [r.outcome for r in reports] == [Outcome.GRACEFUL, Outcome.GRACEFUL]
        assert [c.name for c in final.components] == ["root"]

    async def test_start_child_accepts_a_component_spec(self) -> None:
        """A ComponentSpec is started as declared, its own name and dependencies included."""
        rec = Recorder()
        sup = tree(rec)
        spec = lifecycle.ComponentSpec.from_target(rec.service("api"), depends_on=("db",))
        async with lifecycle.running(sup) as handle:
            await handle.ready()
            assert await sup.start_child(spec) == "api"
        assert rec.names("stop") == ["api", "db"]


@pytest.mark.virtual_time
async def test_dynamic_dependents_of_an_ended_child_are_forgotten() -> None:
    """Dynamic children stopped because their dependency ended for good are removed with it."""
    sup = Supervisor()

    async def lease(ctx: lifecycle.Context) -> None:
        ctx.ready("lease")
        await anyio.sleep(1)

    async def holder(ctx: lifecycle.Context, lease: str) -> None:
        ctx.ready()
        await anyio.sleep_forever()

    async with lifecycle.running(sup) as handle:
        await handle.ready()
        await sup.start_child(lease, restart=Restart.TEMPORARY)
        await sup.start_child(holder)
        await anyio.sleep(2)
        # Both are gone: the name `holder` is free, and `lease` is no longer a child.
        with pytest.raises(ConfigurationError, match="no component named 'lease'"):
            await sup.start_child(holder)
        report = await handle.shutdown()
    assert [c.name for c in report.components] == ["root"]
