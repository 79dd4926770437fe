from __future__ import annotations

import gc
from collections.abc import AsyncIterator

import anyio
import anyio.lowlevel
import pytest
from structlog.testing import capture_logs

import lifecycle
from lifecycle import ComponentError, Outcome, StoppedError, TaskHandle, UsageError
from supervisors import GaveUpError, Supervisor


async def forever() -> None:
    await anyio.sleep_forever()


class TestSpawn:
    async def test_result_returns_the_value(self) -> None:
        """result() waits for the task and returns its value."""
        sup = Supervisor()
        results: list[int] = []

        async def add(a: int, b: int) -> int:
            await anyio.lowlevel.checkpoint()
            return a + b

        @sup.component
        async def api(ctx: lifecycle.Context) -> None:
            handle = ctx.spawn(add, 2, 3)
            results.append(await handle.result())
            assert handle.done
            assert handle.name.endswith("add")
            ctx.ready()
            await anyio.sleep_forever()

        async with lifecycle.running(sup) as tree:
            await tree.ready()
        assert results == [5]

    async def test_critical_task_failure_fails_the_component(self) -> None:
        """A critical task's error fails its component, named in a note, and the tree raises it."""
        sup = Supervisor()

        async def poll() -> None:
            raise ConnectionResetError("upstream")

        @sup.component
        async def api(ctx: lifecycle.Context) -> None:
            ctx.spawn(poll, name="poller")
            ctx.ready()
            await anyio.sleep_forever()

        with pytest.raises(ExceptionGroup) as info:
            async with lifecycle.running(sup) as tree:
                await tree.ready()
                await anyio.sleep_forever()
        # The component crashed on every restart, so its supervisor gave up: the last crash is the cause.
        (gave_up,) = info.value.exceptions
        assert isinstance(gave_up, GaveUpError)
        error = gave_up.__cause__
        assert isinstance(error, ComponentError)
        assert error.path == "root/api"
        assert isinstance(error.__cause__, ConnectionResetError)
        assert "raised by critical task 'poller' of component 'root/api'" in (error.__cause__.__notes__ or [])

    async def test_non_critical_failure_is_logged_and_reported(self) -> None:
        """A non-critical task's error is logged with its name and recorded; the component keeps running."""
        sup = Supervisor()
        failed = anyio.Event()

        async def refresh() -> None:
            try:
                raise TimeoutError("cache refresh")
            finally:
                failed.set()

        @sup.component
        async def cache(ctx: lifecycle.Context) -> None:
            ctx.spawn(refresh, critical=False)
            ctx.ready()
            await anyio.sleep_forever()

        with capture_logs() as logs:
            async with lifecycle.running(sup) as tree:
                await tree.ready()
                await failed.wait()
                await anyio.wait_all_tasks_blocked()
                report = await tree.shutdown()
        (entry,) = [e for e in logs if e["event"] == "task.failed"]
        assert entry["component"] == "root/cache"
        assert entry["task"].endswith("refresh")
        assert isinstance(entry["exc_info"], TimeoutError)
        assert report["cache"].outcome is Outcome.GRACEFUL
        assert [type(e) for e in report["cache"].task_errors] == [TimeoutError]

    async def test_tasks_end_before_the_generator_teardown(self) -> None:
        """A resource's tasks are cancelled and finished before its teardown runs."""
        events: list[str] = []
        sup = Supervisor()

        async def worker() -> None:
            try:
                await anyio.sleep_forever()
            finally:
                events.append("worker ended")

        @sup.component
        async def pool(ctx: lifecycle.Context) -> AsyncIterator[None]:
            ctx.spawn(worker)
            yield
            events.append("teardown")

        async with lifecycle.running(sup) as tree:
            await tree.ready()
            await anyio.wait_all_tasks_blocked()
        assert events == ["worker ended", "teardown"]

    async def test_tasks_outlive_a_draining_body(self) -> None:
        """Tasks keep running while the body drains in a shielded scope, and end with the body."""
        events: list[str] = []
        sup = Supervisor()

        async def handler() -> None:
            try:
                await anyio.sleep_forever()
            finally:
                events.append("handler ended")

        @sup.component
        async def server(ctx: lifecycle.Context) -> None:
            handle = ctx.spawn(handler)
            ctx.ready()
            with ctx.shielded():
                await ctx.stopping.wait()
                await anyio.wait_all_tasks_blocked()
                events.append(f"draining, handler done={handle.done}")

        async with lifecycle.running(sup) as tree:
            await tree.ready()
        assert events == ["draining, handler done=False", "handler ended"]

    async def test_cancelled_task_result_raises_stopped_error(self) -> None:
        """cancel() ends the task; result() then raises StoppedError."""
        sup = Supervisor()
        outcome: list[str] = []

        @sup.component
        async def api(ctx: lifecycle.Context) -> None:
            handle = ctx.spawn(forever)
            await anyio.wait_all_tasks_blocked()
            handle.cancel()
            with pytest.raises(StoppedError, match="was cancelled"):
                await handle.result()
            outcome.append(f"cancelled={handle.cancelled}")
            ctx.ready()
            await anyio.sleep_forever()

        async with lifecycle.running(sup) as tree:
            await tree.ready()
        assert outcome == ["cancelled=True"]

    async def test_spawn_after_the_component_ended_is_an_error(self) -> None:
        """A context used after its component ended refuses to spawn."""
        sup = Supervisor()
        kept: list[lifecycle.Context] = []

        @sup.component
        async def api(ctx: lifecycle.Context) -> None:
            kept.append(ctx)
            ctx.ready()
            await anyio.sleep_forever()

        async with lifecycle.running(sup) as tree:
            await tree.ready()
        with pytest.raises(UsageError, match="after component 'root/api' ended"):
            kept[0].spawn(forever)
        with pytest.raises(UsageError, match="after component 'root/api' ended"):
            kept[0].ready()


