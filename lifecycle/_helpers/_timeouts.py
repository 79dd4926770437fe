"""A timeout that returns a default, without ever eating an outer cancellation."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar, TypeVarTuple, overload

import anyio
import anyio.lowlevel

from lifecycle._core._validation import Option

__all__ = ["call_with_timeout"]

T = TypeVar("T")
D = TypeVar("D")
Ts = TypeVarTuple("Ts")


# Checked at run time: a string or NaN would otherwise fail deep inside anyio.
_TIMEOUT = Option.seconds()


@overload
async def call_with_timeout(timeout: float, fn: Callable[[*Ts], Awaitable[T]], *args: *Ts) -> T | None: ...


@overload
async def call_with_timeout(timeout: float, fn: Callable[[*Ts], Awaitable[T]], *args: *Ts, default: D) -> T | D: ...


async def call_with_timeout(
    timeout: float,
    fn: Callable[[*Ts], Awaitable[T]],
    *args: *Ts,
    default: object = None,
) -> object:
    """
    Call ``await fn(*args)``; if it takes longer than *timeout* seconds, cancel it and return *default*.

    Only this call's own deadline turns into *default*. A cancellation from
    outside (the component is stopping, an enclosing scope expired, the task
    group failed) always propagates, even when it arrives at the same moment
    as the deadline. Errors raised by *fn* propagate unchanged, a
    :exc:`TimeoutError` of its own included.

    That is the difference from the usual hand-made helper::

        async def wait_for_safe(aw, timeout, default=None):
            try:
                return await asyncio.wait_for(aw, timeout)
            except (asyncio.TimeoutError, asyncio.CancelledError):
                return default  # an outer cancellation becomes `default`

    which turns the component's own shutdown into a normal return value: the
    caller carries on as if the call had merely been slow, and the stop waits
    for it (or gives up on it at TERMINATE). Catching only ``TimeoutError``
    does not fix it either: ``wait_for`` also raises ``TimeoutError`` for an
    error of the awaited call itself.

    Pass the function and its arguments, not a coroutine: nothing is created
    that could be left un-awaited. It is always a cancellation point (an outer
    cancellation already pending is raised before *fn* starts) and a schedule
    point when *fn* is one. If the caller is cancelled halfway, *fn* is cancelled and
    the cancellation propagates. Nothing is shielded: to protect cleanup, wrap
    it in :func:`lifecycle.shielded`, whose *timeout* bounds it.

    Args:
        timeout: Seconds before giving up; ``math.inf`` never gives up.

        fn: The async function to call.

        *args: Positional arguments for *fn*.

        default: Returned when the deadline passed.

    Returns:
        What *fn* returned, or *default* when the deadline passed first.

    Raises:
        ConfigurationError: *timeout* is negative or NaN.
    """
    _TIMEOUT.check("timeout", timeout)
    # A cancellation point even if *fn* never suspends: an outer cancellation
    # that is already pending is raised before *fn* starts.
    await anyio.lowlevel.checkpoint_if_cancelled()
    with anyio.move_on_after(timeout):
        return await fn(*args)
    # Only the deadline gets here. When an outer cancellation lands at the same
    # moment, anyio does not let this scope catch it; the re-check keeps that
    # guarantee here, whatever the backend's rules for simultaneous deadlines.
    await anyio.lowlevel.checkpoint_if_cancelled()
    return default
