"""Tutorial, step 1: one component, started and stopped.

Run it with ``python docs/examples/tutorial/step1_component.py [asyncio|trio]``.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import AsyncIterator

import anyio
import structlog

import lifecycle
from supervisors import Supervisor

tree = Supervisor("shop")


@tree.component
async def db() -> AsyncIterator[dict[str, int]]:
    """A resource: the code before ``yield`` starts it, the code after it tears it down."""
    stock = {"apples": 3, "pears": 5}  # open a connection pool here
    print("db: open")
    yield stock
    print("db: closed")


async def main() -> None:
    """Start the tree, look at it, stop it."""
    async with lifecycle.running(tree) as handle:
        await handle.ready()
        print("tree:", handle.state.name)
        report = await handle.shutdown()
    print("db:", report["db"].outcome.value)


if __name__ == "__main__":
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    anyio.run(main, backend=sys.argv[1] if len(sys.argv) > 1 else "asyncio")
