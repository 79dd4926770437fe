"""Running a tree inside an existing program: running() and RunningTree."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import final

import anyio
import anyio.abc
import structlog

from ._backends import Scheduler, current_scheduler
from ._errors import ConfigurationError, StoppedError
from ._escalation import Escalation
from ._instance import ComponentInstance, failure_group, stop_instances
from ._policy import Phase, ShutdownPolicy
from ._progress import startup_progress_interval, watch_startup
from ._report import ShutdownReport, State, StopReason
from ._signals import watch_signals
from ._spec import ComponentSpec

__all__ = ["RunningTree", "as_spec", "running"]

_log = structlog.get_logger("lifecycle")


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
    """

    __slots__ = (
        "_escalation",
        "_instance",
        "_ready_or_stopped",
        "_reason",
        "_report",
        "_schedule",
        "_signal_scope",
        "_stop_listeners",
        "_stop_requested",
        "_stopped",
        "_task_group",
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
        self._request(StopReason.REQUEST, f"escalated to {phase.name}")
        assert self._escalation is not None  # noqa: S101 - set by _request
        if self._escalation.escalate(phase):
            _log.warning("tree.escalated", tree=self.name, phase=phase.name)

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
        self._escalation = Escalation.start(self.policy) if escalation is None else escalation
        _log.info(
            "tree.stopping",
            tree=self.name,
            reason=reason.value,
            detail=detail,
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

    def _root_stopping(self, instance: ComponentInstance) -> None:
        # The root stopping itself (its main child returned, or it gave up) is the
        # tree's stop: adopt its deadlines, so signals escalate the stop under way
        # and run()'s watchdog covers it.
        if instance.stop_detail is not None:
            reason = StopReason.FAILURE if instance.stop_failed else StopReason.MAIN_EXITED
            self._request(reason, instance.stop_detail, instance.escalation)

    def _root_exited(self, instance: ComponentInstance) -> None:
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
            await stop_instances((instance,), escalation)
            reason, detail = self._reason or (StopReason.REQUEST, "")
            report = ShutdownReport(
                root=self.name,
                reason=reason,
                detail=detail,
                requested_at=escalation.started_at,
                finished_at=anyio.current_time(),
                root_report=instance.report(),
                phase_ends=escalation.ends,
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
            if self._signal_scope is not None:
                self._signal_scope.cancel()


@asynccontextmanager
async def running(
    root: object,
    *,
    signals: bool = False,
    policy: ShutdownPolicy | None = None,
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

    Raises:
        ConfigurationError: The tree is declared wrongly, or
            ``LIFECYCLE_STARTUP_PROGRESS_INTERVAL`` is not a number of seconds.

        ExceptionGroup: Components failed and nothing handled it.
    """
    spec = as_spec(root)
    spec.validate_tree()
    if policy is not None and not isinstance(policy, ShutdownPolicy):
        msg = f"`policy` must be a lifecycle.ShutdownPolicy or None, got {policy!r}."
        raise ConfigurationError(msg)
    tree_policy = policy or spec.policy or ShutdownPolicy.from_env()
    progress_interval = startup_progress_interval()
    handle = RunningTree(spec, tree_policy)
    cancelled = anyio.get_cancelled_exc_class()
    body_error: BaseException | None = None
    async with anyio.create_task_group() as task_group:
        handle._task_group = task_group
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


async def _watch_in(
    scope: anyio.CancelScope,
    tree: RunningTree,
    *,
    task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
) -> None:
    with scope:
        await watch_signals(tree, task_status=task_status)
