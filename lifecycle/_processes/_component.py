"""ProcessComponent: a child process as a component (its options, its environment, spawning it)."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Collection, Mapping, Sequence
from contextlib import AsyncExitStack
from typing import final

import anyio
import anyio.abc

from lifecycle._core._context import Context
from lifecycle._core._validation import Option

from ._child_env import child_environment
from ._containment import Containment
from ._notify_listener import NotifyListener, open_notify_listener
from ._probes import (
    ReadyOnLine,
    ReadyOnNotify,
    ReadyOnPort,
    ReadyOnSocket,
)
from ._process_groups import check_argv, program_name
from ._spawned import SpawnedProcess

__all__ = ["ProcessComponent"]

_PROBES = (ReadyOnPort, ReadyOnSocket, ReadyOnLine, ReadyOnNotify)
_LEVELS = ("debug", "info", "warning", "error", "critical")


_LEVEL = Option.one_of(_LEVELS, expected=f"one of {', '.join(map(repr, _LEVELS))}")
_READY = Option.instance_of(
    _PROBES, "None (ready once spawned), ReadyOnPort, ReadyOnSocket, ReadyOnLine or ReadyOnNotify"
).or_none()
_READY_TIMEOUT = Option.seconds(expected="a non-negative number of seconds (math.inf: none)")
_SUCCESS_CODES = Option(
    "exit codes (ints)",
    lambda codes: isinstance(codes, Collection) and all(type(code) is int for code in codes),
)


@final
class ProcessComponent:
    """
    A child process as a component: ``sup.add(ProcessComponent([...]), name="child")``.

    Each start spawns *argv* (a list, never a shell command) with
    :func:`anyio.open_process` in a new session, so the child leads its own
    process group and every process it starts is in that group. The component
    is ready when *ready* says so and provides the child's pid to its
    dependents.

    While it runs, its stdout and stderr are read line by line into structlog
    events called ``process.output`` (fields ``stream``, ``line``, ``pid``),
    bound with the component's path, at *stdout_level* and *stderr_level*; the
    pipes are always drained, so a chatty child never blocks on a full pipe.
    Its stdin is ``/dev/null``.

    When the child exits while nobody asked it to, the component fails with
    :class:`ProcessExitedError` (exit code or signal name, last lines of
    output), so its supervisor restarts it according to its restart type;
    exit codes listed in *success_codes* end the component normally instead.
    Whatever is left in its process group then is killed with SIGKILL at once
    (logged as ``process.group_killed``): nothing it started outlives it.

    Its stop follows the phases of :class:`~lifecycle.ShutdownPolicy`:

    - GRACEFUL: *stop_signal* is sent to the process group; the child has
      until the graceful deadline to exit.
    - FORCEFUL: SIGTERM is sent to the group, unless it was the stop signal.
    - TERMINATE: SIGKILL is sent to the group.

    The signals go to the whole group, and the stop lasts until every process
    of the group has exited, not only the child: a worker it started gets the
    same graceful time, and the stop always ends with the child reaped and
    its group empty. A phase that is skipped (the stop began in FORCEFUL, or
    it was escalated) skips its signal too. A child that fails to become
    ready is stopped the same way, with the component's budgets counted from
    the failure.

    Args:
        argv: The program and its arguments.

        ready: When the child counts as started: ``None`` (at once, when it
            has been spawned), :class:`ReadyOnPort`, :class:`ReadyOnSocket`,
            :class:`ReadyOnLine` or :class:`ReadyOnNotify`.

        ready_timeout: Seconds the child has to become ready; then the start
            fails with :class:`ReadinessTimeoutError` and the child is stopped.

        stop_signal: The signal that asks the child to stop (``SIGINT`` for
            programs that stop on Ctrl-C, ``SIGQUIT`` for nginx's graceful stop).

        env: The child's whole environment, passed as it is; ``None`` inherits
            this process's environment without systemd's per-service
            variables (``NOTIFY_SOCKET``, ``WATCHDOG_USEC``, ``WATCHDOG_PID``,
            ``LISTEN_FDS``, ``LISTEN_PID``, ``LISTEN_FDNAMES``), which describe
            this process, not the child.

        cwd: The child's working directory; ``None`` keeps this process's.

        name: The component's default name; defaults to the program's file
            name. ``sup.add(..., name=...)`` overrides it.

        success_codes: Exit codes that end the component normally (as if it
            returned) rather than failing it, e.g. ``(0,)`` for a job
            registered with ``main=True``.

        passthrough: Also write each line to this process's stdout or stderr.

        stdout_level: The log level of lines from stdout.

        stderr_level: The log level of lines from stderr.

    Raises:
        ConfigurationError: *argv* is a string or empty, or another option is
            invalid.

    Attributes:
        argv: The program and its arguments.

        name: The component's default name.

    .. versionadded:: 0.1
    """

    __slots__ = (
        "argv",
        "cwd",
        "env",
        "name",
        "passthrough",
        "ready",
        "ready_timeout",
        "stderr_level",
        "stdout_level",
        "stop_signal",
        "success_codes",
    )

    def __init__(
        self,
        argv: Sequence[str | os.PathLike[str]],
        *,
        ready: ReadyOnPort | ReadyOnSocket | ReadyOnLine | ReadyOnNotify | None = None,
        ready_timeout: float = 30.0,
        stop_signal: signal.Signals = signal.SIGTERM,
        env: Mapping[str, str] | None = None,
        cwd: str | os.PathLike[str] | None = None,
        name: str | None = None,
        success_codes: Collection[int] = (),
        passthrough: bool = False,
        stdout_level: str = "info",
        stderr_level: str = "warning",
    ) -> None:
        self.argv = check_argv(argv, "ProcessComponent")
        self.ready = _READY.check("ready", ready)
        self.ready_timeout = float(_READY_TIMEOUT.check("ready_timeout", ready_timeout))
        try:
            stop = signal.Signals(stop_signal)
        except (ValueError, TypeError):
            raise Option.error("stop_signal", stop_signal, "a signal such as signal.SIGTERM") from None
        _SUCCESS_CODES.check("success_codes", success_codes)
        self.stop_signal = stop
        self.env = None if env is None else dict(env)
        self.cwd = None if cwd is None else os.fspath(cwd)
        self.name = program_name(self.argv) if name is None else name
        self.success_codes = frozenset(success_codes)
        self.passthrough = bool(passthrough)
        self.stdout_level = _LEVEL.check("stdout_level", stdout_level)
        self.stderr_level = _LEVEL.check("stderr_level", stderr_level)

    async def run(self, ctx: Context) -> None:
        """
        Run the child process through one life of the component.

        Spawns it, waits until it is ready, calls ``ctx.ready(pid)``, and waits
        until it exits or the component's stop begins; then stops it through
        the phases. The child is always reaped and its group swept before this
        returns, whatever happens: everything after the spawn is shielded, and
        the component's stop (``ctx.stopping``) is what interrupts it.

        Raises:
            ProcessExitedError: The child exited before it was ready, or while
                it ran with an exit code not in *success_codes*.

            ReadinessTimeoutError: The child was not ready in time.

            OSError: The program could not be started (not found, not executable).
        """
        async with AsyncExitStack() as stack:
            listener = None
            if isinstance(self.ready, ReadyOnNotify):
                listener = await stack.enter_async_context(open_notify_listener())
            env = self._environment(listener)
            containment = Containment.create(ctx.name)
            # Shielded from here on: once spawned, the child is reaped whatever happens.
            with anyio.CancelScope(shield=True):
                try:
                    process = await anyio.open_process(
                        containment.command(self.argv, env, self.cwd),
                        stdin=subprocess.DEVNULL,
                        stdout=subprocess.PIPE,
                        stderr=subprocess.PIPE,
                        cwd=self.cwd,
                        env=env,
                        start_new_session=True,
                    )
                except BaseException:
                    await containment.aclose()
                    raise
                containment.attach(process.pid)
                ctx.report_containment(containment.mechanism)
                ctx.log.info(
                    "process.contained",
                    pid=process.pid,
                    mechanism=containment.mechanism,
                    cgroup=None if containment.cgroup is None else str(containment.cgroup),
                )
                try:
                    error = await SpawnedProcess(self, process, ctx.log, listener, containment).supervise(ctx)
                finally:
                    await containment.aclose()
        if error is not None:
            raise error

    def _environment(self, listener: NotifyListener | None) -> dict[str, str]:
        env = child_environment(self.env)
        if listener is not None:
            env["NOTIFY_SOCKET"] = listener.path
        return env

    def __repr__(self) -> str:
        return f"<ProcessComponent {self.name!r} argv={list(self.argv)!r}>"
