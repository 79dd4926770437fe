"""Owning the process: run(), exit codes and the hard exit after TERMINATE."""

from __future__ import annotations

import enum
import importlib.util
import math
import os
import sys
import threading
import time
import traceback
from collections.abc import Callable, Mapping
from typing import Literal, final

import anyio
import attrs

from lifecycle._core._errors import ConfigurationError, LifecycleError
from lifecycle._core._escalation import Escalation
from lifecycle._core._instance import ComponentInstance
from lifecycle._core._policy import Phase, ShutdownPolicy
from lifecycle._core._report import ComponentReport, ShutdownReport
from lifecycle._core._safe_logging import module_logger
from lifecycle._core._settings import BLOCKED_LOOP_THRESHOLD
from lifecycle._core._states import StopReason
from lifecycle._core._validation import Option

from ._blocked_loop import blocked_in
from ._embedded import running
from ._logging_setup import configure_logging
from ._running_tree import RunningTree, as_spec
from ._unhandled_errors import routing_unhandled_errors

__all__ = ["ExitCode", "execute", "run"]

_log = module_logger


class ExitCode(enum.IntEnum):
    """
    The exit codes of a program started with :func:`run` (and ``lifecycle run``).

    =====  ===============  ====================================================
    code   name             meaning
    =====  ===============  ====================================================
    0      ``OK``           the tree stopped without failures (a requested or
                            signal-initiated stop, or ``main`` returned)
    1      ``FAILURE``      a component failed (to start, while running, or in
                            its teardown), or a supervisor gave up
    2      ``USAGE``        a usage or configuration error; nothing started
    3      ``TERMINATED``   hard exit: something was still running when the
                            terminate deadline passed
    =====  ===============  ====================================================
    """

    OK = 0
    FAILURE = 1
    USAGE = 2
    TERMINATED = 3


def _print(text: str) -> None:
    print(text, file=sys.stderr, flush=True)  # noqa: T201 - the program's own output


@final
class _Watchdog:
    """
    A thread that watches the event loop and ends the process at the terminate deadline.

    A thread, because the event loop may be the thing that is stuck (a blocking
    call). When the loop has not run for longer than *blocked_after* seconds, it
    logs ``loop.blocked`` with the stack of the code holding it (once per
    episode) and ``loop.unblocked`` when it runs again. When the terminate
    deadline passes, it logs the stubborn components and the stack of the main
    thread, prints the report and exits with ``ExitCode.TERMINATED``.
    """

    def __init__(
        self,
        tree: RunningTree,
        on_report: Callable[[ShutdownReport], None] | None,
        blocked_after: float,
    ) -> None:
        self._tree = tree
        self._on_report = on_report
        self._blocked_after = blocked_after
        self._beat = time.monotonic()
        self._blocked_since: float | None = None
        self._lock = threading.Condition()
        self._deadline: float | None = None
        self._done = False
        self._main_thread = threading.get_ident()
        self._thread = threading.Thread(target=self._watch, name="lifecycle-watchdog", daemon=True)
        self._thread.start()

    async def heartbeat(self, scope: anyio.CancelScope) -> None:
        """Stamp the loop's liveness a few times per threshold, until *scope* is cancelled."""
        interval = min(0.25, self._blocked_after / 4)
        with scope:
            while True:
                self._beat = time.monotonic()
                await anyio.sleep(interval)

    def arm(self) -> None:
        """Set (or move earlier) the wall-clock deadline from the tree's escalation; in the loop."""
        escalation = self._tree.escalation
        if escalation is None:
            return
        remaining = escalation.end(Phase.TERMINATE) - anyio.current_time()
        with self._lock:
            self._deadline = time.monotonic() + max(0.0, remaining)
            self._lock.notify()

    def follow(self, escalation: Escalation | None) -> None:
        """Arm the deadline now and again whenever *escalation*'s deadlines move (an escalation)."""
        if escalation is not None:
            escalation.subscribe(self, self.arm)
        self.arm()

    def close(self) -> None:
        """Stop watching: the tree has stopped."""
        with self._lock:
            self._done = True
            self._lock.notify()
        self._thread.join()

    def _watch(self) -> None:
        with self._lock:
            while not self._done:
                timeout: float | None = None
                if self._deadline is not None:
                    left = self._deadline - time.monotonic()
                    if left <= 0:
                        break
                    # An infinite budget (math.inf) means no hard exit.
                    timeout = None if math.isinf(left) else left
                if self._blocked_after:
                    self._check_loop()
                    step = self._blocked_after / 2
                    timeout = step if timeout is None else min(timeout, step)
                self._lock.wait(timeout)
            if self._done:
                return
        self._hard_exit()

    def _check_loop(self) -> None:
        beat = self._beat
        stale = time.monotonic() - beat
        if stale > self._blocked_after and self._blocked_since is None:
            self._blocked_since = beat
            frame = sys._current_frames().get(self._main_thread)  # the only way to see a blocked loop
            _log.warning(
                "loop.blocked",
                blocked_for=round(stale, 3),
                threshold=self._blocked_after,
                stack="".join(traceback.format_stack(frame)) if frame is not None else "",
                **blocked_in(frame),
            )
        elif stale <= self._blocked_after and self._blocked_since is not None:
            _log.warning("loop.unblocked", blocked_for=round(beat - self._blocked_since, 3))
            self._blocked_since = None

    def _hard_exit(self) -> None:  # pragma: no cover - ends the process; tested in a subprocess
        try:
            instance = self._tree._instance
            live = instance.walk_live()
            stubborn = [i for i in live if i.escalation is not None and not i.live_children()]
            waiting = [i.path for i in live if i.escalation is None]
            frame = sys._current_frames().get(self._main_thread)  # the only way to see a blocked loop
            loop_stack = "".join(traceback.format_stack(frame)) if frame is not None else ""
            _log.critical(
                "tree.terminated",
                tree=self._tree.name,
                reason="the terminate deadline passed with components still running",
                stubborn=[i.path for i in stubborn],
                never_stopped=waiting,
                exit_code=int(ExitCode.TERMINATED),
            )
            for stuck in stubborn:
                _log.critical("component.stubborn", component=stuck.path, stack="".join(stuck.stack()))
            if loop_stack:
                _log.critical("loop.stack", stack=loop_stack)
            report = _report_now(self._tree)
            _print(str(report))
            if self._on_report is not None:
                self._on_report(report)
        except BaseException:  # noqa: BLE001 - reporting must never stop the exit
            traceback.print_exc()
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(ExitCode.TERMINATED)


