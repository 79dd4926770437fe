"""Run a command to completion, with a timeout that kills its whole process group."""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import subprocess
from collections.abc import Mapping, Sequence
from typing import final

import anyio
import anyio.abc
import attrs

from lifecycle._core._errors import LifecycleError

from ._child_env import child_environment
from ._containment import parent_death_command, start_time
from ._guardian import tell_guardian
from ._probes import check_timeout
from ._process_groups import check_argv, reap_and_sweep, signal_group

__all__ = ["CommandResult", "CommandTimeoutError", "run_command"]


@final
@attrs.frozen
class CommandResult:
    """
    What a command run by :func:`run_command` did.

    Attributes:
        argv: The command.

        returncode: Its exit status: the exit code, or minus the number of the
            signal that killed it.

        stdout: Everything it wrote to stdout.

        stderr: Everything it wrote to stderr.

    .. versionadded:: 0.1
    """

    argv: tuple[str, ...]
    returncode: int
    stdout: bytes
    stderr: bytes


class CommandTimeoutError(LifecycleError, TimeoutError):
    """
    A command run by :func:`run_command` did not finish in time; its process group was killed.

    Also a :class:`TimeoutError`.

    Args:
        argv: The command.

        timeout: The timeout, in seconds.

        stdout: What it wrote to stdout before it was killed.

        stderr: What it wrote to stderr before it was killed.

    Attributes:
        argv: The command.

        timeout: The timeout, in seconds.

        stdout: What it wrote to stdout before it was killed.

        stderr: What it wrote to stderr before it was killed.

    .. versionadded:: 0.1
    """

    def __init__(self, argv: Sequence[str], timeout: float, stdout: bytes = b"", stderr: bytes = b"") -> None:
        self.argv = tuple(argv)
        self.timeout = timeout
        self.stdout = stdout
        self.stderr = stderr
        command = shlex.join(self.argv)
        if len(command) > 80:  # noqa: PLR2004 - keep the message on a line
            command = command[:77] + "..."
        msg = f"Command {command!r} did not finish within {timeout:g} s; its process group was killed."
        super().__init__(msg)

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.argv, self.timeout, self.stdout, self.stderr))


async def run_command(
    argv: Sequence[str | os.PathLike[str]],
    *,
    timeout: float | None,
    input: bytes | None = None,  # noqa: A002 - the name subprocess.run uses
    env: Mapping[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
    check: bool = False,
) -> CommandResult:
    """
    Run a command to completion and return its exit status and output.

    The command (a list, never a shell string) runs in a new session, so it
    leads its own process group and does not receive the terminal's Ctrl-C.
    Its stdout and stderr are read whole (into memory); its stdin is *input*,
    or ``/dev/null``. When it exits, anything it left running in its process
    group is killed with SIGKILL, so background processes it forgot cannot
    keep its pipes open or outlive it.

    When *timeout* passes, or the caller is cancelled, the whole process group
    is killed with SIGKILL and the command is reaped before this returns or
    raises: no process of its group is left behind. That cleanup is shielded
    and takes milliseconds.

    A checkpoint. Cancelling it kills the command's group (above) and then
    raises the cancellation; the output is lost.

    Args:
        argv: The program and its arguments.

        timeout: Seconds the command may run; ``None`` for no limit (it must be
            given, so that every call says how long it may take).

        input: Bytes written to its stdin, which is then closed.

        env: Its whole environment, passed as it is; ``None`` inherits this
            process's environment without systemd's per-service variables
            (``NOTIFY_SOCKET``, ``WATCHDOG_USEC``, ``WATCHDOG_PID``,
            ``LISTEN_FDS``, ``LISTEN_PID``, ``LISTEN_FDNAMES``), which
            describe this process, not the command.

        cwd: Its working directory.

        check: Raise :class:`subprocess.CalledProcessError` (with the output)
            if the exit status is not 0.

    Returns:
        The exit status and output.

    Raises:
        CommandTimeoutError: It ran longer than *timeout*; the error holds the
            output written until then.

        subprocess.CalledProcessError: *check* is true and it failed.

        ConfigurationError: *argv* is a string or empty, or *timeout* is negative.

        OSError: The program could not be started.

    .. versionadded:: 0.1
    """
    command = check_argv(argv, "run_command()")
    limit = check_timeout(timeout)
    environment = child_environment(env)
    with anyio.CancelScope(shield=True):
        process = await anyio.open_process(
            parent_death_command(command, environment, None if cwd is None else os.fspath(cwd)),
            stdin=subprocess.DEVNULL if input is None else subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=cwd,
            env=environment,
            start_new_session=True,
        )
    # The guardian kills the command's group if this process dies meanwhile (SIGKILL included).
    key = f"command-{process.pid}"
    tell_guardian(f"root {key} {process.pid} {start_time(process.pid) or 0}")
    stdout, stderr = bytearray(), bytearray()
    returncode: int | None = None
    try:
        with anyio.move_on_after(limit if limit is not None else float("inf")):
            returncode = await _communicate(process, input, stdout, stderr)
    finally:
        if process.returncode is None:  # timed out, cancelled or failed: kill the group, reap, sweep
            with anyio.CancelScope(shield=True):
                signal_group(process.pid, signal.SIGKILL)
                await reap_and_sweep(process)
        with anyio.CancelScope(shield=True):
            await process.aclose()
        tell_guardian(f"end {key}")
    if returncode is None:
        assert limit is not None  # noqa: S101 - only a deadline ends it early without an error
        raise CommandTimeoutError(command, limit, bytes(stdout), bytes(stderr))
    if check and returncode:
        raise subprocess.CalledProcessError(returncode, command, bytes(stdout), bytes(stderr))
    return CommandResult(command, returncode, bytes(stdout), bytes(stderr))


async def _communicate(
    process: anyio.abc.Process,
    input: bytes | None,  # noqa: A002 - as in run_command
    stdout: bytearray,
    stderr: bytearray,
) -> int:
    async def read(stream: anyio.abc.ByteReceiveStream | None, into: bytearray) -> None:
        assert stream is not None  # noqa: S101 - a pipe
        async for chunk in stream:
            into += chunk

    async def write(stream: anyio.abc.ByteSendStream | None, data: bytes) -> None:
        assert stream is not None  # noqa: S101 - a pipe
        # A command that exits without reading all its input breaks the pipe: what it read is what counts.
        with contextlib.suppress(anyio.BrokenResourceError):
            async with stream:
                await stream.send(data)

    returncode = 0
    async with anyio.create_task_group() as tg:
        tg.start_soon(read, process.stdout, stdout)
        tg.start_soon(read, process.stderr, stderr)
        if input is not None:
            tg.start_soon(write, process.stdin, input)
        returncode, _ = await reap_and_sweep(process)
    return returncode
