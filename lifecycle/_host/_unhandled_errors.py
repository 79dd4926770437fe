"""While run() owns the process, unhandled errors go through the safe reporter."""

from __future__ import annotations

import sys
import threading
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import TypeVar

from lifecycle._core._backends import install_loop_exception_handler
from lifecycle._core._report_error import report_error

__all__ = ["routing_unhandled_errors"]

T = TypeVar("T")


def _excepthook(exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
    del exc_type, tb  # the exception carries both
    report_error("unhandled.error", exc, hook="sys.excepthook")


def _threading_excepthook(args: threading.ExceptHookArgs) -> None:
    if args.exc_type is SystemExit:
        return  # like the default hook: a thread that exits is not an error
    thread = args.thread.name if args.thread is not None else None
    report_error("thread.failed", args.exc_value, hook="threading.excepthook", thread=thread)


def routing_unhandled_errors(main: Callable[[], Awaitable[T]]) -> Callable[[], Awaitable[T]]:
    """
    Wrap the async *main* of :func:`lifecycle.run` so unhandled errors are reported safely.

    While *main* runs, ``sys.excepthook``, ``threading.excepthook`` and (on
    asyncio and uvloop) the loop's exception handler report through
    :func:`lifecycle.report_error`; the previous hooks are restored when it
    returns or raises. Trio has no such handler: it raises every error.
    """

    async def routed() -> T:
        previous = (sys.excepthook, threading.excepthook)
        sys.excepthook = _excepthook
        threading.excepthook = _threading_excepthook
        restore_loop = install_loop_exception_handler(report_error)
        try:
            return await main()
        finally:
            restore_loop()
            sys.excepthook, threading.excepthook = previous

    return routed
