"""run_command(): exit status and output, timeouts and cancellation that kill the whole group."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
import time

import anyio
import pytest
from childprocs import (  # noqa: F401 - no_leftover_children is an autouse fixture
    PY,
    is_dead,
    no_leftover_children,
    open_beacon,
    script,
)

from lifecycle import CommandResult, CommandTimeoutError, ConfigurationError, run_command

# systemd's per-service variables, which describe this process and never a child.
SERVICE_VARIABLES = ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES")

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="process groups and /proc are checked on Linux")

# Starts a grandchild that ignores SIGTERM, reports both pids, then hangs.
HANGS_WITH_GRANDCHILD = """
import os, subprocess, sys, time
grandchild = subprocess.Popen(
    [sys.executable, "-c", "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)"]
)
print(os.getpid(), grandchild.pid, flush=True)
if "TEST_BEACON" in os.environ:
    beacon(f"{os.getpid()} {grandchild.pid}")
time.sleep(60)
"""


class TestRunCommand:
    async def test_returns_exit_code_and_output(self) -> None:
        """The result holds the exit code and everything written to stdout and stderr."""
        code = "import sys; print('out'); print('err', file=sys.stderr); sys.exit(3)"
        result = await run_command([PY, "-c", code], timeout=30)
        assert result == CommandResult((PY, "-c", code), 3, b"out\n", b"err\n")

    async def test_input_is_written_to_stdin(self) -> None:
        """*input* is the command's stdin."""
        result = await run_command([PY, "-c", "import sys; print(sys.stdin.read()[::-1])"], timeout=30, input=b"abc")
        assert (result.returncode, result.stdout) == (0, b"cba\n")

    async def test_input_not_read_is_not_an_error(self) -> None:
        """A command that exits without reading its input still returns its result."""
        result = await run_command([PY, "-c", "pass"], timeout=30, input=b"x" * (1024 * 1024))
        assert result.returncode == 0

    async def test_env_and_cwd(self, tmp_path: object) -> None:
        """*env* is the whole environment and *cwd* the working directory."""
        code = "import os; print(os.getcwd(), os.environ.get('ONLY'), 'PATH' in os.environ)"
        result = await run_command([PY, "-c", code], timeout=30, env={"ONLY": "1"}, cwd=str(tmp_path))
        assert result.stdout.decode().split() == [str(tmp_path), "1", "False"]

    async def test_service_variables_are_not_inherited(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Without *env*, the command does not see systemd's per-service variables; other variables it does."""
        for name in SERVICE_VARIABLES:
            monkeypatch.setenv(name, f"service-{name}")
        monkeypatch.setenv("KEPT", "yes")
        names = (*SERVICE_VARIABLES, "KEPT")
        code = f"import os, json; print(json.dumps({{k: v for k, v in os.environ.items() if k in {names!r}}}))"
        result = await run_command([PY, "-c", code], timeout=30)
        assert json.loads(result.stdout) == {"KEPT": "yes"}

    async def test_service_variables_given_in_env_are_passed(self) -> None:
        """A service variable the caller puts in *env* reaches the command."""
        code = "import os; print(os.environ.get('NOTIFY_SOCKET'), os.environ.get('LISTEN_FDS'))"
        result = await run_command([PY, "-c", code], timeout=30, env={"NOTIFY_SOCKET": "mine", "LISTEN_FDS": "1"})
        assert result.stdout.decode().split() == ["mine", "1"]

    async def test_check_raises_called_process_error(self) -> None:
        """With check=True a non-zero exit raises CalledProcessError with the output."""
        with pytest.raises(subprocess.CalledProcessError) as caught:
            await run_command([PY, "-c", "import sys; print('no'); sys.exit(2)"], timeout=30, check=True)
        assert (caught.value.returncode, caught.value.output) == (2, b"no\n")

    @pytest.mark.real_time
    async def test_background_processes_left_by_the_command_are_killed(self) -> None:
        """A grandchild left running (and holding the pipes) is killed when the command exits."""
        code = """
            import subprocess, sys
            grandchild = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
            print(grandchild.pid, flush=True)
        """
        began = time.monotonic()
        result = await run_command(script(code), timeout=30)
        assert time.monotonic() - began < 20
        assert is_dead(int(result.stdout))

    @pytest.mark.real_time
    async def test_timeout_kills_the_whole_group(self) -> None:
        """On timeout the group is killed (grandchild included) and the error holds the output so far."""
        began = anyio.current_time()
        with pytest.raises(CommandTimeoutError) as caught:
            await run_command(script(HANGS_WITH_GRANDCHILD), timeout=1.5)
        # On the loop's clock, which the timeout follows (uvloop's counts whole milliseconds).
        assert began + 1.5 <= anyio.current_time() < began + 20
        pids = [int(pid) for pid in caught.value.stdout.split()]
        assert len(pids) == 2
        assert all(is_dead(pid) for pid in pids)
        assert isinstance(caught.value, TimeoutError)
        assert caught.value.timeout == 1.5
        assert "did not finish within 1.5 s; its process group was killed" in str(caught.value)

    async def test_cancellation_kills_the_whole_group(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Cancelling the caller kills the group and reaps the command before the cancellation goes on."""
        async with open_beacon(monkeypatch) as beacon, anyio.create_task_group() as tg:
            finished = anyio.Event()

            async def call() -> None:
                try:
                    await run_command(script(HANGS_WITH_GRANDCHILD), timeout=None)
                finally:
                    finished.set()

            tg.start_soon(call)
            pids = [int(pid) for pid in (await beacon.receive()).split()]
            tg.cancel_scope.cancel()
        assert finished.is_set()
        assert all(is_dead(pid) for pid in pids)

    def test_a_string_is_refused(self) -> None:
        """A shell string is a ConfigurationError; nothing is run."""
        with pytest.raises(ConfigurationError, match="never through a shell"):
            anyio.run(lambda: run_command("ls -l", timeout=1))

    def test_a_negative_timeout_is_refused(self) -> None:
        """A negative timeout is a ConfigurationError."""
        with pytest.raises(ConfigurationError, match="`timeout` must be a non-negative number"):
            anyio.run(lambda: run_command([PY], timeout=-1))

    def test_timeout_error_pickles_and_shortens_long_commands(self) -> None:
        """The error survives pickling; a long command is cut in the message."""
        error = CommandTimeoutError(["x" * 100], 2.5, b"o", b"e")
        copy = pickle.loads(pickle.dumps(error))  # noqa: S301 - our own data
        assert (copy.argv, copy.timeout, copy.stdout, copy.stderr) == (("x" * 100,), 2.5, b"o", b"e")
        assert str(copy) == str(error)
        assert "xxx...' did not finish within 2.5 s" in str(error)
