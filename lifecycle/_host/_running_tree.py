"""
RunningTree: the handle on a running tree, and the public API to observe it.

A tree is started by :func:`~lifecycle.running` (or :func:`~lifecycle.run`);
its handle waits for it, stops it, escalates its stop, and lets anyone list
its components and subscribe to its changes (readiness, the stop's beginning,
phase changes, component changes, the final report). The package's own
integrations observe a tree only through this API.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from contextvars import ContextVar
from typing import Literal, final

import anyio
import anyio.abc

from lifecycle._core._backends import Scheduler, current_scheduler
from lifecycle._core._errors import StoppedError
from lifecycle._core._escalation import Escalation
from lifecycle._core._instance import ComponentInstance
from lifecycle._core._observe import ComponentObservers, ComponentStatus, Subscription, Topic, collect_statuses
from lifecycle._core._policy import Phase, ShutdownPolicy
from lifecycle._core._reload import ReloadReport
from lifecycle._core._report import ShutdownReport
from lifecycle._core._safe_logging import module_logger
from lifecycle._core._spec import ComponentSpec
from lifecycle._core._states import PhaseChange, State, StopReason
from lifecycle._core._stop import stop_instances
from lifecycle._core._validation import Option

from ._phase_log import PhaseLog
from ._reload import TreeReloads

__all__ = ["RunningTree", "as_spec", "current_tree"]

_log = module_logger

_DRAIN_DELAY = Option.seconds(finite=True)

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
        "_phases",
        "_ready_or_stopped",
        "_ready_topic",
        "_reason",
        "_reloads",
        "_report",
        "_report_topic",
        "_requested_at",
        "_schedule",
        "_signal_scope",
        "_stop_requested",
        "_stop_topic",
        "_stopped",
        "_task_group",
        "grace_period",
        "name",
        "policy",
    )

    def __init__(self, spec: ComponentSpec, policy: ShutdownPolicy) -> None:
        self.name = spec.name
        self.policy = policy
        self._instance = ComponentInstance(spec, policy=policy)
        # Its own, even when the tree is started inside a component of another tree.
        self._instance._observers = ComponentObservers(spec.name)
        self._escalation: Escalation | None = None
        self._reason: tuple[StopReason, str] | None = None
        self._report: ShutdownReport | None = None
        self._stop_requested = anyio.Event()
        self._stopped = anyio.Event()
        self._ready_or_stopped = anyio.Event()
        self._schedule: Scheduler = current_scheduler()
        self._task_group: anyio.abc.TaskGroup | None = None
        self._signal_scope: anyio.CancelScope | None = None
        self._ready_topic: Topic[None] = Topic(spec.name, "ready", once=True)
        self._stop_topic: Topic[None] = Topic(spec.name, "stop", once=True)
        self._report_topic: Topic[ShutdownReport] = Topic(spec.name, "report", once=True)
        self._phases = PhaseLog(self._instance, Topic(spec.name, "phases"))
        self._reloads = TreeReloads(spec.name)
        self._drain_delay = 0.0
        self._drain_cut: anyio.Event | None = None
        self._requested_at: float | None = None
        self.grace_period: float | None = None

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
        self._drain_delay = max(self._drain_delay, float(_DRAIN_DELAY.check("drain_delay", seconds)))

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

    @property
    def stop_reason(self) -> StopReason | None:
        """
        Why the tree's stop was requested, once it was; ``None`` before.

        .. versionadded:: 0.1.0
        """
        return None if self._reason is None else self._reason[0]

    @property
    def stop_detail(self) -> str | None:
        """
        The stop's reason in a few words (``"SIGTERM received"``), once it was requested; ``None`` before.

        .. versionadded:: 0.1.0
        """
        return None if self._reason is None else self._reason[1]

    @property
    def phase(self) -> Phase | None:
        """
        The phase the tree's stop is in now, or ``None`` until its first phase begins (after the drain delay).

        .. versionadded:: 0.1.0
        """
        return self._phases.current

    @property
    def phase_changes(self) -> tuple[PhaseChange, ...]:
        """
        Every phase change of the tree's stop so far, in order (as logged in ``tree.phase`` events).

        .. versionadded:: 0.1.0
        """
        return tuple(self._phases.changes)

    # -- observation ------------------------------------------------------------------

    def components(self) -> tuple[ComponentStatus, ...]:
        """
        Return every component of the tree with its state, as it is now.

        The root comes first, then each component's children after it (depth
        first), in registration order. A supervisor lists all of its declared
        children, not only the running ones: a child waiting for its restart is
        ``RESTARTING`` (with the error that ended its run and when its next
        start is due), one that ended for good is ``STOPPED`` or ``FAILED``, a
        dynamic child waiting for its dependencies is ``STARTING``. Children of
        a nested supervisor that is not running are not listed. Not a
        checkpoint; O(components).

        .. versionadded:: 0.1.0
        """
        return collect_statuses(self._instance)

    def subscribe_components(self, callback: Callable[[ComponentStatus], object]) -> Subscription:
        """
        Call *callback(status)* each time a component's state changes, until cancelled.

        The status is the component's new one, as :meth:`components` would
        list it: starting, ready (``RUNNING``), stopping, waiting for a restart
        (``RESTARTING``), ended. A child that leaves the tree (``stop_child()``,
        a dynamic child that ended for good) is last reported ``STOPPED`` or
        ``FAILED``. A status that did not change is not reported twice.

        Like every ``subscribe_*`` method: the callback runs in the event
        loop's thread, at the moment of the change, inside the code that made
        it, so it must be quick and must not block (to await something, hand
        the value to a task through a memory object stream). An exception it
        raises is logged (``tree.subscriber_failed``) and the subscription
        goes on. Not a checkpoint; the callbacks start with the next change.

        Returns:
            The subscription; :meth:`Subscription.cancel() <lifecycle.Subscription.cancel>`
            ends it, and so does leaving it as a context manager.

        .. versionadded:: 0.1.0
        """
        observers = self._instance._observers
        assert observers is not None  # noqa: S101 - set in __init__
        return observers.add(callback)

    def subscribe_ready(self, callback: Callable[[], object]) -> Subscription:
        """
        Call *callback()* once, when the whole tree has started (``tree.ready`` is logged).

        If the tree is ready already, it is called at once, before this
        returns. A tree that stops before it was ready never calls it. See
        :meth:`subscribe_components` for how callbacks run. Not a checkpoint.

        .. versionadded:: 0.1.0
        """
        return self._ready_topic.add(lambda _: callback())

    def subscribe_stop(self, callback: Callable[[], object]) -> Subscription:
        """
        Call *callback()* once, when the tree's stop is requested.

        That is the moment :attr:`stop_requested` turns true: a request, a
        signal, the root (or a ``main`` component) returning, or a failure
        nothing handles; before the drain delay and before any component stops.
        :attr:`stop_reason`, :attr:`stop_detail` and :attr:`escalation` are set
        when it is called. If the stop was requested already, it is called at
        once. See :meth:`subscribe_components` for how callbacks run. Not a
        checkpoint.

        .. versionadded:: 0.1.0
        """
        return self._stop_topic.add(lambda _: callback())

    def subscribe_phases(self, callback: Callable[[PhaseChange], object]) -> Subscription:
        """
        Call *callback(change)* each time a phase of the tree's stop begins, until cancelled.

        *change* is the :class:`~lifecycle.PhaseChange` logged as ``tree.phase``:
        the first phase when the drain delay is over, and each later one when
        the one before it ran out (reason ``deadline``) or was cut short by
        :meth:`escalate` or a signal. Changes made before the subscription are
        in :attr:`phase_changes`. See :meth:`subscribe_components` for how
        callbacks run. Not a checkpoint.

        .. versionadded:: 0.1.0
        """
        return self._phases.topic.add(callback)

    def subscribe_report(self, callback: Callable[[ShutdownReport], object]) -> Subscription:
        """
        Call *callback(report)* once, when the tree has stopped and its report is made.

        It runs before :meth:`wait` and :meth:`shutdown` return, and before
        leaving the ``async with running(...)`` block. If the tree has stopped
        already, it is called at once. See :meth:`subscribe_components` for
        how callbacks run. Not a checkpoint.

        .. versionadded:: 0.1.0
        """
        return self._report_topic.add(callback)

    def subscribe_reloads(self, began: Callable[[], object], ended: Callable[[ReloadReport], object]) -> Subscription:
        """
        Call *began()* as each reload begins (before any hook runs) and *ended(report)* as it ends.

        An ignored reload calls neither. See :meth:`subscribe_components` for how callbacks run.

        .. versionadded:: 0.1.0
        """
        return self._reloads.topic.add(lambda report: began() if report is None else ended(report))

    async def reload(self) -> ReloadReport:
        """
        Run the reload hooks of every running component, dependencies first, and return the report.

        See :meth:`Context.on_reload() <lifecycle.Context.on_reload>`. Hooks run in the calling
        task; one that raises is logged and reported, never raised. Ignored (``reload.ignored``)
        before the tree has started, while it stops and during another reload; the stop's
        beginning cancels it. A checkpoint when a hook runs; cancelling it cancels that hook.

        .. versionadded:: 0.1.0
        """
        return await self._reloads.run(self, "reload() was called")

    def request_reload(self) -> None:
        """
        Ask for a :meth:`reload` in the tree's own task; return at once (safe from any thread).

        .. versionadded:: 0.1.0
        """
        self._schedule(lambda: self._reloads.start(self, "request_reload() was called"))

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

    async def shutdown(self, *, detail: str | None = None) -> ShutdownReport:
        """
        Request the stop and wait until the tree has stopped.

        *detail* says why, in the words of whoever reads the logs and the report
        (``tree.stopping``, :attr:`ShutdownReport.detail`); ``"shutdown() was
        called"`` by default. A checkpoint. Cancelling the caller abandons only
        the waiting; the stop goes on, and leaving the ``async with`` block waits for it.

        .. versionchanged:: 0.1.0
           Added *detail*.
        """
        self._request(StopReason.REQUEST, detail or "shutdown() was called")
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
            self._phases.began(self._escalation, reason)

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
        self._stop_topic.publish(None)
        self._stop_requested.set()

    def _root_ready(self, _: ComponentInstance) -> None:
        _log.info("tree.ready", tree=self.name)
        self._ready_or_stopped.set()
        self._ready_topic.publish(None)

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
            self._phases.began(escalation, "signal" if reason is StopReason.SIGNAL else "request")
            watching = anyio.CancelScope()
            task_group.start_soon(self._phases.watch, watching, escalation, name=f"lifecycle:phases:{self.name}")
            await stop_instances((instance,), escalation)
            watching.cancel()
            self._phases.close()
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
                phase_changes=tuple(self._phases.changes),
            )
            self._report = report
            # How many components ended each way, under one key: `graceful=3` beside the
            # stop's budgets read as a number of seconds.
            outcomes = {outcome.value: n for outcome, n in report.counts.items()}
            log = _log.info if report.ok else _log.error
            log("tree.stopped", tree=self.name, duration=round(report.duration, 6), ok=report.ok, outcomes=outcomes)
            self._stopped.set()
            self._ready_or_stopped.set()
            self._report_topic.publish(report)
            if self._signal_scope is not None:
                self._signal_scope.cancel()
