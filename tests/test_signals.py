"""Signals under run() and running(signals=True): storms, SIGHUP, handlers put back."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
import structlog
from childprocs import is_dead, wait_gone
from helpers import draining_api, start_lifecycle

import lifecycle
from lifecycle import ExitCode, StopReason
from lifecycle._host._signals import STOP_SIGNALS, handling_signals, stop_step
from supervisors import Supervisor

ROOT = Path(__file__).resolve().parent.parent
BACKENDS = ["asyncio", "trio"]

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGHUP"), reason="POSIX signals")

STORMY = """
import os
import anyio, lifecycle
from supervisors import Supervisor

FLUSH = float(os.environ["TEST_FLUSH"])

tree = Supervisor("svc")

@tree.component
async def db(ctx: lifecycle.Context):
    yield "db"
    print("stopping", flush=True)
    with ctx.shielded():
        await anyio.sleep(0.5)
    with anyio.CancelScope(shield=True):  # a last flush that no escalation cuts
        await anyio.sleep(FLUSH)

@tree.component
async def api(ctx: lifecycle.Context, db: str) -> None:
    print("starting", flush=True)
    await anyio.sleep(0.5)
    ctx.ready()
    print("ready", flush=True)
    await anyio.sleep_forever()
"""

CHILD = """
import anyio, lifecycle
from lifecycle import ProcessComponent
from supervisors import Supervisor

tree = Supervisor("svc")
tree.add(ProcessComponent(["sleep", "60"]), name="child")

@tree.component(depends_on=("child",))
async def api(ctx: lifecycle.Context) -> None:
    ctx.ready()
    print("ready", flush=True)
    await anyio.sleep_forever()
"""


@pytest.fixture(autouse=True)
def _fresh_structlog() -> Iterator[None]:
    """run() configures structlog when nobody did; give each test a clean slate."""
    structlog.reset_defaults()
    yield
    structlog.reset_defaults()


def wait_for_line(proc: subprocess.Popen[str], text: str) -> None:
    """Read the child's stdout until a line says *text* (its readiness lines)."""
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.strip() == text:
            return
    pytest.fail(f"{text!r} never appeared on stdout; stderr:\n{proc.communicate()[1]}")


def events_of(err: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in err.splitlines() if line.startswith("{")]


