from __future__ import annotations

import gc
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import anyio
import anyio.to_thread
import pytest
from helpers import Recorder
from structlog.testing import capture_logs

import lifecycle
from lifecycle import ComponentError, Outcome, ShutdownPolicy, State, StopReason
from supervisors import Backoff, GaveUpError, Supervisor


def tree_of(rec: Recorder, *names: str) -> Supervisor:
    sup = Supervisor()
    previous: tuple[str, ...] = ()
    for name in names:
        sup.add(rec.resource(name), depends_on=previous)
        previous = (name,)
    return sup


def state_of(tree: lifecycle.RunningTree) -> State:
    return tree.state


class TestHandle:
    async def test_state_follows_the_tree(self) -> None:
        """The handle's state goes STARTING -> RUNNING -> STOPPED."""
        sup = tree_of(Recorder(), "db")
        async with lifecycle.running(sup) as tree:
            assert state_of(tree) is State.STARTING
            await tree.ready()
            assert state_of(tree) is State.RUNNING
            report = await tree.shutdown()
            assert state_of(tree) is State.STOPPED
        assert report.reason is StopReason.REQUEST
        assert tree.report is report

    async def test_leaving_the_block_stops_the_tree_in_order(self) -> None:
        """Leaving the block without a request stops every component in order."""
        rec = Recorder()
        async with lifecycle.running(tree_of(rec, "a", "b")) as tree:
            await tree.ready()
        assert rec.names("stop") == ["b", "a"]
        assert tree.report is not None
        assert tree.report.detail == "the program stopped the tree: it left the running() block"

    async def test_stop_events_keep_budgets_and_outcome_counts_apart(self) -> None:
        """tree.stopping has the budgets in seconds; tree.stopped counts outcomes under `outcomes`, not `graceful=`."""
        policy = ShutdownPolicy(graceful=6, forceful=4, terminate=1)
        with capture_logs() as logs:
            async with lifecycle.running(tree_of(Recorder(), "a", "b"), policy=policy) as tree:
                await tree.ready()
        (stopping,) = [e for e in logs if e["event"] == "tree.stopping"]
        (stopped,) = [e for e in logs if e["event"] == "tree.stopped"]
        assert (stopping["graceful"], stopping["forceful"], stopping["terminate"]) == (6.0, 4.0, 1.0)
        assert stopped["outcomes"] == {"graceful": 3}
        assert not {"graceful", "forceful", "terminate"} & set(stopped)

    async def test_the_stop_reason_says_how_the_block_was_left(self) -> None:
        """A block left by an exception or a cancellation says so in the stop's detail, in plain words."""
        with pytest.raises(KeyError):
            async with lifecycle.running(tree_of(Recorder(), "a")) as raised:
                await raised.ready()
                raise KeyError("x")
        assert raised.report is not None
        assert raised.report.detail == "the program stopped the tree: its running() block raised KeyError"
        with anyio.CancelScope() as scope:
            async with lifecycle.running(tree_of(Recorder(), "a")) as cancelled:
                await cancelled.ready()
                scope.cancel()
                await anyio.sleep_forever()
        assert cancelled.report is not None
        assert cancelled.report.detail == "the program stopped the tree: its running() block was cancelled"

    async def test_request_shutdown_from_another_thread(self) -> None:
        """request_shutdown() called from a worker thread stops the tree; wait() returns the report."""
        async with lifecycle.running(tree_of(Recorder(), "db")) as tree:
            await tree.ready()
            await anyio.to_thread.run_sync(tree.request_shutdown)
            report = await tree.wait()
        assert report.reason is StopReason.REQUEST
        assert report.ok

    async def test_request_shutdown_is_idempotent(self) -> None:
        """Several requests make one stop, timed from the first."""
        async with lifecycle.running(tree_of(Recorder(), "db")) as tree:
            await tree.ready()
            tree.request_shutdown()
            tree.request_shutdown()
            first = await tree.wait()
            tree.request_shutdown()
            assert await tree.shutdown() is first

    async def test_body_exception_propagates_unchanged_after_an_ordered_stop(self) -> None:
        """An error in the block's body is raised as itself once the tree has stopped."""
        rec = Recorder()
        with pytest.raises(LookupError, match="user error"):
            async with lifecycle.running(tree_of(rec, "db")) as tree:
                await tree.ready()
                raise LookupError("user error")
        assert rec.names("stop") == ["db"]

    async def test_body_error_and_tree_failure_are_raised_together(self) -> None:
        """When the tree failed while the body raised too, both are in the group."""
        sup = Supervisor()

        @sup.component
        async def db() -> AsyncIterator[None]:
            yield
            raise OSError("flush")

        sup2 = Supervisor()

        @sup2.component
        async def flaky(ctx: lifecycle.Context) -> None:
            ctx.ready()
            raise ValueError("crash")

        with pytest.raises(ExceptionGroup) as info:
            async with lifecycle.running(sup2) as tree:
                await tree.ready()
                await anyio.sleep_forever()
        # flaky crashed more often than the intensity allows: its supervisor gave up.
        assert [type(e) for e in info.value.exceptions] == [GaveUpError]
        assert all(isinstance(e, ComponentError) for e in info.value.exceptions)

    async def test_host_cancellation_stops_the_tree_in_order(self) -> None:
        """Cancelling the code around running() stops the tree in order, then the cancellation propagates."""
        rec = Recorder()
        with anyio.CancelScope() as scope:
            async with lifecycle.running(tree_of(rec, "a", "b")) as tree:
                await tree.ready()
                scope.cancel()  # once ready, not after a fixed time: a slow start would be cut short
                await anyio.sleep_forever()
        assert scope.cancelled_caught
        assert rec.names("stop") == ["b", "a"]

    async def test_a_plain_function_can_be_the_root(self) -> None:
        """A single function component runs without a supervisor; returning is MAIN_EXITED."""

        async def job(ctx: lifecycle.Context) -> None:
            ctx.ready()

        async with lifecycle.running(job) as tree:
            report = await tree.wait()
        assert report.reason is StopReason.MAIN_EXITED
        assert report.components[0].outcome is Outcome.FINISHED

    async def test_failing_root_function_is_raised(self) -> None:
        """A root component's failure is raised as a group of one ComponentError."""

        async def job(ctx: lifecycle.Context) -> None:
            raise ArithmeticError("bad")

        with pytest.raises(ExceptionGroup) as info:
            async with lifecycle.running(job) as tree:
                await tree.ready()
        (error,) = info.value.exceptions
        assert isinstance(error, ComponentError)
        assert error.path == "job"

    async def test_invalid_policy_is_a_configuration_error(self) -> None:
        """A policy that is not a ShutdownPolicy is rejected before anything starts."""
        with pytest.raises(lifecycle.ConfigurationError, match="`policy` must be"):
            async with lifecycle.running(tree_of(Recorder(), "db"), policy=5):  # type: ignore[arg-type]
                pass  # pragma: no cover - never reached

    async def test_keyboard_interrupt_keeps_its_type(self) -> None:
        """A BaseException from a component is raised in a BaseExceptionGroup with its own type and a note."""

        async def job(ctx: lifecycle.Context) -> None:
            ctx.ready()
            raise KeyboardInterrupt

        with pytest.raises(BaseExceptionGroup) as info:
            async with lifecycle.running(job) as tree:
                await tree.ready()
                await anyio.sleep_forever()
        (error,) = info.value.exceptions
        assert isinstance(error, KeyboardInterrupt)
        assert "raised by component 'job' (run)" in (error.__notes__ or [])


