"""Readable logs for programs started with run(), unless the user set up structlog."""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import sys
from typing import IO, Any, TextIO, cast

import structlog

from lifecycle._core._settings import LOG_FORMAT, LOG_LEVEL
from lifecycle._core._validation import escape_unprintable

__all__ = ["LogOutput", "StructlogLineHandler", "configure_logging"]


def configure_logging() -> bool:
    """
    Configure structlog for a program that ``run()`` owns, unless it is configured.

    Console output when stderr is a terminal, JSON lines otherwise;
    ``LIFECYCLE_LOG_FORMAT=console|json`` overrides. Events go to stderr, at
    INFO and above (``LIFECYCLE_LOG_LEVEL`` changes that). Logging that the user
    configured is never touched.

    Standard-library records (asyncio, Hypercorn, the program's own
    ``logging`` calls) are rendered by the same processors and renderer,
    through a :class:`structlog.stdlib.ProcessorFormatter` on a handler of the
    root logger, whose level becomes the same; unless the root logger has
    handlers already (the program configured ``logging`` itself).

    Returns:
        ``True`` if it configured structlog.

    Raises:
        ConfigurationError: ``LIFECYCLE_LOG_FORMAT`` or ``LIFECYCLE_LOG_LEVEL``
            has an unknown value.
    """
    if structlog.is_configured():
        return False
    fmt = LOG_FORMAT.read()
    level = LOG_LEVEL.read()
    console = fmt == "console" or (fmt is None and sys.stderr.isatty())
    # A file to structlog, which only writes and flushes it.
    output = cast("TextIO", LogOutput(sys.stderr))
    renderer: structlog.typing.Processor = (
        structlog.dev.ConsoleRenderer() if console else structlog.processors.JSONRenderer()
    )
    processors: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    if console:
        # Names, messages and values a user controls go to a terminal: a newline
        # or an escape sequence in them must not forge a line or rewrite the screen.
        processors.append(escape_controls)
    else:
        # Structured tracebacks, without local variables: they may hold secrets.
        transformer = structlog.tracebacks.ExceptionDictTransformer(show_locals=False)
        processors += [structlog.processors.ExceptionRenderer(transformer)]
    structlog.configure(
        processors=[*processors, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        # No cache_logger_on_first_use: cached loggers would ignore later
        # reconfiguration, such as structlog.testing.capture_logs() in tests.
        logger_factory=structlog.PrintLoggerFactory(output),
    )
    root = logging.getLogger()
    if not root.handlers:
        formatter = structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[*processors[:2], structlog.stdlib.add_logger_name, *processors[2:]],
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )
        handler = StructlogLineHandler(structlog.PrintLogger(output))
        handler.setFormatter(formatter)
        root.addHandler(handler)
        root.setLevel(level)
    return True


class LogOutput:
    """
    The stream the log lines of ``run()`` go to, which a lost reader cannot break.

    When the reader of stderr is gone (``program 2>&1 | head``, a closed
    terminal, a log collector that died), a write raises
    :exc:`BrokenPipeError` (or ``EIO``): it would fail the component that
    logged, and a restart that logs again. Instead, from the first such
    failure on, lines are dropped and stderr is pointed at ``/dev/null``, so
    the report and anything else written there at exit cannot fail either.
    Another failed write (a full disk) drops its line only.
    """

    _READER_GONE = frozenset({errno.EPIPE, errno.EIO})

    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream
        self.reader_gone = False

    def write(self, text: str) -> int:
        """Write *text*, or drop it once the reader is gone."""
        if not self.reader_gone:
            try:
                self._stream.write(text)
            except OSError as error:
                self._failed(error)
        return len(text)

    def flush(self) -> None:
        """Flush the stream, unless the reader is gone."""
        if not self.reader_gone:
            try:
                self._stream.flush()
            except OSError as error:
                self._failed(error)

    def _failed(self, error: OSError) -> None:
        if error.errno not in self._READER_GONE:
            return
        self.reader_gone = True
        with contextlib.suppress(OSError, ValueError):
            fd = self._stream.fileno()
            null = os.open(os.devnull, os.O_WRONLY)
            os.dup2(null, fd)
            os.close(null)

    def __getattr__(self, name: str) -> Any:  # noqa: ANN401 - the stream's other attributes (isatty, fileno)
        return getattr(self._stream, name)


class StructlogLineHandler(logging.Handler):
    """
    A handler that writes each formatted record as one line through a structlog ``PrintLogger``.

    The framework's own events go through a ``PrintLogger`` on the same
    stream: sharing structlog's lock for that stream, a record and an event
    never interleave within a line.
    """

    def __init__(self, printer: structlog.PrintLogger) -> None:
        super().__init__()
        self._printer = printer

    def emit(self, record: logging.LogRecord) -> None:
        """Format *record* and write it as one line."""
        try:
            self._printer.msg(self.format(record))
        except Exception:  # noqa: BLE001 - logging's own convention: report, never raise
            self.handleError(record)


# Keys whose values are multi-line by design (rendered tracebacks and stacks).
_MULTILINE_KEYS = frozenset({"exception", "stack", "exc_info"})


def escape_controls(
    logger: object, method_name: str, event_dict: structlog.typing.EventDict
) -> structlog.typing.EventDict:
    """A structlog processor: escape unprintable characters in keys and string values (for the console)."""
    del logger, method_name
    escaped: structlog.typing.EventDict = {}
    for key, value in event_dict.items():
        if isinstance(value, str) and key not in _MULTILINE_KEYS:
            value = escape_unprintable(value)  # noqa: PLW2901 - the escaped value replaces it
        escaped[escape_unprintable(key)] = value
    return escaped
