from __future__ import annotations

import asyncio
import pickle
from collections.abc import AsyncIterator

import anyio
import pytest
from structlog.testing import capture_logs

import lifecycle
from lifecycle import ComponentError, ComponentSpec, ConfigurationError, Outcome, ShutdownPolicy, State, UsageError
from lifecycle.lowlevel import ComponentInstance, Escalation, flatten_failures, stop_instances

POLICY = ShutdownPolicy(graceful=5.0, forceful=3.0, terminate=2.0)


async def service(ctx: lifecycle.Context) -> None:
    ctx.ready("value")
    await anyio.sleep_forever()


class TestLowLevel:
    async def test_start_stop_and_report(self) -> None:
        """An instance started in a task group becomes ready, stops through the phases and reports."""
        readiness: list[object] = []
        exits: list[State] = []
        instance = ComponentInstance(ComponentSpec.from_target(service), policy=POLICY, path="svc")
        instance.add_ready_callback(lambda i: readiness.append(i.value))
        instance.add_exit_callback(lambda i: exits.append(i.state))
        async with anyio.create_task_group() as tg:
            instance.start_soon(tg)
            await anyio.wait_all_tasks_blocked()
            assert instance.ready
            assert repr(instance) == "<ComponentInstance 'svc' running>"
            assert repr(instance.ctx) == "<Context 'svc' state=running>"
            report = await instance.stop(Escalation.start(POLICY))
        assert readiness == ["value"]
        assert exits == [State.STOPPED]
        assert (report.path, report.outcome, instance.done) == ("svc", Outcome.GRACEFUL, True)
        late: list[State] = []
        instance.add_exit_callback(lambda i: late.append(i.state))
        assert late == [State.STOPPED]

    async def test_starting_twice_is_an_error(self) -> None:
        """An instance runs once; a restart needs a new instance."""
        instance = ComponentInstance(ComponentSpec.from_target(service), policy=POLICY)
        async with anyio.create_task_group() as tg:
            instance.start_soon(tg)
            with pytest.raises(UsageError, match="already started"):
                instance.start_soon(tg)
            await stop_instances([instance], Escalation.start(POLICY))

    async def test_stop_before_the_task_runs_skips_the_body(self) -> None:
        """A stop that begins before the task first runs cancels the body at once."""
        ran: list[str] = []

        async def job(ctx: lifecycle.Context) -> None:
            ran.append("body")  # pragma: no cover - cancelled before it runs
            await anyio.sleep_forever()  # pragma: no cover - cancelled before it runs

        instance = ComponentInstance(ComponentSpec.from_target(job), policy=POLICY)
        async with anyio.create_task_group() as tg:
            instance.start_soon(tg)
            instance.begin_stop(Escalation.start(POLICY))
            await instance.wait()
        assert instance.report().outcome is Outcome.GRACEFUL
        assert not instance.ready

    async def test_stack_shows_where_the_component_waits(self) -> None:
        """stack() formats the component task's current frames."""
        instance = ComponentInstance(ComponentSpec.from_target(service), policy=POLICY)
        assert instance.stack() == []
        async with anyio.create_task_group() as tg:
            instance.start_soon(tg)
            await anyio.wait_all_tasks_blocked()
            assert any("in service" in line for line in instance.stack())
            report = instance.report()
            assert report.outcome is Outcome.STUBBORN
            await stop_instances([instance], Escalation.start(POLICY))

    async def test_several_errors_are_grouped_in_the_report(self) -> None:
        """A component whose critical task fails and whose teardown then fails reports both, in order."""

        async def crash() -> None:
            raise ValueError("task")

        async def job(ctx: lifecycle.Context) -> AsyncIterator[None]:
            ctx.spawn(crash)
            yield
            raise OSError("cleanup")

        instance = ComponentInstance(ComponentSpec.from_target(job), policy=POLICY)
        with capture_logs():
            async with anyio.create_task_group() as tg:
                instance.start_soon(tg)
                await instance.wait()
        report = instance.report()
        assert isinstance(report.error, BaseExceptionGroup)
        assert [type(e) for e in report.error.exceptions] == [ValueError, OSError]
        assert [e.stage for e in instance.failures() if isinstance(e, ComponentError)] == ["run", "stop"]


