"""What users see of the cancellation-safe helpers, pinned for type checkers (never run)."""

from __future__ import annotations

import functools
from collections.abc import Callable, Coroutine
from typing import assert_type

import anyio

import lifecycle


async def fetch(url: str, retries: int) -> bytes:
    return url.encode() * retries


async def count() -> int:
    return 1


async def helpers() -> None:
    # -- call_with_timeout: the default's type joins the result's -----------------------
    assert_type(await lifecycle.call_with_timeout(1, fetch, "u", 2), bytes | None)
    assert_type(await lifecycle.call_with_timeout(1, fetch, "u", 2, default=b""), bytes)
    assert_type(await lifecycle.call_with_timeout(1, fetch, "u", 2, default=0), bytes | int)
    await lifecycle.call_with_timeout(1, fetch, "u")  # type: ignore[arg-type]

    # -- gather: a tuple typed per position ---------------------------------------------
    pair = await lifecycle.gather(count, functools.partial(fetch, "u", 1))
    assert_type(pair, tuple[int, bytes])
    many = await lifecycle.gather(count, count, count, count, count)
    assert_type(many, tuple[int, ...])

    # -- SingleFlight: typed by its value ---------------------------------------------
    flight = lifecycle.SingleFlight[bytes]()
    assert_type(await flight.run(fetch, "u", 1), bytes)
    assert_type(await flight.run_nowait(fetch, "u", 1), bytes)
    await flight.run(count)  # type: ignore[arg-type]

    # -- cleanup_on_failure / on_failure ------------------------------------------------
    async with lifecycle.cleanup_on_failure(fetch, "u", 1, timeout=5) as block:
        assert_type(block, lifecycle.CleanupOnFailure)

    async def abort(url: str, retries: int) -> None: ...

    guarded: Callable[[str, int], Coroutine[object, object, bytes]] = lifecycle.on_failure(abort)(fetch)
    assert_type(await guarded("u", 1), bytes)
    lifecycle.on_failure(count)(fetch)  # type: ignore[arg-type]

    # -- scoped_env ---------------------------------------------------------------------
    with lifecycle.scoped_env("FLAG") as scope:
        assert_type(scope, lifecycle.EnvironScope)
    lifecycle.scoped_env("FLAG", 1)  # type: ignore[arg-type]

    # -- report_error -------------------------------------------------------------------
    lifecycle.report_error("thing.failed", ValueError("x"), component="root/api")
    await anyio.lowlevel.checkpoint()