def _snapshot(instance: ComponentInstance, now: float) -> ComponentReport:
    """Report *instance* and its live children as they are at loop time *now*."""
    report = instance.report(now=now)
    live = tuple(_snapshot(child, now) for child in instance.live_children())
    return attrs.evolve(report, children=report.children + live)


def _report_now(tree: RunningTree) -> ShutdownReport:
    """Build the report of a stop that passed its terminate deadline; callable from a thread."""
    escalation = tree.escalation
    requested = escalation.started_at if escalation is not None else 0.0
    now = escalation.end(Phase.TERMINATE) if escalation is not None else 0.0
    reason = tree.stop_reason or StopReason.REQUEST
    detail = tree.stop_detail or ""
    return ShutdownReport(
        root=tree.name,
        reason=reason,
        detail=detail,
        requested_at=requested,
        finished_at=now,
        root_report=_snapshot(tree._instance, now),
        phase_ends=None if escalation is None else escalation.ends,
    )


_BACKEND = Option.one_of(("asyncio", "trio"))


def _check_backend(backend: str, backend_options: Mapping[str, object] | None) -> dict[str, object]:
    options = dict(backend_options or {})
    _BACKEND.check("backend", backend)
    if backend == "trio" and importlib.util.find_spec("trio") is None:
        msg = "The trio backend needs Trio: pip install 'anyio-lifecycle[trio]'."
        raise ConfigurationError(msg)
    if options.get("use_uvloop") and importlib.util.find_spec("uvloop") is None:
        msg = "`use_uvloop` needs uvloop, which is not installed: pip install uvloop."
        raise ConfigurationError(msg)
    return options


