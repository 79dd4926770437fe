"""Child processes as components: process groups, readiness, stop escalation, output into logs."""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
from collections import deque
from collections.abc import Callable, Collection, Mapping, Sequence
from contextlib import AsyncExitStack
from typing import Any, Literal, TypeAlias, final

import anyio
import anyio.abc
import structlog

from lifecycle._core._context import Context
from lifecycle._core._escalation import Escalation
from lifecycle._core._policy import Phase
from lifecycle._core._validation import Option

from ._child_env import child_environment
from ._errors import ProcessExitedError, ReadinessTimeoutError, describe_exit
from ._notify_listener import NotifyListener, open_notify_listener
from ._probes import (
    ReadyOnLine,
    ReadyOnNotify,
    ReadyOnPort,
    ReadyOnSocket,
    wait_for_exit,
    wait_for_port,
    wait_for_socket,
)
from ._process_groups import check_argv, program_name, signal_group, sweep_group, wait_group_empty

__all__ = ["ProcessComponent", "Readiness"]

Readiness: TypeAlias = ReadyOnPort | ReadyOnSocket | ReadyOnLine | ReadyOnNotify

_PROBES = (ReadyOnPort, ReadyOnSocket, ReadyOnLine, ReadyOnNotify)
_LEVELS = ("debug", "info", "warning", "error", "critical")
# Lines of output kept for the error of a process that exits or never gets ready.
_TAIL = 20
# A longer line is logged in pieces of this many bytes, so a child that writes
# without newlines cannot make the parent buffer without bound.
MAX_LINE = 65536
# After the process group is gone, output still in the pipes is read for at
# most this long: only a process that left the group on purpose (setsid) can
# keep a pipe open past it.
DRAIN_AFTER_EXIT = 1.0


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
            # Shielded from here on: once spawned, the child is reaped whatever happens.
            with anyio.CancelScope(shield=True):
                process = await anyio.open_process(
                    self.argv,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    cwd=self.cwd,
                    env=env,
                    start_new_session=True,
                )
                error = await _Run(self, process, ctx.log, listener).supervise(ctx)
        if error is not None:
            raise error

    def _environment(self, listener: NotifyListener | None) -> dict[str, str]:
        env = child_environment(self.env)
        if listener is not None:
            env["NOTIFY_SOCKET"] = listener.path
        return env

    def __repr__(self) -> str:
        return f"<ProcessComponent {self.name!r} argv={list(self.argv)!r}>"


