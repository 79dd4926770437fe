from __future__ import annotations

from collections.abc import AsyncIterator

import anyio
import pytest
from helpers import Recorder

import lifecycle
import supervisors._restarts as impl
from lifecycle import ComponentError, Outcome, Priority, StopReason, UsageError
from supervisors import GaveUpError, Intensity, Restart, Supervisor


def only_component_errors(group: BaseException) -> list[ComponentError]:
    assert isinstance(group, BaseExceptionGroup)
    leaves = group.exceptions
    assert all(isinstance(e, ComponentError) for e in leaves)
    return list(leaves)  # type: ignore[arg-type]


class TestOrder:
    async def test_dependencies_start_first_and_stop_last(self) -> None:
        """A chain starts dependency-first and stops dependent-first."""
        rec = Recorder()
        sup = Supervisor()
        sup.add(rec.resource("db"))
        sup.add(rec.resource("cache"), depends_on=("db",))
        sup.add(rec.service("api"), depends_on=("cache",))
        async with lifecycle.running(sup) as tree:
            await tree.ready()
        assert rec.events == [
            ("start", "db"),
            ("start", "cache"),
            ("start", "api"),
            ("stop", "api"),
            ("stop", "cache"),
            ("stop", "db"),
        ]

    async def test_lower_priorities_stop_first(self) -> None:
        """Unrelated components stop LOWEST first and CRITICAL last, and start the other way round."""
        rec = Recorder()
        sup = Supervisor()
        for prio in Priority:
            sup.add(rec.resource(prio.name.lower()), priority=prio)
        async with lifecycle.running(sup) as tree:
            await tree.ready()
        assert rec.names("stop") == ["lowest", "low", "normal", "high", "critical"]
        assert rec.names("start") == ["critical", "high", "normal", "low", "lowest"]

    async def test_priority_is_inherited_from_dependents(self) -> None:
        """A LOWEST dependency of a CRITICAL component outlives a HIGH bystander."""
        rec = Recorder()
        sup = Supervisor()
        sup.add(rec.resource("disk"), priority=Priority.LOWEST)
        sup.add(rec.resource("journal"), priority=Priority.CRITICAL, depends_on=("disk",))
        sup.add(rec.resource("metrics"), priority=Priority.HIGH)
        async with lifecycle.running(sup) as tree:
            await tree.ready()
        assert rec.names("stop") == ["metrics", "journal", "disk"]

    async def test_components_of_a_wave_start_concurrently(self) -> None:
        """Two independent components both begin starting before either is ready."""
        started: list[str] = []
        both = anyio.Event()
        sup = Supervisor()

        def make(name: str) -> object:
            async def component(ctx: lifecycle.Context) -> None:
                started.append(name)
                if len(started) == 2:
                    both.set()
                await both.wait()
                ctx.ready()
                await anyio.sleep_forever()

            component.__name__ = name
            return component

        sup.add(make("a"))
        sup.add(make("b"))
        async with lifecycle.running(sup) as tree:
            await tree.ready()
        assert sorted(started) == ["a", "b"]

    async def test_values_are_injected_by_parameter_name(self) -> None:
        """A parameter named after a component receives the value it provided."""
        seen: dict[str, object] = {}
        sup = Supervisor()

        @sup.component
        async def db() -> AsyncIterator[str]:
            yield "pool"

        @sup.component
        async def api(ctx: lifecycle.Context, db: str) -> None:
            seen["db"] = db
            ctx.ready(f"api on {db}")
            await anyio.sleep_forever()

        @sup.component
        async def client(api: str, db: str) -> None:
            seen["api"] = api
            await anyio.sleep_forever()

        async with lifecycle.running(sup) as tree:
            await tree.ready()
            await anyio.wait_all_tasks_blocked()
        assert seen == {"db": "pool", "api": "api on pool"}

    async def test_nested_supervisor_stops_its_children_before_its_dependency(self) -> None:
        """A nested tree is a component: its children start after and stop before its dependencies."""
        rec = Recorder()
        root = Supervisor("root")
        root.add(rec.resource("db"))
        web = Supervisor("web")
        web.add(rec.resource("handler"))
        web.add(rec.service("server"), depends_on=("handler",))
        root.add(web, depends_on=("db",))
        async with lifecycle.running(root) as tree:
            await tree.ready()
            report = await tree.shutdown()
        assert rec.events == [
            ("start", "db"),
            ("start", "handler"),
            ("start", "server"),
            ("stop", "server"),
            ("stop", "handler"),
            ("stop", "db"),
        ]
        assert [c.path for c in report.components] == [
            "root/web/server",
            "root/web/handler",
            "root/web",
            "root/db",
            "root",
        ]

    async def test_supervisor_provides_itself(self) -> None:
        """A nested supervisor's value, injected into a sibling, is the supervisor."""
        seen: list[object] = []
        root = Supervisor()
        sub = Supervisor("sub")
        root.add(sub)

        @root.component
        async def user(sub: Supervisor) -> None:
            seen.append(sub)
            await anyio.sleep_forever()

        async with lifecycle.running(root) as tree:
            await tree.ready()
            await anyio.wait_all_tasks_blocked()
        assert seen == [sub]