@pytest.mark.virtual_time
class TestWait:
    async def test_wait_gives_up_without_cancelling(self) -> None:
        """wait(timeout) raises TimeoutError after the timeout and the task keeps running."""
        sup = Supervisor()
        seen: list[object] = []

        async def slow() -> str:
            await anyio.sleep(10)
            return "done"

        @sup.component
        async def api(ctx: lifecycle.Context) -> None:
            handle: TaskHandle[str] = ctx.spawn(slow)
            t0 = anyio.current_time()
            with pytest.raises(TimeoutError):
                await handle.wait(timeout=2)
            seen.append((anyio.current_time() - t0, handle.done))
            seen.append(await handle.result())
            seen.append(anyio.current_time() - t0)
            ctx.ready()
            await anyio.sleep_forever()

        async with lifecycle.running(sup) as tree:
            await tree.ready()
        assert seen == [(2.0, False), "done", 10.0]

    async def test_task_shields_follow_the_component_phases(self) -> None:
        """A shielded scope inside a spawned task is cut off at its component's graceful deadline."""
        sup = Supervisor()
        cut: list[float] = []

        async def flush() -> None:
            try:
                await anyio.sleep_forever()
            finally:
                t0 = anyio.current_time()
                with lifecycle.shielded():
                    await anyio.sleep(100)
                cut.append(anyio.current_time() - t0)

        @sup.component
        async def api(ctx: lifecycle.Context) -> None:
            ctx.spawn(flush)
            ctx.ready()
            await anyio.sleep_forever()

        policy = lifecycle.ShutdownPolicy(graceful=4.0)
        async with lifecycle.running(sup, policy=policy) as tree:
            await tree.ready()
        assert cut == [4.0]


