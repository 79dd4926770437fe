"""Trio: thread-safe and signal-safe scheduling."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Coroutine
from typing import Any

import anyio.abc
import trio

from lifecycle._core._escalation import Escalation
from lifecycle._core._policy import Phase

from ._interface import Primitives, Scope


def current_scheduler() -> Callable[[Callable[[], None]], None]:
    """Return ``TrioToken.run_sync_soon`` for the running loop, ignoring a finished run."""
    token = trio.lowlevel.current_trio_token()

    def schedule(callback: Callable[[], None]) -> None:
        # A finished run raises RunFinishedError: the tree has stopped already.
        with contextlib.suppress(trio.RunFinishedError):
            token.run_sync_soon(callback)

    return schedule


def _shielded_scope() -> trio.CancelScope:
    return trio.CancelScope(shield=True)


def _follow(scope: Scope, escalation: Escalation) -> None:
    # Trio keeps deadlines in one heap of its own: a deadline per scope is cheap.
    def update() -> None:
        scope.deadline = escalation.end(Phase.GRACEFUL)

    escalation.subscribe(scope, update)
    update()


def _unfollow(scope: Scope, escalation: Escalation) -> None:
    escalation.unsubscribe(scope)


def _spawn(task_group: anyio.abc.TaskGroup, coro: Coroutine[Any, Any, None], name: str) -> None:
    """
    Run *coro* in a task of *task_group*'s Trio nursery, as ``start_soon`` would, without anyio's task handle.

    anyio wraps every task in a handle with a cancel scope, an event and a
    wrapper coroutine of its own, which a component does not use: its own
    shielded scope is the one its owner cancels. The nursery waits for the
    task and cancels it exactly as it would a task anyio started.
    """
    nursery = getattr(task_group, "_nursery", None)
    if isinstance(nursery, trio.Nursery):
        nursery.start_soon(lambda: coro, name=name)
    else:  # pragma: no cover - another anyio
        task_group.start_soon(lambda: coro, name=name)


def current_primitives() -> Primitives:
    """Return ``trio.current_time``, ``trio.Event``, a shielded ``trio.CancelScope`` and ``trio.Cancelled``."""
    return Primitives(
        clock=trio.current_time,
        event=trio.Event,
        shielded_scope=_shielded_scope,
        cancelled=trio.Cancelled,
        follow=_follow,
        unfollow=_unfollow,
        spawn=_spawn,
    )
