"""A blocked event loop cannot hold a process run by run() hostage: signals and deadlines still end it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
from childprocs import wait_gone

from lifecycle import ExitCode

ROOT = Path(__file__).resolve().parent.parent
BACKENDS = ["asyncio", "trio"]

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGUSR1"), reason="POSIX signals")

# A component that blocks the loop once it is ready: a blocking call or a busy loop.
BLOCKING = """
import os, time
import anyio, lifecycle
from supervisors import Supervisor

tree = Supervisor("svc")
tree.add(lifecycle.ProcessComponent(["sleep", "600"]), name="child")

@tree.component
async def db():
    yield "db"

@tree.component(depends_on=("child",))
async def blocker(ctx: lifecycle.Context, db: str) -> None:
    ctx.ready()
    print("ready", flush=True)
    if os.environ["TEST_BLOCK"] == "sleep":
        time.sleep(600)  # THE BLOCKING CALL
    else:
        spins = 0
        while spins >= 0:  # THE BUSY LOOP
            spins += 1
"""

CULPRIT = {"sleep": "time.sleep(600)  # THE BLOCKING CALL", "busy": "while spins >= 0:  # THE BUSY LOOP"}


def run_blocked(
    tmp_path: Path,
    backend: str,
    block: str,
    signals: list[signal.Signals],
    budget: str,
) -> tuple[subprocess.Popen[str], float, str, list[dict[str, Any]], Path]:
    """
    Run the blocking tree with `lifecycle run`, send *signals* once it is ready; return how it ended.

    Returns the process, the seconds from the first signal to its end, its stderr,
    its JSON log events and the path of its --report-json.
    """
    (tmp_path / "blocking.py").write_text(textwrap.dedent(BLOCKING))
    report = tmp_path / "r.json"
    env = {
        **os.environ,
        "PYTHONPATH": f"{ROOT}{os.pathsep}{tmp_path}",
        "LIFECYCLE_LOG_FORMAT": "json",
        "LIFECYCLE_GRACEFUL_TIMEOUT": budget,
        "LIFECYCLE_FORCEFUL_TIMEOUT": budget,
        "LIFECYCLE_TERMINATE_TIMEOUT": budget,
        "TEST_BLOCK": block,
    }
    args = [sys.executable, "-m", "lifecycle", "run", "blocking:tree", "--backend", backend]
    with subprocess.Popen(
        [*args, "--report-json", str(report)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as proc:
        assert proc.stdout is not None
        try:
            assert proc.stdout.readline().strip() == "ready"
            began = time.monotonic()
            for signum in signals:
                proc.send_signal(signum)
                time.sleep(0.05)  # three separate signals, not one coalesced
            _, err = proc.communicate(timeout=60)
        finally:
            proc.kill()
        took = time.monotonic() - began
    events = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    return proc, took, err, events, report


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("block", ["sleep", "busy"])
class TestBlockedLoop:
    def test_one_sigterm_ends_it_at_the_terminate_deadline(self, tmp_path: Path, backend: str, block: str) -> None:
        """SIGTERM while the loop is blocked: exit 3 at the deadline (1+1+1 s), with the blocking stack, the report."""
        proc, took, err, events, report = run_blocked(tmp_path, backend, block, [signal.SIGTERM], budget="1")
        assert proc.returncode == ExitCode.TERMINATED, err
        assert 2.5 < took < 20
        (terminated,) = [e for e in events if e["event"] == "tree.terminated"]
        assert terminated["reason"] == "the terminate deadline passed with components still running"
        assert terminated["loop_blocked"] is True
        (stack,) = [e for e in events if e["event"] == "loop.stack"]
        assert CULPRIT[block] in stack["stack"]
        assert stack["component"] == "svc/blocker"
        assert "Shutdown of 'svc': signal (SIGTERM received)" in err
        data = json.loads(report.read_text())
        assert data["reason"] == "signal"
        assert {c["path"]: c["outcome"] for c in data["components"]}["svc/blocker"] == "stubborn"
        (child,) = [e["pid"] for e in events if e["event"] == "process.started"]
        assert [e["pid"] for e in events if e["event"] == "process.killed"] == [child]
        wait_gone(child)

    def test_three_signals_end_it_at_once(self, tmp_path: Path, backend: str, block: str) -> None:
        """SIGTERM, SIGINT, SIGINT while the loop is blocked: exit 3 well before the 15 s budget, report written."""
        signals = [signal.SIGTERM, signal.SIGINT, signal.SIGINT]
        proc, took, err, events, report = run_blocked(tmp_path, backend, block, signals, budget="5")
        assert proc.returncode == ExitCode.TERMINATED, err
        assert took < 7
        assert [e["phase"] for e in events if e["event"] == "signal.received"] == ["GRACEFUL", "FORCEFUL", "TERMINATE"]
        (terminated,) = [e for e in events if e["event"] == "tree.terminated"]
        assert terminated["reason"] == "a third stop signal came while the event loop was blocked"
        assert CULPRIT[block] in next(e for e in events if e["event"] == "loop.stack")["stack"]
        assert "KeyboardInterrupt" not in err
        assert json.loads(report.read_text())["reason"] == "signal"


@pytest.mark.parametrize("backend", BACKENDS)
def test_sigusr1_dumps_a_blocked_tree_from_the_watchdog(tmp_path: Path, backend: str) -> None:
    """SIGUSR1 while the loop is blocked: the watchdog thread logs the dump (the loop cannot), flagged loop_blocked."""
    (tmp_path / "blocking.py").write_text(textwrap.dedent(BLOCKING))
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{tmp_path}", "LIFECYCLE_LOG_FORMAT": "json"}
    args = [sys.executable, "-m", "lifecycle", "run", "blocking:tree", "--backend", backend]
    with subprocess.Popen(
        args, cwd=tmp_path, env={**env, "TEST_BLOCK": "sleep"}, stderr=subprocess.PIPE, text=True
    ) as proc:
        assert proc.stderr is not None
        try:
            events = (json.loads(line) for line in proc.stderr if line.startswith("{"))
            next(e for e in events if e["event"] == "loop.blocked")  # blocked for a second now
            proc.send_signal(signal.SIGUSR1)
            dump = next(e for e in events if e["event"] == "tree.dump")
            for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGINT):
                proc.send_signal(signum)
                time.sleep(0.05)  # three separate signals, not one coalesced
            proc.communicate(timeout=60)
        finally:
            proc.kill()
    assert proc.returncode == ExitCode.TERMINATED
    assert dump["loop_blocked"] is True
    stacks = {c["component"]: c["stack"] for c in dump["components"]}
    assert set(stacks) == {"svc", "svc/db", "svc/child", "svc/blocker"}


EXECUTOR = """
import asyncio, time
import lifecycle
from supervisors import Supervisor

