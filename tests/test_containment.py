"""Containment of child processes on Linux: nothing a ProcessComponent starts outlives it (issue 19)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator, MutableMapping
from pathlib import Path
from typing import Any

import anyio
import attrs
import pytest
from childprocs import (  # noqa: F401 - no_leftover_children is an autouse fixture
    PY,
    new_children,
    no_leftover_children,
    open_beacon,
    our_children,
    script,
)
from structlog.testing import capture_logs

import lifecycle
from lifecycle import ContainmentError, Outcome, ProcessComponent, ReadyOnLine, ShutdownPolicy
from lifecycle._processes import _containment
from supervisors import Supervisor

pytestmark = [pytest.mark.skipif(sys.platform != "linux", reason="containment is Linux's"), pytest.mark.real_time]

ROOT = Path(__file__).resolve().parent.parent
SHORT = ShutdownPolicy(graceful=0.3, forceful=0.3, terminate=0.3)


def _writable_cgroup() -> str | None:
    """Why the cgroup mechanism cannot be tested here, or ``None`` if it can."""
    if _containment.cgroup_base() is None:
        return "no writable cgroup v2 for this process (cgroup v1 only, or a read-only cgroup)"
    return None


MECHANISMS = [
    pytest.param("tree", id="tree"),
    pytest.param(
        "cgroup",
        id="cgroup",
        marks=pytest.mark.skipif(_writable_cgroup() is not None, reason=str(_writable_cgroup())),
    ),
]


@pytest.fixture(params=MECHANISMS)
def mechanism(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Each test runs once per containment mechanism available here."""
    monkeypatch.setenv("LIFECYCLE_PROCESS_CONTAINMENT", request.param)
    return str(request.param)


def _state(pid: int) -> tuple[str, int] | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return None
    fields = stat[stat.rfind(b")") + 2 :].split()
    return fields[0].decode(), int(fields[1])


def alive(pid: int) -> bool:
    """Whether *pid* runs (a zombie has exited; one of ours is reaped on the way)."""
    state = _state(pid)
    if state is None:
        return False
    if state[0] == "Z":
        if state[1] == os.getpid():
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)
        return False
    return True


def wait_dead(pid: int, timeout: float) -> bool:
    """Wait until *pid* no longer runs; whether it stopped within *timeout*."""
    deadline = time.monotonic() + timeout
    while alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


@pytest.fixture
def survivors() -> Iterator[list[int]]:
    """Pids a test expects dead: any still running at the end is killed (the test has failed then)."""
    pids: list[int] = []
    yield pids
    for pid in pids:
        if pid not in {os.getpid(), os.getppid()} and alive(pid):
            os.kill(pid, signal.SIGKILL)
            wait_dead(pid, 5)


# The child starts a grandchild in a session of its own, which then waits.
SETSID_GRANDCHILD = """
import os, subprocess, sys, time
grandchild = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"], start_new_session=True)
beacon(f"{os.getpid()} {grandchild.pid}")
print("ready", flush=True)
time.sleep(120)
"""

# The classic daemon: fork, setsid, fork again, the middle one exits.
DOUBLE_FORK = """
import os, time
first = os.fork()
if first == 0:
    os.setsid()
    middle = os.getpid()
    if os.fork() == 0:
        beacon(f"{middle} {os.getpid()}")
        time.sleep(120)
        os._exit(0)
    os._exit(0)
os.waitpid(first, 0)
print("ready", flush=True)
time.sleep(120)
"""

# A daemon that drops the environment (and the containment id with it); its
# parent lives a moment before it exits, so only a record made meanwhile finds it.
HIDDEN_DAEMON = """
import os, subprocess, sys, time
code = "import os, time\\nif os.fork() == 0:\\n    os.setsid(); time.sleep(120)\\nelse:\\n    time.sleep(1.0)"
middle = subprocess.Popen([sys.executable, "-c", code], env={}, start_new_session=True)
time.sleep(0.5)
daemon = int(os.popen(f"pgrep -P {middle.pid}").read().split()[0])
middle.wait()
beacon(f"{middle.pid} {daemon}")
print("ready", flush=True)
time.sleep(120)
"""

# Child and setsid grandchild both ignore SIGTERM.
STUBBORN_PAIR = """
import os, signal, subprocess, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
code = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('in', flush=True); time.sleep(120)"
grandchild = subprocess.Popen([sys.executable, "-c", code], start_new_session=True, stdout=subprocess.PIPE)
grandchild.stdout.readline()
beacon(f"{os.getpid()} {grandchild.pid}")
print("ready", flush=True)
time.sleep(120)
"""


