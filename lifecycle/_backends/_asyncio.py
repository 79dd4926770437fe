"""asyncio: thread-safe and signal-safe scheduling."""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Callable

import anyio

from . import ErrorReporter, Primitives
from ._cutoffs import Cutoffs


def current_scheduler() -> Callable[[Callable[[], None]], None]:
    """Return a thread-safe ``call_soon`` for the running loop that ignores a closed loop."""
    loop = asyncio.get_running_loop()

    def schedule(callback: Callable[[], None]) -> None:
        # A closed loop raises RuntimeError: the tree has stopped already.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(callback)

    return schedule


def current_primitives() -> Primitives:
    """Return the loop's ``time``, ``asyncio.Event``, anyio's asyncio scope, ``CancelledError`` and shared deadlines."""
    # anyio.CancelScope() returns its backend's scope; that class skips the detection.
    scope_type = type(anyio.CancelScope())
    loop = asyncio.get_running_loop()
    cutoffs = Cutoffs(loop)
    return Primitives(
        clock=loop.time,
        event=asyncio.Event,
        shielded_scope=functools.partial(scope_type, shield=True),
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
