from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import anyio
import pytest
from structlog.testing import capture_logs

import lifecycle
from lifecycle import Outcome, Phase, ShutdownPolicy
from supervisors import Supervisor

POLICY = ShutdownPolicy(graceful=5.0, forceful=3.0, terminate=2.0)

pytestmark = pytest.mark.virtual_time


def slow_teardown(cut: list[float]) -> Callable[[], AsyncIterator[None]]:
    """A resource whose teardown takes 100 s unless cut off; *cut* gets how long it ran."""

    async def resource() -> AsyncIterator[None]:
        yield
        t0 = anyio.current_time()
        try:
            await anyio.sleep(100)
        finally:
            cut.append(anyio.current_time() - t0)

    return resource


async def stop_after_ready(sup: Supervisor, policy: ShutdownPolicy = POLICY) -> lifecycle.ShutdownReport:
    async with lifecycle.running(sup, policy=policy) as tree:
        await tree.ready()
        return await tree.shutdown()


class TestCutOff:
    async def test_generator_teardown_is_cut_at_the_graceful_deadline(self) -> None:
        """A teardown that outlasts the graceful budget is cancelled exactly at t0 + graceful."""
        cut_at: list[float] = []
        sup = Supervisor()

        sup.add(slow_teardown(cut_at), name="db")

        report = await stop_after_ready(sup)
        assert cut_at == [5.0]
        assert report["db"].outcome is Outcome.FORCED
        assert report["db"].phase is Phase.FORCEFUL
        assert report["db"].stop_duration == 5.0

    async def test_forceful_scope_runs_until_the_forceful_deadline(self) -> None:
        """A scope opened with until=FORCEFUL survives the graceful deadline and is cut at graceful + forceful."""
        seen: list[tuple[str, float, Phase | None]] = []
        sup = Supervisor()

        @sup.component
        async def wal(ctx: lifecycle.Context) -> None:
            ctx.ready()
            try:
                await anyio.sleep_forever()
            finally:
                t0 = anyio.current_time()
                with ctx.shielded(until=Phase.FORCEFUL) as scope:
                    await anyio.sleep(5.5)
                    seen.append(("past graceful", anyio.current_time() - t0, ctx.phase))
                    await anyio.sleep(100)
                seen.append(("cut", anyio.current_time() - t0, ctx.phase))
                assert scope.cancelled_caught

        report = await stop_after_ready(sup)
        assert seen == [("past graceful", 5.5, Phase.FORCEFUL), ("cut", 8.0, Phase.TERMINATE)]
        assert report["wal"].outcome is Outcome.TERMINATED

    async def test_timeout_cuts_a_scope_before_its_phase_ends(self) -> None:
        """`timeout` cuts the scope off earlier than its phase deadline."""
        elapsed: list[float] = []
        sup = Supervisor()

        @sup.component
        async def api(ctx: lifecycle.Context) -> None:
            ctx.ready()
            try:
                await anyio.sleep_forever()
            finally:
                t0 = anyio.current_time()
                async with lifecycle.shielded(timeout=1.5):
                    await anyio.sleep(100)
                elapsed.append(anyio.current_time() - t0)

        report = await stop_after_ready(sup)
        assert elapsed == [1.5]
        assert report["api"].outcome is Outcome.GRACEFUL

    async def test_scope_opened_after_its_phase_ended_is_cut_at_once(self) -> None:
        """A component whose stop begins after the graceful deadline gets no graceful time at all."""
        elapsed: list[float] = []
        sup = Supervisor()

        @sup.component
        async def db() -> AsyncIterator[None]:
            yield
            t0 = anyio.current_time()
            await anyio.sleep(100)
            elapsed.append(anyio.current_time() - t0)  # pragma: no cover - cut off before

        @sup.component
        async def slow(ctx: lifecycle.Context, db: None) -> None:
            ctx.ready()
            try:
                await anyio.sleep_forever()
            finally:
                with lifecycle.shielded(until=Phase.FORCEFUL):
                    await anyio.sleep(6)

        report = await stop_after_ready(sup)
        assert report["slow"].stop_duration == 6.0
        assert report["db"].stop_began == report["slow"].stopped_at
        assert report["db"].stop_duration == 0.0
        assert elapsed == []

    async def test_outer_cancellation_does_not_reach_a_shielded_scope_outside_components(self) -> None:
        """Outside any component, shielded() is a shield that only its timeout cuts off."""
        finished: list[float] = []
        with anyio.move_on_after(1):
            async with lifecycle.shielded(timeout=10) as scope:
                await anyio.sleep(3)
                finished.append(anyio.current_time())
                await anyio.sleep(100)
        assert len(finished) == 1
        assert scope.cancelled_caught
        assert scope.deadline == pytest.approx(finished[0] + 7)

    async def test_component_policy_only_makes_deadlines_earlier(self) -> None:
        """A component's own policy shortens its graceful budget, but cannot lengthen the tree's."""
        cut: dict[str, float] = {}
        sup = Supervisor()

        def make(name: str) -> object:
            async def component() -> AsyncIterator[None]:
                yield
                t0 = anyio.current_time()
                try:
                    await anyio.sleep(100)
                finally:
                    cut[name] = anyio.current_time() - t0

            component.__name__ = name
            return component

        sup.add(make("quick"), policy=ShutdownPolicy(graceful=1.0, forceful=1.0, terminate=1.0))
        sup.add(make("patient"), policy=ShutdownPolicy(graceful=60.0, forceful=60.0, terminate=60.0))
        await stop_after_ready(sup)
        assert cut == {"quick": 1.0, "patient": 5.0}

    async def test_escalate_cuts_graceful_scopes_at_once(self) -> None:
        """Escalating to FORCEFUL cuts every until=GRACEFUL scope immediately, in nested trees too."""
        cut: list[float] = []
        sup = Supervisor()
        inner = Supervisor("inner")

        inner.add(slow_teardown(cut), name="db")

        sup.add(inner)
        async with lifecycle.running(sup, policy=POLICY) as tree:
            await tree.ready()
            tree.request_shutdown()
            await anyio.sleep(1)
            tree.escalate(Phase.FORCEFUL)
            report = await tree.wait()
        assert cut == [1.0]
        assert report["db"].phase is Phase.FORCEFUL


