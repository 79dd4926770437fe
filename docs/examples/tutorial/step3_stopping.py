"""Tutorial, step 3: stopping without losing work.

Run it with ``python docs/examples/tutorial/step3_stopping.py [asyncio|trio]``.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import AsyncIterator

import anyio
import structlog
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

import lifecycle
from lifecycle import Context, Priority, ShutdownPolicy
from supervisors import Supervisor

Orders = tuple[MemoryObjectSendStream[str], MemoryObjectReceiveStream[str]]

tree = Supervisor("shop", policy=ShutdownPolicy(graceful=2, forceful=1, terminate=1))


@tree.component(priority=Priority.CRITICAL)
async def db() -> AsyncIterator[list[str]]:
    """The orders that were shipped."""
    shipped: list[str] = []
    yield shipped
    print(f"db: closed with {len(shipped)} orders shipped")


@tree.component
async def orders() -> AsyncIterator[Orders]:
    """A queue of orders."""
    send, receive = anyio.create_memory_object_stream[str](10)
    with send, receive:
        yield send, receive


@tree.component
async def worker(ctx: Context, db: list[str], orders: Orders) -> None:
    """Ship orders one at a time; an order that has started is finished."""
    ctx.ready()
    _, receive = orders
    async for order in receive:  # the stop's cancellation lands here, between orders
        with ctx.shielded():  # ...never here: shielded until the graceful deadline
            print(f"worker: shipping {order}")
            await anyio.sleep(0.2)
            db.append(order)
            print(f"worker: shipped {order}")


@tree.component(main=True, depends_on=("worker",))
async def job(orders: Orders) -> None:
    """Queue three orders, and return while the worker is busy with the first."""
    send, _ = orders
    for order in ("order-1", "order-2", "order-3"):
        await send.send(order)
    await anyio.sleep(0.1)


async def main() -> None:
    """Run the tree until its job is done and print the report."""
    async with lifecycle.running(tree) as handle:
        report = await handle.wait()
    print(report)


if __name__ == "__main__":
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    anyio.run(main, backend=sys.argv[1] if len(sys.argv) > 1 else "asyncio")
