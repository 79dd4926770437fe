"""
Where the framework's events go: structlog as the host configured it, else the standard library's ``logging``.

A host that configured structlog (``structlog.is_configured()``) gets every
event through its configuration, as it is. A host that did not (a tree
embedded with ``running()`` or the ASGI lifespan under uvicorn, Hypercorn,
Django) gets them as standard-library records of the ``lifecycle`` loggers, so
its own ``logging`` setup applies to them, and nothing below WARNING shows
until it asks for more (Python's default). Without this, structlog's default
configuration would print every debug event to stdout.

A logger bound on the standard-library route follows a structlog
configuration made later (``capture_logs()`` in a test): each event first
asks ``structlog.is_configured()``. Then, on the standard-library route, the
level is checked, through the
stdlib logger's ``isEnabledFor`` (cached by ``logging`` until its
configuration changes): an event that is filtered out is never built, and no
processor runs for it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, MutableMapping
from typing import Any, cast

import structlog

from ._validation import escape_unprintable

__all__ = ["StdlibBoundLogger", "current_logger", "render_for_stdlib", "reroute_with", "stdlib_logger"]

_LEVEL_TO_NAME = {
    logging.DEBUG: "debug",
    logging.INFO: "info",
    logging.WARNING: "warning",
    logging.ERROR: "error",
    logging.CRITICAL: "critical",
}
# Keys handed to the stdlib logger as arguments, not rendered into the message.
_STDLIB_KEYS = frozenset({"event", "exc_info", "stack_info"})


def _quoted(value: object) -> str:
    """One value of ``key=value``: printable, quoted when it holds a space, a quote or an ``=``."""
    text = value if isinstance(value, str) else repr(value)
    text = escape_unprintable(text)
    if not text or any(char in text for char in ' "='):
        text = '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return text


def render_for_stdlib(
    logger: object, method_name: str, event_dict: MutableMapping[str, Any]
) -> tuple[tuple[object, ...], dict[str, Any]]:
    """
    The last processor of the standard-library route: the event as a record's message and arguments.

    The message is the event name followed by its context as ``key=value``
    (``tree.ready tree=app``), with unprintable characters escaped so a value
    cannot forge a line; ``exc_info`` and ``stack_info`` go to the record, so
    the host's formatter prints the traceback.
    """
    del logger, method_name
    event = escape_unprintable(str(event_dict.get("event", "")))
    fields = " ".join(
        f"{escape_unprintable(str(key))}={_quoted(value)}"
        for key, value in event_dict.items()
        if key not in _STDLIB_KEYS
    )
    kwargs: dict[str, Any] = {}
    if event_dict.get("exc_info"):
        kwargs["exc_info"] = event_dict["exc_info"]
    if event_dict.get("stack_info"):
        kwargs["stack_info"] = True
    return ((f"{event} {fields}" if fields else event),), kwargs


def _method(level: int) -> tuple[Callable[..., Any], Callable[..., Any]]:
    name = _LEVEL_TO_NAME[level]

    def method(self: StdlibBoundLogger, event: str | None = None, *args: object, **kw: object) -> Any:  # noqa: ANN401 - what the logger returns
        if _is_configured():
            return getattr(self.rerouted(), name)(event, *args, **kw)
        if not self._logger.isEnabledFor(level):
            return None
        return self._proxy_to_logger(name, _interpolate(event, args), **kw)

    async def amethod(self: StdlibBoundLogger, event: str | None = None, *args: object, **kw: object) -> Any:  # noqa: ANN401 - what the logger returns
        # Synchronous: handing a record to `logging` does not block for long,
        # and a thread (what structlog's async methods use) is asyncio-only.
        return method(self, event, *args, **kw)

    method.__name__, amethod.__name__ = name, f"a{name}"
    return method, amethod


def _interpolate(event: str | None, args: tuple[object, ...]) -> str | None:
    return event % args if args and event is not None else event


class StdlibBoundLogger(structlog.BoundLoggerBase):
    """
    A bound logger for the standard-library route: the level check comes before anything else.

    Its wrapped logger is a :class:`logging.Logger`. Each level's method asks
    ``isEnabledFor`` first (one cached look-up in ``logging``), so a level
    the host filters out costs a method call and builds nothing; an enabled
    event runs the processors, whose last one (:func:`render_for_stdlib`)
    makes the record's message.
    """

    _logger: logging.Logger

    def rerouted(self) -> structlog.typing.FilteringBoundLogger:
        """
        The structlog logger of the same name and context: where events go once structlog is configured.

        A logger bound while structlog was not configured (a tree's, for its
        whole life) follows a configuration made later, such as
        ``structlog.testing.capture_logs()`` in a test, as structlog's own
        loggers follow it.
        """
        return _reroute(self._logger.name).bind(**self._context)

    debug, adebug = _method(logging.DEBUG)
    info, ainfo = _method(logging.INFO)
    msg, amsg = info, ainfo
    warning, awarning = _method(logging.WARNING)
    warn, awarn = warning, awarning
    error, aerror = _method(logging.ERROR)
    err = error
    critical, acritical = _method(logging.CRITICAL)
    fatal, afatal = critical, acritical

    def exception(self, event: str | None = None, *args: object, **kw: object) -> Any:  # noqa: ANN401 - what the logger returns
        """Log *event* at ERROR with the exception being handled (``exc_info=True`` unless given)."""
        kw.setdefault("exc_info", True)
        return self.error(event, *args, **kw)

    async def aexception(self, event: str | None = None, *args: object, **kw: object) -> Any:  # noqa: ANN401 - what the logger returns
        """:meth:`exception`, from async code (synchronously)."""
        return self.exception(event, *args, **kw)

    def log(self, level: int, event: str | None = None, *args: object, **kw: object) -> Any:  # noqa: ANN401 - what the logger returns
        """Log *event* at the numeric *level*."""
        if _is_configured():
            return self.rerouted().log(level, cast("str", event), *args, **kw)
        if not self._logger.isEnabledFor(level):
            return None
        # A custom numeric level is written at the standard level just below it.
        name = _LEVEL_TO_NAME[max((known for known in _LEVEL_TO_NAME if known <= level), default=logging.DEBUG)]
        return self._proxy_to_logger(name, _interpolate(event, args), **kw)

    async def alog(self, level: int, event: str | None = None, *args: object, **kw: object) -> Any:  # noqa: ANN401 - what the logger returns
        """:meth:`log`, from async code (synchronously)."""
        return self.log(level, event, *args, **kw)

    def is_enabled_for(self, level: int) -> bool:
        """Whether an event at *level* would be logged now."""
        return self._logger.isEnabledFor(level)

    def get_effective_level(self) -> int:
        """The stdlib logger's effective level."""
        return self._logger.getEffectiveLevel()


