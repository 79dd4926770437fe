"""
One run of a component: ComponentInstance, what its owner and the component itself do with it.

Its owner (a supervisor, or the tree) starts it, learns of its readiness and
end through callbacks, begins its stop and reads its report; the component
calls back through its :class:`~lifecycle.Context` (ready, spawn, request a
stop). The task it runs is in :mod:`._component_task`, the stop that waits for
it in :mod:`._stop`, the grouping of its errors in :mod:`._failures`.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import AsyncGenerator, Awaitable, Callable, Coroutine
from typing import Any, final

import anyio
import anyio.abc
import structlog

from . import _instance_hooks as _hooks
from ._backends import Primitives, Scope, Waker, current_primitives
from ._component_task import run_component
from ._context import Context
from ._errors import Stage, UsageError
from ._escalation import Escalation, combine_policies
from ._failures import flatten_failures, from_children, path_of
from ._frames import format_own_stack
from ._instance_report import instance_report
from ._observe import ChildStatuses, ComponentObservers
from ._policy import Phase, Priority, ShutdownPolicy
from ._report import ComponentReport
from ._report_error import report_error
from ._safe_logging import lifecycle_logger
from ._scope import ShieldedScope, current_owner
from ._spec import ComponentSpec, Style
from ._states import State
from ._stop import stop_instances
from ._tasks import TaskHandle

__all__ = ["ComponentInstance", "current_instance"]


Callback = Callable[["ComponentInstance"], None]

# Orders the ends of all component tasks in the process; timestamps can tie.
_exit_counter = itertools.count()


def current_instance() -> ComponentInstance | None:
    """
    Return the instance of the component whose code is running, or ``None``.

    Inside a component's task, and inside the background tasks it spawned, this
    is that component's :class:`ComponentInstance`; outside any component it is
    ``None``. A supervisor uses it to refuse a request that would make a
    component wait for its own stop.
    """
    owner = current_owner.get()
    return owner if isinstance(owner, ComponentInstance) else None


@final
class ComponentInstance:
    """
    One run of a component: its task, readiness, stop and report (low-level).

    Supervisors create an instance per start (and per restart), start it in their
    task group with :meth:`start_soon`, learn of readiness and exit through
    callbacks, stop it with :meth:`begin_stop` or :func:`stop_instances`, and read
    its :meth:`report`. The component's task is shielded from outer cancellation:
    only its owner stops it, so an instance that was started must be stopped.

    Args:
        spec: What to run.

        policy: The owner's shutdown budgets; the spec's own policy restricts them.

        path: The component's path in the tree; defaults to its name.

        values: The provided values of its dependencies, by name.

        priority: Its effective priority, for the report.

        restarts: How many times it was restarted before this run.

        gate_teardown: Hold a resource's teardown when it fails while running,
            until the owner stops it (:meth:`release_teardown`).

    Attributes:
        spec: What runs.

        path: The component's path in the tree.

        policy: The budgets it is stopped with.

        state: Its current state.

        value: What it provided when it became ready.

        escalation: The deadlines of its stop, once begun.

        restarts: How many times it was restarted before this run.

        exit_order: When its task ended relative to every other component task
            in the process (``None`` while it runs); sorts reports in stop order.

        parent: The instance of the component that created this one (its
            supervisor), or ``None`` for a root.

        stop_detail: Why the component stopped itself (``ctx.request_stop()``).

        stop_failed: Whether it stopped itself because of a failure.
    """

    __slots__ = (
        "_agen",
        "_body",
        "_children_reports",
        "_containment",
        "_coro",
        "_ctx",
        "_cut_off",
        "_done",
        "_errors",
        "_exit_callbacks",
        "_gate",
        "_gate_open",
        "_gate_teardown",
        "_is_ready",
        "_live_children",
        "_log",
        "_observers",
        "_own_escalation",
        "_prim",
        "_published",
        "_ready_callbacks",
        "_self_stopped",
        "_shields",
        "_stop_callbacks",
        "_subscribed",
        "_task_errors",
        "_tasks",
        "_tasks_idle",
        "_teardown_scope",
        "_tg",
        "_wake",
        "escalation",
        "exit_order",
        "parent",
        "path",
        "policy",
        "priority",
        "ready_at",
        "restarts",
        "spec",
        "started_at",
        "state",
        "stop_began",
        "stop_detail",
        "stop_failed",
        "stopped_at",
        "value",
        "values",
    )

    def __init__(
        self,
        spec: ComponentSpec,
        *,
        policy: ShutdownPolicy,
        path: str | None = None,
        values: dict[str, object] | None = None,
        priority: Priority | None = None,
        restarts: int = 0,
        gate_teardown: bool = False,
    ) -> None:
        self.spec = spec
        self.path = spec.name if path is None else path
        self.policy = combine_policies(policy, spec.policy)
        self.values = values or {}
        self.priority = spec.priority if priority is None else priority
        self.restarts = restarts
        # Set while a failed resource's teardown waits for its owner (see begin_stop).
        self._gate: Waker | None = None
        self._gate_teardown = gate_teardown
        self._gate_open = False
        self.state = State.STARTING
        self.value: object = None
        self.escalation: Escalation | None = None
        # True when begin_stop() derived an escalation of its own (a stricter policy): only that one is released.
        self._own_escalation = False
        self.started_at: float | None = None
        self.ready_at: float | None = None
        self.stop_began: float | None = None
        self.stopped_at: float | None = None
        self.exit_order: int | None = None
        self.stop_detail: str | None = None
        self.stop_failed = False
        self._ctx: Context | None = None
        self._is_ready = self._done = self._cut_off = self._self_stopped = False
        # Tuples, not lists: most stay empty, and a shared () costs no allocation.
        self._errors: tuple[tuple[Stage, BaseException], ...] = ()
        self._task_errors: tuple[BaseException, ...] = ()
        self._children_reports: tuple[ComponentReport, ...] = ()
        self._ready_callbacks: tuple[Callback, ...] = ()
        self._exit_callbacks: tuple[Callback, ...] = ()
        self._stop_callbacks: tuple[Callback, ...] = ()
        self._body: Scope | None = None
        self._coro: Coroutine[Any, Any, None] | None = None
        self._tg: anyio.abc.TaskGroup | None = None
        self._tasks: set[TaskHandle[Any]] | None = None
        self._tasks_idle: anyio.Event | None = None
        self._shields: set[ShieldedScope] | None = None
        self._subscribed = False
        self._agen: AsyncGenerator[object, None] | None = None
        self._wake: Waker | None = None
        self._teardown_scope: Scope | None = None
        self._live_children: dict[ComponentInstance, None] | None = None
        # What its Context was told (publish_children, report_containment), kept here: the
        # instance forgets its Context when it ends, which refers back to it (see _finish).
        self._published: ChildStatuses | None = None
        self._containment: str | None = None
        # An instance created inside a component (by a supervisor) belongs to it.
        owner = current_owner.get()
        self.parent = owner if isinstance(owner, ComponentInstance) else None
        # Bound once per tree (from the configuration in force when the tree is
        # built), so that a debug event that is filtered out costs nothing.
        self._log: structlog.typing.FilteringBoundLogger = (
            self.parent._log if self.parent is not None else lifecycle_logger()
        )
        # The loop's clock, event, scope and cancellation types, resolved once per
        # tree: cheaper than anyio's per-call backend detection on every start and stop.
        self._prim: Primitives = self.parent._prim if self.parent is not None else current_primitives()
        # The subscribers to the tree's component changes (RunningTree.subscribe_components),
        # shared by every instance of the tree; None outside a RunningTree.
        self._observers: ComponentObservers | None = self.parent._observers if self.parent is not None else None
        if _hooks.active:  # lifecycle.testing observes or instruments this instance
            _hooks.created(self)

    # -- the owner's side ------------------------------------------------------

    @property
    def ctx(self) -> Context:
        """The component's :class:`~lifecycle.Context` (made on first use)."""
        if self._ctx is None:
            self._ctx = Context(self)
        return self._ctx

    @property
    def ready(self) -> bool:
        """``True`` once the component has called ``ctx.ready()`` (or yielded)."""
        return self._is_ready

    @property
    def done(self) -> bool:
        """``True`` once the component's task has ended."""
        return self._done

    @property
    def failed(self) -> bool:
        """``True`` if the component raised anywhere in its life."""
        return bool(self._errors)

    @property
    def errors(self) -> tuple[tuple[Stage, BaseException], ...]:
        """Every error the component raised, with the stage it raised it in, in order."""
        return self._errors

    def add_ready_callback(self, callback: Callback) -> None:
        """Call *callback(instance)* when the component becomes ready. It must not raise."""
        self._ready_callbacks += (callback,)

    def release_teardown(self) -> None:
        """
        Let a failed resource's held teardown run (low-level; see *gate_teardown*).

        An instance created with ``gate_teardown=True`` whose resource fails while
        running holds its teardown until this is called, or until its owner
        stops it with :meth:`begin_stop` or :func:`stop_instances`; a supervisor
        stops the failed child's dependents first, so none of them runs against
        a resource that is already torn down. Not a checkpoint.
        """
        self._gate_open = True  # the task may not have reached the gate yet
        if self._gate is not None:
            self._gate.set()

    def add_stop_callback(self, callback: Callback) -> None:
        """Call *callback(instance)* when the component's stop begins. It must not raise."""
        self._stop_callbacks += (callback,)

    def add_exit_callback(self, callback: Callback) -> None:
        """Call *callback(instance)* when the component's task ends. It must not raise."""
        if self._done:
            callback(self)
        else:
            self._exit_callbacks += (callback,)

    def start_soon(self, task_group: anyio.abc.TaskGroup) -> None:
        """
        Start the component's task in *task_group* (at its next checkpoint).

        Tasks it spawns through ``ctx.spawn()`` run in the same group.

        Raises:
            UsageError: The instance was already started.
        """
        if self._tg is not None:
            msg = (
                f"Component instance {self.path!r} was already started; create a new "
                "ComponentInstance for each start (each restart)."
            )
            raise UsageError(msg)
        self._tg = task_group
        if self.parent is not None:
            if self.parent._live_children is None:
                self.parent._live_children = {}
            self.parent._live_children[self] = None
        # The coroutine is kept for stack(); it is cheaper than get_current_task().
        coro = self._coro = run_component(self)
        self._prim.spawn(task_group, coro, f"lifecycle:{self.path}")

    def begin_stop(self, escalation: Escalation) -> None:
        """
        Begin the GRACEFUL phase of the component's stop; not a checkpoint.

        Sets ``ctx.stopping``, then interrupts the component: a resource (an
        async generator) that has yielded is *woken*, not cancelled, and its
        code after ``yield`` runs in the same shielded scope, cut off when
        GRACEFUL ends; anything else (a function, an object's ``run``, a
        generator that has not yielded yet) has its body *cancelled*. Its
        shielded scopes are cut off as *escalation*'s phases end. Calling it
        again, or on an instance that has ended, changes nothing.

        Args:
            escalation: The deadlines of the stop; the component's own policy
                restricts them.
        """
        if self.escalation is not None or self._done:
            self.release_teardown()  # its owner stops it now: a held teardown may run
            return
        own = escalation.restrict(self.spec.policy)
        self.escalation = own
        self._own_escalation = own is not escalation
        if not self._self_stopped:
            # Its owner stops it, dependents first: a teardown held because the
            # component fails from now on (a background task) has nothing to wait for.
            self._gate_open = True
        self.stop_began = self._prim.clock()
        if self.state is State.STARTING or self.state is State.RUNNING:
            self.state = State.STOPPING
        self._log.debug("component.stopping", component=self.path)
        if self._ctx is not None and self._ctx._stopping is not None:
            self._ctx._stopping.set()
        if self._shields:
            self._subscribe()
            self._update_shields()
        if self._wake is not None:
            self._wake.set()
        elif self._body is not None:
            self._body.cancel()
        for callback in self._stop_callbacks:
            callback(self)
        if self._observers is not None:
            self._observers.changed(self)

    async def wait(self) -> None:
        """Wait until the component's task has ended. A checkpoint; cancelling it only stops the waiting."""
        await stop_instances((self,), None)

    async def stop(self, escalation: Escalation) -> ComponentReport:
        """
        Stop the component through the phases and return its report.

        A checkpoint. The waiting is shielded: cancelling the caller does not
        abandon the stop. Past the forceful deadline the component is reported
        stubborn in the log with its stack, and waited for.
        """
        with anyio.CancelScope(shield=True):
            await stop_instances((self,), escalation)
        return self.report()

    def report(self, *, now: float | None = None) -> ComponentReport:
        """
        Return what happened to the component so far.

        Args:
            now: The loop time to report a still-running stop at; needed only
                outside the event loop (the hard-exit watchdog thread).
        """
        return instance_report(self, now)

    def failures(self) -> list[BaseException]:
        """Return the component's errors ready to raise (see :func:`flatten_failures`)."""
        return flatten_failures((self.path, stage, error) for stage, error in self._errors)

    def live_children(self) -> list[ComponentInstance]:
        """Return the started, not yet ended instances this component owns, in start order."""
        return list(self._live_children or ())

    def walk_live(self) -> list[ComponentInstance]:
        """Return this instance and every live instance below it, depth first."""
        found = [self]
        for child in self._live_children or ():
            found.extend(child.walk_live())
        return found

    def stack(self) -> list[str]:
        """
        Return the component's task's current stack, formatted like a traceback.

        Frames of anyio and of this package are left out when any other frame
        remains, so the stack shows the component's own code.
        """
        if self._coro is None:
            return []
        return format_own_stack(self._coro)

    def _error(self) -> BaseException | None:
        if not self._errors:
            return None
        if len(self._errors) == 1:
            return self._errors[0][1]
        return BaseExceptionGroup(
            f"component {self.path!r} failed {len(self._errors)} times",
            [e for _, e in self._errors],
        )

    # -- the component's side ---------------------------------------------------

    def _ready_called(self, value: object, *, by_yield: bool = False) -> None:
        if self.spec.style is Style.GENERATOR and not by_yield:
            msg = (
                f"Component {self.path!r} is an async generator: it becomes ready by "
                "yielding its value, so it must not call ctx.ready()."
            )
            raise UsageError(msg)
        if self._done:
            msg = f"ctx.ready() was called after component {self.path!r} ended."
            raise UsageError(msg)
        if self._is_ready:
            msg = f"ctx.ready() was called twice by component {self.path!r}; call it once, when it has started."
            raise UsageError(msg)
        self._is_ready = True
        self.value = value
        self.ready_at = self._prim.clock()
        if self.state is State.STARTING:
            self.state = State.RUNNING
        self._log.debug("component.ready", component=self.path)
        for callback in self._ready_callbacks:
            callback(self)
        if self._observers is not None:
            self._observers.changed(self)

    def _spawn(
        self,
        fn: Callable[..., Awaitable[Any]],
        args: tuple[Any, ...],
        *,
        name: str | None,
        critical: bool,
    ) -> TaskHandle[Any]:
        if self._done or self._tg is None:
            msg = f"ctx.spawn() was called after component {self.path!r} ended; its tasks end with it."
            raise UsageError(msg)
        if name is None:
            name = str(getattr(fn, "__qualname__", None) or repr(fn))
        handle: TaskHandle[Any] = TaskHandle(name, critical)
        if self._tasks is None:
            self._tasks = set()
        self._tasks.add(handle)
        coro = handle._coro = handle._main(self, fn, args)
        self._tg.start_soon(lambda: coro, name=f"lifecycle:{self.path}:{handle.name}")
        return handle

    def _stop_self(self, detail: str, *, failed: bool) -> None:
        if self.escalation is None and not self._done:
            self.stop_detail = detail
            self.stop_failed = failed
            self._self_stopped = True
            self.begin_stop(Escalation.start(self.policy))

    def _task_failed(self, handle: TaskHandle[Any], error: BaseException) -> None:
        if handle.critical:
            error.add_note(f"raised by critical task {handle.name!r} of component {self.path!r}")
            self._record(error)
        else:
            self._task_errors += (error,)
            report_error("task.failed", error, logger=self._log, component=self.path, task=handle.name)

    def _task_exited(self, handle: TaskHandle[Any]) -> None:
        assert self._tasks is not None  # noqa: S101 - the handle was added by _spawn
        self._tasks.discard(handle)
        if not self._tasks and self._tasks_idle is not None:
            self._tasks_idle.set()

    def _record(self, error: BaseException, stage: Stage | None = None) -> None:
        if stage is None:
            if self.escalation is not None and not self._self_stopped:
                stage = "stop"
            else:
                stage = "run" if self._is_ready else "start"
        self._errors += ((stage, error),)
        nested = flatten_failures([(self.path, stage, error)]) if from_children(error) else []
        if nested:
            # A supervisor passing on its children's failures: they were logged already.
            children = [path_of(e) for e in nested]
            report_error(
                "component.failed", None, logger=self._log, component=self.path, stage=stage, children=children
            )
        else:
            report_error("component.failed", error, logger=self._log, component=self.path, stage=stage)
        if self.escalation is None:
            # A failed component stops itself: its teardown and shielded scopes get
            # the budgets of its policy, measured from the failure.
            self._self_stopped = True
            self.begin_stop(Escalation.start(self.policy))

    # -- the shielded-scope owner protocol --------------------------------------

    def _shield_deadline(self, until: Phase) -> float:
        return math.inf if self.escalation is None else self.escalation.end(until)

    def _add_shield(self, scope: ShieldedScope) -> None:
        if self._shields is None:
            self._shields = set()
        self._shields.add(scope)
        if self.escalation is not None:
            self._subscribe()

    def _discard_shield(self, scope: ShieldedScope) -> None:
        if self._shields is not None:
            self._shields.discard(scope)

    def _shield_cut_off(self, _: ShieldedScope) -> None:
        self._cut_off = True

    def _subscribe(self) -> None:
        if not self._subscribed and self.escalation is not None:
            self._subscribed = True
            self.escalation.subscribe(self, self._update_shields)

    def _update_shields(self) -> None:
        for scope in self._shields or ():
            scope._update()

    # -- the task's end ---------------------------------------------------------

    def _finish(self) -> None:
        self._done = True
        self.stopped_at = self._prim.clock()
        self.exit_order = next(_exit_counter)
        if self.parent is not None and self.parent._live_children is not None:
            self.parent._live_children.pop(self, None)
        self.state = State.FAILED if self._errors else State.STOPPED
        if self.escalation is not None:
            if self._subscribed:
                self.escalation.unsubscribe(self)
            if self._own_escalation:
                # An escalation shared with siblings (the owner's) must keep following
                # its parent's jumps after this one has ended.
                self.escalation.release()
        self._log.debug("component.stopped", component=self.path, failed=bool(self._errors))
        callbacks, self._exit_callbacks = self._exit_callbacks, ()
        # The owner's callbacks and the Context refer back to this instance: without them the
        # stopped tree has no reference cycle, and reference counting frees it.
        self._ready_callbacks = self._stop_callbacks = ()
        self._ctx = None
        for callback in callbacks:
            callback(self)
        if self._observers is not None:
            self._observers.changed(self)

    def __repr__(self) -> str:
        return f"<ComponentInstance {self.path!r} {self.state.value}>"
