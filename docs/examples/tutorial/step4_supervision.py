"""Tutorial, step 4: a component that fails is restarted.

Run it with ``python docs/examples/tutorial/step4_supervision.py [asyncio|trio]``.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import AsyncIterator

import anyio
import structlog

import lifecycle
from lifecycle import Context, Priority
from supervisors import Backoff, Intensity, Supervisor

tree = Supervisor(
    "shop",
    intensity=Intensity(max_restarts=3, within=5.0),
    backoff=Backoff(initial=0.05, maximum=1.0, jitter=False),
)
connections = 0
reconnected = anyio.Event()


@tree.component(priority=Priority.CRITICAL)
async def db() -> AsyncIterator[dict[str, int]]:
    """The stock."""
    yield {"apples": 3, "pears": 5}


@tree.component
async def feed(ctx: Context, db: dict[str, int]) -> None:  # noqa: ARG001 - needs the db to be up
    """Price updates from a supplier whose first connection drops."""
    global connections  # noqa: PLW0603 - the example counts its own restarts
    connections += 1
    print(f"feed: connected (connection {connections})")
    ctx.ready()
    if connections == 1:
        await anyio.sleep(0.05)
        msg = "supplier closed the connection"
        raise ConnectionResetError(msg)
    reconnected.set()
    await anyio.sleep_forever()


@tree.component(main=True)
async def job() -> None:
    """Wait until the feed has come back, then end the program."""
    await reconnected.wait()
    print("job: the feed is back")


async def main() -> None:
    """Run the tree until its job is done and print the report."""
    async with lifecycle.running(tree) as handle:
        report = await handle.wait()
    print(report)


if __name__ == "__main__":
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    anyio.run(main, backend=sys.argv[1] if len(sys.argv) > 1 else "asyncio")