class TestPhases:
    async def test_ctx_phase_and_stopping_follow_the_stop(self) -> None:
        """ctx.phase is None until the stop begins; ctx.stopping is set when it does."""
        seen: list[object] = []
        sup = Supervisor()

        @sup.component
        async def api(ctx: lifecycle.Context) -> None:
            seen.append(ctx.phase)
            ctx.ready()
            with ctx.shielded():
                await ctx.stopping.wait()
                seen.append(ctx.phase)
                await anyio.sleep(5)
            seen.append(ctx.phase)

        await stop_after_ready(sup)
        assert seen == [None, Phase.GRACEFUL, Phase.FORCEFUL]

    async def test_stopping_is_already_set_when_first_read_during_the_stop(self) -> None:
        """Reading ctx.stopping for the first time after the stop began gives a set event."""
        states: list[bool] = []
        sup = Supervisor()

        @sup.component
        async def api(ctx: lifecycle.Context) -> None:
            ctx.ready()
            try:
                await anyio.sleep_forever()
            finally:
                states.append(ctx.stopping.is_set())

        await stop_after_ready(sup)
        assert states == [True]

    async def test_policy_defaults_to_the_environment(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Without a policy, running() reads LIFECYCLE_*_TIMEOUT."""
        monkeypatch.setenv("LIFECYCLE_GRACEFUL_TIMEOUT", "2")
        cut: list[float] = []
        sup = Supervisor()

        sup.add(slow_teardown(cut), name="db")

        async with lifecycle.running(sup) as tree:
            await tree.ready()
            await tree.shutdown()
        assert cut == [2.0]

    async def test_supervisor_policy_is_the_tree_policy(self) -> None:
        """A root supervisor's own policy sets the tree's budgets."""
        cut: list[float] = []
        sup = Supervisor(policy=ShutdownPolicy(graceful=7.0))

        sup.add(slow_teardown(cut), name="db")

        async with lifecycle.running(sup) as tree:
            await tree.ready()
            await tree.shutdown()
        assert cut == [7.0]


class TestStubborn:
    async def test_stubborn_component_is_logged_with_its_stack_and_waited_for(self) -> None:
        """A component that ignores cancellation is logged at TERMINATE and past it, and still waited for."""
        sup = Supervisor()

        @sup.component
        async def stuck(ctx: lifecycle.Context) -> None:
            ctx.ready()
            with anyio.CancelScope(shield=True):
                await anyio.sleep(30)

        with capture_logs() as logs:
            report = await stop_after_ready(sup)
        events = [(e["event"], e.get("component")) for e in logs if e["event"].startswith("component.stubborn")]
        assert ("component.stubborn", "root/stuck") in events
        assert ("component.stubborn_past_terminate", "root/stuck") in events
        stack = next(e["stack"] for e in logs if e["event"] == "component.stubborn" and e["component"] == "root/stuck")
        assert "in stuck" in stack
        assert report["stuck"].stop_duration == 30.0
        assert report["stuck"].outcome is Outcome.TERMINATED

    async def test_the_stack_shows_a_spawned_task_that_holds_the_stop(self) -> None:
        """A component held by a spawned task that swallows cancellation: the stubborn log shows that task's stack."""
        sup = Supervisor()

        async def flusher() -> None:
            with anyio.CancelScope(shield=True):
                await anyio.sleep(30)

        @sup.component
        async def exporter(ctx: lifecycle.Context) -> None:
            ctx.spawn(flusher, name="flusher")
            ctx.ready()
            await anyio.sleep_forever()

        with capture_logs() as logs:
            await stop_after_ready(sup)
        stack = next(e["stack"] for e in logs if e["event"] == "component.stubborn")
        assert "spawned task 'flusher':" in stack
        assert "in flusher" in stack

    async def test_a_scope_bound_to_terminate_is_not_stubborn_while_terminate_lasts(self) -> None:
        """
        A cleanup in ``shielded(until=Phase.TERMINATE)`` may run until TERMINATE ends: not stubborn when it begins.

        DESIGN.md, "Stubborn": still running after all of its own scopes were cut and
        TERMINATE began. Only a cleanup that outlives its TERMINATE scope is.
        """
        sup = Supervisor()
        ended: list[float] = []

        @sup.component
        async def journal(ctx: lifecycle.Context) -> AsyncIterator[None]:
            yield
            with ctx.shielded(until=Phase.TERMINATE):
                await anyio.sleep(2)  # past GRACEFUL and FORCEFUL, within TERMINATE
            ended.append(anyio.current_time())

        policy = ShutdownPolicy(graceful=1, forceful=0.5, terminate=5)
        with capture_logs() as logs:
            async with lifecycle.running(sup, policy=policy) as tree:
                await tree.ready()
                began = anyio.current_time()
                report = await tree.shutdown()
        assert ended == [pytest.approx(began + 2)]
        assert [e for e in logs if e["event"].startswith("component.stubborn")] == []
        assert report.ok


class TestSelfStop:
    async def test_escalating_reaches_a_stop_the_root_began_itself(self) -> None:
        """After a main component returns, the tree's stop is the root's: a jump to FORCEFUL cuts its scopes."""
        cut: list[float] = []
        sup = Supervisor()

        sup.add(slow_teardown(cut), name="db")

        @sup.component(main=True, depends_on=("db",))
        async def job() -> None:
            await anyio.sleep(1)

        async with lifecycle.running(sup, policy=POLICY) as tree:
            await tree.ready()
            await anyio.sleep(2)  # the job has returned; db is in its teardown
            assert tree.escalation is not None
            tree.escalate(Phase.FORCEFUL)
            report = await tree.wait()
        assert cut == [1.0]
        assert report.reason is lifecycle.StopReason.MAIN_EXITED
        assert report.detail == "'root/job' (main) returned"
        assert report.requested_at == report["root"].stop_began
