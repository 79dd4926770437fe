"""
Teardowns cut off when GRACEFUL ends, in real time on every backend.

The virtual-time tests of ``test_scope.py`` run on Trio only; these run the same
cut-offs on asyncio and uvloop too, where one timer per stop serves every
teardown scope (``lifecycle._core._backends._cutoffs``). Budgets are short and bounds
generous: nothing here waits for a fixed time to order events.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator, Callable

import anyio
import anyio.lowlevel
import pytest
from structlog.testing import capture_logs

import lifecycle
from lifecycle import Outcome, Phase, ShutdownPolicy
from lifecycle._core._backends._cutoffs import Cutoffs
from lifecycle.lowlevel import Escalation
from supervisors import Supervisor

pytestmark = pytest.mark.real_time

SHORT = ShutdownPolicy(graceful=0.2, forceful=30.0, terminate=30.0)
LONG = ShutdownPolicy(graceful=60.0, forceful=30.0, terminate=30.0)
# Far above the 0.2 s budget, far below the 60 s one: a loaded machine stays inside.
LATE = 20.0


def resource(*, slow: bool, began: anyio.Event | None = None) -> Callable[[], AsyncIterator[None]]:
    """A resource whose teardown returns at once, or waits until it is cut off (at most LATE seconds)."""

    async def component() -> AsyncIterator[None]:
        yield
        if began is not None:
            began.set()
        if slow:
            await anyio.sleep(LATE)  # bounded: a broken cut-off fails the test instead of hanging it

    return component


class TestCutOffInRealTime:
    async def test_slow_teardowns_are_cut_off_and_quick_ones_are_not(self) -> None:
        """In one stop wave, every slow teardown is cut off when GRACEFUL ends; quick ones end gracefully."""
        sup = Supervisor()
        for i in range(50):
            sup.add(resource(slow=i % 2 == 0), name=f"c{i}")

        with capture_logs() as logs:
            async with lifecycle.running(sup, policy=SHORT) as tree:
                await tree.ready()
                report = await tree.shutdown()

        for i in range(50):
            outcome = report[f"c{i}"].outcome
            assert outcome is (Outcome.FORCED if i % 2 == 0 else Outcome.GRACEFUL), (i, outcome)
        # Cut off at the graceful deadline, 0.2 s after the request on the loop clock; a stop that began
        # later than the request lasts less than 0.2 s, so its duration is not the bound (nor, on uvloop's
        # millisecond clock, a difference of two times: 1.434 - 1.234 < 0.2 in floating point).
        deadline = report.requested_at + SHORT.graceful
        stopped = [report[f"c{i}"].stopped_at for i in range(0, 50, 2)]
        assert all(t is not None and deadline <= t < deadline + LATE for t in stopped), (deadline, stopped)
        cut = [e["component"] for e in logs if e["event"] == "component.teardown_cut_off"]
        assert sorted(cut) == sorted(f"root/c{i}" for i in range(0, 50, 2))

    async def test_escalating_cuts_a_running_teardown_at_once(self) -> None:
        """escalate(FORCEFUL) cuts off a teardown under a 60 s graceful budget right away."""
        began = anyio.Event()
        sup = Supervisor()
        sup.add(resource(slow=True, began=began), name="db")

        async with lifecycle.running(sup, policy=LONG) as tree:
            await tree.ready()
            tree.request_shutdown()
            await began.wait()
            t0 = anyio.current_time()
            tree.escalate(Phase.FORCEFUL)
            report = await tree.wait()
            elapsed = anyio.current_time() - t0

        assert report["db"].outcome is Outcome.FORCED
        assert elapsed < LATE / 2

    async def test_stops_in_waves_each_cut_off(self) -> None:
        """A dependent and its dependency, stopped in two waves, are each cut off once GRACEFUL ends."""
        sup = Supervisor()
        sup.add(resource(slow=True), name="db")
        sup.add(resource(slow=True), name="api", depends_on=("db",))

        async with lifecycle.running(sup, policy=SHORT) as tree:
            await tree.ready()
            report = await tree.shutdown()

        assert report["api"].outcome is Outcome.FORCED
        # The dependency's stop began when its dependent had ended: past GRACEFUL, so at once.
        assert report["db"].outcome is Outcome.FORCED
        assert report["db"].stop_began is not None
        assert report["api"].stopped_at is not None
        assert report["db"].stop_began >= report["api"].stopped_at
        assert all(report[name].stop_duration < LATE / 2 for name in ("api", "db"))  # type: ignore[operator]


class TestCutoffsRegistry:
    """The asyncio registry itself: one group, with one timer, per escalation; nothing left behind."""

    @pytest.fixture
    def anyio_backend(self) -> str:
        return "asyncio"

    async def test_scope_is_cancelled_when_graceful_ends(self) -> None:
        """A followed scope is cancelled once GRACEFUL ends, and the group then leaves the registry."""
        loop = asyncio.get_running_loop()
        cutoffs = Cutoffs(loop)
        escalation = Escalation.start(SHORT)
        with anyio.CancelScope(shield=True) as scope:
            cutoffs.follow(scope, escalation)
            await anyio.sleep(LATE)
        assert scope.cancelled_caught
        assert loop.time() >= escalation.end(Phase.GRACEFUL)
        assert not cutoffs._groups

    async def test_graceful_already_over_cancels_at_once(self) -> None:
        """Following a scope after GRACEFUL has ended cancels it at once, without a timer."""
        cutoffs = Cutoffs(asyncio.get_running_loop())
        escalation = Escalation.start(SHORT, now=anyio.current_time() - 1.0)
        with anyio.CancelScope(shield=True) as scope:
            cutoffs.follow(scope, escalation)
            await anyio.sleep(LATE)
        assert scope.cancelled_caught
        assert not cutoffs._groups

    async def test_unfollowed_scopes_leave_no_group_or_timer(self) -> None:
        """A group whose scopes were all left goes on the next pass of the loop, with its timer."""
        cutoffs = Cutoffs(asyncio.get_running_loop())
        escalation = Escalation.start(LONG)
        scopes = [anyio.CancelScope() for _ in range(3)]
        for scope in scopes:
            cutoffs.follow(scope, escalation)
        group = cutoffs._groups[escalation]
        handle = group.handle
        assert handle is not None
        for scope in scopes:
            cutoffs.unfollow(scope, escalation)
        assert cutoffs._groups == {escalation: group}  # kept for the rest of this pass
        await anyio.lowlevel.checkpoint()
        assert not cutoffs._groups
        assert handle.cancelled()
        assert escalation._listeners == {}
        assert not any(s.cancel_called for s in scopes)

    async def test_a_group_followed_again_before_its_idle_check_stays(self) -> None:
        """A scope following the escalation again in the same pass keeps the group and its timer."""
        cutoffs = Cutoffs(asyncio.get_running_loop())
        escalation = Escalation.start(LONG)
        first, second = anyio.CancelScope(), anyio.CancelScope()
        cutoffs.follow(first, escalation)
        group = cutoffs._groups[escalation]
        cutoffs.unfollow(first, escalation)  # the idle check is now pending
        cutoffs.follow(second, escalation)
        await anyio.lowlevel.checkpoint()
        assert cutoffs._groups == {escalation: group}
        assert group.handle is not None
        assert not group.handle.cancelled()
        cutoffs.unfollow(second, escalation)
        await anyio.lowlevel.checkpoint()
        assert not cutoffs._groups

    async def test_a_jump_reschedules_the_timer(self) -> None:
        """An escalation that moves GRACEFUL's end earlier moves the group's timer with it."""
        cutoffs = Cutoffs(asyncio.get_running_loop())
        escalation = Escalation.start(LONG)
        with anyio.CancelScope(shield=True) as scope:
            cutoffs.follow(scope, escalation)
            assert cutoffs._groups[escalation].handle is not None
            escalation.escalate(Phase.GRACEFUL)  # already in GRACEFUL: nothing moves
            assert not scope.cancel_called
            escalation.escalate(Phase.TERMINATE)
            await anyio.sleep(LATE)
        assert scope.cancelled_caught
        assert math.isfinite(escalation.end(Phase.GRACEFUL))
        assert not cutoffs._groups
