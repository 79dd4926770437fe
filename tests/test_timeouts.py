from __future__ import annotations

import math

import anyio
import anyio.lowlevel
import pytest

import lifecycle
from lifecycle import ConfigurationError


async def answer(value: int) -> int:
    await anyio.lowlevel.checkpoint()
    return value


class TestCallWithTimeout:
    async def test_returns_the_value_in_time(self) -> None:
        """A call that finishes in time returns its value."""
        assert await lifecycle.call_with_timeout(10, answer, 42) == 42

    async def test_outer_cancellation_propagates_while_waiting(self) -> None:
        """A cancellation from outside while the call runs is raised, never turned into the default."""
        reached: list[object] = []
        finished: list[str] = []

        async def slow() -> str:
            try:
                await anyio.sleep_forever()
            finally:
                finished.append("slow cancelled")
            return "never"  # pragma: no cover - cancelled above

        async with anyio.create_task_group() as tasks:

            async def caller() -> None:
                reached.append(await lifecycle.call_with_timeout(math.inf, slow, default="default"))

            tasks.start_soon(caller)
            await anyio.wait_all_tasks_blocked()
            tasks.cancel_scope.cancel()
        assert reached == []
        assert finished == ["slow cancelled"]

    async def test_pending_outer_cancellation_is_raised_before_the_call(self) -> None:
        """An already cancelled caller raises at once; the function is never called, no coroutine is made."""
        called: list[int] = []

        async def record() -> None:
            called.append(1)  # pragma: no cover - must not run

        with anyio.CancelScope() as outer:
            outer.cancel()
            await lifecycle.call_with_timeout(0, record, default="default")
            pytest.fail("the cancellation was swallowed")  # pragma: no cover
        assert outer.cancelled_caught
        assert called == []

    async def test_own_timeout_error_of_the_call_propagates(self) -> None:
        """A TimeoutError raised by the call itself is not mistaken for the deadline."""

        async def fails() -> None:
            await anyio.lowlevel.checkpoint()
            raise TimeoutError("upstream said so")

        with pytest.raises(TimeoutError, match="upstream said so"):
            await lifecycle.call_with_timeout(10, fails, default="default")

    @pytest.mark.parametrize("timeout", [-1, math.nan, "5", True])
    async def test_bad_timeout_is_a_configuration_error(self, timeout: object) -> None:
        """A negative, NaN or non-numeric timeout is refused before anything runs."""
        with pytest.raises(ConfigurationError, match="`timeout` must be a non-negative number"):
            await lifecycle.call_with_timeout(timeout, answer, 1)  # type: ignore[call-overload]


@pytest.mark.virtual_time
class TestDeadline:
    async def test_returns_the_default_at_the_deadline(self) -> None:
        """At the deadline the call is cancelled and the default is returned, exactly on time."""
        cancelled: list[float] = []

        async def slow() -> str:
            try:
                await anyio.sleep(100)
            finally:
                cancelled.append(anyio.current_time())
            return "late"  # pragma: no cover - cancelled above

        t0 = anyio.current_time()
        assert await lifecycle.call_with_timeout(3, slow, default="default") == "default"
        assert cancelled == [t0 + 3]

    async def test_default_is_none_unless_given(self) -> None:
        """Without a default, the deadline returns None."""

        async def slow_answer() -> int:
            await anyio.sleep(5)
            return 42  # pragma: no cover - cut off above

        assert await lifecycle.call_with_timeout(1, slow_answer) is None

    async def test_outer_deadline_at_the_same_moment_wins(self) -> None:
        """When an outer deadline and the call's own expire together, the outer cancellation propagates."""
        reached: list[object] = []
        with anyio.move_on_after(5) as outer:
            reached.append(await lifecycle.call_with_timeout(5, anyio.sleep_forever, default="default"))
        assert reached == []
        assert outer.cancelled_caught

    async def test_component_stop_is_not_a_default(self) -> None:
        """Inside a stopping component the stop's cancellation propagates out of the helper."""
        from supervisors import Supervisor  # noqa: PLC0415 - only this test builds a tree

        sup = Supervisor()
        seen: list[object] = []

        @sup.component
        async def api(ctx: lifecycle.Context) -> None:
            ctx.ready()
            try:
                seen.append(await lifecycle.call_with_timeout(60, anyio.sleep_forever, default="default"))
            finally:
                seen.append(("stopping", ctx.stopping.is_set(), anyio.current_time()))

        async with lifecycle.running(sup) as tree:
            await tree.ready()
            await anyio.sleep(2)
        assert seen == [("stopping", True, 2.0)]
