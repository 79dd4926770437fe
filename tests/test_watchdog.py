"""The watchdog's signal path, in process: counting, the hand-over to the loop, the reload seam, the dump."""

from __future__ import annotations

import io
import os
import signal
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager

import anyio
import pytest
import structlog
from helpers import draining_api
from structlog.testing import capture_logs

import lifecycle
from lifecycle import Phase, ShutdownPolicy, StopReason
from lifecycle._host._dump_text import render_dump
from lifecycle._host._running_tree import RunningTree
from lifecycle._host._signals import dump_tree
from lifecycle._host._watchdog import UNRESPONSIVE, Watchdog
from supervisors import Supervisor

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGHUP"), reason="POSIX signals")


@pytest.fixture(autouse=True)
def _fresh_structlog() -> Iterator[None]:
    structlog.reset_defaults()
    yield
    structlog.reset_defaults()


def service() -> Supervisor:
    sup = Supervisor("app")

    @sup.component
    async def api(ctx: lifecycle.Context) -> None:
        ctx.ready()
        await anyio.sleep_forever()

    return sup


@pytest.fixture
def watchdog_factory() -> Iterator[Callable[..., Watchdog]]:
    made: list[Watchdog] = []

    def make(**kwargs: object) -> Watchdog:
        watchdog = Watchdog(ShutdownPolicy(), blocked_after=0, on_report=None, **kwargs)  # type: ignore[arg-type]
        made.append(watchdog)
        return watchdog

    yield make
    for watchdog in made:
        watchdog.close()


@asynccontextmanager
async def watched(watchdog: Watchdog) -> AsyncIterator[RunningTree]:
    """A running tree that *watchdog* watches, as run() sets it up."""
    async with lifecycle.running(service()) as tree, anyio.create_task_group() as tasks:
        watchdog.attach(tree)
        reacting = anyio.CancelScope()
        tasks.start_soon(watchdog.react, reacting)
        try:
            yield tree
        finally:
            reacting.cancel()
            watchdog.detach()


def signalled(watchdog: Watchdog, signum: signal.Signals) -> None:
    """What the watchdog thread does with a signal (called here to order it with the test)."""
    watchdog._received(signum, time.monotonic())


class TestStopSignals:
    async def test_a_signal_before_the_tree_acts_once_it_is_watched(
        self, watchdog_factory: Callable[..., Watchdog]
    ) -> None:
        """A signal that came before the tree existed stops it as soon as the watchdog attaches."""
        watchdog = watchdog_factory()
        with capture_logs() as logs:
            signalled(watchdog, signal.SIGTERM)
        assert [e["event"] for e in logs] == ["signal.received"]
        with anyio.fail_after(30):
            async with watched(watchdog) as tree:
                report = await tree.wait()
        assert report.reason is StopReason.SIGNAL
        assert report.detail == "SIGTERM received"

    async def test_three_signals_escalate_and_the_fourth_is_ignored(
        self, watchdog_factory: Callable[..., Watchdog]
    ) -> None:
        """SIGINT, SIGTERM, SIGHUP escalate one phase each; a fourth is logged as ignored."""
        watchdog = watchdog_factory()
        with capture_logs() as logs, anyio.fail_after(30):
            async with watched(watchdog) as tree:
                await tree.ready()
                for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
                    signalled(watchdog, signum)
                report = await tree.wait()
        received = [(e["signal"], e["phase"]) for e in logs if e["event"] == "signal.received"]
        assert received == [("SIGINT", "GRACEFUL"), ("SIGTERM", "FORCEFUL"), ("SIGHUP", "TERMINATE")]
        assert [(e["signal"], e["reason"]) for e in logs if e["event"] == "signal.ignored"] == [
            ("SIGINT", "already terminating")
        ]
        assert report.detail == "SIGINT received"
        assert report["api"].phase is Phase.TERMINATE

    async def test_a_signal_after_the_stop_is_ignored(self, watchdog_factory: Callable[..., Watchdog]) -> None:
        """Once the tree has stopped, a stop signal is logged as ignored and counts for nothing."""
        watchdog = watchdog_factory()
        async with watched(watchdog) as tree:
            await tree.shutdown()
            with capture_logs() as logs:
                signalled(watchdog, signal.SIGTERM)
        assert [(e["event"], e["reason"]) for e in logs] == [("signal.ignored", "the tree has stopped")]
        assert watchdog._signals == []

    async def test_the_thread_hands_a_real_signal_to_the_loop(self, watchdog_factory: Callable[..., Watchdog]) -> None:
        """on_signal (the signal handler) only queues; the thread takes it from there to the loop."""
        watchdog = watchdog_factory()
        with anyio.fail_after(30):
            async with watched(watchdog) as tree:
                await tree.ready()
                watchdog.on_signal(signal.SIGINT, None)
                report = await tree.wait()
        assert report.detail == "SIGINT received"

    async def test_a_first_signal_during_a_stop_says_it_changes_nothing(
        self, watchdog_factory: Callable[..., Watchdog]
    ) -> None:
        """The tree already stopping by itself: the first signal is logged as changing nothing, the second forces."""
        watchdog = watchdog_factory()
        with capture_logs() as logs, anyio.fail_after(30):
            async with watched(watchdog) as tree:
                await tree.ready()
                tree._request(StopReason.MAIN_EXITED, "the job returned")
                signalled(watchdog, signal.SIGTERM)
                await tree.wait()
        (first,) = [e for e in logs if e["event"] == "signal.received"]
        assert first["next"] == "already stopping; send the signal again (Ctrl-C) to force"