class TestStartFailure:
    async def test_started_components_roll_back_in_reverse_order(self) -> None:
        """When a component fails to start, those already started stop in reverse order and it is raised."""
        rec = Recorder()
        sup = Supervisor()
        sup.add(rec.resource("db"))
        sup.add(rec.resource("cache"), depends_on=("db",))

        @sup.component(depends_on=("cache",))
        async def api() -> AsyncIterator[None]:
            rec.add("start", "api")
            raise ConnectionRefusedError("port 5432")
            yield

        sup.add(rec.resource("never"), depends_on=("api",))
        with pytest.raises(ExceptionGroup) as info:
            async with lifecycle.running(sup) as tree:
                await tree.ready()
        (error,) = only_component_errors(info.value)
        assert (error.path, error.name, error.stage) == ("root/api", "api", "start")
        assert isinstance(error.__cause__, ConnectionRefusedError)
        assert "component 'root/api' failed to start: ConnectionRefusedError: port 5432" in str(error)
        assert rec.events == [("start", "db"), ("start", "cache"), ("start", "api"), ("stop", "cache"), ("stop", "db")]

    async def test_rollback_teardown_errors_are_raised_with_the_start_failure(self) -> None:
        """A teardown that fails during the rollback is raised together with the start failure."""
        sup = Supervisor()

        @sup.component
        async def db() -> AsyncIterator[None]:
            yield
            raise OSError("close failed")

        @sup.component
        async def api(ctx: lifecycle.Context, db: None) -> None:
            raise ValueError("bad config")

        with pytest.raises(ExceptionGroup) as info:
            async with lifecycle.running(sup) as tree:
                await tree.ready()
        errors = only_component_errors(info.value)
        assert sorted((e.name, e.stage, type(e.__cause__).__name__) for e in errors) == [
            ("api", "start", "ValueError"),
            ("db", "stop", "OSError"),
        ]

    async def test_start_failure_cancels_siblings_still_starting(self) -> None:
        """A sibling of the same wave that is still starting is cancelled, not waited for."""
        cancelled = anyio.Event()
        sup = Supervisor()

        @sup.component
        async def slow(ctx: lifecycle.Context) -> None:
            try:
                await anyio.sleep_forever()
            finally:
                cancelled.set()

        @sup.component
        async def broken(ctx: lifecycle.Context) -> None:
            raise RuntimeError("boom")

        with pytest.raises(ExceptionGroup):
            async with lifecycle.running(sup) as tree:
                await tree.ready()
        assert cancelled.is_set()

    async def test_function_returning_before_ready_is_a_start_failure(self) -> None:
        """A non-main function that returns without ctx.ready() fails to start with a clear error."""
        sup = Supervisor()

        @sup.component
        async def job(ctx: lifecycle.Context) -> None:
            pass

        with pytest.raises(ExceptionGroup) as info:
            async with lifecycle.running(sup) as tree:
                await tree.ready()
        (error,) = only_component_errors(info.value)
        assert isinstance(error.__cause__, UsageError)
        assert "returned before calling ctx.ready()" in str(error.__cause__)
        assert "main=True" in str(error.__cause__)

    async def test_generator_that_never_yields_is_a_start_failure(self) -> None:
        """An async generator that returns without yielding fails to start and says it must yield once."""
        sup = Supervisor()

        @sup.component
        async def db() -> AsyncIterator[None]:
            if False:  # pragma: no cover - never yields on purpose
                yield

        with pytest.raises(ExceptionGroup) as info:
            async with lifecycle.running(sup) as tree:
                await tree.ready()
        (error,) = only_component_errors(info.value)
        assert "returned without yielding" in str(error.__cause__)

    async def test_nested_start_failure_is_reported_with_its_full_path(self) -> None:
        """A failure inside a nested tree is raised once, flat, with its full path."""
        root = Supervisor()
        inner = Supervisor("inner")

        @inner.component
        async def db() -> AsyncIterator[None]:
            raise OSError("no disk")
            yield

        root.add(inner)
        with pytest.raises(ExceptionGroup) as info:
            async with lifecycle.running(root) as tree:
                await tree.ready()
        (error,) = only_component_errors(info.value)
        assert error.path == "root/inner/db"

    async def test_shutdown_during_startup_stops_what_started(self) -> None:
        """A stop requested while a component is starting cancels it and stops the started ones; nothing is raised."""
        rec = Recorder()
        sup = Supervisor()
        sup.add(rec.resource("db"))
        starting = anyio.Event()

        @sup.component(depends_on=("db",))
        async def migrate(ctx: lifecycle.Context) -> None:
            starting.set()
            await anyio.sleep_forever()

        async with lifecycle.running(sup) as tree:
            await starting.wait()
            report = await tree.shutdown()
        assert rec.events == [("start", "db"), ("stop", "db")]
        assert report.ok
        assert report["migrate"].ready_at is None
        assert report["migrate"].outcome is Outcome.GRACEFUL
        with pytest.raises(lifecycle.StoppedError, match="stopped before it was ready"):
            await tree.ready()