_is_configured = structlog.is_configured


def _structlog_logger(name: str) -> structlog.typing.FilteringBoundLogger:
    return cast("structlog.typing.FilteringBoundLogger", structlog.get_logger(name).bind())


_reroute: Callable[[str], structlog.typing.FilteringBoundLogger] = _structlog_logger


def reroute_with(factory: Callable[[str], structlog.typing.FilteringBoundLogger]) -> None:
    """Make *factory* give the structlog logger an event is rerouted to (the guarded one, from the layer above)."""
    global _reroute  # noqa: PLW0603 - set once, at import of lifecycle._core._safe_logging
    _reroute = factory


_PROCESSORS: list[structlog.typing.Processor] = [structlog.contextvars.merge_contextvars, render_for_stdlib]
_cache: dict[str, structlog.typing.FilteringBoundLogger] = {}


def stdlib_logger(name: str) -> structlog.typing.FilteringBoundLogger:
    """A bound logger (no context) that writes to the standard library's ``logging.getLogger(name)``."""
    logger = _cache.get(name)
    if logger is None:
        bound = StdlibBoundLogger(logging.getLogger(name), processors=_PROCESSORS, context={})
        logger = _cache[name] = cast("structlog.typing.FilteringBoundLogger", bound)
    return logger


def current_logger(name: str) -> structlog.typing.FilteringBoundLogger:
    """
    The logger named *name*, by the configuration in force now, bound (not a lazy proxy).

    structlog's, when the host configured structlog; else the standard library's.
    """
    if structlog.is_configured():
        return _structlog_logger(name)
    return stdlib_logger(name)