class TestOtherSignals:
    async def test_sighup_goes_to_the_reload_seam_when_there_is_one(
        self, watchdog_factory: Callable[..., Watchdog]
    ) -> None:
        """With an on_hangup hook, SIGHUP calls it in the loop and stops nothing."""
        reloaded = anyio.Event()
        trees: list[RunningTree] = []

        def on_hangup(tree: RunningTree) -> None:
            trees.append(tree)
            reloaded.set()

        watchdog = watchdog_factory(on_hangup=on_hangup)
        with anyio.fail_after(30):
            async with watched(watchdog) as tree:
                await tree.ready()
                watchdog.on_signal(signal.SIGHUP, None)
                await reloaded.wait()
                assert not tree.stop_requested
        assert trees == [tree]

    async def test_sigusr1_dumps_the_tree_in_the_loop(self, watchdog_factory: Callable[..., Watchdog]) -> None:
        """SIGUSR1 on a loop that runs: the dump is logged from the loop, with deadlines."""
        watchdog = watchdog_factory()
        with capture_logs() as logs, anyio.fail_after(30):
            async with watched(watchdog) as tree:
                await tree.ready()
                signalled(watchdog, signal.SIGUSR1)
                await anyio.wait_all_tasks_blocked()  # the loop has run the dump
        (dump,) = [e for e in logs if e["event"] == "tree.dump"]
        assert "loop_blocked" not in dump
        assert {c["component"] for c in dump["components"]} == {"app", "app/api"}

    async def test_an_error_in_a_reaction_is_reported_not_raised(
        self, watchdog_factory: Callable[..., Watchdog]
    ) -> None:
        """A reaction that raises is logged as signal.handling_failed; the loop and the tree go on."""

        def broken(_: RunningTree) -> None:
            raise RuntimeError("reload failed")

        watchdog = watchdog_factory(on_hangup=broken)
        with capture_logs() as logs, anyio.fail_after(30):
            async with watched(watchdog) as tree:
                await tree.ready()
                signalled(watchdog, signal.SIGHUP)
                await anyio.wait_all_tasks_blocked()  # the loop has run the reaction
                assert not tree.stop_requested
        assert [e["event"] for e in logs if e["event"] == "signal.handling_failed"] == ["signal.handling_failed"]


@pytest.fixture
def idle_watchdog(watchdog_factory: Callable[..., Watchdog]) -> Watchdog:
    """A watchdog whose thread has ended: its decisions are tested by calling them, nothing can end the process."""
    watchdog = watchdog_factory()
    watchdog.close()
    return watchdog


