"""asyncio: thread-safe and signal-safe scheduling."""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Callable
from typing import final

from anyio._backends._asyncio import CancelScope as _AnyioScope

from ._cutoffs import Cutoffs
from ._interface import ErrorReporter, Primitives


def current_scheduler() -> Callable[[Callable[[], None]], None]:
    """Return a thread-safe ``call_soon`` for the running loop that ignores a closed loop."""
    loop = asyncio.get_running_loop()

    def schedule(callback: Callable[[], None]) -> None:
        # A closed loop raises RuntimeError: the tree has stopped already.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(callback)

    return schedule


@final
class _Waker:
    """
    A one-shot event for a single waiter, on one future.

    What :class:`asyncio.Event` does for one waiter, without its deque of
    waiters and the lock it takes to bind its loop: every component has one.
    """

    __slots__ = ("_future", "_set")

    def __init__(self) -> None:
        self._future: asyncio.Future[None] | None = None
        self._set = False

    def set(self) -> None:
        self._set = True
        future = self._future
        if future is not None and not future.done():
            future.set_result(None)

    async def wait(self) -> None:
        if self._set:
            return
        future = self._future
        if future is None or future.done():  # done: a cancelled earlier wait
            future = self._future = asyncio.get_running_loop().create_future()
        await future


# anyio recognises its own cancellations by this prefix of the CancelledError's message.
_STOP_REASON = "Cancelled via cancel scope of a component's stop"


@final
class _ComponentScope(_AnyioScope):
    """
    anyio's asyncio cancel scope, with a :meth:`cancel` that formats no message.

    anyio's ``cancel()`` writes the cancelling task's ``repr()`` into the
    cancellation's message, which formats its coroutine and where it is
    suspended: stopping ten thousand workers, that text cost about as much as
    the rest of their stop. This one gives every stop the same message (anyio
    still recognises it as its own) and otherwise does what anyio's does; it
    is anyio's scope, so it nests, shields and uncancels exactly as anyio's.
    """

    __slots__ = ()

    def cancel(self, reason: str | None = None) -> None:
        if self._cancel_called:
            return
        if reason is not None:
            super().cancel(reason)
            return
        if self._timeout_handle:
            self._timeout_handle.cancel()
            self._timeout_handle = None
        self._cancel_called = True
        self._cancel_reason = _STOP_REASON
        if self._host_task is not None:
            self._deliver_cancellation(self)


def current_primitives() -> Primitives:
    """Return the loop's ``time``, a one-shot event, anyio's asyncio scope, ``CancelledError`` and shared deadlines."""
    loop = asyncio.get_running_loop()
    cutoffs = Cutoffs(loop)
    return Primitives(
        clock=loop.time,
        event=_Waker,
        shielded_scope=functools.partial(_ComponentScope, shield=True),
        cancelled=asyncio.CancelledError,
        follow=cutoffs.follow,
        unfollow=cutoffs.unfollow,
    )


def install_exception_handler(report: ErrorReporter) -> Callable[[], None]:
    """Make *report* the running loop's exception handler; return a function restoring the previous one."""
    loop = asyncio.get_running_loop()
    previous = loop.get_exception_handler()

    def handle(_: asyncio.AbstractEventLoop, context: dict[str, object]) -> None:
        error = context.get("exception")
        fields = {key: repr(value) for key, value in context.items() if key not in {"exception", "message"}}
        report(
            "loop.exception",
            error if isinstance(error, BaseException) else None,
            message=str(context.get("message", "")),
            **fields,
        )

    loop.set_exception_handler(handle)
    return lambda: loop.set_exception_handler(previous)
