"""Testing a tree with lifecycle.testing: a failing cache, recorded and checked.

Run it with ``python docs/examples/testing_faults.py [asyncio|trio]``. The same
functions work as test bodies under AnyIO's pytest plugin or pytest-trio.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from typing import Literal

import anyio

from lifecycle import ComponentError, Context, State
from lifecycle.testing import Fault, Recorder, assert_stop_order, inject_fault, open_tree
from supervisors import Supervisor


def build() -> Supervisor:
    """The tree under test: db <- cache <- api."""
    tree = Supervisor("shop")

    @tree.component
    async def db() -> AsyncIterator[str]:
        yield "db"

    @tree.component
    async def cache(db: str) -> AsyncIterator[str]:
        yield f"cache on {db}"

    @tree.component
    async def api(ctx: Context, cache: str) -> None:
        ctx.ready(f"api using {cache}")
        await anyio.sleep_forever()

    return tree


async def test_stops_in_order() -> None:
    """Dependents stop before what they depend on, and every guarantee holds."""
    with Recorder() as recorder:
        async with open_tree(build()) as tree:
            pass
    recorder.assert_start_order("db", "cache", "api")
    recorder.assert_stop_order("api", "cache", "db")
    recorder.assert_invariants()
    assert tree.report is not None  # noqa: S101 - a test body
    assert_stop_order(tree.report, "api", "cache", "db")
    print("stop order:", " -> ".join(recorder.order(State.STOPPED)))


async def test_cache_that_fails_to_start_rolls_back() -> None:
    """A cache that fails to start: db, already up, is stopped and the error names the cache."""
    with Recorder() as recorder, inject_fault("cache", Fault.START):
        try:
            async with open_tree(build()):
                raise AssertionError("the tree must not start")
        except ExceptionGroup as group:
            (error,) = group.exceptions
            assert isinstance(error, ComponentError)  # noqa: S101 - a test body
            print("start failed:", error)
    recorder.assert_invariants()
    assert "shop/api" not in recorder.paths()  # noqa: S101 - a test body: it never started


async def main() -> None:
    """Run both tests."""
    await test_stops_in_order()
    await test_cache_that_fails_to_start_rolls_back()
    print("all tests passed")


if __name__ == "__main__":
    backend: Literal["asyncio", "trio"] = "trio" if sys.argv[1:] == ["trio"] else "asyncio"
    anyio.run(main, backend=backend)