class TestDecisions:
    def test_no_deadline_before_a_stop(self, idle_watchdog: Watchdog) -> None:
        """Before any signal or stop there is nothing to wait for: no timeout, nothing due."""
        now = time.monotonic()
        assert idle_watchdog._timeout(now) is None
        assert idle_watchdog._due(now + 3600) is None

    def test_the_first_signal_sets_the_terminate_deadline(self, idle_watchdog: Watchdog) -> None:
        """From the first signal, the process must end graceful + forceful + terminate seconds later."""
        now = time.monotonic()
        idle_watchdog._received(signal.SIGTERM, now)
        total = ShutdownPolicy().total
        assert idle_watchdog._timeout(now) == pytest.approx(total)
        assert idle_watchdog._due(now + total - 0.1) is None
        assert idle_watchdog._due(now + total) == "the terminate deadline passed with components still running"

    def test_escalating_signals_bring_the_deadline_closer(self, idle_watchdog: Watchdog) -> None:
        """The third signal leaves at most a terminate budget, as an escalation of the tree would."""
        now = time.monotonic()
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGINT):
            idle_watchdog._received(signum, now)
        assert idle_watchdog._deadline() == pytest.approx(now + ShutdownPolicy().terminate)

    def test_a_stopped_tree_whose_loop_does_not_close(self, idle_watchdog: Watchdog) -> None:
        """Past the deadline after the tree stopped, the loop is what hangs, and the reason says so."""
        now = time.monotonic()
        idle_watchdog._received(signal.SIGTERM, now)
        idle_watchdog._tree_stopped()
        assert idle_watchdog._due(now + 3600) == "the terminate deadline passed while the event loop was closing"

    async def test_a_third_signal_on_a_loop_that_does_not_run_is_due_at_once(self, idle_watchdog: Watchdog) -> None:
        """Three signals whose reactions the loop has not run for a second: the process must end now."""
        async with watched(idle_watchdog) as tree:
            await tree.ready()
            for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGINT):
                signalled(idle_watchdog, signum)
            later = time.monotonic() + UNRESPONSIVE
            assert idle_watchdog._due(later) == "a third stop signal came while the event loop was blocked"
            await anyio.wait_all_tasks_blocked()  # the loop runs them: it was only busy
            assert idle_watchdog._due(later) is None
            await tree.wait()

    async def test_the_hard_exit_report_has_the_phase_the_loop_never_saw(self, idle_watchdog: Watchdog) -> None:
        """A report taken while the loop lags shows the stubborn component in the phase the signals asked for."""
        sup = Supervisor("app")
        draining = anyio.Event()

        @sup.component
        async def api(ctx: lifecycle.Context) -> None:
            ctx.ready()
            try:
                await anyio.sleep_forever()
            finally:
                with anyio.CancelScope(shield=True):
                    draining.set()
                    await anyio.sleep(0.2)  # nothing cuts this

        async with lifecycle.running(sup) as tree, anyio.create_task_group() as tasks:
            idle_watchdog.attach(tree)
            reacting = anyio.CancelScope()
            tasks.start_soon(idle_watchdog.react, reacting)
            signalled(idle_watchdog, signal.SIGTERM)
            await draining.wait()
            signalled(idle_watchdog, signal.SIGINT)
            signalled(idle_watchdog, signal.SIGINT)
            report = idle_watchdog._report_now(tree, time.monotonic())  # before the loop runs them
            await tree.wait()
            reacting.cancel()
        assert report.reason is StopReason.SIGNAL
        assert report["api"].outcome is lifecycle.Outcome.STUBBORN
        assert report["api"].phase is Phase.TERMINATE
        assert report.phase_ends is not None
        assert report.phase_ends[Phase.FORCEFUL] <= report.finished_at

    async def test_dump_tree_from_another_thread_has_no_deadlines(self) -> None:
        """dump_tree() from a thread (the watchdog's) lists states and stacks, without loop-clock deadlines."""
        async with lifecycle.running(service()) as tree:
            await tree.ready()
            tree._request(StopReason.REQUEST, "test")
            dump = await anyio.to_thread.run_sync(dump_tree, tree._instance)
        assert {c["component"] for c in dump} >= {"app"}
        assert all(c["remaining"] is None and c["phase"] is None for c in dump)


