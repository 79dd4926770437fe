"""
Observing a running tree: the status of every component, and subscriptions to their changes.

:meth:`RunningTree.components() <lifecycle.RunningTree.components>` lists every
component with its state; :meth:`RunningTree.subscribe_components()
<lifecycle.RunningTree.subscribe_components>` calls back on every change. A
live component's status comes from its run (its
:class:`~lifecycle.lowlevel.ComponentInstance`); a supervisor also shows the
children that have no live run (waiting for a restart, ended for good) by
publishing them with :meth:`Context.publish_children()
<lifecycle.Context.publish_children>`, and announces their changes with
:meth:`Context.child_changed() <lifecycle.Context.child_changed>`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Protocol, final, runtime_checkable

import attrs
import structlog

from ._policy import Priority
from ._report import State
from ._reporting import report_error

if TYPE_CHECKING:
    from types import TracebackType

    from ._instance import ComponentInstance

__all__ = ["ChildStatuses", "ComponentStatus", "Observers", "Subscription", "collect_statuses", "status_of"]

_log = structlog.get_logger("lifecycle")

StatusCallback = Callable[["ComponentStatus"], object]

# States in which a component holds readiness back: it is on its way up or down.
_TRANSITIONS = frozenset({State.STARTING, State.STOPPING, State.RESTARTING})


@final
@attrs.frozen
class ComponentStatus:
    """
    One component of a running tree, as it is at the moment it was taken.

    Attributes:
        path: Its path in the tree (``app/db``).

        name: Its name (the last part of the path).

        state: ``STARTING`` (not ready yet, or waiting for its dependencies),
            ``RUNNING``, ``STOPPING``, ``RESTARTING`` (its run ended or is
            being stopped, and its supervisor starts it again), or, once it has
            ended for good, ``STOPPED`` or ``FAILED``.

        ready: Whether its current run called ``ctx.ready()`` (or yielded).

        restarts: How many times it was restarted.

        priority: Its effective priority.

        depends_on: The names of the components it depends on, sorted.

        error: The last error of its current run; while it is ``RESTARTING``,
            the error of the run that ended (``None`` if it returned).

        next_attempt: While it is ``RESTARTING``, when its next start is due,
            on the loop clock (:func:`anyio.current_time`); ``None`` while its
            group is still being stopped, while it waits for its
            dependencies, and in every other state.

    .. versionadded:: 0.1.0
    """

    path: str
    name: str
    state: State
    ready: bool = False
    restarts: int = 0
    priority: Priority = Priority.NORMAL
    depends_on: tuple[str, ...] = ()
    error: BaseException | None = None
    next_attempt: float | None = None

    @property
    def up(self) -> bool:
        """``True`` while it runs, ready."""
        return self.state is State.RUNNING and self.ready

    @property
    def ended(self) -> bool:
        """``True`` once it has ended for good (``STOPPED`` or ``FAILED``): nothing starts it again."""
        return self.state is State.STOPPED or self.state is State.FAILED

    @property
    def settling(self) -> bool:
        """
        ``True`` while it is on its way up or down: starting, stopping or restarting.

        A tree whose components are all up or ended is ready; one that has a
        settling component is not (see :class:`~lifecycle.HealthServer`).
        """
        return self.state in _TRANSITIONS or (self.state is State.RUNNING and not self.ready)


@runtime_checkable
class ChildStatuses(Protocol):
    """
    What a supervisor publishes about its children, with :meth:`lifecycle.Context.publish_children`.

    It knows what the runs of its children do not: which ones wait for a
    restart, and which ones ended for good. Both methods are called in the
    event loop's thread, must be cheap, and must not raise.

    .. versionadded:: 0.1.0
    """

    def statuses(self) -> Iterable[ComponentStatus]:
        """Return the status of every child, in registration order."""
        ...

    def status(self, name: str) -> ComponentStatus | None:
        """Return the status of the child *name*, or ``None`` if there is no such child."""
        ...


@final
class Subscription:
    """
    A subscription to changes of a running tree; :meth:`cancel` ends it.

    Also a context manager that cancels it on exit::

        with tree.subscribe_components(print):
            ...

    .. versionadded:: 0.1.0
    """

    __slots__ = ("_callback", "_observers")

    def __init__(self, observers: Observers, callback: StatusCallback) -> None:
        self._observers: Observers | None = observers
        self._callback = callback

    @property
    def active(self) -> bool:
        """``True`` until :meth:`cancel` is called."""
        return self._observers is not None

    def cancel(self) -> None:
        """Stop the callbacks; idempotent. Not a checkpoint; safe inside a callback."""
        observers, self._observers = self._observers, None
        if observers is not None:
            observers.remove(self)

    def __enter__(self) -> Subscription:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.cancel()

    def __repr__(self) -> str:
        return f"<Subscription {'active' if self.active else 'cancelled'}>"


@final
class Observers:
    """The subscribers of one tree, kept by its root's context (internal)."""

    __slots__ = ("_last", "_root", "subscriptions")

    def __init__(self, root: ComponentInstance) -> None:
        self._root: ComponentInstance | None = root
        self.subscriptions: tuple[Subscription, ...] = ()
        # The last status reported for each component that has not ended, so that a
        # change seen twice (a run's stop, then its end, both RESTARTING) is reported once.
        self._last: dict[str, ComponentStatus] = {}

    def add(self, callback: StatusCallback) -> Subscription:
        """Subscribe *callback*; the root's own changes are watched from the first subscription on."""
        root = self._root
        if root is not None:
            self._root = None

            def root_changed(instance: ComponentInstance) -> None:
                self.emit(status_of(instance))

            root.add_ready_callback(root_changed)
            root.add_stop_callback(root_changed)
            if not root.done:
                root.add_exit_callback(root_changed)
        subscription = Subscription(self, callback)
        self.subscriptions += (subscription,)
        return subscription

    def remove(self, subscription: Subscription) -> None:
        """Drop *subscription*."""
        self.subscriptions = tuple(s for s in self.subscriptions if s is not subscription)
        if not self.subscriptions:
            self._last.clear()

    def emit(self, status: ComponentStatus) -> None:
        """Call every subscriber with *status*, unless it is the one last reported; errors are logged."""
        if status.ended:
            self._last.pop(status.path, None)  # it may leave the tree: keep nothing for it
        elif self._last.get(status.path) == status:
            return
        else:
            self._last[status.path] = status
        for subscription in self.subscriptions:
            if subscription.active:
                try:
                    subscription._callback(status)
                except Exception as exc:  # noqa: BLE001 - an observer must not break the tree
                    report_error("tree.subscriber_failed", exc, logger=_log, component=status.path)


