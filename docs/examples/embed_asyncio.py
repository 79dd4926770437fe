"""Embed a tree in an asyncio program that owns the event loop and the signals.

Run it with ``python docs/examples/embed_asyncio.py [thread|signal]``. The host
starts the tree with ``lifecycle.running()``, routes SIGINT and SIGTERM to
``handle.request_shutdown()``, and waits for the tree to stop. Here the stop is
requested by a blocking job running in a worker thread (``thread``, the
default) or by a SIGTERM the program sends itself (``signal``).
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
import time
from collections.abc import AsyncIterator

import structlog

import lifecycle
from lifecycle import Context
from supervisors import Supervisor

tree = Supervisor("embedded")


@tree.component
async def store() -> AsyncIterator[dict[str, str]]:
    """A resource shared with the server."""
    data: dict[str, str] = {}
    yield data
    print(f"store: closed with {len(data)} keys")


@tree.component
async def server(ctx: Context, store: dict[str, str]) -> None:
    """A server that drains in-flight requests when its stop begins."""
    ctx.ready()
    try:
        while True:
            store[f"request-{len(store)}"] = "handled"
            await asyncio.sleep(0.01)
    finally:
        # Cancelled: finish what is in flight, bounded by the graceful deadline.
        with ctx.shielded():
            await asyncio.sleep(0.05)
            print("server: drained")


def blocking_job(handle: lifecycle.RunningTree) -> None:
    """Blocking code in a worker thread; it asks the tree to stop when done."""
    time.sleep(0.1)
    print("thread: job done, requesting shutdown")
    handle.request_shutdown()  # safe from any thread


async def main(trigger: str) -> None:
    """Run the tree inside this asyncio program until something stops it."""
    loop = asyncio.get_running_loop()
    async with lifecycle.running(tree) as handle:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, handle.request_shutdown)
        await handle.ready()
        print(f"host: tree is {handle.state.value}")
        if trigger == "signal":
            os.kill(os.getpid(), signal.SIGTERM)
        else:
            await asyncio.to_thread(blocking_job, handle)
        report = await handle.wait()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
    print(f"host: tree stopped ({report.reason.value}), ok={report.ok}")


if __name__ == "__main__":
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.INFO))
    asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else "thread"))
