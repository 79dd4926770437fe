"""asyncio: cut teardown scopes off when GRACEFUL ends, with one timer per stop instead of one per scope."""

from __future__ import annotations

import asyncio
import math
from typing import TYPE_CHECKING, final

from lifecycle._core._policy import Phase

from ._interface import Scope

if TYPE_CHECKING:
    from lifecycle._core._escalation import Escalation

__all__ = ["Cutoffs"]


@final
class Cutoffs:
    """
    The teardown scopes of one tree, grouped by the stop (escalation) that cuts them off.

    Giving each scope the deadline would arm a loop timer per scope, and
    subscribe each one to its escalation's jumps: a stop of ten thousand
    components would arm ten thousand timers for a handful of distinct
    deadlines. Here each escalation has one group with one timer, which
    follows the escalation's jumps and cancels every scope still in the group
    when GRACEFUL ends: what an expired deadline does.
    """

    __slots__ = ("_groups", "_loop")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._groups: dict[Escalation, _Group] = {}

    def follow(self, scope: Scope, escalation: Escalation) -> None:
        """Cancel *scope* when *escalation*'s GRACEFUL phase ends (at once, if it has)."""
        group = self._groups.get(escalation)
        if group is None:
            group = self._groups[escalation] = _Group(self, escalation)
            group.scopes[scope] = None
            escalation.subscribe(group, group.schedule)
            group.schedule()
        else:
            group.scopes[scope] = None

    def unfollow(self, scope: Scope, escalation: Escalation) -> None:
        """Forget *scope* (it has been left); harmless if it is not followed."""
        group = self._groups.get(escalation)
        if group is not None:
            group.scopes.pop(scope, None)
            if not group.scopes and not group.idle_check:
                # Teardowns of one stop wave run one after another in the same pass
                # of the loop: the group (and its timer) stays for all of them, and
                # goes on the next pass if nothing follows it any more.
                group.idle_check = True
                self._loop.call_soon(group.close_if_idle)


@final
class _Group:
    __slots__ = ("cutoffs", "escalation", "handle", "idle_check", "scopes")

    def __init__(self, cutoffs: Cutoffs, escalation: Escalation) -> None:
        self.cutoffs = cutoffs
        self.escalation = escalation
        self.scopes: dict[Scope, None] = {}
        self.handle: asyncio.TimerHandle | None = None
        self.idle_check = False

    def schedule(self) -> None:
        """Arm the timer for GRACEFUL's end (again, after a jump), or fire now if it has passed."""
        if self.handle is not None:
            self.handle.cancel()
            self.handle = None
        end = self.escalation.end(Phase.GRACEFUL)
        loop = self.cutoffs._loop
        if end <= loop.time():
            self.fire()
        elif end != math.inf:
            self.handle = loop.call_at(end, self.fire)

    def fire(self) -> None:
        """Cancel every scope still in the group, if GRACEFUL has ended; else wait on."""
        self.handle = None
        if self.cutoffs._loop.time() < self.escalation.end(Phase.GRACEFUL):
            # The loop may run a timer up to its clock resolution early.
            self.schedule()
            return
        scopes = list(self.scopes)
        self.close()
        for scope in scopes:
            scope.cancel()

    def close_if_idle(self) -> None:
        """Close the group if no scope follows it any more."""
        self.idle_check = False
        if not self.scopes:
            self.close()

    def close(self) -> None:
        """Stop following the escalation and leave the registry."""
        if self.handle is not None:
            self.handle.cancel()
            self.handle = None
        self.scopes.clear()
        self.escalation.unsubscribe(self)
        groups = self.cutoffs._groups
        if groups.get(self.escalation) is self:  # not a newer group of the same escalation
            del groups[self.escalation]
