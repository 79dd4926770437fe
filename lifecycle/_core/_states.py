"""
The words a component's life and a tree's stop are told in: State, Outcome, StopReason, PhaseChange.

Values only, with no behaviour: the engine, the reports, the timeline and the
observation API all use them, so they sit below all of those.
"""

from __future__ import annotations

import enum
from typing import Literal, final

import attrs

from ._policy import Phase

__all__ = ["Outcome", "PhaseChange", "State", "StopReason"]


class State(enum.Enum):
    """
    The life of a component: ``STARTING -> RUNNING -> STOPPING -> STOPPED``, or ``FAILED``.

    ``RESTARTING`` is the state of a declared component whose run ended, or is
    being stopped, and that its supervisor starts again; it appears only in
    :meth:`RunningTree.components() <lifecycle.RunningTree.components>`, never
    as the state of a run itself.

    .. versionchanged:: 0.1.0
       Added ``RESTARTING``.
    """

    STARTING = "starting"
    RUNNING = "running"
    STOPPING = "stopping"
    STOPPED = "stopped"
    FAILED = "failed"
    RESTARTING = "restarting"


class Outcome(enum.Enum):
    """
    How a component's life ended.

    ``GRACEFUL``, ``FORCED`` and ``TERMINATED`` say in which phase its stop
    finished; ``FINISHED`` means it returned on its own before any stop;
    ``FAILED`` means it raised (``ComponentReport.error`` says what);
    ``STUBBORN`` means it was still alive when the report was taken, after the
    terminate deadline.
    """

    GRACEFUL = "graceful"
    FORCED = "forced"
    TERMINATED = "terminated"
    FINISHED = "finished"
    FAILED = "failed"
    STUBBORN = "stubborn"

    @classmethod
    def for_phase(cls, phase: Phase) -> Outcome:
        """Return the outcome of a stop that finished during *phase*."""
        return (cls.GRACEFUL, cls.FORCED, cls.TERMINATED)[phase]


class StopReason(enum.Enum):
    """Why a tree stopped."""

    REQUEST = "request"
    """``request_shutdown()`` or ``shutdown()`` was called, or the ``running()`` block exited."""
    SIGNAL = "signal"
    """The process received SIGINT or SIGTERM."""
    FAILURE = "failure"
    """A component failed and nothing handled it (or the tree failed to start)."""
    MAIN_EXITED = "main exited"
    """The tree's job ended: a ``main`` component returned, or the root returned."""


@final
@attrs.frozen
class PhaseChange:
    """
    One change of phase during a tree's stop, as logged in the ``tree.phase`` event.

    Attributes:
        phase: The phase that began.

        at: When it began, on the loop clock.

        reason: What began it: ``"request"`` (the stop was requested by the
            program, or :meth:`~lifecycle.RunningTree.escalate` was called), ``"signal"``
            (a signal, under :func:`~lifecycle.run` or ``running(signals=True)``)
            or ``"deadline"`` (the previous phase's budget ran out).

    .. versionadded:: 0.1.0
    """

    phase: Phase
    at: float
    reason: Literal["request", "signal", "deadline"]
