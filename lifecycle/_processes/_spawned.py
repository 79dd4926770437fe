"""One spawned child of a ProcessComponent: its output pumped into the log, its readiness, exit and stop."""

from __future__ import annotations

import math
import signal
import sys
from collections import deque
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Literal, final

import anyio
import anyio.abc
import anyio.to_thread
import structlog

from lifecycle._core._context import Context
from lifecycle._core._escalation import Escalation
from lifecycle._core._policy import Phase

from ._containment import Containment
from ._errors import ContainmentError, ProcessExitedError, ReadinessTimeoutError, describe_exit
from ._notify_listener import NotifyListener
from ._probes import Readiness, ReadyOnLine, ReadyOnPort, ReadyOnSocket, wait_for_exit, wait_for_port, wait_for_socket
from ._process_groups import SWEEP_WAIT, signal_group, sweep_group, wait_group_empty

if TYPE_CHECKING:
    from ._component import ProcessComponent

__all__ = ["DRAIN_AFTER_EXIT", "MAX_LINE", "SpawnedProcess", "shortened_argv"]

# Lines of output kept for the error of a process that exits or never gets ready.
_TAIL = 20
# A longer line is logged in pieces of this many bytes, so a child that writes
# without newlines cannot make the parent buffer without bound.
MAX_LINE = 65536
# After the process group is gone, output still in the pipes is read for at
# most this long: only a process that left the group on purpose (setsid) can
# keep a pipe open past it.
DRAIN_AFTER_EXIT = 1.0

# An argument longer than this (an inline script after `python -c`) is cut in the
# `process.started` event, so the event stays one readable line.
_ARG_LIMIT = 80
_ARG_KEEP = 60


def shortened_argv(argv: Sequence[str]) -> list[str]:
    """
    Return *argv* for a log event: each argument longer than 80 characters is cut.

    A cut argument keeps its first 60 characters and says how long it was:
    ``"import sys; ...[+340 characters]"``.
    """
    return [
        arg if len(arg) <= _ARG_LIMIT else f"{arg[:_ARG_KEEP]}...[+{len(arg) - _ARG_KEEP} characters]" for arg in argv
    ]


@final
class SpawnedProcess:
    """One spawned child: its output, readiness, exit and stop."""

    def __init__(
        self,
        component: ProcessComponent,
        process: anyio.abc.Process,
        log: structlog.typing.FilteringBoundLogger,
        listener: NotifyListener | None,
        containment: Containment,
    ) -> None:
        self.component = component
        self.containment = containment
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
        self.log.info("process.started", pid=self.pid, argv=shortened_argv(self.component.argv))
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
        escaped = sorted(self.containment.escaped)
        if escaped:
            self.log.error("process.escaped", pid=self.pid, pids=escaped, mechanism=self.containment.mechanism)
            if error is None:
                error = ContainmentError(self.component.argv, self.pid, escaped, self.containment.mechanism)
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
                    await self._signal_all(sig)
                end = math.inf if phase is Phase.TERMINATE else escalation.end(phase)
                waiting = anyio.CancelScope(deadline=end)
                with waiting:
                    await self.gone.wait()
        finally:
            escalation.unsubscribe(self)

    async def _signal_all(self, sig: signal.Signals) -> None:
        """Send *sig* to the child's group and to every descendant found."""
        containment = self.containment
        if containment.mechanism == "process group":  # pragma: no cover - the suite runs on Linux
            signal_group(self.pid, sig)
        elif sig is signal.SIGKILL:
            await anyio.to_thread.run_sync(containment.kill)
        else:
            members = await anyio.to_thread.run_sync(containment.members)
            containment.signal(sig, members)

    async def _sweep(self) -> list[int]:
        """SIGKILL whatever the child left running, and wait until it is dead."""
        if self.containment.mechanism == "process group":  # pragma: no cover - the suite runs on Linux
            return await sweep_group(self.pid)
        survivors = await anyio.to_thread.run_sync(self.containment.kill)
        with anyio.move_on_after(SWEEP_WAIT):
            await self.containment.wait_empty()
        return survivors

    async def _wait_empty(self) -> None:
        if self.containment.mechanism == "process group":  # pragma: no cover - the suite runs on Linux
            await wait_group_empty(self.pid)
        else:
            await self.containment.wait_empty()

    async def _watch(self) -> None:
        await wait_for_exit(self.pid)  # exited, not reaped yet where the backend allows
        if not self.stopping:
            # It exited on its own: what it started dies with it, now.
            survivors = await self._sweep()
            if survivors:
                self.log.warning("process.group_killed", pid=self.pid, pids=survivors)
        returncode = self.returncode = await self.process.wait()
        self.log.info("process.exited", pid=self.pid, returncode=returncode, status=describe_exit(returncode))
        self.exited.set()
        # During a stop the rest of the group gets the same phases as the child:
        # the stop is over when the last of them has exited.
        await self._wait_empty()
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
