"""
Backend-specific code, one small module per event loop, imported lazily.

:mod:`._interface` says what the engine needs from a loop (a clock, a one-shot
event, a shielded scope, cut-offs, a thread-safe scheduler); ``_asyncio`` and
``_trio`` provide it, and the functions here pick the running loop's. Nothing
outside this folder imports a backend module.
"""

from __future__ import annotations

from collections.abc import Callable

from ._interface import ErrorReporter as ErrorReporter
from ._interface import Primitives as Primitives
from ._interface import Scheduler as Scheduler
from ._interface import Scope as Scope
from ._interface import Waker as Waker

__all__ = [
    "ErrorReporter",
    "Primitives",
    "Scheduler",
    "Scope",
    "Waker",
    "current_primitives",
    "current_scheduler",
    "install_loop_exception_handler",
    "spawns_in_worker_thread",
]


def _running_trio() -> bool:
    # Trio depends on sniffio and sets it; without sniffio only asyncio can be running.
    try:
        import sniffio  # noqa: PLC0415 - optional: anyio itself no longer requires it
    except ImportError:  # pragma: no cover - the test extra installs trio, hence sniffio
        return False
    try:
        return sniffio.current_async_library() == "trio"
    except sniffio.AsyncLibraryNotFoundError:  # pragma: no cover - only called inside a loop
        return False


def spawns_in_worker_thread() -> bool:
    """
    Whether ``anyio.open_process`` forks in a worker thread that may end before the child does.

    Trio starts child processes in a thread of its cache, which ends after ten
    idle seconds; asyncio and uvloop fork in the event loop's thread. Linux
    sends a parent-death signal when the *thread* that forked ends, so only a
    child forked by a lasting thread may have one.
    """
    return _running_trio()


def current_scheduler() -> Scheduler:
    """
    Return a function that runs a callback soon in the current event loop.

    The returned function is safe to call from any thread and from a signal
    handler; once the loop has finished it does nothing.
    """
    if _running_trio():
        from . import _trio  # noqa: PLC0415 - imported only on that backend

        return _trio.current_scheduler()
    from . import _asyncio  # noqa: PLC0415 - imported only on that backend

    return _asyncio.current_scheduler()


def current_primitives() -> Primitives:
    """
    Return the running loop's clock and event type.

    They are what :func:`anyio.current_time` and :class:`anyio.Event` use, minus
    anyio's per-call backend detection: a tree resolves them once and its
    components use them on every start and stop.
    """
    if _running_trio():
        from . import _trio  # noqa: PLC0415 - imported only on that backend

        return _trio.current_primitives()
    from . import _asyncio  # noqa: PLC0415 - imported only on that backend

    return _asyncio.current_primitives()


def install_loop_exception_handler(report: ErrorReporter) -> Callable[[], None]:
    """
    Route the running loop's unhandled errors to *report*; return the function that undoes it.

    On asyncio (and uvloop) this is the loop's exception handler ("Task
    exception was never retrieved", errors in callbacks). Trio has no such
    handler, so there it does nothing.
    """
    if _running_trio():
        return lambda: None
    from . import _asyncio  # noqa: PLC0415 - imported only on that backend

    return _asyncio.install_exception_handler(report)
