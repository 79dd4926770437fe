"""Shutdown deadlines: when each phase of one stop ends, and escalating early."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import final

import anyio

from ._policy import Phase, ShutdownPolicy

__all__ = ["Escalation", "combine_policies"]

_PHASES = (Phase.GRACEFUL, Phase.FORCEFUL, Phase.TERMINATE)


def combine_policies(outer: ShutdownPolicy, own: ShutdownPolicy | None) -> ShutdownPolicy:
    """
    Return the policy whose phase deadlines are the earlier of *outer*'s and *own*'s.

    A component's own policy can only make its deadlines earlier, never later.
    """
    if own is None or own == outer:
        return outer
    g, f, t = (min(outer.offset(p), own.offset(p)) for p in _PHASES)
    # Phase ends never decrease, so a span is finite unless its end is infinite.
    return ShutdownPolicy(
        graceful=g,
        forceful=math.inf if math.isinf(f) else f - g,
        terminate=math.inf if math.isinf(t) else t - f,
    )


@final
class Escalation:
    """
    The deadlines of one stop, measured from the moment it was requested.

    An escalation is created when a stop is requested (:meth:`start`) and shared by
    every component that stop reaches. Phase ends are absolute times on the event
    loop's clock (:func:`anyio.current_time`), so they work with trio's
    ``MockClock``. :meth:`escalate` jumps to a later phase at once (a second
    Ctrl-C); :meth:`restrict` derives the deadlines of a component that carries its
    own, stricter, policy and follows every jump of its parent.

    This is a low-level API for code that stops components itself (supervisors);
    components read the result through ``ctx.phase``.
    """

    __slots__ = ("_ends", "_listeners", "_parent", "started_at")

    def __init__(self, started_at: float, ends: tuple[float, float, float]) -> None:
        self.started_at = started_at
        self._ends = list(ends)
        self._listeners: dict[object, Callable[[], None]] = {}
        self._parent: Escalation | None = None

    @classmethod
    def start(cls, policy: ShutdownPolicy, *, now: float | None = None) -> Escalation:
        """
        Begin a stop now (or at *now*) with *policy*'s budgets.

        Args:
            policy: The budgets of the three phases.

            now: The request time on the loop clock; defaults to
                :func:`anyio.current_time`, so it must then run in an event loop.
        """
        t0 = anyio.current_time() if now is None else now
        ends = (
            t0 + policy.offset(Phase.GRACEFUL),
            t0 + policy.offset(Phase.FORCEFUL),
            t0 + policy.total,
        )
        return cls(t0, ends)

    def end(self, phase: Phase) -> float:
        """Return the loop time at which *phase* ends (``math.inf``: never)."""
        return self._ends[phase]

    @property
    def ends(self) -> tuple[float, float, float]:
        """When GRACEFUL, FORCEFUL and TERMINATE end now, after any escalation (``math.inf``: never)."""
        g, f, t = self._ends
        return (g, f, t)

    def phase_at(self, now: float) -> Phase:
        """Return the phase in effect at loop time *now*."""
        if now < self._ends[Phase.GRACEFUL]:
            return Phase.GRACEFUL
        if now < self._ends[Phase.FORCEFUL]:
            return Phase.FORCEFUL
        return Phase.TERMINATE

    @property
    def phase(self) -> Phase:
        """The phase in effect now."""
        return self.phase_at(anyio.current_time())

    def escalate(self, phase: Phase) -> bool:
        """
        Jump to *phase* now: every earlier phase ends at once.

        *phase* and the phases after it keep their budgets, counted from now, but
        never end later than they would have: a third Ctrl-C ends the stop (and a
        program's hard exit comes) a terminate budget after it, not a whole
        graceful + forceful + terminate after the first.

        An escalation that starts later than now (the tree waits out a drain
        delay first) starts now: escalating ends the drain.

        Components that carry a stricter policy (:meth:`restrict`) jump too, and
        shielded scopes are cut off at their new deadlines. Escalating to a phase
        that is already in effect changes nothing.

        Args:
            phase: The phase to be in from now on.

        Returns:
            ``True`` if a deadline moved.
        """
        now = anyio.current_time()
        return self._move_ends(phase, now)

    def _move_ends(self, phase: Phase, now: float) -> bool:
        moved = False
        began = self._ends[phase - 1] if phase else self.started_at  # when *phase* would have begun
        if self.started_at > now:
            # A stop that had not begun yet (a drain delay) begins now.
            self.started_at = now
            moved = True
        if began > now:
            for later in _PHASES[phase:]:
                end = now + (self._ends[later] - began)
                if end < self._ends[later]:
                    self._ends[later] = end
                    moved = True
        for earlier in _PHASES[:phase]:
            if self._ends[earlier] > now:
                self._ends[earlier] = now
                moved = True
        if moved:
            for callback in list(self._listeners.values()):
                callback()
        return moved

    def restrict(self, policy: ShutdownPolicy | None) -> Escalation:
        """
        Return the deadlines of a component with its own *policy*.

        Each phase ends at the earlier of this escalation's end and the started
        time plus *policy*'s budget; later jumps of this escalation carry over.

        Args:
            policy: The component's own policy, or ``None`` to share these
                deadlines unchanged.
        """
        if policy is None:
            return self
        own = Escalation.start(policy, now=self.started_at)
        a, b, c = (min(mine, theirs) for mine, theirs in zip(self._ends, own._ends, strict=True))
        child = Escalation(self.started_at, (a, b, c))

        def follow() -> None:
            changed = False
            for phase in _PHASES:
                if self._ends[phase] < child._ends[phase]:
                    child._ends[phase] = self._ends[phase]
                    changed = True
            if changed:
                for callback in list(child._listeners.values()):
                    callback()

        self._listeners[child] = follow
        child._parent = self
        return child

    def release(self) -> None:
        """
        Stop following the parent's jumps (for an escalation from :meth:`restrict`).

        Call it when the component it was made for has ended, so a long-lived
        parent does not keep it alive. Harmless on any escalation, and idempotent.
        """
        if self._parent is not None:
            self._parent.unsubscribe(self)
            self._parent = None

    def subscribe(self, key: object, callback: Callable[[], None]) -> None:
        """
        Call *callback* whenever a deadline moves earlier through :meth:`escalate`.

        Args:
            key: Identifies the subscription for :meth:`unsubscribe`.

            callback: Called synchronously in the escalating task; must not raise.
        """
        self._listeners[key] = callback

    def unsubscribe(self, key: object) -> None:
        """Remove the subscription made under *key*, if any."""
        self._listeners.pop(key, None)

    def __repr__(self) -> str:
        ends = ", ".join(f"{p.name.lower()}={e - self.started_at:g}s" for p, e in zip(_PHASES, self._ends, strict=True))
        return f"<Escalation started_at={self.started_at:g} ends after {ends}>"
