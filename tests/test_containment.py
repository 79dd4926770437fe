"""Containment of child processes on Linux: nothing a ProcessComponent starts outlives it (issue 19)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator, MutableMapping
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
    reap_adopted,
    script,
)
from structlog.testing import capture_logs

import lifecycle
from lifecycle import ContainmentError, Outcome, ProcessComponent, ReadyOnLine, ShutdownPolicy
from lifecycle._processes import _containment, _guardian_process
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

lifecycle.run(tree, backend=sys.argv[2])
"""


def start_program(
    tmp_path: Path, *, block: bool, backend: str = "asyncio", mechanism: str = "auto"
) -> tuple[subprocess.Popen[bytes], int, int]:
    program = tmp_path / "program.py"
    program.write_text(textwrap.dedent(PROGRAM))
    pids = tmp_path / "pids"
    env = {key: value for key, value in os.environ.items() if not key.startswith("LIFECYCLE_")}
    env.update(
        PYTHONPATH=str(ROOT),
        LIFECYCLE_LOG_FORMAT="json",
        LIFECYCLE_PROCESS_CONTAINMENT=mechanism,
        BLOCK="1" if block else "",
    )
    proc = subprocess.Popen(
        [PY, str(program), str(pids), backend], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
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
        reap_adopted()

    @pytest.mark.parametrize("backend", ["asyncio", "trio"])
    def test_sigkill_of_the_service_kills_its_child_and_descendants(
        self, tmp_path: Path, survivors: list[int], backend: str, mechanism: str
    ) -> None:
        """
        Problem 4: the service is killed with SIGKILL; its child and the child's setsid grandchild are gone within 2 s.

        On Trio too, where the fork happens in a worker thread and no parent-death
        signal can follow the process: the guardian ends them.
        """
        proc, child, grandchild = start_program(tmp_path, block=False, backend=backend, mechanism=mechanism)
        survivors.extend((child, grandchild))
        proc.kill()
        proc.communicate(timeout=60)
        assert wait_dead(child, 2)
        assert wait_dead(grandchild, 2)
        base = _containment.cgroup_base()
        if mechanism == "cgroup" and base is not None:
            # The guardian removed the dead service's cgroup: nothing is left for the next service.
            assert _wait_removed(base / f"lifecycle-{proc.pid}-0", 2)
        reap_adopted()


def _wait_removed(folder: Path, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while folder.exists():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


COMMAND_PROGRAM = """
import sys, anyio, lifecycle

async def main() -> None:
    await lifecycle.run_command([sys.executable, "-c", CODE], timeout=None)

CODE = "import os, pathlib, sys, time; pathlib.Path(sys.argv[0] + 'x').write_text(str(os.getpid())); time.sleep(120)"
CODE = CODE.replace("sys.argv[0] + 'x'", repr(sys.argv[1]))
anyio.run(main, backend=sys.argv[2])
"""


class TestCommandOfAKilledService:
    @pytest.mark.parametrize("backend", ["asyncio", "trio"])
    def test_sigkill_of_the_service_kills_a_running_command(
        self, tmp_path: Path, survivors: list[int], backend: str
    ) -> None:
        """A run_command() command dies with its service's SIGKILL, on Trio too (the guardian kills its group)."""
        program = tmp_path / "program.py"
        program.write_text(textwrap.dedent(COMMAND_PROGRAM))
        pid_file = tmp_path / "pid"
        env = {key: value for key, value in os.environ.items() if not key.startswith("LIFECYCLE_")}
        env.update(PYTHONPATH=str(ROOT))
        proc = subprocess.Popen([PY, str(program), str(pid_file), backend], env=env)
        deadline = time.monotonic() + 60
        while not pid_file.exists() or not pid_file.read_text():
            assert proc.poll() is None, "the program ended before its command started"
            assert time.monotonic() < deadline, "the command never started"
            time.sleep(0.02)
        command = int(pid_file.read_text())
        survivors.append(command)
        time.sleep(0.2)  # under Trio, the worker thread that forked it may end meanwhile: no matter
        proc.kill()
        proc.wait(timeout=60)
        assert wait_dead(command, 2)
        reap_adopted()


class TestGuardianSweep:
    """The guardian's sweep, run in this process against real processes."""

    def _spawn(self, env: dict[str, str] | None = None, *, session: bool = True) -> subprocess.Popen[bytes]:
        return subprocess.Popen([PY, "-c", "import time; time.sleep(60)"], env=env, start_new_session=session)

    def test_lines_it_does_not_understand_are_ignored(self) -> None:
        """Malformed lines change nothing; `end` forgets a containment entirely."""
        owned = _guardian_process.Owned()
        for line in ("", "root", "root k x 1", "pid k 1", "token", "token a b", "cgroup k", "what k 1 2"):
            owned.apply(line)
        assert owned.empty()
        owned.apply("token k")
        owned.apply("root k 10 20")
        owned.apply("pid k 11 21")
        owned.apply("cgroup k /sys/fs/cgroup/a b")
        assert owned.cgroups == {"k": "/sys/fs/cgroup/a b"}
        owned.apply("end k")
        assert owned.empty()

    def test_it_kills_what_is_owned_and_nothing_else(self, survivors: list[int]) -> None:
        """By containment id, by recorded pid and start time, by a root's process group; a stranger lives."""
        env = dict(os.environ, LIFECYCLE_CONTAINMENT_ID="feed")
        by_token = self._spawn(env)
        by_pid = self._spawn()
        root = self._spawn()
        stranger = self._spawn()
        procs = (by_token, by_pid, root, stranger)
        survivors.extend(p.pid for p in procs)
        try:
            wait_for(lambda: all(_containment.start_time(p.pid) for p in procs))
            owned = _guardian_process.Owned()
            owned.apply("token feed")
            owned.apply(f"pid k {by_pid.pid} {_containment.start_time(by_pid.pid)}")
            owned.apply(f"root r {root.pid} {_containment.start_time(root.pid)}")
            # A recorded pid whose start time differs is another process that got the pid: spared.
            owned.apply(f"pid k {stranger.pid} 1")
            assert _guardian_process.sweep(owned) == 3
            for proc in (by_token, by_pid, root):
                assert proc.wait(timeout=5) == -signal.SIGKILL
            assert stranger.poll() is None
        finally:
            for proc in procs:
                proc.kill()
                proc.wait()

    def test_it_follows_the_service_until_the_pipe_closes(self) -> None:
        """What the service writes is applied line by line; a closed pipe ends the following."""
        service = self._spawn()
        read, write = os.pipe()
        try:
            watched = _guardian_process.watch(service.pid, lambda: service.pid)
            assert watched is not None
            os.write(write, b"token k\nroot k 10 ")
            os.write(write, b"20\n")
            os.close(write)
            owned = _guardian_process.Owned()
            _guardian_process.follow(watched, owned, read)
            assert owned.roots == {"k": {10: 20}}
            os.close(watched)
        finally:
            os.close(read)
            service.kill()
            service.wait()

    def test_the_death_of_the_service_ends_the_following_with_what_it_wrote(self) -> None:
        """The service dies with the pipe still open (a forked copy holds it): its last lines still count."""
        service = self._spawn()
        read, write = os.pipe()
        try:
            watched = _guardian_process.watch(service.pid, lambda: service.pid)
            assert watched is not None
            os.write(write, b"token k\n")
            service.kill()
            service.wait()
            owned = _guardian_process.Owned()
            _guardian_process.follow(watched, owned, read)
            assert not owned.empty()
            os.close(watched)
        finally:
            os.close(read)
            os.close(write)

    def test_a_service_that_is_not_its_parent_is_not_watched(self) -> None:
        """The service died (and its pid went to another process) before the guardian could watch it."""
        service = self._spawn()
        try:
            assert _guardian_process.watch(service.pid, lambda: 1) is None
        finally:
            service.kill()
            service.wait()
        assert _guardian_process.watch(service.pid, lambda: service.pid) is None  # reaped: no such process

    def test_ending_everything_kills_the_processes_and_removes_the_cgroups(self, survivors: list[int]) -> None:
        """end_all(): SIGKILL in rounds, cgroup.kill, then the cgroups are removed (where a cgroup can be made)."""
        owned_process = self._spawn()
        survivors.append(owned_process.pid)
        base = _containment.cgroup_base()
        folder = None if base is None else base / f"lifecycle-{os.getpid()}-guardian-test"
        try:
            wait_for(lambda: _containment.start_time(owned_process.pid) is not None)
            owned = _guardian_process.Owned()
            owned.apply(f"pid k {owned_process.pid} {_containment.start_time(owned_process.pid)}")
            if folder is not None:
                folder.mkdir()
                owned.apply(f"cgroup k {folder}")
            _guardian_process.end_all(owned)
            assert owned_process.wait(timeout=5) == -signal.SIGKILL
            assert folder is None or not folder.exists()
        finally:
            owned_process.kill()
            owned_process.wait()
            if folder is not None and folder.exists():
                folder.rmdir()


def wait_for(condition: Callable[[], bool], timeout: float = 5) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline
        time.sleep(0.01)