class TestRuntime:
    async def test_runtime_failure_stops_the_tree_in_order_and_is_raised(self) -> None:
        """A failure no restart handles (intensity 0) stops everything in order; the error names it, stage 'run'."""
        rec = Recorder()
        sup = Supervisor(intensity=Intensity(max_restarts=0))
        sup.add(rec.resource("db"))
        crash = anyio.Event()

        @sup.component(depends_on=("db",))
        async def worker(ctx: lifecycle.Context) -> None:
            ctx.ready()
            await crash.wait()
            raise KeyError("job 7")

        sup.add(rec.service("api"), depends_on=("worker",))
        body_cancelled = False
        with pytest.raises(ExceptionGroup) as info:
            async with lifecycle.running(sup) as tree:
                await tree.ready()
                crash.set()
                try:
                    await anyio.sleep_forever()
                except anyio.get_cancelled_exc_class():
                    body_cancelled = True
                    raise
        (error,) = only_component_errors(info.value)
        assert isinstance(error, GaveUpError)
        assert (error.path, error.child) == ("root", "root/worker")
        (cause,) = error.errors
        assert isinstance(cause, ComponentError)
        assert (cause.path, cause.stage) == ("root/worker", "run")
        assert body_cancelled
        assert rec.names("stop") == ["api", "db"]

    async def test_main_component_returning_stops_the_tree(self) -> None:
        """When a main component returns, the tree stops in order and wait() reports MAIN_EXITED."""
        rec = Recorder()
        sup = Supervisor()
        sup.add(rec.resource("db"))

        @sup.component(main=True)
        async def job(db: str) -> None:
            rec.add("job", db)

        async with lifecycle.running(sup) as tree:
            report = await tree.wait()
        assert report.reason is StopReason.MAIN_EXITED
        assert report.ok
        assert rec.events == [("start", "db"), ("job", "db"), ("stop", "db")]
        assert report["job"].outcome is Outcome.FINISHED

    async def test_main_component_without_ctx_ready_is_ready_when_it_returns(self) -> None:
        """A main job taking ctx need not call ready(); returning is enough."""
        sup = Supervisor()

        @sup.component(main=True)
        async def job(ctx: lifecycle.Context) -> None:
            pass

        async with lifecycle.running(sup) as tree:
            report = await tree.wait()
        assert report["job"].ready_at is not None
        assert report.reason is StopReason.MAIN_EXITED

    async def test_main_component_raising_fails_the_tree(self) -> None:
        """A main component that raises stops the tree and its error is raised."""
        sup = Supervisor()

        @sup.component(main=True)
        async def job() -> None:
            raise ZeroDivisionError

        with pytest.raises(ExceptionGroup) as info:
            async with lifecycle.running(sup) as tree:
                await tree.wait()
        (error,) = only_component_errors(info.value)
        assert isinstance(error.__cause__, ZeroDivisionError)

    async def test_finished_non_main_component_leaves_the_tree_running(self) -> None:
        """A TRANSIENT component returning after ready is reported finished; the tree keeps running."""
        sup = Supervisor()
        done = anyio.Event()

        @sup.component(restart=Restart.TRANSIENT)
        async def warmup(ctx: lifecycle.Context) -> None:
            ctx.ready()
            done.set()

        sup.add(Recorder().service("api"))
        async with lifecycle.running(sup) as tree:
            await done.wait()
            await anyio.wait_all_tasks_blocked()
            assert tree.state is lifecycle.State.RUNNING
            report = await tree.shutdown()
        assert report["warmup"].outcome is Outcome.FINISHED
        assert report["api"].outcome is Outcome.GRACEFUL

    async def test_teardown_error_in_a_normal_stop_is_reported_not_raised(self) -> None:
        """A failing teardown during a requested stop is in the report (not ok) and does not stop the others."""
        rec = Recorder()
        sup = Supervisor()
        sup.add(rec.resource("db"))

        @sup.component(depends_on=("db",))
        async def cache() -> AsyncIterator[None]:
            yield
            raise OSError("flush failed")

        async with lifecycle.running(sup) as tree:
            await tree.ready()
            report = await tree.shutdown()
        assert not report.ok
        assert report["cache"].outcome is Outcome.FAILED
        assert report["cache"].stage == "stop"
        assert isinstance(report["cache"].error, OSError)
        assert rec.names("stop") == ["db"]

    async def test_generator_yielding_twice_is_a_stop_failure(self) -> None:
        """An async generator that yields a second time is recorded as failing in its teardown."""
        sup = Supervisor()

        @sup.component
        async def db() -> AsyncIterator[int]:
            yield 1
            yield 2

        async with lifecycle.running(sup) as tree:
            await tree.ready()
            report = await tree.shutdown()
        assert report["db"].stage == "stop"
        assert "yielded more than once" in str(report["db"].error)

    async def test_ready_twice_is_a_usage_error(self) -> None:
        """Calling ctx.ready() twice fails the component (a runtime failure) with a UsageError."""
        sup = Supervisor()

        @sup.component(main=True)  # a failed main child fails the tree at once, without restarts
        async def api(ctx: lifecycle.Context) -> None:
            ctx.ready()
            ctx.ready()

        with pytest.raises(ExceptionGroup) as info:
            async with lifecycle.running(sup) as tree:
                await tree.ready()
        (error,) = only_component_errors(info.value)
        assert "called twice" in str(error.__cause__)

    async def test_generator_calling_ready_is_a_usage_error(self) -> None:
        """A generator component becomes ready by yielding; calling ctx.ready() is an error."""
        sup = Supervisor()

        @sup.component
        async def db(ctx: lifecycle.Context) -> AsyncIterator[None]:
            ctx.ready()
            yield

        with pytest.raises(ExceptionGroup) as info:
            async with lifecycle.running(sup) as tree:
                await tree.ready()
        (error,) = only_component_errors(info.value)
        assert "by yielding" in str(error.__cause__)

    async def test_every_started_component_is_stopped_exactly_once(self) -> None:
        """Across start, run and stop, each component's teardown runs once."""
        rec = Recorder()
        sup = Supervisor()
        for i in range(30):
            deps = tuple(f"c{j}" for j in range(max(0, i - 3), i) if (i + j) % 2)
            sup.add(rec.resource(f"c{i}"), depends_on=deps, priority=Priority(i % 5))
        async with lifecycle.running(sup) as tree:
            await tree.ready()
        assert sorted(rec.names("stop")) == sorted(rec.names("start"))
        assert len(set(rec.names("stop"))) == 30