SCRIPT = textwrap.dedent(
    """
    import sys
    from collections.abc import AsyncIterator, Callable

    import anyio
    import structlog

    import lifecycle
    from lifecycle import ShutdownPolicy
    from supervisors import Supervisor

    structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))
    sup = Supervisor(policy=ShutdownPolicy(graceful=30, forceful=30, terminate=30))

    @sup.component
    async def db() -> AsyncIterator[None]:
        yield
        print("db closed", flush=True)

    @sup.component
    async def api(ctx: lifecycle.Context, db: None) -> None:
        ctx.ready()
        try:
            await anyio.sleep_forever()
        finally:
            with ctx.shielded():
                print("draining", flush=True)
                await anyio.sleep(60)
            print(f"drain ended in {ctx.phase.name}", flush=True)

    async def main() -> None:
        async with lifecycle.running(sup, signals=True) as tree:
            await tree.ready()
            print("ready", flush=True)
            report = await tree.wait()
        print(report.reason.value, report["api"].outcome.value, flush=True)

    anyio.run(main, backend=sys.argv[1])
    """,
)


class TestSignals:
    @pytest.mark.parametrize("backend", ["asyncio", "trio"])
    def test_second_signal_cuts_a_slow_graceful_drain(self, tmp_path: Path, backend: str) -> None:
        """In a real process, SIGTERM starts the stop and a second SIGINT forces it: the drain is cut off."""
        script = tmp_path / "service.py"
        script.write_text(SCRIPT)
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
        with subprocess.Popen(
            [sys.executable, str(script), backend],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        ) as proc:
            assert proc.stdout is not None
            assert proc.stdout.readline().strip() == "ready"
            proc.send_signal(signal.SIGTERM)
            assert proc.stdout.readline().strip() == "draining"
            proc.send_signal(signal.SIGINT)
            out, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err
        assert out.splitlines() == ["drain ended in FORCEFUL", "db closed", "signal forced"]
        assert "stopping gracefully" in err
        assert "forcing" in err