tree = Supervisor("svc")

@tree.component
async def worker(ctx: lifecycle.Context) -> None:
    ctx.ready()
    print("ready", flush=True)
    # Cancelling the await leaves the thread sleeping: asyncio waits for it when the loop closes.
    await asyncio.get_running_loop().run_in_executor(None, time.sleep, 600)
"""


def test_a_loop_that_cannot_close_is_ended_at_the_deadline(tmp_path: Path) -> None:
    """The tree stopped, but asyncio waits for a default-executor thread: the deadline still ends the process."""
    (tmp_path / "executor.py").write_text(textwrap.dedent(EXECUTOR))
    env = {
        **os.environ,
        "PYTHONPATH": f"{ROOT}{os.pathsep}{tmp_path}",
        "LIFECYCLE_LOG_FORMAT": "json",
        "LIFECYCLE_GRACEFUL_TIMEOUT": "1",
        "LIFECYCLE_FORCEFUL_TIMEOUT": "1",
        "LIFECYCLE_TERMINATE_TIMEOUT": "1",
    }
    args = [sys.executable, "-m", "lifecycle", "run", "executor:tree", "--report-json", str(tmp_path / "r.json")]
    with subprocess.Popen(
        args, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as proc:
        assert proc.stdout is not None
        try:
            assert proc.stdout.readline().strip() == "ready"
            proc.send_signal(signal.SIGTERM)
            _, err = proc.communicate(timeout=60)
        finally:
            proc.kill()
    assert proc.returncode == ExitCode.TERMINATED, err
    events = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    (terminated,) = [e for e in events if e["event"] == "tree.terminated"]
    assert terminated["reason"] == "the terminate deadline passed while the event loop was closing"
    assert terminated["stubborn"] == []
    assert json.loads((tmp_path / "r.json").read_text())["components"][0]["outcome"] == "graceful"
