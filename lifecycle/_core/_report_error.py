"""Error reporting that can neither raise nor recurse: structlog first, plain stderr as the fallback."""

from __future__ import annotations

import sys
import threading
import traceback
from typing import Literal, TextIO

import structlog

from ._log_route import current_logger

__all__ = ["plain_report", "report_error"]

# Per thread: logging is synchronous, so a report that re-enters this module
# in the same thread can only come from inside the logging pipeline itself.
_local = threading.local()


def _safe_repr(value: object) -> str:
    try:
        return repr(value)
    except Exception:  # noqa: BLE001 - a broken __repr__ must not stop the report
        return f"<{type(value).__qualname__} object (repr failed)>"


def _stream() -> TextIO | None:
    for stream in (sys.stderr, sys.__stderr__):
        if stream is not None and not getattr(stream, "closed", False):
            return stream
    return None  # pragma: no cover - a process without any stderr


def _fallback(
    event: str,
    error: BaseException | None,
    fields: dict[str, object],
    why: str,
) -> None:
    """Write one plain block to stderr; swallow anything that goes wrong with it."""
    try:
        lines = [f"lifecycle: {why}; the event follows as plain text.", f"event={event}"]
        lines.extend(f"{key}={_safe_repr(value)}" for key, value in fields.items())
        if error is not None:
            lines.append("".join(traceback.format_exception(error)).rstrip("\n"))
        text = "\n".join(lines) + "\n"
    except Exception:  # noqa: BLE001 - the last resort must not raise
        text = f"lifecycle: {why}; event={event} (it could not be formatted)\n"
    try:
        stream = _stream()
        if stream is not None:
            stream.write(text)
            stream.flush()
    except Exception:  # noqa: BLE001, S110 - nowhere left to report to
        pass


def plain_report(event: str, error: BaseException | None, fields: dict[str, object], why: str) -> None:
    """Write *event* as one plain block to stderr, saying *why*; never raises (the safe path's last resort)."""
    _fallback(event, error, fields, why)


def report_error(
    event: str,
    error: BaseException | None = None,
    /,
    *,
    logger: structlog.typing.FilteringBoundLogger | None = None,
    level: Literal["warning", "error", "critical"] = "error",
    **fields: object,
) -> None:
    """
    Log *event* with *error*'s traceback; never raise, never recurse.

    The event goes through structlog as ``logger.error(event, exc_info=error,
    **fields)``. If that fails (a processor or renderer raises, a field's
    ``__repr__`` raises, the output stream is closed), the event is written
    once, as plain text with the traceback, to stderr, and the call returns:
    logging is not retried. A report made while another report is being
    logged in the same thread (a processor that reports errors itself) goes
    straight to stderr, so a faulty pipeline can never loop. Anything that
    goes wrong writing to stderr is ignored.

    The framework reports its own errors (failed components and tasks,
    cleanup failures) this way, and :func:`lifecycle.run` routes
    ``sys.excepthook``, ``threading.excepthook`` and the asyncio loop's
    exception handler here while it runs.

    Exceptions that are not :exc:`Exception` (``KeyboardInterrupt``) raised by
    the logging pipeline are not caught. Not async; safe from any thread.

    Args:
        event: The structlog event name.

        error: The exception to log with its traceback, if any.

        logger: The logger to use; defaults to the ``lifecycle`` logger
            (structlog's, or the standard library's when structlog is not
            configured).

        level: The log level.

        **fields: Key/value context of the event.
    """
    if getattr(_local, "reporting", False):
        _fallback(event, error, fields, "an error was reported while logging another one")
        return
    _local.reporting = True
    try:
        log = current_logger("lifecycle") if logger is None else logger
        method = getattr(log, level)
        if error is None:
            method(event, **fields)
        else:
            method(event, exc_info=error, **fields)
    except Exception as failure:  # noqa: BLE001 - reporting must never raise
        _fallback(event, error, fields, f"logging failed with {_safe_repr(failure)}")
    finally:
        _local.reporting = False