async def until(condition: Callable[[], bool]) -> None:
    """Wait (bounded) for a condition that a signal delivery will make true."""
    with anyio.fail_after(10):
        while not condition():  # noqa: ASYNC110 - the signal's effect is not an event we can wait on
            await anyio.sleep(0.005)


class TestSignalsInProcess:
    @pytest.mark.skipif(not hasattr(signal, "SIGTERM"), reason="needs POSIX signals")
    async def test_each_signal_escalates_one_phase_and_more_are_ignored(self) -> None:
        """SIGTERM starts GRACEFUL, SIGINT jumps to FORCEFUL, another to TERMINATE, a fourth is only logged."""
        sup = Supervisor(policy=lifecycle.ShutdownPolicy(graceful=60, forceful=60, terminate=60))
        release = anyio.Event()

        @sup.component
        async def api(ctx: lifecycle.Context) -> None:
            ctx.ready()
            with ctx.shielded(until=lifecycle.Phase.TERMINATE):
                await release.wait()

        with capture_logs() as logs:
            async with lifecycle.running(sup, signals=True) as tree:
                await tree.ready()
                phases: list[lifecycle.Phase] = []

                def in_phase(n: int) -> Callable[[], bool]:
                    return lambda: tree.escalation is not None and tree.escalation.phase.value == n

                for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGINT):
                    os.kill(os.getpid(), signum)
                    await until(in_phase(len(phases)))
                    assert tree.escalation is not None
                    phases.append(tree.escalation.phase)
                os.kill(os.getpid(), signal.SIGINT)
                await until(lambda: any(e["event"] == "signal.ignored" for e in logs))
                release.set()
                report = await tree.wait()
        assert phases == [lifecycle.Phase.GRACEFUL, lifecycle.Phase.FORCEFUL, lifecycle.Phase.TERMINATE]
        assert report.reason is StopReason.SIGNAL
        assert report.detail == "SIGTERM received"
        assert report["api"].outcome is Outcome.TERMINATED
        received = [(e["signal"], e["phase"]) for e in logs if e["event"] == "signal.received"]
        assert received == [("SIGTERM", "GRACEFUL"), ("SIGINT", "FORCEFUL"), ("SIGINT", "TERMINATE")]


