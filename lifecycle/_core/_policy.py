"""Priorities, shutdown phases and shutdown budgets."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import final

import attrs

from ._settings import FORCEFUL_TIMEOUT, GRACEFUL_TIMEOUT, TERMINATE_TIMEOUT
from ._validation import Option

__all__ = ["Phase", "Priority", "ShutdownPolicy"]


class Priority(enum.IntEnum):
    """
    How important a component is; smaller is more important.

    Lower priorities stop first and ``CRITICAL`` last. A component's *effective*
    priority is the most important of its own and of everything that depends on
    it, so a dependency always outlives its dependents.
    """

    CRITICAL = 0
    HIGH = 1
    NORMAL = 2
    LOW = 3
    LOWEST = 4


class Phase(enum.IntEnum):
    """
    The phases of a stop, in the order they escalate.

    ``GRACEFUL``: ``ctx.stopping`` is set and bodies are cancelled; shielded
    scopes keep running until the graceful deadline.
    ``FORCEFUL``: scopes opened with ``until=Phase.GRACEFUL`` are cut off; those
    opened with ``until=Phase.FORCEFUL`` run until the forceful deadline.
    ``TERMINATE``: whatever is still alive is stubborn; it is reported with its
    stack, and child processes are killed.
    """

    GRACEFUL = 0
    FORCEFUL = 1
    TERMINATE = 2


# Two checks, so the message says what is wrong: the type, then the value.
_BUDGET = [
    Option("a number of seconds", lambda value: not isinstance(value, bool) and isinstance(value, int | float)),
    Option.seconds(expected="a non-negative number of seconds (math.inf for no deadline)"),
]


@final
@attrs.frozen
class ShutdownPolicy:
    """
    How long each shutdown phase may last, in seconds.

    The budgets are global deadlines measured from the shutdown request, like a
    Kubernetes grace period: GRACEFUL ends at ``t0 + graceful``, FORCEFUL at
    ``t0 + graceful + forceful``, TERMINATE at the sum of all three.
    ``math.inf`` means no deadline for that phase.

    Args:
        graceful: Seconds for the GRACEFUL phase.

        forceful: Seconds for the FORCEFUL phase.

        terminate: Seconds for the TERMINATE phase.

    Raises:
        ConfigurationError: A budget is negative, NaN or not a number.
    """

    graceful: float = attrs.field(default=GRACEFUL_TIMEOUT.default, validator=_BUDGET)
    forceful: float = attrs.field(default=FORCEFUL_TIMEOUT.default, validator=_BUDGET)
    terminate: float = attrs.field(default=TERMINATE_TIMEOUT.default, validator=_BUDGET)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ShutdownPolicy:
        """
        Build a policy from ``LIFECYCLE_*_TIMEOUT`` environment variables.

        ``LIFECYCLE_GRACEFUL_TIMEOUT``, ``LIFECYCLE_FORCEFUL_TIMEOUT`` and
        ``LIFECYCLE_TERMINATE_TIMEOUT`` override the defaults; an unset or
        empty variable keeps the default.

        Args:
            environ: The mapping to read instead of :data:`os.environ`.

        Raises:
            ConfigurationError: A variable is not a non-negative number; the
                message names the variable and its value.
        """
        return cls(
            graceful=GRACEFUL_TIMEOUT.read(environ),
            forceful=FORCEFUL_TIMEOUT.read(environ),
            terminate=TERMINATE_TIMEOUT.read(environ),
        )

    @property
    def total(self) -> float:
        """The whole budget, graceful + forceful + terminate, in seconds."""
        return self.graceful + self.forceful + self.terminate

    def offset(self, phase: Phase) -> float:
        """
        Return when *phase* ends, in seconds after the shutdown request.

        Args:
            phase: The phase whose end is wanted.
        """
        if phase is Phase.GRACEFUL:
            return self.graceful
        if phase is Phase.FORCEFUL:
            return self.graceful + self.forceful
        return self.total
