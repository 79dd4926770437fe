"""
The phases of a tree's stop as events: ``tree.phase`` logs, the list of changes, and their subscribers.

A phase begins by a request (:meth:`RunningTree.escalate() <lifecycle.RunningTree.escalate>`
or the stop's first phase), a signal, or the deadline of the phase before it.
Each beginning is logged once as ``tree.phase`` (with the components still
running), kept as a :class:`~lifecycle.PhaseChange`, and published to the
subscribers of :meth:`RunningTree.subscribe_phases() <lifecycle.RunningTree.subscribe_phases>`.
"""

from __future__ import annotations

from typing import Literal, final

import anyio

from lifecycle._core._escalation import Escalation
from lifecycle._core._instance import ComponentInstance
from lifecycle._core._observe import Topic
from lifecycle._core._policy import Phase
from lifecycle._core._safe_logging import module_logger
from lifecycle._core._states import PhaseChange

__all__ = ["PhaseLog"]

_log = module_logger

# How many paths of running components a ``tree.phase`` event lists (it counts them all).
_RUNNING_LISTED = 50


@final
class PhaseLog:
    """The phase changes of one tree's stop, and the task that notices a phase ending by its deadline."""

    __slots__ = ("_closed", "_root", "_wake", "changes", "topic")

    def __init__(self, root: ComponentInstance, topic: Topic[PhaseChange]) -> None:
        self._root = root
        self.topic = topic
        self.changes: list[PhaseChange] = []
        self._wake: anyio.CancelScope | None = None
        self._closed = False

    def close(self) -> None:
        """
        The stop is over: record nothing more.

        A deadline that passes at the very instant the last component ends may
        wake the watcher after the report was made; closing keeps the log and
        the report the same list.
        """
        self._closed = True

    @property
    def current(self) -> Phase | None:
        """The phase that began last, or ``None`` before the stop's first phase."""
        return self.changes[-1].phase if self.changes else None

    def began(self, escalation: Escalation, reason: Literal["request", "signal", "deadline"]) -> None:
        """Record every phase that has begun since the last one recorded; nothing while the drain lasts."""
        if self._closed:
            return
        now = anyio.current_time()
        if now < escalation.started_at:
            return  # still draining: GRACEFUL has not begun
        current = escalation.phase_at(now)
        last = self.current
        if last is not None and current <= last:
            return
        for phase in Phase:
            if (last is None or phase > last) and phase <= current:
                change = PhaseChange(phase=phase, at=now, reason=reason)
                self.changes.append(change)
                running = [i.path for i in self._root.walk_live() if not i.done]
                # The stop's first phase is routine; a later one means cleanup is being cut off.
                log = _log.info if phase is Phase.GRACEFUL else _log.warning
                log(
                    "tree.phase",
                    tree=self._root.path,
                    phase=phase.name,
                    reason=reason,
                    running=running[:_RUNNING_LISTED],
                    running_count=len(running),
                )
                self.topic.publish(change)
        if self._wake is not None:
            self._wake.cancel()  # the watcher sleeps until the next phase's end

    async def watch(self, scope: anyio.CancelScope, escalation: Escalation) -> None:
        """Record a phase that ends by its deadline (reason ``deadline``), until *scope* is cancelled."""

        def rearm() -> None:  # a deadline moved (an escalation): sleep until the new one
            if self._wake is not None:
                self._wake.cancel()

        escalation.subscribe(rearm, rearm)
        try:
            with scope:
                while self.changes and self.changes[-1].phase is not Phase.TERMINATE:
                    current = self.changes[-1].phase
                    wake = self._wake = anyio.CancelScope(deadline=escalation.end(current))
                    with wake:
                        await anyio.sleep_forever()
                    if anyio.current_time() >= escalation.end(current):
                        self.began(escalation, "deadline")
        finally:
            self._wake = None
            escalation.unsubscribe(rearm)