@attrs.frozen
class Run:
    """What a test's tree did: its report, its logs, the two pids the child reported and the stop's duration."""

    report: lifecycle.ShutdownReport
    logs: list[MutableMapping[str, Any]]
    first: int
    second: int
    took: float


async def run_child(code: str, monkeypatch: pytest.MonkeyPatch, survivors: list[int]) -> Run:
    """Run *code* as the tree's only child and stop the tree."""
    async with open_beacon(monkeypatch) as beacon:
        sup = Supervisor("root", policy=SHORT)
        sup.add(ProcessComponent(script(code), ready=ReadyOnLine("ready")), name="child")
        with capture_logs() as logs:
            async with lifecycle.running(sup) as tree:
                await tree.ready()
                first, second = map(int, (await beacon.receive()).split())
                survivors.extend((first, second))
                assert alive(second)
                began = time.monotonic()
                report = await tree.shutdown()
                took = time.monotonic() - began
    return Run(report, logs, first, second, took)


class TestDetached:
    async def test_a_setsid_grandchild_is_stopped(
        self, mechanism: str, monkeypatch: pytest.MonkeyPatch, survivors: list[int]
    ) -> None:
        """Problem 1: a grandchild in a session of its own is stopped with its parent, and the stop is clean."""
        run = await run_child(SETSID_GRANDCHILD, monkeypatch, survivors)
        assert not alive(run.first)
        assert not alive(run.second)
        assert new_children() == {}
        assert run.report.ok
        (contained,) = [e for e in run.logs if e["event"] == "process.contained"]
        assert contained["mechanism"] == mechanism
        assert run.report["child"].containment == mechanism
        assert run.report["child"].to_dict()["containment"] == mechanism

    @pytest.mark.usefixtures("mechanism")
    async def test_a_double_forked_daemon_is_stopped(
        self, monkeypatch: pytest.MonkeyPatch, survivors: list[int]
    ) -> None:
        """Problem 2: a daemon that forked twice and left the session is found and stopped."""
        run = await run_child(DOUBLE_FORK, monkeypatch, survivors)
        assert not alive(run.first)  # the middle process
        assert not alive(run.second)  # the daemon
        assert new_children() == {}
        assert run.report.ok

    @pytest.mark.usefixtures("mechanism")
    async def test_a_stubborn_child_and_grandchild_get_sigkill_at_terminate(
        self, monkeypatch: pytest.MonkeyPatch, survivors: list[int]
    ) -> None:
        """Child and setsid grandchild both ignore SIGTERM: both are killed when TERMINATE begins."""
        run = await run_child(STUBBORN_PAIR, monkeypatch, survivors)
        assert not alive(run.first)
        assert not alive(run.second)
        assert new_children() == {}
        assert 0.6 <= run.took < 10
        signals = [(e["signal"], e["phase"]) for e in run.logs if e["event"] == "process.signalled"]
        assert signals == [("SIGTERM", "GRACEFUL"), ("SIGKILL", "TERMINATE")]
        assert run.report["child"].outcome is Outcome.TERMINATED


class TestRecorded:
    async def test_a_detached_descendant_without_the_id_is_recorded_while_its_parent_lives(
        self, monkeypatch: pytest.MonkeyPatch, survivors: list[int]
    ) -> None:
        """A daemon with an empty environment, whose parent exits later, is known from a record: it is stopped."""
        monkeypatch.setenv("LIFECYCLE_PROCESS_CONTAINMENT", "tree")
        monkeypatch.setattr(_containment, "RECORD_INTERVAL", 0.1)
        run = await run_child(HIDDEN_DAEMON, monkeypatch, survivors)
        assert not alive(run.second)
        assert new_children() == {}
        assert run.report.ok


