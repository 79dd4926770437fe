from __future__ import annotations

import functools
from typing import assert_type

import anyio
import anyio.lowlevel
import pytest

import lifecycle


async def value_after(event: anyio.Event, value: int) -> int:
    await event.wait()
    return value


async def fail_with(error: Exception) -> None:
    raise error


class TestGather:
    async def test_results_come_in_argument_order(self) -> None:
        """Results are returned in the order of the functions, whatever order they finish in."""
        first, second = anyio.Event(), anyio.Event()

        async def finish_in_reverse() -> None:
            await anyio.wait_all_tasks_blocked()
            second.set()
            await anyio.wait_all_tasks_blocked()
            first.set()

        async with anyio.create_task_group() as tasks:
            tasks.start_soon(finish_in_reverse)
            results = await lifecycle.gather(
                functools.partial(value_after, first, 1),
                functools.partial(value_after, second, 2),
            )
        assert_type(results, tuple[int, int])
        assert results == (1, 2)

    async def test_every_error_is_raised_in_a_group(self) -> None:
        """Errors raised before the siblings are cancelled are all raised together, none lost."""
        with pytest.RaisesGroup(ValueError, KeyError):
            await lifecycle.gather(
                functools.partial(fail_with, ValueError("a")),
                functools.partial(fail_with, KeyError("b")),
            )

    async def test_first_error_cancels_the_siblings(self) -> None:
        """A failure cancels the calls still running, as in a task group, and they end before it is raised."""
        ended: list[str] = []

        async def sibling() -> None:
            try:
                await anyio.sleep_forever()
            finally:
                ended.append("sibling cancelled")

        async def late_failure() -> None:
            await anyio.wait_all_tasks_blocked()
            raise OSError("disk")

        with pytest.RaisesGroup(OSError):
            await lifecycle.gather(sibling, late_failure)
        assert ended == ["sibling cancelled"]

    async def test_outer_cancellation_cancels_every_call_and_propagates(self) -> None:
        """Cancelling the caller cancels all calls; the cancellation propagates and no result is returned."""
        ended: list[int] = []
        reached: list[object] = []

        async def forever(n: int) -> None:
            try:
                await anyio.sleep_forever()
            finally:
                ended.append(n)

        with anyio.CancelScope() as outer:

            async def cancel_soon() -> None:
                await anyio.wait_all_tasks_blocked()
                outer.cancel()

            async with anyio.create_task_group() as tasks:
                tasks.start_soon(cancel_soon)
                reached.append(await lifecycle.gather(functools.partial(forever, 1), functools.partial(forever, 2)))
        assert outer.cancelled_caught
        assert reached == []
        assert sorted(ended) == [1, 2]

    async def test_no_functions_give_no_results(self) -> None:
        """gather() of nothing returns an empty tuple."""
        assert await lifecycle.gather() == ()

    async def test_many_functions_keep_their_order(self) -> None:
        """Beyond four functions the results are still in argument order."""

        async def square(n: int) -> int:
            await anyio.lowlevel.checkpoint()
            return n * n

        results = await lifecycle.gather(*(functools.partial(square, n) for n in range(6)))
        assert results == (0, 1, 4, 9, 16, 25)