def status_of(instance: ComponentInstance) -> ComponentStatus:
    """
    Return the status of the run *instance* as it is now (low-level).

    Its state is the run's own (never ``RESTARTING``: only its supervisor
    knows that a run that ended will be replaced; it may return this status
    changed with :func:`attrs.evolve`).

    .. versionadded:: 0.1.0
    """
    spec = instance.spec
    errors = instance.errors
    return ComponentStatus(
        path=instance.path,
        name=spec.name,
        state=instance.state,
        ready=instance.ready,
        restarts=instance.restarts,
        priority=instance.priority,
        depends_on=tuple(sorted({*spec.injected, *spec.depends_on})),
        error=errors[-1][1] if errors else None,
    )


def collect_statuses(root: ComponentInstance) -> tuple[ComponentStatus, ...]:
    """The status of *root* and of everything below it, depth first, each component before its children."""
    found = [status_of(root)]
    _collect_children(root, found)
    return tuple(found)


def _collect_children(instance: ComponentInstance, found: list[ComponentStatus]) -> None:
    context = instance._ctx  # never made here: most components have no Context of their own
    published = None if context is None else context._children
    live = instance.live_children()
    if published is None:
        for child in live:
            found.append(status_of(child))
            _collect_children(child, found)
        return
    by_path = {child.path: child for child in live}
    for status in published.statuses():
        found.append(status)
        running = by_path.get(status.path)
        if running is not None:
            _collect_children(running, found)