class TestStrayCancellation:
    async def test_unrequested_cancellation_is_a_failure(self, anyio_backend_name: str) -> None:
        """A component raising a cancellation nobody requested fails instead of vanishing."""
        if anyio_backend_name != "asyncio":
            pytest.skip("only asyncio lets user code raise a bare cancellation")

        async def job(ctx: lifecycle.Context) -> None:
            ctx.ready()
            raise asyncio.CancelledError

        instance = ComponentInstance(ComponentSpec.from_target(job), policy=POLICY)
        with capture_logs():
            async with anyio.create_task_group() as tg:
                instance.start_soon(tg)
                await instance.wait()
        assert "raised a cancellation that nobody requested" in str(instance.report().error)

    async def test_unrequested_cancellation_in_a_task_is_a_failure(self, anyio_backend_name: str) -> None:
        """A spawned task raising a cancellation nobody requested fails its component."""
        if anyio_backend_name != "asyncio":
            pytest.skip("only asyncio lets user code raise a bare cancellation")

        async def bad() -> None:
            raise asyncio.CancelledError

        async def job(ctx: lifecycle.Context) -> None:
            ctx.spawn(bad)
            ctx.ready()
            await anyio.sleep_forever()

        instance = ComponentInstance(ComponentSpec.from_target(job), policy=POLICY)
        with capture_logs():
            async with anyio.create_task_group() as tg:
                instance.start_soon(tg)
                await instance.wait()
        assert "raised a cancellation nobody requested" in str(instance.report().error)


class TestLogging:
    async def test_ctx_log_is_bound_with_the_component_path(self) -> None:
        """ctx.log events carry the component's path."""

        async def job(ctx: lifecycle.Context) -> None:
            ctx.log.info("job.hello", n=1)
            assert ctx.log is ctx.log
            ctx.ready()

        instance = ComponentInstance(ComponentSpec.from_target(job, main=True), policy=POLICY, path="root/job")
        with capture_logs() as logs:
            async with anyio.create_task_group() as tg:
                instance.start_soon(tg)
                await instance.wait()
        assert {"event": "job.hello", "n": 1, "component": "root/job", "log_level": "info"} in logs


class TestErrors:
    def test_component_error_pickles_with_its_cause(self) -> None:
        """ComponentError survives pickling with path, stage and cause."""
        error = ComponentError("root/db", "start", OSError("disk"))
        clone = pickle.loads(pickle.dumps(error))  # noqa: S301 - our own data
        assert (clone.path, clone.name, clone.stage, str(clone)) == ("root/db", "db", "start", str(error))
        assert isinstance(clone.__cause__, OSError)

    def test_configuration_error_pickles_with_its_path(self) -> None:
        """ConfigurationError survives pickling with reason and path."""
        error = ConfigurationError("bad", path="app/jobs")
        clone = pickle.loads(pickle.dumps(error))  # noqa: S301 - our own data
        assert (str(clone), clone.reason, clone.path) == ("In supervisor 'app/jobs': bad", "bad", "app/jobs")

    def test_flatten_keeps_component_errors_and_groups_flat(self) -> None:
        """flatten_failures passes ComponentErrors (single or grouped) through and wraps the rest."""
        inner = ComponentError("a/b", "run", ValueError())
        out = flatten_failures(
            [
                ("a", "run", inner),
                ("a", "run", ExceptionGroup("g", [ExceptionGroup("h", [inner])])),
                ("c", "stop", KeyError("k")),
            ],
        )
        assert out[:2] == [inner, inner]
        assert isinstance(out[2], ComponentError)
        assert out[2].path == "c"


class TestShieldedArguments:
    def test_until_must_be_a_phase(self) -> None:
        """shielded(until=...) rejects anything but a Phase."""
        with pytest.raises(ConfigurationError, match=r"`until` must be a lifecycle\.Phase"):
            lifecycle.shielded(until="graceful")  # type: ignore[arg-type]

    def test_timeout_must_be_non_negative(self) -> None:
        """shielded(timeout=...) rejects negative values."""
        with pytest.raises(ConfigurationError, match="`timeout` must be a non-negative"):
            lifecycle.shielded(timeout=-1)

    async def test_cancel_cuts_the_scope(self) -> None:
        """scope.cancel() cuts the scope off at once."""
        with lifecycle.shielded() as scope:
            scope.cancel()
            await anyio.sleep_forever()
        assert scope.cancel_called
        assert scope.cancelled_caught


async def resource() -> AsyncIterator[int]:
    yield 1
