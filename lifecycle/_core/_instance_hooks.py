"""Observers of every component instance the process creates (for ``lifecycle.testing``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._instance import ComponentInstance

__all__ = ["InstanceHook", "active", "created", "install", "uninstall"]

InstanceHook = Callable[["ComponentInstance"], None]

# Process-wide, not a context variable: a pytest fixture installs it from outside
# the event loop, and the test's tasks (on any backend and plugin) must see it.
active: list[InstanceHook] = []


def install(hook: InstanceHook) -> None:
    """Call *hook(instance)* for every component instance created from now on, before it starts."""
    active.append(hook)


def uninstall(hook: InstanceHook) -> None:
    """Remove *hook*; harmless if it is not installed."""
    if hook in active:
        active.remove(hook)


def created(instance: ComponentInstance) -> None:
    """Tell every installed hook that *instance* was created."""
    for hook in tuple(active):
        hook(instance)
