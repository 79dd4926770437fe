"""Running a tree inside an existing program: running() and RunningTree."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from contextvars import ContextVar
from typing import Literal, final

import anyio
import anyio.abc
import structlog

from lifecycle._core._backends import Scheduler, current_scheduler
from lifecycle._core._errors import ConfigurationError, StoppedError
from lifecycle._core._escalation import Escalation
from lifecycle._core._failures import failure_group
from lifecycle._core._instance import ComponentInstance
from lifecycle._core._policy import Phase, ShutdownPolicy
from lifecycle._core._report import ShutdownReport
from lifecycle._core._spec import ComponentSpec
from lifecycle._core._states import PhaseChange, State, StopReason
from lifecycle._core._stop import stop_instances
from lifecycle._integrations._systemd import notify_systemd

from ._grace_period import check_budget, grace_period_from_env, seconds_option
from ._signals import watch_signals
from ._startup_progress import startup_progress_interval, watch_startup

__all__ = ["RunningTree", "as_spec", "current_tree", "running"]

_log = structlog.get_logger("lifecycle")

# How many paths of running components a ``tree.phase`` event lists (it counts them all).
_RUNNING_LISTED = 50

# Set in the tree's own task, so every component task of the tree inherits it.
_current_tree: ContextVar[RunningTree] = ContextVar("lifecycle_current_tree")


def current_tree() -> RunningTree:
    """
    Return the :class:`RunningTree` that the calling task belongs to.

    Works in every component of a tree started by :func:`running` or
    :func:`~lifecycle.run`, and in the tasks they spawn; this is how a component
    such as :class:`~lifecycle.HealthServer` observes the whole tree.

    Raises:
        RuntimeError: The caller is not part of a running tree.

    .. versionadded:: 0.1.0
    """
    try:
        return _current_tree.get()
    except LookupError:
        msg = (
            "current_tree() was called outside a running tree; call it from a component "
            "(or a task it spawned) of a tree started with lifecycle.running() or lifecycle.run()."
        )
        raise RuntimeError(msg) from None


def as_spec(root: object) -> ComponentSpec:
    """
    Return *root* as a :class:`~lifecycle.ComponentSpec`.

    Raises:
        ConfigurationError: *root* is not a component.
    """
    if isinstance(root, ComponentSpec):
        return root
    return ComponentSpec.from_target(root)


@final
class RunningTree:
    """
    A handle on a tree started by :func:`running`.

    Attributes:
        name: The root component's name.

        policy: The budgets of the tree's stop.

        grace_period: How long the platform waits after its stop signal
            before it kills the process (seconds), or ``None`` if unknown; read
            from ``LIFECYCLE_GRACE_PERIOD``. When the tree has started, a stop
            that may need longer (drain delay + graceful + forceful +
            terminate) is logged as ``budget.exceeds_grace_period``.
    """

    __slots__ = (
        "_drain_cut",
        "_drain_delay",
        "_escalation",
        "_instance",
        "_phase_changes",
        "_phase_wake",
        "_ready_listeners",
        "_ready_or_stopped",
        "_reason",
        "_report",
        "_requested_at",
        "_schedule",
        "_signal_scope",
        "_stop_listeners",
        "_stop_requested",
        "_stopped",
        "_stopped_listeners",
        "_task_group",
        "grace_period",
        "name",
        "policy",
    )

    def __init__(self, spec: ComponentSpec, policy: ShutdownPolicy) -> None:
        self.name = spec.name
        self.policy = policy
        self._instance = ComponentInstance(spec, policy=policy)
        self._escalation: Escalation | None = None
        self._reason: tuple[StopReason, str] | None = None
        self._report: ShutdownReport | None = None
        self._stop_requested = anyio.Event()
        self._stopped = anyio.Event()
        self._ready_or_stopped = anyio.Event()
        self._schedule: Scheduler = current_scheduler()
        self._task_group: anyio.abc.TaskGroup | None = None
        self._signal_scope: anyio.CancelScope | None = None
        # Called (in the loop) when the stop is requested and on every escalation.
        self._stop_listeners: list[Callable[[], None]] = []
        # Called (in the loop) once, when the whole tree has started.
        self._ready_listeners: list[Callable[[], None]] = []
        # Called (in the loop) once, when the tree has stopped and its report is made.
        self._stopped_listeners: list[Callable[[], None]] = []
        self._drain_delay = 0.0
        self._drain_cut: anyio.Event | None = None
        self._requested_at: float | None = None
        self.grace_period: float | None = None
        self._phase_changes: list[PhaseChange] = []
        self._phase_wake: anyio.CancelScope | None = None

    @property
    def stop_requested(self) -> bool:
        """
        ``True`` from the moment the tree's stop is requested (or the root stops itself).

        It turns true before the drain delay and before any component stops; a
        readiness probe answers "not ready" from then on.
        """
        return self._escalation is not None

    @property
    def failed(self) -> bool:
        """
        ``True`` once the tree has failed: a failure that nothing in it handles.

        It turns true when the root gives up (its stop begins because of a
        failure), not only when the root's task has ended.
        """
        return self._instance.failed or (self._reason is not None and self._reason[0] is StopReason.FAILURE)

    @property
    def drain_delay(self) -> float:
        """
        Seconds to wait between the stop request and the first component stopping.

        During the delay the tree is not ready (:attr:`stop_requested`) but every
        component keeps serving, so load balancers stop routing to the process
        before anything stops. The phase deadlines are measured from the end of
        the delay. Only a requested stop (a signal, :meth:`request_shutdown`,
        :meth:`shutdown`, leaving the block) drains; a failure or a ``main``
        component returning stops at once, and escalating (a second signal) ends
        the delay early. Setting it takes the larger of the current and the new
        value, so several components can each ask for their delay.

        Raises:
            ConfigurationError: On assignment, the value is not a non-negative,
                finite number of seconds.

        .. versionadded:: 0.1.0
        """
        return self._drain_delay

    @drain_delay.setter
    def drain_delay(self, seconds: float) -> None:
        self._drain_delay = max(self._drain_delay, seconds_option("drain_delay", seconds))

    def value(self, path: str) -> object:
        """
        Return the value the live component at *path* provided when it became ready.

        *path* is relative to the root (``"db"``, ``"jobs/worker"``). A restarted
        component provides a new value: look it up each time rather than keeping it.

        Raises:
            LookupError: No live, ready component has that path.

        .. versionadded:: 0.1.0
        """
        wanted = f"{self.name}/{path}" if path else self.name
        for instance in self._instance.walk_live():
            if instance.path == wanted and instance.ready:
                return instance.value
        msg = f"No live, ready component {path!r} in tree {self.name!r}."
        raise LookupError(msg)

    @property
    def state(self) -> State:
        """The root's state (``STARTING``, ``RUNNING``, ``STOPPING``, ``STOPPED`` or ``FAILED``)."""
        return self._instance.state

    @property
    def report(self) -> ShutdownReport | None:
        """The report of the tree's stop, once it has stopped."""
        return self._report

    @property
    def escalation(self) -> Escalation | None:
        """The deadlines of the tree's stop, once requested (low-level)."""
        return self._escalation

    async def ready(self) -> None:
        """
        Wait until the whole tree has started.

        A checkpoint; cancelling it only stops the waiting. If the tree fails to
        start, the body of the ``async with`` block is cancelled (so this call is
        too) and the error is raised when the block exits.

        Raises:
            StoppedError: The tree stopped before it was ready (a shutdown was
                requested during startup).
        """
        await self._ready_or_stopped.wait()
        if not self._instance.ready:
            msg = f"Tree {self.name!r} stopped before it was ready ({self._reason_text()})."
            raise StoppedError(msg)

    def request_shutdown(self) -> None:
        """
        Ask the tree to stop in order; return at once.

        Idempotent. Safe to call from any thread and from a signal handler: the
        request reaches the event loop at its next iteration. The deadlines are
        measured from that moment. Not a checkpoint.
        """
        self._schedule(self._stop_requested.set)

    def escalate(self, phase: Phase) -> None:
        """
        Jump the tree's stop to *phase* now, requesting the stop first if needed.

        ``escalate(Phase.FORCEFUL)`` is what a second Ctrl-C does. Must be called
        from the event loop's thread; not a checkpoint.
        """
        self._escalate(phase, "request")

    async def shutdown(self) -> ShutdownReport:
        """
        Request the stop and wait until the tree has stopped.

        A checkpoint. Cancelling the caller abandons only the waiting; the stop
        goes on, and leaving the ``async with`` block waits for it.

        Returns:
            The report of the stop.
        """
        self._request(StopReason.REQUEST, "shutdown() was called")
        return await self.wait()

    async def wait(self) -> ShutdownReport:
        """
        Wait until the tree stops by itself (or is stopped) and return the report.

        The tree stops by itself when its root (or a ``main`` component) returns,
        when a stop is requested, or when a failure is not handled; a failure
        cancels the block instead of returning here. A checkpoint; cancelling it
        only stops the waiting.
        """
        await self._stopped.wait()
        assert self._report is not None  # noqa: S101 - set before _stopped
        return self._report

    # -- internals ----------------------------------------------------------------

    def _escalate(self, phase: Phase, reason: Literal["request", "signal"]) -> None:
        """Jump to *phase* now; *reason* says who asked (for the ``tree.phase`` event)."""
        detail = f"escalated to {phase.name}" if reason == "request" else f"a signal escalated to {phase.name}"
        self._request(StopReason.SIGNAL if reason == "signal" else StopReason.REQUEST, detail)
        assert self._escalation is not None  # noqa: S101 - set by _request
        if self._escalation.escalate(phase):
            self._phase_began(reason)

    def _phase_began(self, reason: Literal["request", "signal", "deadline"]) -> None:
        """Log every phase that has begun since the last one logged, as ``tree.phase``."""
        escalation = self._escalation
        if escalation is None:  # pragma: no cover - only called once the stop is requested
            return
        now = anyio.current_time()
        if now < escalation.started_at:
            return  # still draining: GRACEFUL has not begun
        current = escalation.phase_at(now)
        last = self._phase_changes[-1].phase if self._phase_changes else None
        if last is not None and current <= last:
            return
        for phase in Phase:
            if (last is None or phase > last) and phase <= current:
                change = PhaseChange(phase=phase, at=now, reason=reason)
                self._phase_changes.append(change)
                running = [i.path for i in self._instance.walk_live() if not i.done]
                # The stop's first phase is routine; a later one means cleanup is being cut off.
                log = _log.info if phase is Phase.GRACEFUL else _log.warning
                log(
                    "tree.phase",
                    tree=self.name,
                    phase=phase.name,
                    reason=reason,
                    running=running[:_RUNNING_LISTED],
                    running_count=len(running),
                )
        if self._phase_wake is not None:
            self._phase_wake.cancel()  # the watcher sleeps until the next phase's end

    async def _watch_phases(self, scope: anyio.CancelScope, escalation: Escalation) -> None:
        """Log ``tree.phase`` (reason ``deadline``) when a phase ends by its deadline; until *scope* is cancelled."""

        def rearm() -> None:  # a deadline moved (an escalation): sleep until the new one
            if self._phase_wake is not None:
                self._phase_wake.cancel()

        escalation.subscribe(rearm, rearm)
        try:
            with scope:
                while self._phase_changes and self._phase_changes[-1].phase is not Phase.TERMINATE:
                    current = self._phase_changes[-1].phase
                    wake = self._phase_wake = anyio.CancelScope(deadline=escalation.end(current))
                    with wake:
                        await anyio.sleep_forever()
                    if anyio.current_time() >= escalation.end(current):
                        self._phase_began("deadline")
        finally:
            self._phase_wake = None
            escalation.unsubscribe(rearm)

    def _reason_text(self) -> str:
        if self._reason is None:
            return "not stopped"
        return f"{self._reason[0].value}: {self._reason[1]}"

    def _request(
        self,
        reason: StopReason = StopReason.REQUEST,
        detail: str = "request_shutdown() was called",
        escalation: Escalation | None = None,
    ) -> None:
        if self._escalation is not None:
            return
        self._reason = (reason, detail)
        self._requested_at = anyio.current_time()
        if escalation is None:
            drain = self._drain_delay if reason in {StopReason.REQUEST, StopReason.SIGNAL} else 0.0
            # The phases' deadlines count from the end of the drain.
            escalation = Escalation.start(self.policy, now=self._requested_at + drain)
        self._escalation = escalation
        _log.info(
            "tree.stopping",
            tree=self.name,
            reason=reason.value,
            detail=detail,
            drain_delay=max(0.0, escalation.started_at - self._requested_at),
            graceful=self.policy.graceful,
            forceful=self.policy.forceful,
            terminate=self.policy.terminate,
        )
        for listener in self._stop_listeners:
            listener()
            self._escalation.subscribe(listener, listener)
        self._stop_requested.set()

    def _root_ready(self, _: ComponentInstance) -> None:
        _log.info("tree.ready", tree=self.name)
        self._ready_or_stopped.set()
        check_budget(self)
        for listener in self._ready_listeners:
            listener()

    async def _drain(self, escalation: Escalation) -> None:
        """Wait out the drain delay, unless an escalation or the root's own stop ends it."""
        if escalation.started_at <= anyio.current_time() or math.isinf(escalation.started_at):
            return
        cut = self._drain_cut = anyio.Event()
        _log.info("tree.draining", tree=self.name, delay=round(escalation.started_at - anyio.current_time(), 6))
        escalation.subscribe(cut, cut.set)
        try:
            with anyio.CancelScope(deadline=escalation.started_at):
                await cut.wait()
        finally:
            escalation.unsubscribe(cut)
            self._drain_cut = None
        # Cut short: the stop starts now, and a component's own policy counts from here.
        escalation.started_at = min(escalation.started_at, anyio.current_time())

    def _root_stopping(self, instance: ComponentInstance) -> None:
        # The root stopping itself (its main child returned, or it gave up) is the
        # tree's stop: adopt its deadlines, so signals escalate the stop under way
        # and run()'s watchdog covers it.
        if instance.stop_detail is not None:
            reason = StopReason.FAILURE if instance.stop_failed else StopReason.MAIN_EXITED
            self._request(reason, instance.stop_detail, instance.escalation)
        if self._drain_cut is not None:
            self._drain_cut.set()

    def _root_exited(self, instance: ComponentInstance) -> None:
        if self._drain_cut is not None:
            self._drain_cut.set()
        if instance.failed:
            self._request(StopReason.FAILURE, instance.stop_detail or f"{instance.path!r} failed")
            # Like an error in a task group: cancel the body of the `async with` block.
            if self._task_group is not None:
                self._task_group.cancel_scope.cancel()
        else:
            self._request(StopReason.MAIN_EXITED, instance.stop_detail or f"{instance.path!r} returned")

    async def _main(self, task_group: anyio.abc.TaskGroup) -> None:
        # Shielded: the host's cancellation reaches the tree only as a stop request
        # (from the `finally` of running()), so the stop is always ordered.
        with anyio.CancelScope(shield=True):
            _current_tree.set(self)
            instance = self._instance
            instance.add_ready_callback(self._root_ready)
            instance.add_exit_callback(self._root_exited)
            instance.add_stop_callback(self._root_stopping)
            instance.start_soon(task_group)
            await self._stop_requested.wait()
            # request_shutdown() from another thread or a signal handler only sets the
            # event (no task context there); the stop is opened here, in a task.
            self._request()
            escalation = self._escalation
            assert escalation is not None  # noqa: S101 - set by _request
            await self._drain(escalation)
            reason, _ = self._reason or (StopReason.REQUEST, "")
            self._phase_began("signal" if reason is StopReason.SIGNAL else "request")
            watching = anyio.CancelScope()
            task_group.start_soon(self._watch_phases, watching, escalation, name=f"lifecycle:phases:{self.name}")
            await stop_instances((instance,), escalation)
            watching.cancel()
            reason, detail = self._reason or (StopReason.REQUEST, "")
            requested_at = escalation.started_at if self._requested_at is None else self._requested_at
            report = ShutdownReport(
                root=self.name,
                reason=reason,
                detail=detail,
                requested_at=min(requested_at, escalation.started_at),
                finished_at=anyio.current_time(),
                root_report=instance.report(),
                phase_ends=escalation.ends,
                phase_changes=tuple(self._phase_changes),
            )
            self._report = report
            counts = {outcome.value: n for outcome, n in report.counts.items()}
            log = _log.info if report.ok else _log.error
            log(
                "tree.stopped",
                tree=self.name,
                duration=round(report.duration, 6),
                ok=report.ok,
                **counts,
            )
            self._stopped.set()
            self._ready_or_stopped.set()
            for listener in self._stopped_listeners:
                listener()
            if self._signal_scope is not None:
                self._signal_scope.cancel()


