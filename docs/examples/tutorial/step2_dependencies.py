"""Tutorial, step 2: dependencies, injection and the program's job.

Run it with ``python docs/examples/tutorial/step2_dependencies.py [asyncio|trio]``.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import AsyncIterator

import anyio
import structlog

import lifecycle
from lifecycle import Context, Priority
from supervisors import Supervisor

tree = Supervisor("shop")


@tree.component(priority=Priority.CRITICAL)
async def db() -> AsyncIterator[dict[str, int]]:
    """The stock, open before everything that uses it and closed after."""
    stock = {"apples": 3, "pears": 5}
    print("db: open")
    yield stock
    print("db: closed")


@tree.component
async def api(ctx: Context, db: dict[str, int]) -> None:
    """Serve the stock: the parameter `db` receives what `db` yielded."""
    print(f"api: serving {len(db)} products")
    ctx.ready("http://127.0.0.1:8080")
    try:
        await anyio.sleep_forever()
    finally:
        print("api: stopped")


@tree.component(main=True)
async def job(api: str, db: dict[str, int]) -> None:
    """The program's job: when it returns, the tree stops in order."""
    print(f"job: selling an apple through {api}")
    db["apples"] -= 1


async def main() -> None:
    """Print the waves, run the tree until its job is done."""
    graph = tree.graph()
    print("start waves:", graph.named_waves(stop=False))
    print("stop waves:", graph.named_waves())
    async with lifecycle.running(tree) as handle:
        report = await handle.wait()
    print(f"stopped: {report.reason.value} ({report.detail})")


if __name__ == "__main__":
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    anyio.run(main, backend=sys.argv[1] if len(sys.argv) > 1 else "asyncio")