@pytest.mark.virtual_time
class TestPhaseEvents:
    """Issue 15, problem 6: a phase that ends by its deadline is logged when it ends."""

    @staticmethod
    def slow_tree(*, stubborn: bool = False) -> Supervisor:
        tree = Supervisor("app", policy=lifecycle.ShutdownPolicy(30, 10, 5))

        @tree.component
        async def drain(ctx: lifecycle.Context) -> None:
            ctx.ready()
            try:
                await anyio.sleep_forever()
            finally:
                if stubborn:  # outlives TERMINATE's beginning, so every deadline passes before the stop ends
                    with anyio.CancelScope(shield=True):
                        await anyio.sleep(42)
                with ctx.shielded(until=lifecycle.Phase.FORCEFUL):
                    await anyio.sleep(100)

        return tree

    async def test_deadlines_are_logged_as_they_pass(self) -> None:
        """GRACEFUL at the request, FORCEFUL 30 s later and TERMINATE 40 s later, each with its reason."""
        with capture_logs() as logs:
            async with lifecycle.running(self.slow_tree(stubborn=True)) as tree:
                await tree.ready()
                began = anyio.current_time()
                report = await tree.shutdown()
        phases = [e for e in logs if e["event"] == "tree.phase"]
        assert [(e["phase"], e["reason"], e["log_level"]) for e in phases] == [
            ("GRACEFUL", "request", "info"),
            ("FORCEFUL", "deadline", "warning"),
            ("TERMINATE", "deadline", "warning"),
        ]
        assert phases[1]["running"] == ["app", "app/drain"]
        assert phases[1]["running_count"] == 2
        assert [(c.phase, c.at - began, c.reason) for c in report.phase_changes] == [
            (lifecycle.Phase.GRACEFUL, 0, "request"),
            (lifecycle.Phase.FORCEFUL, 30, "deadline"),
            (lifecycle.Phase.TERMINATE, 40, "deadline"),
        ]
        assert report.to_dict()["phase_changes"] == [
            {"phase": "GRACEFUL", "at": 0.0, "reason": "request"},
            {"phase": "FORCEFUL", "at": 30.0, "reason": "deadline"},
            {"phase": "TERMINATE", "at": 40.0, "reason": "deadline"},
        ]

    async def test_an_escalation_is_logged_with_its_reason(self) -> None:
        """escalate() logs the phases it begins at once, reason ``request``; the deadline then moves on."""
        with capture_logs() as logs:
            async with lifecycle.running(self.slow_tree()) as tree:
                await tree.ready()
                began = anyio.current_time()
                tree.request_shutdown()
                await anyio.sleep(1)
                tree.escalate(lifecycle.Phase.TERMINATE)
                report = await tree.wait()
        assert [(e["phase"], e["reason"]) for e in logs if e["event"] == "tree.phase"] == [
            ("GRACEFUL", "request"),
            ("FORCEFUL", "request"),
            ("TERMINATE", "request"),
        ]
        assert report.finished_at - began == 1  # the FORCEFUL scope was cut at the escalation
        assert report.cut_off[0].path == "app/drain"
        assert not report.clean
        assert report.ok

    async def test_a_stop_that_ends_as_a_deadline_passes_logs_what_its_report_says(self) -> None:
        """A cleanup cut at the forceful deadline ends the stop then: log and report list the same phases."""
        for _ in range(40):  # the deadline and the last component's end tie; Trio orders such ties at random
            with capture_logs() as logs:
                async with lifecycle.running(self.slow_tree()) as tree:
                    await tree.ready()
                    report = await tree.shutdown()
            logged = [(e["phase"], e["reason"]) for e in logs if e["event"] == "tree.phase"]
            assert logged == [(c.phase.name, c.reason) for c in report.phase_changes]


def _tree_objects() -> list[object]:
    """The objects of this package that only the cyclic garbage collector would free."""
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        gc.collect()
        return [o for o in gc.garbage if type(o).__module__.partition(".")[0] in {"lifecycle", "supervisors"}]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()


class TestReferenceCycles:
    async def test_a_stopped_tree_frees_itself_by_reference_counting(self) -> None:
        """
        A tree stopped cleanly and dropped leaves nothing for the cyclic garbage collector.

        Every kind of component, a nested supervisor, a restart, a spawned task
        and dynamic children: reference counting frees them all. (An error kept
        in a report holds its traceback's frames, which may refer back to it.)
        """
        returned = anyio.Event()

        async def store() -> AsyncIterator[str]:
            yield "store"

        async def worker(ctx: lifecycle.Context, store: str) -> None:
            ctx.spawn(anyio.sleep_forever, name="helper")
            ctx.ready(store)
            await anyio.sleep_forever()

        async def once(ctx: lifecycle.Context) -> None:
            ctx.ready()
            if not returned.is_set():
                returned.set()
                return  # a permanent child: restarted
            await anyio.sleep_forever()

        class Service:
            async def run(self, ctx: lifecycle.Context) -> None:
                ctx.ready()
                await anyio.sleep_forever()

        async def run_tree() -> None:
            inner = Supervisor("inner", backoff=Backoff(initial=0))
            inner.add(once)
            sup = Supervisor("root")
            sup.add(store)
            sup.add(worker)
            sup.add(Service(), name="service", depends_on=("worker",))
            sup.add(inner)
            async with lifecycle.running(sup) as tree:
                await tree.ready()
                await returned.wait()
                await sup.start_child(Service(), name="dynamic")
                await sup.start_child(Service(), name="removed")
                await sup.stop_child("removed")
                assert [s.state for s in tree.components()]
                report = await tree.shutdown()
            assert report.ok
            assert {s.state for s in tree.components()} == {State.STOPPED}

        gc.collect()
        gc.disable()
        try:
            await run_tree()
            assert _tree_objects() == []
        finally:
            gc.enable()