class TestStorms:
    @pytest.mark.parametrize("backend", BACKENDS)
    @pytest.mark.parametrize(
        "burst",
        [(signal.SIGINT, 6, 0.002), (signal.SIGTERM, 4, 0.02)],
        ids=["6xSIGINT-2ms", "4xSIGTERM-20ms"],
    )
    @pytest.mark.parametrize("when", ["starting", "running", "stopping"])
    @pytest.mark.parametrize("flush", ["0", "0.3"], ids=["stop-ends-mid-burst", "stop-outlasts-burst"])
    def test_a_burst_of_signals_never_kills_the_process(
        self,
        tmp_path: Path,
        backend: str,
        burst: tuple[signal.Signals, int, float],
        when: str,
        flush: str,
    ) -> None:
        """
        A burst during start, while running or during the stop never kills the process; the report is written.

        Three signals escalate, the rest are logged as ignored. With no last
        flush, the escalation ends the stop in the middle of the burst, and the
        rest of it lands while the report is written or after.
        """
        signum, count, gap = burst
        (tmp_path / "stormy.py").write_text(textwrap.dedent(STORMY))
        report = tmp_path / "r.json"
        sent = count
        args = ("run", "stormy:tree", "--backend", backend, "--report-json", str(report))
        with start_lifecycle(tmp_path, *args, TEST_FLUSH=flush) as proc:
            wait_for_line(proc, "starting" if when == "starting" else "ready")
            if when == "stopping":
                proc.send_signal(signal.SIGTERM)
                wait_for_line(proc, "stopping")
                sent += 1
            for _ in range(count):
                proc.send_signal(signum)
                time.sleep(gap)  # the storm's own rhythm, not an ordering
            _, err = proc.communicate(timeout=60)
        assert proc.returncode in {ExitCode.OK, ExitCode.CUT_OFF}, err
        assert "KeyboardInterrupt" not in err
        assert "Traceback" not in err
        events = events_of(err)
        received = [e["phase"] for e in events if e["event"] == "signal.received"]
        ignored = [e for e in events if e["event"] == "signal.ignored"]
        assert {e["reason"] for e in ignored} <= {"already terminating", "the tree has stopped"}
        if flush == "0":
            assert received in (["GRACEFUL", "FORCEFUL"], ["GRACEFUL", "FORCEFUL", "TERMINATE"])
        else:
            assert received == ["GRACEFUL", "FORCEFUL", "TERMINATE"]
            # Not every later signal need be seen: CPython runs a Python-level handler once
            # for all the deliveries of a signal that arrive before the main thread gets to
            # it (signalmodule.c: trip_signal() only sets the handler's "tripped" flag), so
            # 2 ms apart on a busy machine several SIGINTs can count as one.
            assert len(ignored) <= sent - 3
        data = json.loads(report.read_text())
        assert data["reason"] == "signal"
        assert {c["path"] for c in data["components"]} == {"svc", "svc/db", "svc/api"}

    def test_a_burst_on_uvloop(self, tmp_path: Path) -> None:
        """uvloop, which reads the signal wakeup fd itself, sees the same burst the same way."""
        pytest.importorskip("uvloop")
        (tmp_path / "stormy.py").write_text(textwrap.dedent(STORMY))
        report = tmp_path / "r.json"
        with start_lifecycle(
            tmp_path, "run", "stormy:tree", "--uvloop", "--report-json", str(report), TEST_FLUSH="0.3"
        ) as proc:
            wait_for_line(proc, "ready")
            for _ in range(6):
                proc.send_signal(signal.SIGINT)
                time.sleep(0.002)
            _, err = proc.communicate(timeout=60)
        assert proc.returncode in {ExitCode.OK, ExitCode.CUT_OFF}, err
        assert "Traceback" not in err
        assert [e["event"] for e in events_of(err)].count("signal.received") == 3
        assert json.loads(report.read_text())["reason"] == "signal"


class TestHangup:
    @pytest.mark.parametrize("backend", BACKENDS)
    def test_sighup_stops_in_order_and_the_child_process_is_gone(self, tmp_path: Path, backend: str) -> None:
        """SIGHUP (the terminal closed) stops the tree gracefully: exit 0, the `sleep 60` child is gone."""
        (tmp_path / "withchild.py").write_text(textwrap.dedent(CHILD))
        with start_lifecycle(tmp_path, "run", "withchild:tree", "--backend", backend) as proc:
            wait_for_line(proc, "ready")
            proc.send_signal(signal.SIGHUP)
            _, err = proc.communicate(timeout=60)
        assert proc.returncode == ExitCode.OK, err
        events = events_of(err)
        (started,) = [e for e in events if e["event"] == "process.started"]
        names = [e["event"] for e in events]
        assert names.index("signal.received") < names.index("process.signalled") < names.index("tree.stopped")
        assert "signal (SIGHUP received)" in err
        assert re.search(r"svc/child +NORMAL +graceful", err)
        assert is_dead(started["pid"])
        wait_gone(started["pid"])


