"""Priorities, shutdown phases and shutdown budgets."""

from __future__ import annotations

import enum
import math
import os
from collections.abc import Mapping
from typing import Final, final

import attrs

from ._errors import ConfigurationError
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


_ENV: Final = {
    "graceful": "LIFECYCLE_GRACEFUL_TIMEOUT",
    "forceful": "LIFECYCLE_FORCEFUL_TIMEOUT",
    "terminate": "LIFECYCLE_TERMINATE_TIMEOUT",
}


def seconds_from_env(variable: str, environ: Mapping[str, str], what: str, unset: str) -> float | None:
    """
    Read a non-negative number of seconds from *environ*; ``None`` if unset or empty.

    Raises:
        ConfigurationError: The value is negative, NaN or not a number; the
            message names the variable, its value, *what* it should be, and
            what unsetting it does (*unset*).
    """
    raw = environ.get(variable, "").strip()
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if math.isnan(value) or value < 0:
        msg = (
            f"Environment variable {variable}={raw!r} is not {what}: set it to a non-negative "
            f"number of seconds (e.g. 30 or 2.5), or unset it to {unset}."
        )
        raise ConfigurationError(msg)
    return value


_BUDGET = Option.seconds(expected="a number of seconds, not negative (math.inf for no deadline)")


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

    graceful: float = attrs.field(default=30.0, validator=_BUDGET)
    forceful: float = attrs.field(default=10.0, validator=_BUDGET)
    terminate: float = attrs.field(default=5.0, validator=_BUDGET)

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
        env = os.environ if environ is None else environ
        values: dict[str, float] = {}
        for field, variable in _ENV.items():
            value = seconds_from_env(variable, env, "a valid timeout", "use the default")
            if value is not None:
                values[field] = value
        return cls(**values)

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
