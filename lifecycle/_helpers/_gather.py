"""Run several calls concurrently: every result in order, or every error in a group."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar, overload

import anyio

__all__ = ["gather"]

T1 = TypeVar("T1")
T2 = TypeVar("T2")
T3 = TypeVar("T3")
T4 = TypeVar("T4")
T = TypeVar("T")


@overload
async def gather(fn1: Callable[[], Awaitable[T1]], /) -> tuple[T1]: ...


@overload
async def gather(fn1: Callable[[], Awaitable[T1]], fn2: Callable[[], Awaitable[T2]], /) -> tuple[T1, T2]: ...


@overload
async def gather(
    fn1: Callable[[], Awaitable[T1]], fn2: Callable[[], Awaitable[T2]], fn3: Callable[[], Awaitable[T3]], /
) -> tuple[T1, T2, T3]: ...


@overload
async def gather(
    fn1: Callable[[], Awaitable[T1]],
    fn2: Callable[[], Awaitable[T2]],
    fn3: Callable[[], Awaitable[T3]],
    fn4: Callable[[], Awaitable[T4]],
    /,
) -> tuple[T1, T2, T3, T4]: ...


@overload
async def gather(*fns: Callable[[], Awaitable[T]]) -> tuple[T, ...]: ...


async def gather(*fns: Callable[[], Awaitable[object]]) -> tuple[object, ...]:
    """
    Call every function concurrently and return their results, in argument order.

    Each function is called without arguments (use :func:`functools.partial`
    or a lambda for arguments), each in its own task of a new anyio task
    group, so no task outlives the call.

    Errors behave exactly as in a task group, because this is one: the first
    error cancels the calls still running, and once all have ended every error
    that was raised is raised together in an :exc:`ExceptionGroup` (or a
    :exc:`BaseExceptionGroup` when one is not an :exc:`Exception`), so none is
    lost. Catch them with ``except*``. Unlike ``asyncio.gather(...,
    return_exceptions=True)``, errors are never returned as values, siblings
    never keep running unobserved, and cancellation is never a result.

    A checkpoint. If the caller is cancelled halfway, every call still
    running is cancelled, the cancellation propagates once they have ended,
    and their results are dropped. Nothing is shielded.

    Args:
        *fns: Async functions taking no arguments.

    Returns:
        Their results, in the order of *fns*.

    Raises:
        ExceptionGroup: One or more calls raised; it holds every error raised
            before the rest were cancelled.
    """
    results: list[object] = [None] * len(fns)

    async def call(index: int, fn: Callable[[], Awaitable[object]]) -> None:
        results[index] = await fn()

    async with anyio.create_task_group() as tasks:
        for index, fn in enumerate(fns):
            tasks.start_soon(call, index, fn, name=f"gather[{index}]:{getattr(fn, '__qualname__', fn)!s}")
    return tuple(results)