class TestParentDeathSignal:
    @pytest.mark.parametrize("anyio_backend", ["trio"])
    async def test_a_child_started_under_trio_outlives_the_forking_thread(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Trio forks in a worker thread that ends when idle: the child must not die with that thread."""
        import trio  # noqa: PLC0415 - only this test needs it

        monkeypatch.setattr(trio._core._thread_cache, "IDLE_TIMEOUT", 0.05)
        sup = Supervisor("root", policy=SHORT)
        sup.add(ProcessComponent(["sleep", "60"]), name="child")
        async with lifecycle.running(sup) as tree:
            await tree.ready()
            (status,) = [c for c in tree.components() if c.path == "root/child"]
            await anyio.sleep(0.5)  # the worker thread that forked has ended by now
            (again,) = [c for c in tree.components() if c.path == "root/child"]
            assert again.restarts == status.restarts == 0
            report = await tree.shutdown()
        assert report.ok
        assert report["child"].outcome is Outcome.GRACEFUL


class TestEscaped:
    async def test_a_descendant_that_cannot_be_signalled_fails_the_stop(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """A descendant that is not ours to signal is named in a ContainmentError: the report is not ok."""
        monkeypatch.setenv("LIFECYCLE_PROCESS_CONTAINMENT", "tree")
        real_kill = os.kill
        denied: list[int] = []

        def kill(pid: int, sig: int) -> None:
            if denied and pid == denied[0] and sig != 0:
                raise PermissionError(1, "Operation not permitted")
            real_kill(pid, sig)

        async with open_beacon(monkeypatch) as beacon:
            sup = Supervisor("root", policy=SHORT)
            sup.add(ProcessComponent(script(SETSID_GRANDCHILD), ready=ReadyOnLine("ready")), name="child")
            async with lifecycle.running(sup) as tree:
                await tree.ready()
                _, grandchild = map(int, (await beacon.receive()).split())
                denied.append(grandchild)
                monkeypatch.setattr(os, "kill", kill)
                try:
                    report = await tree.shutdown()
                finally:
                    monkeypatch.undo()
                    real_kill(grandchild, signal.SIGKILL)
                    wait_dead(grandchild, 5)
        assert not report.ok
        error = report["child"].error
        assert isinstance(error, ContainmentError)
        assert error.pids == (grandchild,)
        assert error.mechanism == "tree"


# A program run with `lifecycle.run()`: a child (and its setsid grandchild) that
# ignore SIGTERM and write their pids to PIDS; with BLOCK, a component blocks
# the loop during the stop, so only the hard exit can end the program.
PROGRAM = """
import os, sys, time, anyio, lifecycle
from supervisors import Supervisor

CHILD = '''
import os, signal, subprocess, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
code = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('in', flush=True); time.sleep(120)"
grandchild = subprocess.Popen([sys.executable, "-c", code], start_new_session=True, stdout=subprocess.PIPE)
grandchild.stdout.readline()
with open(sys.argv[1] + ".tmp", "w") as file:
    file.write(f"{os.getpid()} {grandchild.pid}")
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
time.sleep(120)
'''

tree = Supervisor("svc", policy=lifecycle.ShutdownPolicy(graceful=0.3, forceful=0.3, terminate=0.3))
tree.add(lifecycle.ProcessComponent([sys.executable, "-c", CHILD, sys.argv[1]]), name="child")

@tree.component
async def blocker(ctx: lifecycle.Context) -> None:
    ctx.ready()
    await ctx.stopping.wait()
    if os.environ.get("BLOCK"):
        time.sleep(120)

lifecycle.run(tree)
"""


def start_program(tmp_path: Path, *, block: bool) -> tuple[subprocess.Popen[bytes], int, int]:
    program = tmp_path / "program.py"
    program.write_text(textwrap.dedent(PROGRAM))
    pids = tmp_path / "pids"
    env = {key: value for key, value in os.environ.items() if not key.startswith("LIFECYCLE_")}
    env.update(PYTHONPATH=str(ROOT), LIFECYCLE_LOG_FORMAT="json", BLOCK="1" if block else "")
    proc = subprocess.Popen([PY, str(program), str(pids)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while not pids.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            out = proc.communicate()[0].decode()
            pytest.fail(f"the program never started its child:\n{out}")
        time.sleep(0.05)
    child, grandchild = map(int, pids.read_text().split())
    return proc, child, grandchild


class TestServiceDeath:
    def test_the_hard_exit_kills_the_child_and_its_descendants(self, tmp_path: Path, survivors: list[int]) -> None:
        """Problem 3: the loop is blocked past TERMINATE; the hard exit kills child and setsid grandchild."""
        proc, child, grandchild = start_program(tmp_path, block=True)
        survivors.extend((child, grandchild))
        proc.send_signal(signal.SIGTERM)
        out = proc.communicate(timeout=60)[0].decode()
        assert proc.returncode == lifecycle.ExitCode.TERMINATED, out
        assert wait_dead(child, 2), out
        assert wait_dead(grandchild, 2), out
        assert "svc/child" in out  # the report was written

    def test_sigkill_of_the_service_kills_its_child(self, tmp_path: Path, survivors: list[int]) -> None:
        """Problem 4: the service is killed with SIGKILL; its child is gone within 2 s (parent-death signal)."""
        proc, child, grandchild = start_program(tmp_path, block=False)
        survivors.extend((child, grandchild))
        proc.kill()
        proc.communicate(timeout=60)
        assert wait_dead(child, 2)
        # Its own descendants outlive it, unless a cgroup holds them: the next
        # service ends them (systemd would end the whole service's cgroup).
        base = _containment.cgroup_base()
        if base is not None:
            assert [folder.name for folder in _containment.remove_stale(base)] == [f"lifecycle-{proc.pid}-0"]
            assert wait_dead(grandchild, 2)