@final
class _Run:
    """One spawned child: its output, readiness, exit and stop."""

    def __init__(
        self,
        component: ProcessComponent,
        process: anyio.abc.Process,
        log: structlog.typing.FilteringBoundLogger,
        listener: NotifyListener | None,
    ) -> None:
        self.component = component
        self.process = process
        self.pid = process.pid
        self.log = log
        self.listener = listener
        self.tail: deque[str] = deque(maxlen=_TAIL)
        self.exited = anyio.Event()  # the child has exited and been reaped
        self.gone = anyio.Event()  # ... and nothing of its group is left
        self.stopping = False
        self.returncode: int | None = None
        self.line_seen = anyio.Event()
        self.notified_ready = anyio.Event()
        self.pumps_left = 2
        self.pumps_done = anyio.Event()
        self.main = anyio.CancelScope()
        self.emit: dict[str, Callable[..., Any]] = {
            "stdout": getattr(log, component.stdout_level),
            "stderr": getattr(log, component.stderr_level),
        }

    async def supervise(self, ctx: Context) -> BaseException | None:
        """Run the child until it exits or the stop begins, stop it, and return its failure."""
        self.log.info("process.started", pid=self.pid, argv=list(self.component.argv))
        error: BaseException | None = None
        stdout, stderr = self.process.stdout, self.process.stderr
        assert stdout is not None  # noqa: S101 - a pipe
        assert stderr is not None  # noqa: S101 - a pipe
        async with anyio.create_task_group() as tg:
            tg.start_soon(self._watch)
            tg.start_soon(self._pump, stdout, "stdout")
            tg.start_soon(self._pump, stderr, "stderr")
            if self.listener is not None:
                tg.start_soon(self._listen, self.listener)
            tg.start_soon(self._cancel_on_stop, ctx)
            with self.main:
                error = await self._run(ctx)
            await self._stop(ctx)
            # The group is gone: the pipes reach their end, except those held by
            # a process that left the group on purpose; give up on those soon.
            with anyio.move_on_after(DRAIN_AFTER_EXIT):
                await self.pumps_done.wait()
            tg.cancel_scope.cancel()
        await self.process.aclose()
        return error

    async def _cancel_on_stop(self, ctx: Context) -> None:
        await ctx.stopping.wait()
        self.main.cancel()

    async def _run(self, ctx: Context) -> BaseException | None:
        component = self.component
        if component.ready is not None:
            outcome = await self._wait_ready(component.ready)
            if outcome == "exited":
                return self._exited_error(ready=False)
            if outcome == "timeout":
                tail = tuple(self.tail)
                return ReadinessTimeoutError(component.argv, self.pid, component.ready_timeout, component.ready, tail)
        ctx.ready(self.pid)
        self.log.info("process.ready", pid=self.pid)
        await self.exited.wait()
        assert self.returncode is not None  # noqa: S101 - set before exited
        if self.returncode in component.success_codes:
            return None
        return self._exited_error(ready=True)

    def _exited_error(self, *, ready: bool) -> ProcessExitedError:
        assert self.returncode is not None  # noqa: S101 - only called once exited
        return ProcessExitedError(self.component.argv, self.pid, self.returncode, ready=ready, last_lines=self.tail)

    async def _wait_ready(self, ready: Readiness) -> Literal["ready", "exited", "timeout"]:
        became_ready = False
        with anyio.move_on_after(self.component.ready_timeout):
            async with anyio.create_task_group() as tg:

                async def until_exit() -> None:
                    await self.exited.wait()
                    tg.cancel_scope.cancel()

                tg.start_soon(until_exit)
                await self._probe(ready)
                became_ready = True
                tg.cancel_scope.cancel()
        if became_ready:
            return "ready"
        return "exited" if self.exited.is_set() else "timeout"

    async def _probe(self, ready: Readiness) -> None:
        if isinstance(ready, ReadyOnPort):
            await wait_for_port(ready.host, ready.port, timeout=None)
        elif isinstance(ready, ReadyOnSocket):
            await wait_for_socket(ready.path, timeout=None)
        elif isinstance(ready, ReadyOnLine):
            await self.line_seen.wait()
        else:
            await self.notified_ready.wait()

    async def _stop(self, ctx: Context) -> None:
        """Signal the group phase by phase until the child and its whole group have exited."""
        self.stopping = True
        if self.exited.is_set():
            # It exited on its own: the rest of its group was killed with it.
            await self.gone.wait()
            return
        # Without a stop in progress the child failed to become ready: it gets
        # the component's budgets from now, as a failed component's teardown does.
        escalation = ctx.escalation or Escalation.start(ctx.policy)
        signals = (self.component.stop_signal, signal.SIGTERM, signal.SIGKILL)
        sent: list[signal.Signals] = []
        waiting = anyio.CancelScope()

        def moved() -> None:
            waiting.cancel()

        escalation.subscribe(self, moved)
        try:
            while not self.gone.is_set():
                phase = escalation.phase
                sig = signals[phase]
                if sig not in sent and signal.SIGKILL not in sent:
                    sent.append(sig)
                    self.log.info("process.signalled", pid=self.pid, signal=sig.name, phase=phase.name)
                    signal_group(self.pid, sig)
                end = math.inf if phase is Phase.TERMINATE else escalation.end(phase)
                waiting = anyio.CancelScope(deadline=end)
                with waiting:
                    await self.gone.wait()
        finally:
            escalation.unsubscribe(self)

    async def _watch(self) -> None:
        await wait_for_exit(self.pid)  # exited, not reaped yet where the backend allows
        if not self.stopping:
            # It exited on its own: what it started dies with it, now.
            survivors = await sweep_group(self.pid)
            if survivors:
                self.log.warning("process.group_killed", pid=self.pid, pids=survivors)
        returncode = self.returncode = await self.process.wait()
        self.log.info("process.exited", pid=self.pid, returncode=returncode, status=describe_exit(returncode))
        self.exited.set()
        # During a stop the rest of the group gets the same phases as the child:
        # the stop is over when the last of them has exited.
        await wait_group_empty(self.pid)
        self.gone.set()

    async def _pump(self, stream: anyio.abc.ByteReceiveStream, name: str) -> None:
        buffer = bytearray()
        try:
            async for chunk in stream:
                buffer += chunk
                if b"\n" in chunk:
                    *lines, rest = buffer.split(b"\n")
                    for line in lines:
                        self._line(name, line)
                    buffer = bytearray(rest)
                while len(buffer) >= MAX_LINE:
                    self._line(name, buffer[:MAX_LINE])
                    del buffer[:MAX_LINE]
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):  # pragma: no cover - closed under us
            pass
        if buffer:
            self._line(name, buffer)
        self.pumps_left -= 1
        if not self.pumps_left:
            self.pumps_done.set()

    def _line(self, stream: str, raw: bytes | bytearray) -> None:
        text = raw.decode("utf-8", "replace").removesuffix("\r")
        self.tail.append(text)
        self.emit[stream]("process.output", stream=stream, line=text, pid=self.pid)
        if self.component.passthrough:
            out = sys.stdout if stream == "stdout" else sys.stderr
            out.write(text + "\n")
            out.flush()
        ready = self.component.ready
        if isinstance(ready, ReadyOnLine) and ready.stream in {None, stream} and ready.pattern.search(text):
            self.line_seen.set()

    async def _listen(self, listener: NotifyListener) -> None:
        while True:
            fields = await listener.receive()
            self.log.debug("process.notified", pid=self.pid, fields=fields)
            if "STATUS" in fields:
                self.log.info("process.status", pid=self.pid, status=fields["STATUS"])
            if fields.get("READY") == "1":
                self.notified_ready.set()