class TestHandleOutcome:
    async def test_cancel_after_the_end_keeps_the_result(self) -> None:
        """cancel() on a task that already returned changes nothing: result() still gives its value."""
        sup = Supervisor()
        seen: list[object] = []

        async def returns_none() -> None:
            await anyio.lowlevel.checkpoint()

        @sup.component
        async def api(ctx: lifecycle.Context) -> None:
            handle = ctx.spawn(returns_none)
            await handle.wait()
            handle.cancel()
            seen.append((await handle.result(), handle.cancelled))  # type: ignore[func-returns-value]
            ctx.ready()
            await anyio.sleep_forever()

        async with lifecycle.running(sup) as tree:
            await tree.ready()
        assert seen == [(None, False)]

    async def test_work_finished_despite_cancel_is_not_cancelled(self) -> None:
        """A task that finishes its work in a shielded scope after cancel() returns its value; it is not cancelled."""
        sup = Supervisor()
        seen: list[object] = []

        async def batch() -> str:
            with lifecycle.shielded():
                await anyio.wait_all_tasks_blocked()
            return "batch done"

        @sup.component
        async def api(ctx: lifecycle.Context) -> None:
            handle = ctx.spawn(batch)
            await anyio.lowlevel.checkpoint()
            handle.cancel()
            seen.append((await handle.result(), handle.cancelled))
            ctx.ready()
            await anyio.sleep_forever()

        async with lifecycle.running(sup) as tree:
            await tree.ready()
        assert seen == [("batch done", False)]

    async def test_cancelled_waiter_does_not_cancel_the_task(self) -> None:
        """A caller of wait() that is cancelled stops waiting; the cancellation propagates and the task runs on."""
        sup = Supervisor()
        seen: list[object] = []
        release = anyio.Event()

        async def job() -> str:
            await release.wait()
            return "finished"

        @sup.component
        async def api(ctx: lifecycle.Context) -> None:
            handle = ctx.spawn(job)
            with anyio.CancelScope() as scope:
                scope.cancel()
                await handle.wait()
            seen.append((scope.cancelled_caught, handle.done))
            release.set()
            seen.append(await handle.result())
            ctx.ready()
            await anyio.sleep_forever()

        async with lifecycle.running(sup) as tree:
            await tree.ready()
        assert seen == [(True, False), "finished"]

    async def test_failed_tasks_are_never_left_unretrieved(self, caplog: pytest.LogCaptureFixture) -> None:
        """Failed tasks whose result nobody asks for produce no "exception was never retrieved", even after GC."""
        sup = Supervisor()
        failed = anyio.Event()

        async def lost() -> None:
            try:
                raise LookupError("nobody asks")
            finally:
                failed.set()

        @sup.component
        async def api(ctx: lifecycle.Context) -> None:
            ctx.spawn(lost, critical=False)
            ctx.ready()
            await anyio.sleep_forever()

        with capture_logs() as logs:
            async with lifecycle.running(sup) as tree:
                await tree.ready()
                await failed.wait()
                await anyio.wait_all_tasks_blocked()
                report = await tree.shutdown()
        gc.collect()
        assert [r.getMessage() for r in caplog.records if r.name == "asyncio"] == []
        assert [e["event"] for e in logs if e["event"] == "task.failed"] == ["task.failed"]
        assert [type(e) for e in report["api"].task_errors] == [LookupError]

    async def test_non_critical_failures_show_in_the_report_table(self) -> None:
        """str(report) lists a component's non-critical task failures although the component did not fail."""
        sup = Supervisor()
        failed = anyio.Event()

        async def refresh() -> None:
            try:
                raise TimeoutError("cache refresh took too long")
            finally:
                failed.set()

        @sup.component
        async def cache(ctx: lifecycle.Context) -> None:
            ctx.spawn(refresh, critical=False)
            ctx.spawn(refresh, critical=False)
            ctx.ready()
            await anyio.sleep_forever()

        with capture_logs():
            async with lifecycle.running(sup) as tree:
                await tree.ready()
                await failed.wait()
                await anyio.wait_all_tasks_blocked()
                report = await tree.shutdown()
        (row,) = [line for line in str(report).splitlines() if line.strip().startswith("root/cache")]
        assert "graceful" in row
        assert row.endswith("2 task failure(s), last: TimeoutError: cache refresh took too long")