def run(
    root: object,
    *,
    backend: Literal["asyncio", "trio"] = "asyncio",
    backend_options: Mapping[str, object] | None = None,
    policy: ShutdownPolicy | None = None,
    signals: bool = True,
    notify: bool = True,
) -> ShutdownReport:
    """
    Run a tree as the whole program, until it stops, and exit like a service.

    Validates the tree, sets up logging (unless structlog is configured already),
    installs SIGINT/SIGTERM handling before any component starts (the first
    signal stops gracefully, a second jumps to FORCEFUL, a third to TERMINATE;
    SIGUSR1 logs a dump of the tree and its stacks), then runs the tree on
    *backend* until it stops: a signal, a ``main`` component returning, or a
    failure.

    If something is still running when the terminate deadline passes (a
    coroutine that swallows cancellation, a call that blocks the loop), a
    watchdog thread logs the stubborn components with their stacks, prints the
    report and exits the process at once with ``ExitCode.TERMINATED``. The same
    thread watches the event loop: when it has not run for longer than
    ``LIFECYCLE_BLOCKED_LOOP_THRESHOLD`` seconds (1 by default; 0 turns this
    off), ``loop.blocked`` is logged with the stack of the code blocking it,
    and ``loop.unblocked`` once it runs again.

    Args:
        root: A component, usually a ``Supervisor``.

        backend: ``"asyncio"`` or ``"trio"``.

        backend_options: Passed to :func:`anyio.run`; ``{"use_uvloop": True}``
            runs asyncio on uvloop.

        policy: The stop's budgets; defaults to the root's own policy, else
            :meth:`ShutdownPolicy.from_env`.

        signals: Install the signal handling (on by default).

        notify: Report to systemd over ``NOTIFY_SOCKET`` when it is set (on by
            default; see :func:`running`).

    Returns:
        The report of a stop without failures.

    Raises:
        SystemExit: With an :class:`ExitCode`: ``FAILURE`` after failures (the
            report is printed to stderr first), ``USAGE`` for a configuration
            error (printed to stderr); ``TERMINATED`` ends the process directly.
    """
    return execute(
        root, backend=backend, backend_options=backend_options, policy=policy, signals=signals, notify=notify
    )


def execute(
    root: object,
    *,
    backend: Literal["asyncio", "trio"] = "asyncio",
    backend_options: Mapping[str, object] | None = None,
    policy: ShutdownPolicy | None = None,
    signals: bool = True,
    on_report: Callable[[ShutdownReport], None] | None = None,
    notify: bool = True,
) -> ShutdownReport:
    """
    :func:`run`, with *on_report* called with the report however the run ends.

    On a hard exit it is called from the watchdog thread, just before the exit.
    """
    try:
        configure_logging()
        options = _check_backend(backend, backend_options)
        blocked_after = BLOCKED_LOOP_THRESHOLD.read()
        as_spec(root).validate_tree()
    except ConfigurationError as exc:
        _print(f"lifecycle: configuration error: {exc}")
        raise SystemExit(ExitCode.USAGE) from None

    holder: list[RunningTree] = []

    async def main() -> None:
        async with (
            running(root, signals=signals, policy=policy, notify=notify) as tree,
            anyio.create_task_group() as tasks,
        ):
            holder.append(tree)
            watchdog = _Watchdog(tree, on_report, blocked_after)
            tree.subscribe_stop(lambda: watchdog.follow(tree.escalation))
            # Shielded: the loop is watched until the tree has stopped, even when a
            # failure cancels this block.
            beating = anyio.CancelScope(shield=True)
            if blocked_after:
                tasks.start_soon(watchdog.heartbeat, beating)
            try:
                await tree.wait()
            finally:
                if tree.report is None:
                    with anyio.CancelScope(shield=True):
                        await tree.wait()
                beating.cancel()
                watchdog.close()

    failed: BaseExceptionGroup[BaseException] | None = None
    try:
        anyio.run(routing_unhandled_errors(main), backend=backend, backend_options=options)
    except ConfigurationError as exc:
        _print(f"lifecycle: configuration error: {exc}")
        raise SystemExit(ExitCode.USAGE) from None
    except BaseExceptionGroup as group:
        failed = group
    return _conclude(holder[0].report if holder else None, failed, on_report)


def _conclude(
    report: ShutdownReport | None,
    failed: BaseExceptionGroup[BaseException] | None,
    on_report: Callable[[ShutdownReport], None] | None,
) -> ShutdownReport:
    """Hand the report over and turn failures into the documented exit codes."""
    if report is not None and on_report is not None:
        on_report(report)
    if failed is not None:
        if report is not None:
            _print(str(report))
        _log.error("tree.failed", errors=[str(e) for e in failed.exceptions])
        if not all(isinstance(e, LifecycleError) for e in failed.exceptions):
            raise failed
        raise SystemExit(ExitCode.FAILURE)
    assert report is not None  # noqa: S101 - running() sets it before returning
    if not report.ok:
        _print(str(report))
        raise SystemExit(ExitCode.FAILURE)
    return report
