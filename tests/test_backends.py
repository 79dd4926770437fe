"""The per-backend primitives a tree resolves once: they behave like anyio's own."""

from __future__ import annotations

import anyio
import anyio.lowlevel

from lifecycle._core._backends import current_primitives


class TestPrimitives:
    async def test_waker_set_before_wait_does_not_block(self) -> None:
        """A waker set before anyone waits lets the next wait() return at once."""
        waker = current_primitives().event()
        waker.set()
        with anyio.fail_after(5):
            await waker.wait()

    async def test_waker_wakes_its_waiter(self) -> None:
        """set() wakes a task blocked in wait()."""
        waker = current_primitives().event()
        woken = anyio.Event()

        async def waiter() -> None:
            await waker.wait()
            woken.set()

        async with anyio.create_task_group() as tg:
            tg.start_soon(waiter)
            await anyio.wait_all_tasks_blocked()
            assert not woken.is_set()
            waker.set()
        assert woken.is_set()

    async def test_waker_survives_a_cancelled_wait(self) -> None:
        """A wait() cancelled by its scope leaves the waker usable: a later set() wakes the next wait()."""
        waker = current_primitives().event()
        with anyio.CancelScope() as scope:
            scope.cancel()
            await waker.wait()
        assert scope.cancelled_caught
        async with anyio.create_task_group() as tg:
            tg.start_soon(waker.wait)
            await anyio.wait_all_tasks_blocked()
            waker.set()

    async def test_shielded_scope_keeps_outer_cancellation_out(self) -> None:
        """The engine's shielded scope is shielded, and its own cancel() still cancels inside it."""
        primitives = current_primitives()
        with anyio.CancelScope() as outer:
            outer.cancel()
            with primitives.shielded_scope() as inner:
                await anyio.lowlevel.checkpoint()  # not cancelled: shielded
                inner.cancel()
                await anyio.sleep_forever()
        assert inner.cancelled_caught
        assert outer.cancel_called

    async def test_a_cancelled_shielded_scope_cancels_again_what_swallowed_its_cancellation(self) -> None:
        """Cancellation stays level-triggered: a task that swallows it and waits again is cancelled again."""
        primitives = current_primitives()
        swallowed = 0
        scope = primitives.shielded_scope()

        async def body() -> None:
            nonlocal swallowed
            with scope:
                for _ in range(3):
                    try:
                        await anyio.sleep_forever()
                    except anyio.get_cancelled_exc_class():
                        swallowed += 1
                await anyio.sleep_forever()

        async with anyio.create_task_group() as tg:
            tg.start_soon(body)
            await anyio.wait_all_tasks_blocked()
            scope.cancel()
        assert swallowed == 3
        assert scope.cancelled_caught

    async def test_a_cancelled_shielded_scope_reaches_the_scopes_nested_in_it(self) -> None:
        """Cancelling the engine's scope cancels a scope opened inside it, and a task group's tasks there."""
        primitives = current_primitives()
        ended: list[str] = []
        scope = primitives.shielded_scope()

        async def child() -> None:
            try:
                await anyio.sleep_forever()
            finally:
                ended.append("child")

        async def body() -> None:
            with scope, anyio.CancelScope() as inner:
                async with anyio.create_task_group() as tg:
                    tg.start_soon(child)
                    await anyio.sleep_forever()
            ended.append("body")
            assert inner.cancel_called is False

        async with anyio.create_task_group() as tg:
            tg.start_soon(body)
            await anyio.wait_all_tasks_blocked()
            scope.cancel()
        assert ended == ["child", "body"]
        assert scope.cancelled_caught

    async def test_cancelled_is_the_backend_cancellation(self) -> None:
        """The cancellation class is anyio's for the running backend."""
        assert current_primitives().cancelled is anyio.get_cancelled_exc_class()
