"""
Stopping components and waiting for them: stop_instances() and the search for stubborn ones.

A stop begins every instance's stop at once, then waits for all of them to
end. When TERMINATE begins for one that is still alive, it is logged as
stubborn with its stack, unless it is only waiting for components it owns
(a supervisor stopping its children is never the stubborn one).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import anyio
import anyio.lowlevel

from ._frames import format_own_stack, suspension_point
from ._policy import Phase
from ._scope import current_owner

if TYPE_CHECKING:
    from ._escalation import Escalation
    from ._instance import ComponentInstance
    from ._scope import ScopeOwner

__all__ = ["stop_instances"]

# How many stop_instances() calls each component (or a task it spawned) is inside
# of, waiting for instances it owns: while one is, it is not the stubborn one.
_awaiting_children: dict[ScopeOwner, int] = {}

# How a stop lets components cut off at a phase's end unwind before it calls the
# ones still alive stubborn: it yields to the loop until none of them has moved
# for _SETTLE_QUIET passes in a row, and at most _SETTLE_MAX passes in all (a
# component that swallows cancellation in a loop moves on every pass).
_SETTLE_QUIET = 3
_SETTLE_MAX = 100


def _position(instance: ComponentInstance) -> tuple[object, ...] | None:
    """
    Where the instance's task and the tasks it spawned are suspended now.

    Its spawned tasks count: a component whose own task waits for them to
    unwind (a supervisor's helpers, a worker's tasks) is still moving.
    """
    if instance.done or instance._coro is None:
        return None
    tasks = tuple(suspension_point(t._coro) for t in instance._tasks or () if not t.done and t._coro is not None)
    return (suspension_point(instance._coro), *tasks)


async def _settle(alive: Sequence[ComponentInstance]) -> None:
    """Yield until the tasks of *alive* are all ended or have stopped moving (bounded)."""
    marks = [_position(i) for i in alive]
    quiet = 0
    for _ in range(_SETTLE_MAX):
        await anyio.lowlevel.checkpoint()
        if all(i.done for i in alive):
            return
        now = [_position(i) for i in alive]
        if now == marks:
            quiet += 1
            if quiet >= _SETTLE_QUIET:
                return
        else:
            quiet = 0
            marks = now


async def stop_instances(instances: Sequence[ComponentInstance], escalation: Escalation | None) -> None:
    """
    Stop *instances* concurrently and wait until all have ended (low-level).

    With *escalation* ``None`` it only waits. When TERMINATE begins for a
    component that is still alive, it is logged as stubborn
    (``component.stubborn``, with its stack); past the terminate deadline it is
    logged again (``component.stubborn_past_terminate``) and still waited for,
    since abandoning a task would break structured concurrency. A checkpoint;
    cancelling it abandons only the waiting.
    """
    if escalation is not None:
        for instance in instances:
            instance.begin_stop(escalation)
    pending = [i for i in instances if not i.done]
    if not pending:
        await anyio.lowlevel.checkpoint()
        return
    # The component (or its background task) that waits: while it does, it is not the stubborn one.
    owner = current_owner.get()
    if owner is not None:
        _awaiting_children[owner] = _awaiting_children.get(owner, 0) + 1
    try:
        await _wait_stopped(pending, escalation)
    finally:
        if owner is not None:
            left = _awaiting_children.pop(owner) - 1
            if left:
                _awaiting_children[owner] = left


async def _wait_stopped(pending: Sequence[ComponentInstance], escalation: Escalation | None) -> None:
    left = len(pending)
    all_done = anyio.Event()

    def exited(_: ComponentInstance) -> None:
        nonlocal left
        left -= 1
        if not left:
            all_done.set()

    for instance in pending:
        instance.add_exit_callback(exited)
    if escalation is None:
        await all_done.wait()
        return

    warned: dict[ComponentInstance, Phase] = {}
    waiting = anyio.CancelScope()

    def wake() -> None:
        waiting.cancel()

    escalation.subscribe(wake, wake)
    try:
        while not all_done.is_set():
            alive = [i for i in pending if not i.done]
            waiting = anyio.CancelScope(deadline=_next_check(alive, escalation, warned))
            with waiting:
                await all_done.wait()
            now = anyio.current_time()
            if not all_done.is_set() and any(
                not i.done and now >= (i.escalation or escalation).end(Phase.FORCEFUL) for i in alive
            ):
                # Scopes cut off at this very instant have been cancelled, but their tasks
                # have not run yet (nor have the owners their children's ends woke): let
                # them unwind before anything is called stubborn.
                await _settle(alive)
            for instance in alive:
                if not instance.done:
                    _check_stubborn(instance, instance.escalation or escalation, now, warned)
    finally:
        escalation.unsubscribe(wake)


def _next_check(
    alive: list[ComponentInstance], escalation: Escalation, warned: dict[ComponentInstance, Phase]
) -> float:
    """When the stop must next look for stubborn components: the next TERMINATE beginning or end."""
    next_at = math.inf
    for instance in alive:
        esc = instance.escalation or escalation
        stage = warned.get(instance)
        if stage is None:
            next_at = min(next_at, esc.end(Phase.FORCEFUL))
        elif stage is Phase.FORCEFUL:
            next_at = min(next_at, esc.end(Phase.TERMINATE))
    return next_at


def _check_stubborn(
    instance: ComponentInstance, escalation: Escalation, now: float, warned: dict[ComponentInstance, Phase]
) -> None:
    """
    Log *instance* as stubborn when TERMINATE has begun (and again past its end) while it is alive.

    A component waiting for its own children is not the stubborn one: its stage
    advances (so the stop's wait moves on) but it is not logged; the leaves that
    hold the stop are. Nor is one still inside a shielded scope that is not cut
    yet (``until=Phase.TERMINATE``): it is within the time it was given.
    """
    stage = warned.get(instance)
    culprit = instance not in _awaiting_children and not instance.live_children() and not _within_scope(instance, now)
    if stage is None and now >= escalation.end(Phase.FORCEFUL):
        warned[instance] = Phase.FORCEFUL
        if culprit:
            instance._log.warning(
                "component.stubborn",
                component=instance.path,
                phase=Phase.TERMINATE.name,
                stack=_stacks(instance),
            )
    elif stage is Phase.FORCEFUL and now >= escalation.end(Phase.TERMINATE):
        warned[instance] = Phase.TERMINATE
        if culprit:
            instance._log.error(
                "component.stubborn_past_terminate",
                component=instance.path,
                stack=_stacks(instance),
            )


def _within_scope(instance: ComponentInstance, now: float) -> bool:
    """Whether the component runs in a shielded scope of its own that is not cut yet (one bound to TERMINATE)."""
    return any(not scope.cancel_called and scope.deadline > now for scope in instance._shields or ())


def _stacks(instance: ComponentInstance) -> str:
    """The stack of the component's task, then that of each spawned task still running, under its name."""
    spawned = [
        f"spawned task {task.name!r}:\n" + "".join(format_own_stack(task._coro))
        for task in instance._tasks or ()
        if not task.done and task._coro is not None
    ]
    return "".join(instance.stack()) + "".join(spawned)
