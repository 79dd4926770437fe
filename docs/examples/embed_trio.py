"""Embed a tree in a Trio program, next to the program's own tasks.

Run it with ``python docs/examples/embed_trio.py``. The host runs the tree
twice while its own task keeps running: first it stops the tree with
``await handle.shutdown()``, then it leaves the ``async with`` block through a
cancellation (a ``trio.move_on_after`` timeout), which stops the tree in order
as well.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import structlog
import trio

import lifecycle
from lifecycle import Context, Priority
from supervisors import Supervisor

tree = Supervisor("embedded")


@tree.component(priority=Priority.CRITICAL)
async def events() -> AsyncIterator[list[str]]:
    """A resource: an in-memory event log (a connection pool in real life)."""
    log: list[str] = []
    yield log
    print(f"events: closed after {len(log)} events")


@tree.component
async def ticker(ctx: Context, events: list[str]) -> None:
    """Record an event every 10 ms until the component is stopped."""
    ctx.ready()
    while True:
        events.append("tick")
        await trio.sleep(0.01)


async def stop_with_shutdown() -> None:
    """Start the tree, use it, then stop it explicitly."""
    async with lifecycle.running(tree) as handle:
        await handle.ready()
        print(f"host: tree is {handle.state.value}")
        await trio.sleep(0.05)
        report = await handle.shutdown()
        print(f"host: shutdown() returned: {report.reason.value}, ok={report.ok}")


async def stop_by_cancelling() -> None:
    """Leave the block through a cancellation: the tree still stops in order."""
    with trio.move_on_after(0.05):
        async with lifecycle.running(tree) as handle:
            await handle.ready()
            print(f"host: tree is {handle.state.value}")
            await trio.sleep_forever()
    report = handle.report  # set once the block has exited
    print(f"host: block left by cancellation: {report.detail if report else None}")


async def host_task() -> None:
    """The host's own work, unaffected by the tree's start and stop."""
    await trio.sleep_forever()


async def main() -> None:
    """A Trio program that runs a tree among its own tasks."""
    async with trio.open_nursery() as nursery:
        nursery.start_soon(host_task)
        await stop_with_shutdown()
        await stop_by_cancelling()
        nursery.cancel_scope.cancel()


if __name__ == "__main__":
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    trio.run(main)
