"""A small tree: a resource, a long-running component, an object and a job.

Run it with ``python docs/examples/quickstart.py [asyncio|trio]``. The tree
starts in waves, the ``main`` job runs, and when it returns the whole tree
stops in order and the report is printed.
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
    """A resource: started before ``yield``, torn down after it."""
    stock = {"apples": 3, "pears": 5}  # open a connection pool here
    print("db: open")
    yield stock  # what components with a parameter named `db` receive
    print("db: closed")  # runs in a shielded scope when the stop reaches `db`


@tree.component
async def api(ctx: Context, db: dict[str, int]) -> None:
    """Long-running work: ready once it serves, cancelled when it stops."""
    print(f"api: serving {len(db)} products")
    ctx.ready("http://127.0.0.1:8080")  # what a parameter named `api` receives
    await anyio.sleep_forever()


class Heartbeat:
    """An object with ``async def run(self, ctx)`` is a component too."""

    def __init__(self, interval: float) -> None:
        self.interval = interval

    async def run(self, ctx: Context) -> None:
        """Log a heartbeat until the component is stopped."""
        ctx.ready()
        while True:
            ctx.log.info("heartbeat")
            await anyio.sleep(self.interval)


tree.add(Heartbeat(0.05), name="heartbeat")


@tree.component(main=True)
async def job(api: str, db: dict[str, int]) -> None:
    """The program's job: when it returns, the whole tree stops in order."""
    print(f"job: selling an apple through {api}")
    db["apples"] -= 1
    await anyio.sleep(0.1)


async def main() -> None:
    """Run the tree until its job is done and print what happened."""
    print("start waves:", tree.graph().named_waves(stop=False))
    async with lifecycle.running(tree) as handle:
        report = await handle.wait()
    print(report)


if __name__ == "__main__":
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.INFO))
    anyio.run(main, backend=sys.argv[1] if len(sys.argv) > 1 else "asyncio")
