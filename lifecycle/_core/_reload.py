"""
Reloading a running tree's configuration: the hooks components register, and running them.

A component registers hooks with ``ctx.on_reload()``; an object component's
``reload()`` method is one too. A reload runs the hooks of every running
component, dependencies first, in the task that asked for it: a failing hook is
logged and reported, and never fails its component.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, final

import attrs

from ._observe import Subscription, _Registry
from ._report_error import report_error
from ._safe_logging import module_logger
from ._states import State

if TYPE_CHECKING:
    from ._instance import ComponentInstance

__all__ = ["ReloadHook", "ReloadHooks", "ReloadReport", "reload_instances"]

_log = module_logger

#: A reload hook: called without arguments; it may be a coroutine function.
ReloadHook = Callable[[], Awaitable[object] | object]


@final
class ReloadHooks(_Registry):
    """The reload hooks one component registered, in order (internal)."""

    __slots__ = ("subscriptions",)

    def __init__(self) -> None:
        self.subscriptions: tuple[Subscription, ...] = ()

    def add(self, hook: ReloadHook) -> Subscription:
        """Register *hook*; cancelling the returned subscription removes it."""
        subscription = Subscription(self, hook)
        self.subscriptions += (subscription,)
        return subscription

    def remove(self, subscription: Subscription) -> None:
        """Drop *subscription*."""
        self.subscriptions = tuple(s for s in self.subscriptions if s is not subscription)

    def hooks(self) -> list[ReloadHook]:
        """The hooks still registered, in registration order."""
        return [s._callback for s in self.subscriptions]


def _frozen_errors(errors: Mapping[str, Exception]) -> Mapping[str, Exception]:
    return MappingProxyType(dict(errors))


@final
@attrs.frozen(eq=False)
class ReloadReport:
    """
    What one reload of a running tree did: :meth:`RunningTree.reload() <lifecycle.RunningTree.reload>`.

    Attributes:
        tree: The root's name.

        detail: Who asked for it (``"SIGHUP received"``, ``"reload() was called"``).

        started_at: When it began, on the event loop's clock.

        finished_at: When its last hook returned, on the event loop's clock.

        reloaded: The paths of the components whose hooks all succeeded, in
            the order they ran (dependencies first).

        errors: The error of each component whose hook raised, by path. A
            component's later hooks do not run after one of its hooks failed.

        ignored: Why the reload did nothing, or was interrupted (``None`` when
            it ran to its end): the tree had not finished starting, it was
            stopping, another reload was running, or its stop began during
            the reload.

    .. versionadded:: 0.1.0
    """

    tree: str
    detail: str
    started_at: float
    finished_at: float
    reloaded: tuple[str, ...] = ()
    errors: Mapping[str, Exception] = attrs.field(factory=dict, converter=_frozen_errors)
    ignored: str | None = None

    @property
    def ok(self) -> bool:
        """``True`` if the reload ran to its end and no hook raised."""
        return self.ignored is None and not self.errors

    @property
    def duration(self) -> float:
        """Seconds from its beginning to its end."""
        return self.finished_at - self.started_at


def hooks_of(instance: ComponentInstance) -> list[ReloadHook]:
    """The reload hooks of *instance*: its object's ``reload()`` method, then those from ``ctx.on_reload()``."""
    found: list[ReloadHook] = []
    spec = instance.spec
    if spec.call is not spec.target:  # an object whose `run` is the component
        method = getattr(spec.target, "reload", None)
        if callable(method):
            found.append(method)
    ctx = instance._ctx
    if ctx is not None and ctx._reload_hooks is not None:
        found.extend(ctx._reload_hooks.hooks())
    return found


async def reload_instances(root: ComponentInstance) -> tuple[tuple[str, ...], dict[str, Exception]]:
    """
    Run the reload hooks of every running instance under *root*, dependencies first, one at a time.

    A hook that raises an :exc:`Exception` is logged (``reload.failed``, with
    its traceback) and recorded; the component's later hooks are skipped, the
    other components' hooks still run. Cancellation goes through.

    Returns:
        The paths of the components whose hooks all succeeded, and the errors by path.
    """
    reloaded: list[str] = []
    errors: dict[str, Exception] = {}
    for instance in root.walk_live():
        if instance.state is not State.RUNNING:
            continue
        hooks = hooks_of(instance)
        if not hooks:
            continue
        try:
            for hook in hooks:
                result = hook()
                if inspect.isawaitable(result):
                    await result
        except Exception as exc:  # noqa: BLE001 - a reload hook's failure is reported, never raised
            errors[instance.path] = exc
            report_error("reload.failed", exc, logger=_log, component=instance.path)
        else:
            reloaded.append(instance.path)
    return tuple(reloaded), errors
