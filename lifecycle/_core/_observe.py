"""
Observing a running tree: component statuses, subscriptions, and the subscribers of each kind of change.

:class:`ComponentStatus` is one component as it is at a moment;
:class:`Subscription` is what every ``subscribe_*`` method of
:class:`~lifecycle.RunningTree` returns. :class:`Topic` keeps the subscribers
of one kind of change and calls them; :class:`ComponentObservers` is the topic
of component changes that every instance of a tree shares, so a change is
published where it happens, at the cost of one attribute test when nobody
subscribed.

A live component's status comes from its run (its
:class:`~lifecycle.lowlevel.ComponentInstance`), which publishes its own
changes. A supervisor knows more about its children than their runs do (which
ones wait for a restart, which ended for good): it publishes them with
:meth:`Context.publish_children() <lifecycle.Context.publish_children>`
(a :class:`~lifecycle.abc.ChildStatuses`) and announces their changes with
:meth:`Context.child_changed() <lifecycle.Context.child_changed>`; the runs of
its children then leave their changes to it.

Subscribers are called in the event loop's thread, synchronously, inside the
code that made the change. An exception a subscriber raises is logged
(``tree.subscriber_failed``) and never reaches that code: observing must not
break the tree.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Generic, Protocol, TypeVar, final, runtime_checkable

import attrs

from ._policy import Priority
from ._report_error import report_error
from ._safe_logging import module_logger
from ._states import State

if TYPE_CHECKING:
    from types import TracebackType

    from ._instance import ComponentInstance

__all__ = [
    "ChildStatuses",
    "ComponentObservers",
    "ComponentStatus",
    "Subscription",
    "Topic",
    "collect_statuses",
    "status_of",
]

T = TypeVar("T")

_log = module_logger

# States in which a component holds readiness back: it is on its way up or down.
_TRANSITIONS = frozenset({State.STARTING, State.STOPPING, State.RESTARTING})


@final
@attrs.frozen
class ComponentStatus:
    """
    One component of a running tree, as it was at the moment the status was taken.

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


class _Registry:
    """What a :class:`Subscription` is cancelled against."""

    __slots__ = ()

    def remove(self, subscription: Subscription) -> None:
        """Drop *subscription*; harmless if it is not there."""
        raise NotImplementedError


@final
class Subscription:
    """
    A subscription to changes of a running tree; :meth:`cancel` ends it.

    Every ``subscribe_*`` method of :class:`~lifecycle.RunningTree` returns
    one. It is also a context manager that cancels it on exit::

        with tree.subscribe_components(print):
            ...

    A subscription to something that happens once (the tree ready, its stop,
    its report) is no longer :attr:`active` once its callback was called.

    .. versionadded:: 0.1.0
    """

    __slots__ = ("_callback", "_registry")

    def __init__(self, registry: _Registry | None, callback: Callable[..., object]) -> None:
        self._registry = registry
        self._callback = callback

    @property
    def active(self) -> bool:
        """``True`` until it is cancelled (or, for a one-time event, until its callback was called)."""
        return self._registry is not None

    def cancel(self) -> None:
        """End the subscription: its callback is not called again. Idempotent; not a checkpoint; safe in a callback."""
        registry, self._registry = self._registry, None
        if registry is not None:
            registry.remove(self)

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
class Topic(_Registry, Generic[T]):
    """
    The subscribers to one kind of change of a tree (internal).

    A *once* topic is published at most once (the tree became ready, its stop
    began, its report is made): its subscriptions end when it is, and a
    callback subscribed after that is called at once with the value.
    """

    __slots__ = ("_once", "_published", "name", "subscriptions", "tree")

    def __init__(self, tree: str, name: str, *, once: bool = False) -> None:
        self.tree = tree
        self.name = name
        self._once = once
        # The value a once topic was published with, in a tuple (it may be None).
        self._published: tuple[T] | None = None
        self.subscriptions: tuple[Subscription, ...] = ()

    def add(self, callback: Callable[[T], object]) -> Subscription:
        """Subscribe *callback*; on a once topic that was published, call it now and return an ended subscription."""
        if self._published is not None:
            self._call(callback, self._published[0])
            return Subscription(None, callback)
        subscription = Subscription(self, callback)
        self.subscriptions += (subscription,)
        return subscription

    def remove(self, subscription: Subscription) -> None:
        """Drop *subscription*."""
        self.subscriptions = tuple(s for s in self.subscriptions if s is not subscription)

    def publish(self, value: T) -> None:
        """Call every active subscriber with *value*; a once topic then ends its subscriptions."""
        subscriptions = self.subscriptions
        if self._once:
            self._published = (value,)
            self.subscriptions = ()
        for subscription in subscriptions:
            if subscription._registry is not self:
                continue  # cancelled by an earlier subscriber
            if self._once:
                subscription._registry = None
            self._call(subscription._callback, value)

    def _call(self, callback: Callable[[T], object], value: T) -> None:
        try:
            callback(value)
        except Exception as exc:  # noqa: BLE001 - an observer must not break the tree
            report_error("tree.subscriber_failed", exc, logger=_log, tree=self.tree, topic=self.name)


@final
class ComponentObservers(_Registry):
    """
    The subscribers to the component changes of one tree, shared by all its instances (internal).

    A change seen twice (a status that did not change) is reported once.
    """

    __slots__ = ("_last", "subscriptions", "tree")

    def __init__(self, tree: str) -> None:
        self.tree = tree
        self.subscriptions: tuple[Subscription, ...] = ()
        # The last status reported for each component that has not ended.
        self._last: dict[str, ComponentStatus] = {}

    def add(self, callback: Callable[[ComponentStatus], object]) -> Subscription:
        """Subscribe *callback*."""
        subscription = Subscription(self, callback)
        self.subscriptions += (subscription,)
        return subscription

    def remove(self, subscription: Subscription) -> None:
        """Drop *subscription*."""
        self.subscriptions = tuple(s for s in self.subscriptions if s is not subscription)
        if not self.subscriptions:
            self._last.clear()

    def changed(self, instance: ComponentInstance) -> None:
        """Publish *instance*'s status, if anybody subscribed and its owner does not publish its children."""
        if not self.subscriptions:
            return
        parent = instance.parent
        if parent is not None and parent._published is not None:
            return  # its supervisor says what this run's end means (a restart, an end for good)
        self.emit(status_of(instance))

    def emit(self, status: ComponentStatus) -> None:
        """Call every subscriber with *status*, unless it is the one last reported for its path."""
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
                    report_error("tree.subscriber_failed", exc, logger=_log, tree=self.tree, component=status.path)


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
    published = instance._published
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
