"""Readiness probe options and the wait_for_port / wait_for_socket / wait_for_exit utilities."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import anyio
import pytest
from childprocs import PY, no_leftover_children  # noqa: F401 - no_leftover_children is an autouse fixture

from lifecycle import (
    ConfigurationError,
    ReadyOnLine,
    ReadyOnPort,
    ReadyOnSocket,
    wait_for_exit,
    wait_for_port,
    wait_for_socket,
)

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="pidfd waiting is checked on Linux")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class TestOptions:
    def test_defaults_and_conversions(self) -> None:
        """A port probe defaults to 127.0.0.1; patterns are compiled; paths become strings."""
        assert ReadyOnPort(80) == ReadyOnPort(80, host="127.0.0.1")
        assert ReadyOnLine("ready").pattern == re.compile("ready")
        assert ReadyOnLine(re.compile("x"), stream="stderr").stream == "stderr"
        assert ReadyOnSocket(Path("/run/a.sock")).path == "/run/a.sock"

    @pytest.mark.parametrize(
        ("make", "match"),
        [
            (lambda: ReadyOnPort(0), "TCP port number"),
            (lambda: ReadyOnPort(True), "TCP port number"),
            (lambda: ReadyOnPort("80"), "TCP port number"),  # type: ignore[arg-type]
            (lambda: ReadyOnPort(80, host=""), "`host`"),
            (lambda: ReadyOnSocket(""), "`path`"),
            (lambda: ReadyOnLine("("), "not a valid regular expression"),
            (lambda: ReadyOnLine(re.compile(b"x")), "a regular expression"),  # type: ignore[arg-type]
            (lambda: ReadyOnLine(3), "a regular expression"),  # type: ignore[arg-type]
            (lambda: ReadyOnLine("x", stream="both"), "`stream`"),  # type: ignore[arg-type]
        ],
    )
    def test_bad_options_are_refused(self, make: object, match: str) -> None:
        """A probe with a bad option is a ConfigurationError naming it."""
        with pytest.raises(ConfigurationError, match=match):
            make()  # type: ignore[operator]


class TestWaitForPort:
    async def test_returns_once_something_listens(self) -> None:
        """The waiter keeps trying until a listener appears, then returns."""
        port = free_port()
        async with anyio.create_task_group() as tg:
            done = anyio.Event()

            async def waiter() -> None:
                await wait_for_port("127.0.0.1", port, timeout=30)
                done.set()

            tg.start_soon(waiter)
            await anyio.wait_all_tasks_blocked()
            assert not done.is_set()
            listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=port)
            async with listener:
                await done.wait()

    @pytest.mark.real_time
    async def test_times_out(self) -> None:
        """Nothing listening: TimeoutError after the timeout."""
        with pytest.raises(TimeoutError, match=r"127\.0\.0\.1:\d+ did not accept a TCP connection within 0.2 s"):
            await wait_for_port("127.0.0.1", free_port(), timeout=0.2)

    async def test_negative_timeout_is_refused(self) -> None:
        """A negative timeout is a ConfigurationError."""
        with pytest.raises(ConfigurationError):
            await wait_for_port("127.0.0.1", 80, timeout=-1)


class TestWaitForSocket:
    async def test_returns_once_the_socket_accepts(self) -> None:
        """The waiter keeps trying while the path does not exist, then returns once it accepts."""
        with tempfile.TemporaryDirectory(prefix="lc-") as folder:
            path = str(Path(folder) / "s.sock")
            async with anyio.create_task_group() as tg:
                done = anyio.Event()

                async def waiter() -> None:
                    await wait_for_socket(path, timeout=30)
                    done.set()

                tg.start_soon(waiter)
                await anyio.wait_all_tasks_blocked()
                assert not done.is_set()
                async with await anyio.create_unix_listener(path):
                    await done.wait()

    @pytest.mark.real_time
    async def test_times_out(self) -> None:
        """No socket: TimeoutError naming the path."""
        with pytest.raises(TimeoutError, match=r"did not accept a connection within 0\.1 s"):
            await wait_for_socket("/nonexistent/s.sock", timeout=0.1)


class TestWaitForExit:
    async def test_waits_without_blocking_the_loop_and_does_not_reap(self) -> None:
        """It returns when the process exits, lets other tasks run meanwhile, and leaves reaping to the parent."""
        process = await anyio.open_process([PY, "-c", "import time; time.sleep(60)"], stdin=subprocess.DEVNULL)
        async with process, anyio.create_task_group() as tg:
            done = anyio.Event()

            async def waiter() -> None:
                await wait_for_exit(process.pid)
                done.set()

            tg.start_soon(waiter)
            await anyio.wait_all_tasks_blocked()
            assert not done.is_set()
            process.kill()
            await done.wait()
            assert await process.wait() == -9

    @pytest.mark.real_time
    async def test_times_out_on_a_running_process(self) -> None:
        """A process still running after the timeout: TimeoutError; it is not touched."""
        process = await anyio.open_process([PY, "-c", "import time; time.sleep(60)"], stdin=subprocess.DEVNULL)
        async with process:
            began = anyio.current_time()
            with pytest.raises(TimeoutError, match=rf"Process {process.pid} was still running after 0.2 s"):
                await wait_for_exit(process.pid, timeout=0.2)
            # On the loop's clock, which the timeout follows (uvloop's counts whole milliseconds).
            assert anyio.current_time() >= began + 0.2
            assert process.returncode is None
            process.kill()

    async def test_a_pid_that_does_not_exist_returns_at_once(self) -> None:
        """A pid that is not in use returns at once (it has exited, long ago)."""
        max_pid = int(Path("/proc/sys/kernel/pid_max").read_text())  # noqa: ASYNC240 - a tiny procfs file
        await wait_for_exit(max_pid + 1, timeout=1)
