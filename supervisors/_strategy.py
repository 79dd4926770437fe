"""A supervisor's options: Strategy, Restart, AutoShutdown, Intensity, Backoff."""

from __future__ import annotations

import enum
from typing import final

import attrs

from lifecycle import ConfigurationError
from lifecycle.lowlevel import Option

__all__ = ["AutoShutdown", "Backoff", "Intensity", "Restart", "Strategy"]


class Strategy(enum.Enum):
    """
    Which children restart when one fails, with Erlang/OTP's meaning.

    In every strategy the transitive dependents of a restarted child restart
    with it, because they hold its old value.
    """

    ONE_FOR_ONE = "one_for_one"
    """Only the failed child (and its dependents) restart."""
    ONE_FOR_ALL = "one_for_all"
    """All children restart."""
    REST_FOR_ONE = "rest_for_one"
    """The failed child and the children registered after it restart."""


class Restart(enum.Enum):
    """When a child that ended is restarted, with Erlang/OTP's meaning."""

    PERMANENT = "permanent"
    """Always."""
    TRANSIENT = "transient"
    """Only after a failure."""
    TEMPORARY = "temporary"
    """Never; its end is reported."""


class AutoShutdown(enum.Enum):
    """
    When a supervisor stops by itself because its ``main`` children ended, as Erlang/OTP's ``auto_shutdown``.

    A ``main=True`` child is OTP's *significant* child. Only a ``main`` child
    that ends by itself counts: one stopped by ``stop_child()``, by a restart
    of its group or by the supervisor's own stop does not.

    .. versionadded:: 0.1.0
    """

    NEVER = "never"
    """The supervisor never stops by itself; ``main=True`` children are refused, as in OTP."""
    ANY_SIGNIFICANT = "any_significant"
    """The first ``main`` child that returns stops the supervisor (the default)."""
    ALL_SIGNIFICANT = "all_significant"
    """The supervisor stops when the last of its ``main`` children has returned."""


_SECONDS = Option.seconds()
_RESTART_COUNT = Option.whole_number(0, expected="a non-negative whole number")
_MULTIPLIER = Option(
    "at least 1",
    lambda value: not isinstance(value, bool) and isinstance(value, int | float) and value >= 1,
)


@final
@attrs.frozen
class Intensity:
    """
    How many restarts a supervisor tolerates before it gives up.

    More than *max_restarts* restarts within *within* seconds (a sliding
    window) make the supervisor stop its children in order and fail.

    Args:
        max_restarts: Restarts allowed inside the window.

        within: The window, in seconds.
    """

    max_restarts: int = attrs.field(default=3, validator=_RESTART_COUNT)
    within: float = attrs.field(default=5.0, validator=_SECONDS)


@final
@attrs.frozen
class Backoff:
    """
    The delay before each restart: exponential, capped, with full jitter.

    A child's attempt counter starts at 0 and grows with each of its restarts;
    it goes back to 0 when the child stayed ready for at least the intensity
    window (``Intensity.within``) before it ended, so a child that crashes once
    a day restarts after ``initial``, not after ``maximum``.

    Args:
        initial: The delay before the first restart, in seconds.

        maximum: The cap, in seconds.

        multiplier: The growth factor between consecutive restarts (at least 1).

        jitter: Whether to draw the delay uniformly between 0 and the computed
            value (full jitter), so crash loops do not stampede.
    """

    initial: float = attrs.field(default=0.1, validator=_SECONDS)
    maximum: float = attrs.field(default=30.0, validator=_SECONDS)
    multiplier: float = attrs.field(default=2.0, validator=_MULTIPLIER)
    jitter: bool = attrs.field(default=True, validator=Option.boolean())

    def __attrs_post_init__(self) -> None:
        if self.maximum < self.initial:
            msg = f"`maximum` ({self.maximum!r}) must not be smaller than `initial` ({self.initial!r})."
            raise ConfigurationError(msg)