class TestMisuse:
    async def test_running_a_supervisor_twice_at_once_is_an_error(self) -> None:
        """The same supervisor object cannot run in two trees at once."""
        sup = Supervisor()
        sup.add(Recorder().service("api"))
        async with lifecycle.running(sup) as tree:
            await tree.ready()
            with pytest.raises(ExceptionGroup) as info:
                async with lifecycle.running(sup):
                    pass
        (error,) = only_component_errors(info.value)
        assert "already running" in str(error.__cause__)

    async def test_adding_to_a_running_supervisor_is_an_error(self) -> None:
        """Registering a child while the supervisor runs raises UsageError."""
        sup = Supervisor()
        sup.add(Recorder().service("api"))
        async with lifecycle.running(sup) as tree:
            await tree.ready()
            with pytest.raises(UsageError, match="is running"):
                sup.add(Recorder().service("late"))

    async def test_validation_errors_are_raised_bare_before_anything_starts(self) -> None:
        """An unknown dependency is a bare ConfigurationError naming the nested tree; nothing started."""
        rec = Recorder()
        root = Supervisor()
        root.add(rec.resource("db"))
        inner = Supervisor("inner")
        inner.add(rec.resource("api"), depends_on=("dbb",))
        root.add(inner)
        with pytest.raises(lifecycle.ConfigurationError, match=r"In supervisor 'root/inner':.*'dbb'"):
            async with lifecycle.running(root):
                pass  # pragma: no cover - never reached
        assert rec.events == []