class TestEmbeddedDump:
    async def test_sigusr1_dumps_an_embedded_tree_with_its_deadlines(self) -> None:
        """running(signals=True): SIGUSR1 logs the dump from the loop; during a stop it has the deadlines."""
        draining = anyio.Event()
        sup = draining_api(draining)

        with capture_logs() as logs, anyio.fail_after(30):
            async with lifecycle.running(sup, signals=True) as tree:
                await tree.ready()
                tree.request_shutdown()
                await draining.wait()
                os.kill(os.getpid(), signal.SIGUSR1)  # its handler runs before os.kill returns
                await anyio.wait_all_tasks_blocked()  # and the loop has run the dump
                tree.escalate(Phase.FORCEFUL)
        (dump,) = [e for e in logs if e["event"] == "tree.dump"]
        api_entry = next(c for c in dump["components"] if c["component"] == "app/api")
        assert api_entry["phase"] == "GRACEFUL"
        assert set(api_entry["remaining"]) == {"GRACEFUL", "FORCEFUL", "TERMINATE"}


class TestConsoleDump:
    async def test_sigusr1_dump_on_a_console_is_an_indented_tree_with_stacks(self) -> None:
        """With a console renderer, tree.dump is a tree of text lines (one per component, stacks below), not a repr."""
        out = io.StringIO()
        structlog.configure(
            processors=[structlog.dev.ConsoleRenderer(colors=False)],
            logger_factory=structlog.PrintLoggerFactory(out),
        )
        sup = Supervisor("app")

        @sup.component
        async def db(ctx: lifecycle.Context) -> None:
            ctx.ready()
            await anyio.sleep_forever()

        @sup.component
        async def api(ctx: lifecycle.Context, db: None) -> None:
            ctx.ready()
            await anyio.sleep_forever()

        with anyio.fail_after(30):
            async with lifecycle.running(sup, signals=True) as tree:
                await tree.ready()
                os.kill(os.getpid(), signal.SIGUSR1)
                await anyio.wait_all_tasks_blocked()
        text = out.getvalue()
        dump = text[text.index("tree.dump") :].splitlines()
        assert "count=3" in dump[0]
        assert "\\n" not in dump[0]  # no escaped newlines: the stacks are lines of their own
        assert len(dump[0]) < 200
        assert dump[1] == "app: running"
        assert "  app/db: running" in dump
        assert "  app/api: running" in dump
        below_api = dump[dump.index("  app/api: running") + 1 :]
        assert any(line.startswith("      File ") and "in api" in line for line in below_api)

    def test_render_dump_shows_restarts_and_phase_deadlines(self) -> None:
        """A stopping component shows its phase and the seconds left until each phase ends; restarts are counted."""
        text = render_dump(
            [
                {"component": "app", "state": "stopping", "restarts": 0, "phase": None, "remaining": None, "stack": ""},
                {
                    "component": "app/api",
                    "state": "stopping",
                    "restarts": 2,
                    "phase": "GRACEFUL",
                    "remaining": {"GRACEFUL": 1.5, "FORCEFUL": 2.5, "TERMINATE": 3.5},
                    "stack": '  File "x.py", line 1, in api\n    await x\n',
                },
            ]
        )
        assert text.splitlines() == [
            "app: stopping",
            (
                "  app/api: stopping, 2 restarts, GRACEFUL phase "
                "(GRACEFUL ends in 1.5s; FORCEFUL ends in 2.5s; TERMINATE ends in 3.5s)"
            ),
            '      File "x.py", line 1, in api',
            "        await x",
        ]

    def test_render_dump_of_no_component_says_so(self) -> None:
        """A dump with nothing alive (the tree has just stopped) is one line that says so."""
        assert render_dump([]) == "(no live component)\n"