class TestHandlers:
    def test_run_puts_the_previous_handlers_back(self) -> None:
        """After run() returns, each handled signal has the handler it had before."""
        before = {signum: signal.getsignal(signum) for signum in (*STOP_SIGNALS, signal.SIGUSR1)}
        sup = Supervisor("job")

        @sup.component(main=True)
        async def work() -> None:
            assert signal.getsignal(signal.SIGTERM) is not before[signal.SIGTERM]

        assert lifecycle.run(sup).clean
        assert {signum: signal.getsignal(signum) for signum in before} == before

    def test_without_signals_the_handlers_are_left_alone(self) -> None:
        """run(signals=False) never touches the signal handlers."""
        sup = Supervisor("job")
        seen: list[object] = []

        @sup.component(main=True)
        async def work() -> None:
            seen.append(signal.getsignal(signal.SIGTERM))

        before = signal.getsignal(signal.SIGTERM)
        assert lifecycle.run(sup, signals=False).clean
        assert seen == [before]

    def test_signal_handling_needs_the_main_thread(self, capsys: pytest.CaptureFixture[str]) -> None:
        """run() in another thread with signals on is a usage error (exit 2) that says what to do."""
        sup = Supervisor("job")

        @sup.component(main=True)
        async def work() -> None:
            pass

        codes: list[object] = []

        def in_thread() -> None:
            try:
                lifecycle.run(sup)
            except SystemExit as exc:
                codes.append(exc.code)

        thread = threading.Thread(target=in_thread)
        thread.start()
        thread.join()
        assert codes == [ExitCode.USAGE]
        assert "pass `signals=False`" in capsys.readouterr().err

    def test_an_ignored_sighup_stays_ignored(self) -> None:
        """Under nohup (SIGHUP ignored), the handling leaves SIGHUP ignored and takes SIGTERM."""
        before = (signal.getsignal(signal.SIGHUP), signal.getsignal(signal.SIGTERM))
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        try:
            with handling_signals([signal.SIGHUP, signal.SIGTERM], lambda *_: None):
                assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
                assert signal.getsignal(signal.SIGTERM) is not before[1]
            assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
            assert signal.getsignal(signal.SIGTERM) is before[1]
        finally:
            signal.signal(signal.SIGHUP, before[0])

    def test_then_ignore_leaves_the_signals_ignored(self) -> None:
        """With then_ignore, the signals are ignored after the block (a command about to exit)."""
        before = signal.getsignal(signal.SIGHUP)
        try:
            with handling_signals([signal.SIGHUP], lambda *_: None, then_ignore=True):
                pass
            assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
        finally:
            signal.signal(signal.SIGHUP, before)


def test_each_stop_signal_has_one_step() -> None:
    """The first three stop signals are GRACEFUL, FORCEFUL, TERMINATE; the rest have no step."""
    assert [step[0] for step in map(stop_step, (1, 2, 3)) if step is not None] == list(lifecycle.Phase)
    assert stop_step(4) is None
    assert stop_step(0) is None


class TestEmbedded:
    async def test_running_with_signals_stops_on_sighup_and_restores_handlers(self) -> None:
        """running(signals=True): SIGHUP stops the tree (reason signal); the previous handler is back after."""
        inherited = signal.signal(signal.SIGHUP, signal.SIG_DFL)  # the tests may run under nohup
        sup = Supervisor("app")

        @sup.component
        async def api(ctx: lifecycle.Context) -> None:
            ctx.ready()
            await anyio.sleep_forever()

        try:
            with anyio.fail_after(30):
                async with lifecycle.running(sup, signals=True) as tree:
                    await tree.ready()
                    assert signal.getsignal(signal.SIGHUP) is not signal.SIG_DFL
                    os.kill(os.getpid(), signal.SIGHUP)
                    report = await tree.wait()
            assert signal.getsignal(signal.SIGHUP) is signal.SIG_DFL
        finally:
            signal.signal(signal.SIGHUP, inherited)
        assert report.reason is StopReason.SIGNAL
        assert report.detail == "SIGHUP received"

    async def test_running_with_signals_escalates_on_the_second(self) -> None:
        """The second stop signal escalates the embedded tree's stop to FORCEFUL, cutting a drain."""
        draining = anyio.Event()
        sup = draining_api(draining)

        with anyio.fail_after(30):
            async with lifecycle.running(sup, signals=True) as tree:
                await tree.ready()
                os.kill(os.getpid(), signal.SIGTERM)
                await draining.wait()
                os.kill(os.getpid(), signal.SIGINT)
                report = await tree.wait()
        assert report["api"].phase is lifecycle.Phase.FORCEFUL
        assert not report.clean
