"""Errors of child processes: an exit nobody asked for, readiness that never came."""

from __future__ import annotations

import signal
from collections.abc import Sequence

from lifecycle._core._errors import LifecycleError

from ._process_groups import program_name

__all__ = ["ProcessExitedError", "ReadinessTimeoutError", "describe_exit"]


def describe_exit(returncode: int) -> str:
    """``"exited with code 3"`` or ``"was killed by SIGKILL"``."""
    if returncode >= 0:
        return f"exited with code {returncode}"
    try:
        name = signal.Signals(-returncode).name
    except ValueError:
        name = f"signal {-returncode}"
    return f"was killed by {name}"


def _output(last_lines: Sequence[str]) -> str:
    if not last_lines:
        return "; it wrote no output"
    lines = "\n".join(f"  | {line}" for line in last_lines)
    return f"; its last output:\n{lines}"


class ProcessExitedError(LifecycleError):
    """
    A child process exited when nobody asked it to.

    Raised by :class:`ProcessComponent` when its process exits before it is
    ready (a start failure) or while it runs (a runtime failure, which a
    supervisor handles with its restart policy).

    Args:
        argv: The process's argument list.

        pid: Its process id.

        returncode: Its exit status: the exit code, or minus the number of the
            signal that killed it.

        ready: Whether it had become ready.

        last_lines: Its last lines of output, stdout and stderr interleaved.

    Attributes:
        argv: The process's argument list.

        pid: Its process id.

        returncode: The exit code, or minus the number of the signal that killed it.

        exit_code: The exit code, or ``None`` if a signal killed it.

        signal: The signal that killed it, or ``None``.

        ready: Whether it had become ready.

        last_lines: Its last lines of output.

    .. versionadded:: 0.1
    """

    def __init__(
        self,
        argv: Sequence[str],
        pid: int,
        returncode: int,
        *,
        ready: bool,
        last_lines: Sequence[str] = (),
    ) -> None:
        self.argv = tuple(argv)
        self.pid = pid
        self.returncode = returncode
        self.exit_code = returncode if returncode >= 0 else None
        self.signal: signal.Signals | None = None
        if returncode < 0:
            try:
                self.signal = signal.Signals(-returncode)
            except ValueError:
                self.signal = None
        self.ready = ready
        self.last_lines = tuple(last_lines)
        when = "while running" if ready else "before it was ready"
        what = f"process {program_name(self.argv)!r} (pid {pid}) {describe_exit(returncode)} {when}"
        super().__init__(what + _output(self.last_lines))

    def __reduce__(self) -> tuple[object, ...]:
        return (_exited, (self.argv, self.pid, self.returncode, self.ready, self.last_lines))


class ReadinessTimeoutError(LifecycleError, TimeoutError):
    """
    A child process did not become ready in time.

    It is a start failure; the process is stopped like any other (its stop
    signal first). Also a :class:`TimeoutError`.

    Args:
        argv: The process's argument list.

        pid: Its process id.

        timeout: The readiness timeout, in seconds.

        ready: What readiness was waited for (``ReadyOnPort(...)``).

        last_lines: Its last lines of output.

    Attributes:
        argv: The process's argument list.

        pid: Its process id.

        timeout: The readiness timeout, in seconds.

        ready: What readiness was waited for.

        last_lines: Its last lines of output.

    .. versionadded:: 0.1
    """

    def __init__(
        self,
        argv: Sequence[str],
        pid: int,
        timeout: float,
        ready: object,
        last_lines: Sequence[str] = (),
    ) -> None:
        self.argv = tuple(argv)
        self.pid = pid
        self.timeout = timeout
        self.ready = ready
        self.last_lines = tuple(last_lines)
        what = f"process {program_name(self.argv)!r} (pid {pid}) was not ready within {timeout:g} s"
        what += f" (waiting for {ready!r})"
        super().__init__(what + _output(self.last_lines))

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.argv, self.pid, self.timeout, self.ready, self.last_lines))


def _exited(
    argv: tuple[str, ...],
    pid: int,
    returncode: int,
    ready: bool,
    last_lines: tuple[str, ...],
) -> ProcessExitedError:
    return ProcessExitedError(argv, pid, returncode, ready=ready, last_lines=last_lines)


class ContainmentError(LifecycleError):
    """
    A descendant of a child process could not be stopped: it escaped its containment.

    The stop of a :class:`ProcessComponent` found processes it started that
    it was not allowed to signal (a set-user-ID program, a process that
    changed its credentials), so they may still run. The component's stop
    fails with this error, so its report says so and the report is not
    :attr:`~lifecycle.ShutdownReport.ok`.

    Args:
        argv: The child's argument list.

        pid: The child's process id.

        pids: The descendants that could not be signalled.

        mechanism: How the child was contained: ``"cgroup"``, ``"tree"`` or
            ``"process group"``.

    Attributes:
        argv: The child's argument list.

        pid: The child's process id.

        pids: The descendants that could not be signalled.

        mechanism: How the child was contained.

    .. versionadded:: 0.2
    """

    def __init__(self, argv: Sequence[str], pid: int, pids: Sequence[int], mechanism: str) -> None:
        self.argv = tuple(argv)
        self.pid = pid
        self.pids = tuple(pids)
        self.mechanism = mechanism
        what = (
            f"process {program_name(self.argv)!r} (pid {pid}) left processes that could not be stopped "
            f"(pids {', '.join(map(str, self.pids))}; containment: {mechanism}): they were not ours to "
            "signal and may still run."
        )
        super().__init__(what)

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.argv, self.pid, self.pids, self.mechanism))
