from __future__ import annotations

import anyio
import anyio.lowlevel
import pytest

import lifecycle


class Fetcher:
    """Counts calls; each call waits for `release` and returns its number."""

    def __init__(self) -> None:
        self.calls = 0
        self.release = anyio.Event()
        self.error: BaseException | None = None

    async def fetch(self) -> int:
        self.calls += 1
        number = self.calls
        await self.release.wait()
        if self.error is not None:
            raise self.error
        return number


class TestRun:
    async def test_joiners_share_one_call(self) -> None:
        """Callers arriving while a call is in flight get its result; the function runs once."""
        guard = lifecycle.SingleFlight[int]()
        fetcher = Fetcher()
        results: list[int] = []

        async def caller() -> None:
            results.append(await guard.run(fetcher.fetch))

        async with anyio.create_task_group() as tasks:
            for _ in range(3):
                tasks.start_soon(caller)
            await anyio.wait_all_tasks_blocked()
            assert guard.busy
            fetcher.release.set()
        assert results == [1, 1, 1]
        assert fetcher.calls == 1
        assert not guard.busy

    async def test_joiners_share_the_error(self) -> None:
        """Every caller of a failed flight gets its error; the function ran once."""
        guard = lifecycle.SingleFlight[int]()
        fetcher = Fetcher()
        fetcher.error = ConnectionError("token endpoint down")
        errors: list[BaseException] = []

        async def caller() -> None:
            try:
                await guard.run(fetcher.fetch)
            except ConnectionError as exc:
                errors.append(exc)

        async with anyio.create_task_group() as tasks:
            tasks.start_soon(caller)
            tasks.start_soon(caller)
            await anyio.wait_all_tasks_blocked()
            fetcher.release.set()
        assert len(errors) == 2
        assert errors[0] is errors[1] is fetcher.error
        assert fetcher.calls == 1

    async def test_a_new_call_after_the_flight_runs_again(self) -> None:
        """Nothing is cached: a call after the flight ended runs the function again."""
        guard = lifecycle.SingleFlight[int]()
        fetcher = Fetcher()
        fetcher.release.set()
        assert await guard.run(fetcher.fetch) == 1
        assert await guard.run(fetcher.fetch) == 2

    async def test_cancelled_joiner_does_not_cancel_the_call(self) -> None:
        """A waiter that is cancelled stops waiting; the owner and the other waiters still get the result."""
        guard = lifecycle.SingleFlight[int]()
        fetcher = Fetcher()
        results: list[tuple[str, int]] = []
        joiner_scope = anyio.CancelScope()

        async def caller(name: str, scope: anyio.CancelScope | None = None) -> None:
            with scope or anyio.CancelScope():
                results.append((name, await guard.run(fetcher.fetch)))

        async with anyio.create_task_group() as tasks:
            tasks.start_soon(caller, "owner")
            await anyio.wait_all_tasks_blocked()
            tasks.start_soon(caller, "cancelled joiner", joiner_scope)
            tasks.start_soon(caller, "joiner")
            await anyio.wait_all_tasks_blocked()
            joiner_scope.cancel()
            await anyio.wait_all_tasks_blocked()
            assert guard.busy
            fetcher.release.set()
        assert joiner_scope.cancelled_caught
        assert sorted(results) == [("joiner", 1), ("owner", 1)]
        assert fetcher.calls == 1

    async def test_cancelled_owner_hands_the_call_to_a_joiner(self) -> None:
        """When the owner is cancelled the call is cancelled with it, and a waiter runs it anew."""
        guard = lifecycle.SingleFlight[int]()
        fetcher = Fetcher()
        results: list[int] = []
        owner_scope = anyio.CancelScope()

        async def owner() -> None:
            with owner_scope:
                await guard.run(fetcher.fetch)
                pytest.fail("the owner's cancellation was swallowed")  # pragma: no cover

        async def joiner() -> None:
            results.append(await guard.run(fetcher.fetch))

        async with anyio.create_task_group() as tasks:
            tasks.start_soon(owner)
            await anyio.wait_all_tasks_blocked()
            tasks.start_soon(joiner)
            await anyio.wait_all_tasks_blocked()
            owner_scope.cancel()
            await anyio.wait_all_tasks_blocked()
            assert fetcher.calls == 2  # the joiner started a new call
            fetcher.release.set()
        assert owner_scope.cancelled_caught
        assert results == [2]


class TestRunNowait:
    async def test_busy_guard_refuses_without_calling(self) -> None:
        """While a call is in flight, run_nowait() raises WouldBlock at once and does not call the function."""
        guard = lifecycle.SingleFlight[int]()
        fetcher = Fetcher()
        skipped_fn_calls: list[int] = []

        async def other() -> int:
            skipped_fn_calls.append(1)  # pragma: no cover - must not run
            return 0  # pragma: no cover

        async with anyio.create_task_group() as tasks:
            tasks.start_soon(guard.run, fetcher.fetch)
            await anyio.wait_all_tasks_blocked()
            with pytest.raises(anyio.WouldBlock):
                await guard.run_nowait(other)
            fetcher.release.set()
        assert skipped_fn_calls == []
        assert fetcher.calls == 1

    async def test_idle_guard_runs_the_call(self) -> None:
        """With nothing in flight, run_nowait() runs the function and returns its value."""
        guard = lifecycle.SingleFlight[int]()
        fetcher = Fetcher()
        fetcher.release.set()
        assert await guard.run_nowait(fetcher.fetch) == 1
        assert repr(guard) == "<SingleFlight idle>"

    async def test_outer_cancellation_propagates(self) -> None:
        """A cancelled caller of run_nowait() gets the cancellation, and the guard is free again."""
        guard = lifecycle.SingleFlight[None]()
        with anyio.CancelScope() as outer:
            outer.cancel()
            await guard.run_nowait(anyio.sleep_forever)
        assert outer.cancelled_caught
        assert not guard.busy
