"""The watchdog thread of run(): signals, wall-clock deadlines, a blocked loop, the hard exit."""

from __future__ import annotations

import collections
import contextlib
import math
import os
import queue
import sys
import threading
import time
import traceback
from collections.abc import Callable
from types import FrameType
from typing import TYPE_CHECKING, TypeVar, final

import anyio
import attrs

from lifecycle._core._backends import Scheduler, current_scheduler
from lifecycle._core._escalation import Escalation
from lifecycle._core._last_resort import run_hard_exit_hooks
from lifecycle._core._policy import Phase, ShutdownPolicy
from lifecycle._core._report import ComponentReport, ShutdownReport
from lifecycle._core._report_error import report_error
from lifecycle._core._safe_logging import module_logger
from lifecycle._core._states import Outcome, StopReason

from ._blocked_loop import blocked_in
from ._dump_text import dump_fields
from ._exits import ExitCode, print_err
from ._signals import (
    DUMP_SIGNAL,
    act_on_stop_signal,
    dump_tree,
    log_dump,
    log_stop_signal,
    signal_name,
    stop_step,
)

if TYPE_CHECKING:
    from lifecycle._core._instance import ComponentInstance

    from ._running_tree import RunningTree

__all__ = ["Watchdog"]

_log = module_logger

# A loop that has not run a callback scheduled this long ago is blocked: a third
# stop signal then ends the process at once instead of waiting for it.
UNRESPONSIVE = 1.0

# If reporting the hard exit hangs (stderr is a full pipe, a lock held by the
# blocked thread), the process still ends this long after the decision.
_BACKSTOP = 10.0

# The stop signal that asks for TERMINATE (the third).
_TERMINATING = 3

T = TypeVar("T")

_WAKE = object()  # something moved a deadline: recompute the wait
_CLOSE = object()