class TestOwnErrors:
    async def test_an_error_of_the_supervisor_itself_still_stops_its_children(
        self,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        """If the supervisor's own code raises, its children still stop in order and the error is raised."""

        async def broken(self: object) -> None:
            raise LookupError("internal")

        monkeypatch.setattr(impl.Supervision, "supervise", broken)
        rec = Recorder()
        with anyio.fail_after(10), pytest.raises(ExceptionGroup) as info:
            async with lifecycle.running(tree_of_two(rec)) as tree:
                await tree.ready()
                await anyio.sleep_forever()
        (error,) = only_component_errors(info.value)
        assert error.path == "root"
        assert isinstance(error.__cause__, BaseExceptionGroup)  # raised inside its task group
        assert [type(e) for e in error.__cause__.exceptions] == [LookupError]
        assert rec.names("stop") == ["b", "a"]


def tree_of_two(rec: Recorder) -> Supervisor:
    sup = Supervisor()
    sup.add(rec.resource("a"))
    sup.add(rec.resource("b"), depends_on=("a",))
    return sup


class TestTeardownGate:
    async def test_a_resource_whose_task_fails_as_its_stop_begins_still_tears_down(self) -> None:
        """A critical task failing just after the owner began the stop does not hold the teardown forever."""
        rec = Recorder()
        sup = Supervisor()

        @sup.component
        async def db(ctx: lifecycle.Context) -> AsyncIterator[str]:
            async def flush_on_stop() -> None:
                await ctx.stopping.wait()
                raise RuntimeError("flush failed")

            ctx.spawn(flush_on_stop)
            yield "db"
            rec.add("stop", "db")

        async with lifecycle.running(sup) as tree:
            await tree.ready()
        assert rec.events == [("stop", "db")]
        assert tree.report is not None
        assert tree.report["db"].stage == "stop"
