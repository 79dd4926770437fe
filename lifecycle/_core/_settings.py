"""
The ``LIFECYCLE_*`` environment variables: one table, read in one place.

Each :class:`Setting` names its variable, its default and what it changes, and
parses the variable's text. A variable that is unset or empty takes the
default; a value that does not parse is a :class:`~lifecycle.ConfigurationError`
that names the variable, shows the value and says what unsetting it does. The
settings are read where they are used, when they are used, so a bad variable
fails only what depends on it. ``lifecycle check`` prints them all
(:func:`effective`); the docs show :data:`SETTINGS` as a table.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable, Mapping
from typing import Any, Generic, Literal, TypeVar, final

import attrs

from ._errors import ConfigurationError

__all__ = [
    "BLOCKED_LOOP_THRESHOLD",
    "CONTAINMENT_ID_VARIABLE",
    "FORCEFUL_TIMEOUT",
    "GRACEFUL_TIMEOUT",
    "GRACE_PERIOD",
    "LOG_FORMAT",
    "LOG_LEVEL",
    "PROCESS_CONTAINMENT",
    "SETTINGS",
    "STARTUP_PROGRESS_INTERVAL",
    "TERMINATE_TIMEOUT",
    "Setting",
    "effective",
]

T = TypeVar("T")


@final
@attrs.frozen
class Setting(Generic[T]):
    """
    One ``LIFECYCLE_*`` environment variable.

    Attributes:
        variable: Its name.

        default: The value when it is unset or empty.

        meaning: What it changes, in one line (for the docs and ``lifecycle check``).

        parse: Turns the variable's text (stripped, not empty) into the value;
            raises :class:`~lifecycle.ConfigurationError` naming the variable.

        show: Shows a value the way the variable is written.
    """

    variable: str
    default: T
    meaning: str
    parse: Callable[[str, str], T]
    show: Callable[[T], str] = str

    def read(self, environ: Mapping[str, str] | None = None) -> T:
        """
        Return the value of the variable in *environ* (:data:`os.environ` by default).

        Raises:
            ConfigurationError: The variable is set to something that does not parse.
        """
        raw = (os.environ if environ is None else environ).get(self.variable, "").strip()
        return self.default if not raw else self.parse(self.variable, raw)

    def is_set(self, environ: Mapping[str, str] | None = None) -> bool:
        """Whether *environ* sets the variable (to something other than blanks)."""
        return bool((os.environ if environ is None else environ).get(self.variable, "").strip())


_INFINITY = frozenset({"inf", "infinity"})


def _seconds(what: str, unset: str) -> Callable[[str, str], float]:
    """Parse a non-negative number of seconds; the error says the value is not *what* and what unsetting does."""

    def parse(variable: str, raw: str) -> float:
        try:
            value = float(raw)
        except ValueError:
            value = math.nan
        # Only the words inf and infinity mean no deadline: a number too large
        # for a float (1e309) would silently become one, and turn the hard exit off.
        if math.isinf(value) and raw.lower().lstrip("+") not in _INFINITY:
            value = math.nan
        if math.isnan(value) or value < 0:
            msg = (
                f"Environment variable {variable}={raw!r} is not {what}: set it to a non-negative, finite "
                f"number of seconds (e.g. 30 or 2.5), or 'inf' for no deadline, or unset it to {unset}."
            )
            raise ConfigurationError(msg)
        return value

    return parse


def _show_seconds(value: float | None) -> str:
    return "unset" if value is None else f"{value:g}"


LogFormat = Literal["console", "json"]


def _log_format(variable: str, raw: str) -> LogFormat | None:
    value = raw.lower()
    if value == "console":
        return "console"
    if value == "json":
        return "json"
    msg = f"Environment variable {variable}={value!r} is not valid: use 'console' or 'json'."
    raise ConfigurationError(msg)


def _log_level(variable: str, raw: str) -> int:
    level = logging.getLevelNamesMapping().get(raw.upper())
    if level is None:
        msg = f"Environment variable {variable}={raw.lower()!r} is not a log level: use debug, info, warning or error."
        raise ConfigurationError(msg)
    return level


GRACEFUL_TIMEOUT: Setting[float] = Setting(
    "LIFECYCLE_GRACEFUL_TIMEOUT",
    30.0,
    "Seconds of the GRACEFUL phase, for a tree without a policy of its own.",
    _seconds("a valid timeout", "use the default"),
    _show_seconds,
)
FORCEFUL_TIMEOUT: Setting[float] = Setting(
    "LIFECYCLE_FORCEFUL_TIMEOUT",
    10.0,
    "Seconds of the FORCEFUL phase, for a tree without a policy of its own.",
    _seconds("a valid timeout", "use the default"),
    _show_seconds,
)
TERMINATE_TIMEOUT: Setting[float] = Setting(
    "LIFECYCLE_TERMINATE_TIMEOUT",
    5.0,
    "Seconds of the TERMINATE phase, for a tree without a policy of its own.",
    _seconds("a valid timeout", "use the default"),
    _show_seconds,
)
GRACE_PERIOD: Setting[float | None] = Setting(
    "LIFECYCLE_GRACE_PERIOD",
    None,
    "The platform's grace period in seconds: a stop budget that does not fit is logged when the tree has started.",
    _seconds("a valid grace period", "skip the budget check"),
    _show_seconds,
)
STARTUP_PROGRESS_INTERVAL: Setting[float] = Setting(
    "LIFECYCLE_STARTUP_PROGRESS_INTERVAL",
    5.0,
    "Seconds between startup.waiting events while a tree starts; 0 turns them off.",
    _seconds("a valid interval", "use 5 (0 turns the startup progress events off)"),
    _show_seconds,
)
BLOCKED_LOOP_THRESHOLD: Setting[float] = Setting(
    "LIFECYCLE_BLOCKED_LOOP_THRESHOLD",
    1.0,
    "Seconds without the event loop running before run() logs loop.blocked; 0 turns it off.",
    _seconds("a valid threshold", "use 1 (0 turns the blocked-loop warning off)"),
    _show_seconds,
)
LOG_FORMAT: Setting[LogFormat | None] = Setting(
    "LIFECYCLE_LOG_FORMAT",
    None,
    "How run() renders its logs: console or json; unset, console on a terminal and json otherwise.",
    _log_format,
    lambda value: "unset" if value is None else value,
)
LOG_LEVEL: Setting[int] = Setting(
    "LIFECYCLE_LOG_LEVEL",
    logging.INFO,
    "The least important events run() logs: debug, info, warning or error.",
    _log_level,
    lambda value: logging.getLevelName(value).lower(),
)

Containment = Literal["auto", "cgroup", "tree"]


def _containment(variable: str, raw: str) -> Containment:
    value = raw.lower()
    if value == "auto":
        return "auto"
    if value == "cgroup":
        return "cgroup"
    if value == "tree":
        return "tree"
    msg = f"Environment variable {variable}={value!r} is not valid: use 'auto', 'cgroup' or 'tree'."
    raise ConfigurationError(msg)


PROCESS_CONTAINMENT: Setting[Containment] = Setting(
    "LIFECYCLE_PROCESS_CONTAINMENT",
    "auto",
    "How child processes are contained on Linux: auto (a cgroup v2 when writable, else the process tree), "
    "cgroup or tree.",
    _containment,
)

#: Not a setting: the variable every contained child process gets, holding its
#: component's containment id (orphans re-parented to the service are told apart by it).
CONTAINMENT_ID_VARIABLE = "LIFECYCLE_CONTAINMENT_ID"

#: Every setting, in the order the docs and ``lifecycle check`` list them.
SETTINGS: tuple[Setting[Any], ...] = (
    GRACEFUL_TIMEOUT,
    FORCEFUL_TIMEOUT,
    TERMINATE_TIMEOUT,
    GRACE_PERIOD,
    STARTUP_PROGRESS_INTERVAL,
    BLOCKED_LOOP_THRESHOLD,
    LOG_FORMAT,
    LOG_LEVEL,
    PROCESS_CONTAINMENT,
)


def effective(environ: Mapping[str, str] | None = None) -> list[tuple[str, str, bool]]:
    """
    Return every setting as ``(variable, value shown, set in the environment)``.

    Raises:
        ConfigurationError: A variable is set to something that does not parse.
    """
    return [(s.variable, s.show(s.read(environ)), s.is_set(environ)) for s in SETTINGS]
