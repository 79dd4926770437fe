"""Backend-specific code, one small module per event loop, imported lazily."""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["current_scheduler"]

Scheduler = Callable[[Callable[[], None]], None]


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