@asynccontextmanager
async def running(
    root: object,
    *,
    signals: bool = False,
    policy: ShutdownPolicy | None = None,
    notify: bool = False,
) -> AsyncIterator[RunningTree]:
    """
    Run a tree inside an existing anyio, asyncio or trio program.

    The tree is validated first; a :class:`~lifecycle.ConfigurationError` is raised before
    anything starts, never wrapped. Then the root starts in the background and
    the block's body runs at once (``await handle.ready()`` waits for the tree).
    Leaving the block requests a stop and waits for it, shielded: the tree always
    stops in order, even when the block is left by an exception or cancellation.

    A failure that nothing in the tree handles cancels the block's body and is
    raised when the block exits, like an error in a task group: an
    :class:`ExceptionGroup` of :class:`~lifecycle.ComponentError` (each with the original as
    ``__cause__``). An exception raised by the body itself propagates unchanged
    when the tree stopped cleanly, and in the same group otherwise.

    While the tree is slow to start, ``startup.waiting`` is logged every
    ``LIFECYCLE_STARTUP_PROGRESS_INTERVAL`` seconds (5 by default, 0 turns it
    off) with the paths of the components still starting and the seconds
    each has spent starting.

    Args:
        root: A component (usually a ``Supervisor``) or a :class:`~lifecycle.ComponentSpec`.

        signals: Handle SIGINT and SIGTERM: the first stops gracefully, the
            second jumps to FORCEFUL, the third to TERMINATE. Off by default:
            an embedded tree leaves signals to its host.

        policy: The stop's budgets; defaults to the root's own policy, else
            :meth:`~lifecycle.ShutdownPolicy.from_env`.

        notify: Report the tree's life to systemd over ``NOTIFY_SOCKET``
            (``READY=1``, ``STOPPING=1``, ``STATUS=``, ``WATCHDOG=1``,
            ``EXTEND_TIMEOUT_USEC=``; see :doc:`systemd`). Off by default for an
            embedded tree; :func:`~lifecycle.run` turns it on. Nothing is sent
            when ``NOTIFY_SOCKET`` is unset.

    Raises:
        ConfigurationError: The tree is declared wrongly, or
            ``LIFECYCLE_STARTUP_PROGRESS_INTERVAL`` is not a number of seconds,
            or ``LIFECYCLE_GRACE_PERIOD`` is not a number of seconds.

        ExceptionGroup: Components failed and nothing handled it.

    .. versionchanged:: 0.1.0
       Added *notify*.
    """
    spec = as_spec(root)
    spec.validate_tree()
    if policy is not None and not isinstance(policy, ShutdownPolicy):
        msg = f"`policy` must be a lifecycle.ShutdownPolicy or None, got {policy!r}."
        raise ConfigurationError(msg)
    tree_policy = policy or spec.policy or ShutdownPolicy.from_env()
    progress_interval = startup_progress_interval()
    handle = RunningTree(spec, tree_policy)
    handle.grace_period = grace_period_from_env()
    cancelled = anyio.get_cancelled_exc_class()
    body_error: BaseException | None = None
    async with anyio.create_task_group() as task_group:
        handle._task_group = task_group
        if notify:
            # Started before the tree: no state change can be missed.
            await task_group.start(_notify_in, handle, name=f"lifecycle:notify:{spec.name}")
        task_group.start_soon(handle._main, task_group, name=f"lifecycle:tree:{spec.name}")
        watch_startup(handle._instance, task_group, progress_interval)
        if signals:
            # Started (not start_soon): the handlers are installed before the body runs.
            signal_scope = anyio.CancelScope()
            handle._signal_scope = signal_scope
            await task_group.start(_watch_in, signal_scope, handle, name=f"lifecycle:signals:{spec.name}")
        try:
            yield handle
        except BaseException as exc:  # noqa: BLE001 - re-raised below, after the ordered stop
            body_error = exc
        finally:
            with anyio.CancelScope(shield=True):
                handle._request(StopReason.REQUEST, "the running() block exited")
                await handle._stopped.wait()
        failures = handle._instance.failures()
        if isinstance(body_error, cancelled) and not failures:
            raise body_error
    if failures:
        if body_error is not None and not isinstance(body_error, cancelled):
            failures.append(body_error)
        msg = f"tree {spec.name!r} failed"
        raise failure_group(msg, failures)
    if body_error is not None:
        raise body_error


async def _notify_in(tree: RunningTree, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
    # Shielded like the tree's own task: it reports the stop to its very end.
    with anyio.CancelScope(shield=True):
        await notify_systemd(tree, task_status=task_status)


async def _watch_in(
    scope: anyio.CancelScope,
    tree: RunningTree,
    *,
    task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
) -> None:
    with scope:
        await watch_signals(tree, task_status=task_status)
