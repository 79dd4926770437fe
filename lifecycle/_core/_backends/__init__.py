"""Backend-specific code, one small module per event loop, imported lazily."""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING, Protocol, Self, final

import attrs

if TYPE_CHECKING:
    from lifecycle._core._escalation import Escalation

__all__ = [
    "ErrorReporter",
    "Primitives",
    "Scope",
    "current_primitives",
    "current_scheduler",
    "install_loop_exception_handler",
]

Scheduler = Callable[[Callable[[], None]], None]


class Waker(Protocol):
    """A one-shot event for one waiter: ``set()`` wakes ``wait()``, which returns at once once set."""

    def set(self) -> None:
        """Wake the waiter (idempotent)."""

    async def wait(self) -> object:
        """Wait until set; cancellable by anyio cancel scopes."""


class Scope(Protocol):
    """
    The part of a cancel scope the engine uses: anyio's, or on Trio, Trio's own.

    A Trio cancel scope nests with anyio's (anyio's wraps one), so the engine
    can use it directly there and skip the wrapper.
    """

    deadline: float

    def __enter__(self) -> Self: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
        /,
    ) -> bool | None: ...

    def cancel(self) -> None:
        """Cancel the scope."""

    @property
    def cancel_called(self) -> bool:
        """Whether :meth:`cancel` was called (or the deadline passed)."""

    @property
    def cancelled_caught(self) -> bool:
        """Whether the scope caught its own cancellation."""


@final
@attrs.frozen
class Primitives:
    """
    The current loop's clock, one-shot event, cancel scope type, cancellation class and cut-offs.

    Resolved once per tree: anyio detects the backend again on every
    :class:`anyio.CancelScope`, :class:`anyio.Event` and
    :func:`anyio.get_cancelled_exc_class`, which a start of ten thousand
    components would otherwise pay for tens of thousands of times.
    """

    clock: Callable[[], float]
    event: Callable[[], Waker]
    shielded_scope: Callable[[], Scope]
    cancelled: type[BaseException]
    # Cut a teardown scope off when its escalation's GRACEFUL phase ends (following
    # its jumps), and forget it once left: on Trio its deadline, on asyncio one
    # timer per escalation instead of one per scope.
    follow: Callable[[Scope, Escalation], None]
    unfollow: Callable[[Scope, Escalation], None]


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


# lifecycle.report_error: called as report(event, error, **fields); never raises.
ErrorReporter = Callable[..., None]


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
