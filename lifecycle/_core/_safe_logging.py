"""
Loggers that a broken logging pipeline cannot break: the engine's events never raise.

A structlog processor that raises (a host's processor with a bug, a renderer
that meets an unexpected value) would otherwise raise out of ``log.info(...)``
in the middle of a start or a stop. :func:`guarded` gives a logger whose whole
processor chain runs inside one ``try``: when nothing fails it costs one extra
function call per event that passes the level filter, and nothing for an event
filtered out (a filtering logger's ``debug`` stays a no-op). When a processor
raises, the failure is written once, with its traceback, through the safe
reporter's plain-text path; the event is dropped, except an error or a critical
event, which is written as plain text so no error report is ever lost.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping, MutableMapping
from typing import Any, cast

import structlog

from ._log_route import current_logger, reroute_with, stdlib_logger
from ._report_error import plain_report

__all__ = ["GuardedChain", "current_guarded", "guarded", "lifecycle_logger", "module_logger", "safe_logger"]

Processor = Callable[[Any, str, MutableMapping[str, Any]], Any]

_lock = threading.Lock()
_reported: set[tuple[int, ...]] = set()

_SEVERE = frozenset({"error", "critical", "exception", "fatal", "err", "failure"})


class GuardedChain:
    """One structlog processor that runs a whole chain and never lets it raise (except ``DropEvent``)."""

    __slots__ = ("_processors",)

    def __init__(self, processors: Iterable[Processor]) -> None:
        # The configuration's own list, not a copy: structlog's capture_logs() changes
        # that list in place, and the chain follows it.
        self._processors = processors if isinstance(processors, list) else tuple(processors)

    def __call__(
        self, logger: object, method_name: str, event_dict: MutableMapping[str, Any]
    ) -> Mapping[str, Any] | str | bytes | bytearray | tuple[Any, ...]:
        """Run the chain on *event_dict*; on failure report it (once) and drop the event."""
        result: Any = event_dict
        try:
            for processor in self._processors:
                result = processor(logger, method_name, result)
        except structlog.DropEvent:
            raise
        except Exception as failure:  # noqa: BLE001 - logging must never break the engine
            self._failed(method_name, event_dict, failure)
            raise structlog.DropEvent from None
        return cast("Mapping[str, Any] | str | bytes | bytearray | tuple[Any, ...]", result)

    def _failed(self, method_name: str, event_dict: Mapping[str, Any], failure: Exception) -> None:
        with _lock:
            # Loggers are bound again and again from one configuration: "once" is
            # once per configured chain, not per logger object.
            key = tuple(map(id, self._processors))
            first = key not in _reported
            _reported.add(key)
        fields = {key: value for key, value in event_dict.items() if key not in {"event", "exc_info"}}
        event = str(event_dict.get("event", "?"))
        if first:
            why = (
                "a structlog processor raised (reported once; events it breaks are dropped, error events written here)"
            )
            plain_report(event, failure, fields, why)
        if method_name in _SEVERE:
            error = event_dict.get("exc_info")
            plain_report(
                event,
                error if isinstance(error, BaseException) else None,
                fields,
                "a structlog processor raised on an error event",
            )


def guarded(logger: structlog.typing.FilteringBoundLogger) -> structlog.typing.FilteringBoundLogger:
    """
    Return *logger* (a bound logger, not a lazy proxy) with its processor chain guarded.

    A logger whose class structlog does not build on ``BoundLoggerBase`` is
    returned as it is.
    """
    if not isinstance(logger, structlog.BoundLoggerBase):
        return logger
    # The configuration's own list when it is one (see GuardedChain), else a copy.
    processors = logger._processors if isinstance(logger._processors, list) else list(logger._processors)
    if len(processors) == 1 and isinstance(processors[0], GuardedChain):
        return logger
    rebuilt = type(logger)(
        logger._logger,
        processors=[GuardedChain(processors)],
        context=logger._context,
    )
    return cast("structlog.typing.FilteringBoundLogger", rebuilt)


_guarded_stdlib: dict[str, structlog.typing.FilteringBoundLogger] = {}
# Per name: the structlog configuration a guarded logger was built from, and the logger.
_guarded_structlog: dict[str, tuple[object, object, object, object, structlog.typing.FilteringBoundLogger]] = {}
# structlog's configuration object, read (never changed) for its cost: a lookup per event.
_CONFIG: Any = getattr(getattr(structlog, "_config", None), "_CONFIG", None)


def current_guarded(name: str) -> structlog.typing.FilteringBoundLogger:
    """
    The logger named *name* by the configuration in force now, guarded.

    structlog's when the host configured it; else the standard library's
    ``logging.getLogger(name)`` (see :mod:`lifecycle._core._log_route`).
    Either is built once per configuration: ``structlog.configure()`` (or
    ``capture_logs()``) puts new objects in the configuration (processors,
    wrapper class, logger factory, context class), and the next call sees
    them. The cache holds those objects, so none can be freed and another
    take its place unseen. A filtered-out event then costs this lookup and
    the filtering logger's empty method.
    """
    config = _CONFIG
    if config is None:  # pragma: no cover - a structlog without its configuration object
        return _build(name)
    if not config.is_configured:
        logger = _guarded_stdlib.get(name)
        if logger is None:
            logger = _guarded_stdlib[name] = guarded(stdlib_logger(name))
        return logger
    cached = _guarded_structlog.get(name)
    if (
        cached is not None
        and cached[0] is config.default_processors
        and cached[1] is config.default_wrapper_class
        and cached[2] is config.logger_factory
        and cached[3] is config.default_context_class
    ):
        return cached[4]
    logger = guarded(current_logger(name))
    _guarded_structlog[name] = (
        config.default_processors,
        config.default_wrapper_class,
        config.logger_factory,
        config.default_context_class,
        logger,
    )
    return logger


def _build(name: str) -> structlog.typing.FilteringBoundLogger:  # pragma: no cover - see current_guarded
    if structlog.is_configured():
        return guarded(current_logger(name))
    return guarded(stdlib_logger(name))


# A standard-library logger bound before structlog was configured goes on guarded.
reroute_with(lambda name: guarded(current_logger(name)))


def lifecycle_logger(**context: object) -> structlog.typing.FilteringBoundLogger:
    """Return the ``lifecycle`` logger, bound now with *context*, with its processor chain guarded."""
    return current_guarded("lifecycle").bind(**context)


class _LazyGuardedLogger:
    """A named logger for module-level use: configured at each call, guarded."""

    __slots__ = ("_name",)

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attribute: str) -> Any:  # noqa: ANN401 - whatever the logger's attribute is
        return getattr(current_guarded(self._name), attribute)

    # The levels the engine logs at, without __getattr__'s detour: a filtered-out
    # event costs the lookup of the logger in force and its (empty) method.
    def debug(self, event: str, *args: Any, **kw: Any) -> Any:  # noqa: ANN401 - as structlog's
        """Log *event* at DEBUG."""
        return current_guarded(self._name).debug(event, *args, **kw)

    def info(self, event: str, *args: Any, **kw: Any) -> Any:  # noqa: ANN401 - as structlog's
        """Log *event* at INFO."""
        return current_guarded(self._name).info(event, *args, **kw)


def safe_logger(name: str = "lifecycle") -> structlog.typing.FilteringBoundLogger:
    """
    Return a structlog logger named *name* that a broken processor chain cannot make raise (low-level).

    Every call uses the structlog configuration in force at that moment, as
    ``structlog.get_logger(name)`` does; when structlog is not configured, the
    event goes to the standard library's ``logging.getLogger(name)`` instead
    (see :ref:`logging`). Either way the processor chain runs guarded:
    a processor that raises is reported once, as plain text on stderr with its
    traceback, and the event is dropped (an error event is written as plain
    text instead), so logging never breaks the code that logs. For a module's
    ``_log``; a logger bound once and used often (per component) is cheaper
    bound from :attr:`lifecycle.Context.log`, which is guarded the same way.

    .. versionadded:: 0.1.0

    .. versionchanged:: 0.1.0
       Unconfigured structlog means the standard library's ``logging``.
    """
    return cast("structlog.typing.FilteringBoundLogger", _LazyGuardedLogger(name))


#: For modules that log a few events per tree (``_log = module_logger``); the
#: engine's per-component events go through the tree's logger, bound once.
module_logger = safe_logger("lifecycle")
