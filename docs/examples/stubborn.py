"""A service with a stubborn component: from the first Ctrl-C to the hard exit.

Run it with ``python docs/examples/stubborn.py [asyncio|trio] [block]`` and
stop it with SIGINT (Ctrl-C) or SIGTERM. ``exporter``'s final flush never
ends, which is the bug: it is shielded without a deadline, or, with
``block``, it is a blocking call that stops the event loop too. The first
signal stops the tree gracefully, the second escalates to FORCEFUL, the third
to TERMINATE, and when the terminate deadline passes (4 seconds after the
first signal) the process logs the culprit, prints the report and exits with
code 3. SIGUSR1 logs a dump of the tree at any time.
"""

from __future__ import annotations

import sys
import time
from collections.abc import AsyncIterator
from typing import Literal

import anyio

import lifecycle
from lifecycle import Context, Priority, ShutdownPolicy
from supervisors import Supervisor

BLOCK = "block" in sys.argv[2:]

tree = Supervisor("app", policy=ShutdownPolicy(graceful=2, forceful=1, terminate=1))


@tree.component(priority=Priority.CRITICAL)
async def db() -> AsyncIterator[dict[str, int]]:
    """A resource; it stops after ``exporter``, so it never gets to."""
    yield {"rows": 0}


@tree.component
async def exporter(ctx: Context, db: dict[str, int]) -> None:
    """Export rows until stopped, then flush: forever."""
    ctx.ready(f"exporting {db['rows']} rows")
    try:
        await anyio.sleep_forever()
    finally:
        if BLOCK:
            time.sleep(3600)  # noqa: ASYNC251 - the bug: a blocking flush stops the whole loop
        else:
            # The bug: a shield without a deadline. `ctx.shielded()` would cut
            # the flush off at the graceful deadline.
            with anyio.CancelScope(shield=True):
                await anyio.sleep(3600)  # a flush to a server that never answers


if __name__ == "__main__":
    backend: Literal["asyncio", "trio"] = "trio" if sys.argv[1:2] == ["trio"] else "asyncio"
    lifecycle.run(tree, backend=backend)