@final
class Watchdog:
    """
    The thread that keeps :func:`run` in charge of the process, whatever the event loop does.

    A thread, because the event loop may be the thing that is stuck (a blocking
    call, a busy loop). It receives the stop signals from the Python-level
    signal handler (:meth:`on_signal` only puts the number in a queue), logs
    them, and schedules the tree's reaction in the loop thread-safely. From the
    first stop signal on it keeps the stop's deadlines itself, on the wall
    clock, so a loop that never comes back still ends: when the terminate
    deadline passes, or when a third signal comes while the loop has not run
    for :data:`UNRESPONSIVE` seconds, it logs the stubborn components and the
    stack of the main thread, prints the report, hands it to *on_report* and
    exits the process with ``ExitCode.TERMINATED``.

    When the loop has not run for longer than *blocked_after* seconds, it logs
    ``loop.blocked`` with the stack of the code holding it (once per episode)
    and ``loop.unblocked`` when it runs again.
    """

    def __init__(
        self,
        policy: ShutdownPolicy,
        *,
        blocked_after: float,
        on_report: Callable[[ShutdownReport], None] | None,
        on_hangup: Callable[[RunningTree], None] | None = None,
    ) -> None:
        self._policy = policy
        self._blocked_after = blocked_after
        self._on_report = on_report
        # The seam for a SIGHUP that reloads instead of stopping (called in the loop).
        self._on_hangup = on_hangup
        self._inbox: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._tree: RunningTree | None = None
        self._schedule: Scheduler | None = None
        self._backlog: list[Callable[[], None]] = []
        self._offset = 0.0  # loop clock minus time.monotonic()
        self._stopped = False  # the tree has stopped and made its report
        self._beat = time.monotonic()
        self._blocked_since: float | None = None
        # Callbacks scheduled in the loop: sequence numbers and when they were sent.
        self._sent = 0
        self._pending: collections.deque[tuple[int, float]] = collections.deque()
        self._ready: collections.deque[tuple[int, Callable[[], None]]] = collections.deque()
        self._wake: anyio.Event | None = None
        self._signals: list[str] = []  # the stop signals counted, in order
        self._own: Escalation | None = None  # the stop's deadlines on time.monotonic(), from the first signal
        self._armed = math.inf  # the terminate deadline of the tree's own stop, on time.monotonic()
        self._ending = threading.Lock()  # whoever holds it writes the report and ends the process
        self._gave_up = False
        self._main_thread = threading.get_ident()
        self._thread = threading.Thread(target=self._watch, name="lifecycle-watchdog", daemon=True)
        self._thread.start()

    @property
    def watches_loop(self) -> bool:
        """Whether the loop is watched for blocking calls (then :meth:`heartbeat` must run in it)."""
        return self._blocked_after > 0

    # -- the signal handler (main thread, between any two bytecodes) ---------------

    def on_signal(self, signum: int, _: FrameType | None) -> None:
        """
        Hand *signum* to the watchdog thread; the Python-level handler of every handled signal.

        Runs in the main thread, wherever it was interrupted, perhaps inside a
        lock held by logging: so it takes no lock and logs nothing.
        ``queue.SimpleQueue.put`` is reentrant, which is what a signal handler needs.
        """
        self._inbox.put(signum)

    # -- the event loop's side -----------------------------------------------------

    def attach(self, tree: RunningTree) -> None:
        """
        Watch *tree*; in the loop, in a task, before any component starts.

        Signals that came earlier act now. Then :meth:`react` must run in a task
        of the loop until the tree has stopped: the signals' reactions run there.
        """
        self._offset = anyio.current_time() - time.monotonic()
        self._wake = anyio.Event()
        tree.subscribe_stop(lambda: self._follow(tree))
        tree.subscribe_report(self._tree_stopped)
        with self._lock:
            self._tree = tree
            self._schedule = current_scheduler()
            self._beat = time.monotonic()
            backlog, self._backlog = self._backlog, []
        self._inbox.put(_WAKE)  # the thread starts watching the loop
        for callback in backlog:
            self._guarded(callback)

    async def react(self, scope: anyio.CancelScope) -> None:
        """Run what the thread sends (the reactions to signals), until *scope* is cancelled; in a task."""
        with scope:
            while True:
                wake = self._wake
                assert wake is not None  # noqa: S101 - set by attach()
                await wake.wait()
                self._wake = anyio.Event()
                while self._ready:
                    seq, callback = self._ready.popleft()
                    with self._lock:
                        while self._pending and self._pending[0][0] <= seq:
                            self._pending.popleft()
                    self._guarded(callback)

    def detach(self) -> None:
        """Stop sending to the loop: it is about to end. In the loop."""
        with self._lock:
            self._schedule = None
            self._pending.clear()
        escalation = None if self._tree is None else self._tree.escalation
        if escalation is not None:
            # Nothing moves its deadlines any more; subscribed, the stop and the tree
            # would refer to each other through this watchdog and wait for the cyclic collector.
            escalation.unsubscribe(self)

    async def heartbeat(self, scope: anyio.CancelScope) -> None:
        """Stamp the loop's liveness a few times per threshold, until *scope* is cancelled."""
        interval = min(0.25, self._blocked_after / 4)
        with scope:
            while True:
                self._beat = time.monotonic()
                await anyio.sleep(interval)

    def arm(self) -> None:
        """Take the terminate deadline of the tree's stop (it may have moved earlier); in the loop."""
        tree = self._tree
        escalation = None if tree is None else tree.escalation
        if escalation is None:  # pragma: no cover - the tree calls this once its stop has deadlines
            return
        remaining = escalation.end(Phase.TERMINATE) - anyio.current_time()
        self._armed = min(self._armed, time.monotonic() + max(0.0, remaining))
        self._inbox.put(_WAKE)

    def _follow(self, tree: RunningTree) -> None:
        """Arm the deadline now, and again whenever an escalation moves it; in the loop."""
        escalation = tree.escalation
        if escalation is not None:
            escalation.subscribe(self, self.arm)
        self.arm()

    def _tree_stopped(self, _: ShutdownReport | None = None) -> None:
        self._stopped = True

    # -- the main thread, after the loop -----------------------------------------

    def claim_ending(self) -> None:
        """
        Take over the end of the process from the watchdog; blocks forever if it has begun a hard exit.

        From then on, the watchdog ends nothing: the caller writes the report.
        """
        if not self._ending.acquire(blocking=False):
            threading.Event().wait()  # pragma: no cover - the watchdog is ending the process

    def close(self) -> None:
        """Stop the thread."""
        self._inbox.put(_CLOSE)
        self._thread.join()

    # -- the thread -----------------------------------------------------------------

    def _watch(self) -> None:
        while True:
            timeout = self._timeout(time.monotonic())
            try:
                message = self._inbox.get(timeout=timeout)
            except queue.Empty:
                message = None
            if message is _CLOSE:
                return
            now = time.monotonic()
            try:
                if isinstance(message, int):
                    self._received(message, now)
                if self._blocked_after and self._schedule is not None:
                    self._check_loop(now)
            except Exception as exc:  # noqa: BLE001 - the thread must outlive any bug: it ends the process
                report_error("watchdog.failed", exc)
            why = self._due(now)
            if why is not None:
                self._hard_exit(why, now)

    def _deadline(self) -> float:
        own = math.inf if self._own is None else self._own.end(Phase.TERMINATE)
        return min(own, self._armed)

    def _timeout(self, now: float) -> float | None:
        waits: list[float] = []
        if not self._gave_up:
            deadline = self._deadline()
            if not math.isinf(deadline):
                waits.append(deadline - now)
            with self._lock:
                oldest = self._pending[0][1] if self._pending else None
            if len(self._signals) >= _TERMINATING and oldest is not None:
                waits.append(oldest + UNRESPONSIVE - now)
        if self._blocked_after and self._schedule is not None:
            waits.append(self._blocked_after / 2)
        return max(0.0, min(waits)) if waits else None

    def _due(self, now: float) -> str | None:
        """Why the process must end now, if it must."""
        if self._gave_up:
            return None
        if now >= self._deadline():
            if self._stopped:  # e.g. asyncio waiting for a default-executor thread that never ends
                return "the terminate deadline passed while the event loop was closing"
            return "the terminate deadline passed with components still running"
        if len(self._signals) >= _TERMINATING and not self._stopped and self._stuck(now):
            return "a third stop signal came while the event loop was blocked"
        return None

    def _stuck(self, now: float) -> bool:
        """
        Whether the loop has not run for :data:`UNRESPONSIVE` seconds.

        It has not if a callback sent that long ago is still waiting, or, when the
        loop is watched, if its heartbeat is that old.
        """
        waited = 0.0
        with self._lock:
            if self._pending:
                waited = now - self._pending[0][1]
            watched = self._blocked_after > 0 and self._schedule is not None
        if watched:
            waited = max(waited, now - self._beat)
        return waited >= UNRESPONSIVE

    def _received(self, signum: int, now: float) -> None:
        name = signal_name(signum)
        if signum == DUMP_SIGNAL:
            self._dump(name, now)
            return
        on_hangup = self._on_hangup
        if name == "SIGHUP" and on_hangup is not None:
            _quietly(lambda: _log.warning("signal.received", signal=name, action="reload"))
            self._send(lambda: on_hangup(self._attached()))
            return
        with self._lock:
            stopped = self._stopped
            if not stopped:
                self._signals.append(name)
            count = len(self._signals)
            tree = self._tree
        if stopped:
            _quietly(lambda: _log.warning("signal.ignored", signal=name, reason="the tree has stopped"))
            return
        step = stop_step(count)
        if step is not None:
            # The deadlines first: they must hold even if nothing else below works.
            phase = step[0]
            if self._own is None:
                drain = 0.0 if tree is None else tree.drain_delay
                self._own = Escalation.start(self._policy, now=now + drain)
            if phase is not Phase.GRACEFUL:
                self._own._move_ends(phase, now)
        stopping = tree is not None and tree.stop_requested
        _quietly(lambda: log_stop_signal(name, count, stopping=stopping))
        if step is not None:
            self._send(lambda: act_on_stop_signal(self._attached(), step[0], name))

    def _dump(self, name: str, now: float) -> None:
        tree = self._tree
        if tree is not None and self._stuck(now):
            # The loop cannot do it: dump from here, with the stack that blocks it.
            fields = dump_fields(dump_tree(tree._instance))
            _log.warning("tree.dump", tree=tree.name, signal=name, loop_blocked=True, **fields)
            return
        self._send(lambda: log_dump(self._attached(), name))

    def _attached(self) -> RunningTree:
        assert self._tree is not None  # noqa: S101 - callbacks run once attached
        return self._tree

    def _send(self, callback: Callable[[], None]) -> None:
        """Run *callback* in the loop soon (or once attached); from the thread."""
        with self._lock:
            schedule = self._schedule
            if schedule is None:
                self._backlog.append(callback)
                return
            self._sent += 1
            seq = self._sent
            self._pending.append((seq, time.monotonic()))
        schedule(lambda: self._deliver(seq, callback))

    def _deliver(self, seq: int, callback: Callable[[], None]) -> None:
        """In the loop, outside any task: hand *callback* to :meth:`react`, which runs it in a task."""
        self._ready.append((seq, callback))
        if self._wake is not None:
            self._wake.set()

    @staticmethod
    def _guarded(callback: Callable[[], None]) -> None:
        # An error here would end the loop on Trio (and be lost on asyncio): report it.
        try:
            callback()
        except Exception as exc:  # noqa: BLE001 - reported, never raised into the loop
            report_error("signal.handling_failed", exc)

    def _check_loop(self, now: float) -> None:
        beat = self._beat
        stale = now - beat
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

    def _report_now(self, tree: RunningTree, now: float) -> ShutdownReport:
        """The report of a stop that has not ended, as it is at ``time.monotonic()`` *now*."""
        if tree.report is not None:
            return tree.report
        loop_now = now + self._offset
        escalation, own = tree.escalation, self._own
        ends: tuple[float, float, float] | None = None
        if own is not None:
            # The loop may not have seen the latest signals: the thread's own deadlines count too.
            g, f, t = own.ends
            ends = (g + self._offset, f + self._offset, t + self._offset)
            requested = own.started_at + self._offset
        if escalation is not None:
            requested = escalation.started_at
            g, f, t = escalation.ends
            ends = (g, f, t) if ends is None else (min(g, ends[0]), min(f, ends[1]), min(t, ends[2]))
        elif own is None:  # pragma: no cover - a hard exit always follows a stop request
            requested = loop_now
        floor = None if own is None else own.phase_at(now)
        if tree._reason is not None:
            reason, detail = tree._reason
        elif self._signals:
            reason, detail = StopReason.SIGNAL, f"{self._signals[0]} received"
        else:  # pragma: no cover - as above
            reason, detail = StopReason.REQUEST, ""
        return ShutdownReport(
            root=tree.name,
            reason=reason,
            detail=detail,
            requested_at=min(requested, loop_now),
            finished_at=loop_now,
            root_report=_snapshot(tree._instance, loop_now, floor),
            phase_ends=ends,
        )

    def _hard_exit(self, why: str, now: float) -> None:  # pragma: no cover - ends the process; tested in subprocesses
        if not self._ending.acquire(blocking=False):
            self._gave_up = True  # run() is writing the report itself
            return
        backstop = threading.Timer(_BACKSTOP, os._exit, (ExitCode.TERMINATED,))
        backstop.daemon = True
        backstop.start()
        try:
            frame = sys._current_frames().get(self._main_thread)  # the only way to see a blocked loop
            loop_stack = "".join(traceback.format_stack(frame)) if frame is not None else ""
            tree = self._tree
            live = [] if tree is None else [i for i in _retrying(tree._instance.walk_live) if not i.done]
            stubborn = [i for i in live if i.escalation is not None and not i.live_children()]
            blocked = self._stuck(now)
            _log.critical(
                "tree.terminated",
                tree=None if tree is None else tree.name,
                reason=why,
                stubborn=[i.path for i in stubborn],
                never_stopped=[i.path for i in live if i.escalation is None],
                loop_blocked=blocked,
                exit_code=int(ExitCode.TERMINATED),
            )
            for stuck in stubborn:
                _log.critical("component.stubborn", component=stuck.path, stack="".join(stuck.stack()))
            if loop_stack:
                # A blocked loop's stack shows the culprit; an idle loop's is only its select(): a debug detail.
                log_stack = _log.critical if blocked else _log.debug
                log_stack("loop.stack", stack=loop_stack, loop_blocked=blocked, **blocked_in(frame))
            # Child processes, their cgroups and known descendants: nothing else will stop them now.
            run_hard_exit_hooks()
            if tree is not None:
                report = _retrying(lambda: self._report_now(tree, now))
                print_err(str(report))
                if self._on_report is not None:
                    self._on_report(report)
        except BaseException:  # noqa: BLE001 - reporting must never stop the exit
            traceback.print_exc()
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(ExitCode.TERMINATED)


def _quietly(log: Callable[[], object]) -> None:
    """Log from the watchdog thread; a log that fails (stderr closed) must not keep it from its work."""
    # Nowhere left to report a failure to; the signal still acts.
    with contextlib.suppress(Exception):
        log()


def _retrying(read: Callable[[], T]) -> T:  # pragma: no cover - called by the hard exit
    """Call *read*, again if the loop's thread changed what it reads meanwhile (a set resized)."""
    for _ in range(9):
        try:
            return read()
        except RuntimeError:
            continue
    return read()


def _snapshot(instance: ComponentInstance, now: float, floor: Phase | None) -> ComponentReport:
    """
    Report *instance* and its live children as they are at loop time *now*.

    A stubborn component is in phase *floor* at least: the signals that the
    blocked loop never got to escalated its stop that far.
    """
    report = instance.report(now=now)
    live = tuple(_snapshot(child, now, floor) for child in instance.live_children())
    phase = report.phase
    if report.outcome is Outcome.STUBBORN and phase is not None and floor is not None and floor > phase:
        phase = floor
    return attrs.evolve(report, phase=phase, children=report.children + live)
