"""Shielded scopes against the phase deadlines of one stop.

Run it with ``python docs/examples/phases.py [asyncio|trio]``. The budgets are
tiny (0.5 s per phase) so the whole stop takes under a second:

- ``worker`` finishes the batch it started, then stops between batches;
- ``cache`` has a teardown too slow for the graceful budget and is cut off
  when GRACEFUL ends;
- ``wal`` stops last (it is ``CRITICAL`` and ``worker`` depends on it), so its
  stop begins after the graceful deadline has passed; its flush survives
  because it is shielded until the end of FORCEFUL.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import AsyncIterator

import anyio
import structlog

import lifecycle
from lifecycle import Context, Phase, Priority, ShutdownPolicy
from supervisors import Supervisor

tree = Supervisor("pipeline", policy=ShutdownPolicy(graceful=0.5, forceful=0.5, terminate=0.5))


@tree.component(priority=Priority.CRITICAL)
async def wal() -> AsyncIterator[list[int]]:
    """A write-ahead log whose flush must outlive the graceful phase."""
    entries: list[int] = []
    yield entries
    # The teardown's own scope ends with GRACEFUL; this one with FORCEFUL.
    with lifecycle.shielded(until=Phase.FORCEFUL):
        await anyio.sleep(0.2)  # write `entries` to disk
        print(f"wal: flushed batches {entries}")


@tree.component
async def worker(ctx: Context, wal: list[int]) -> None:
    """Process batches; a batch that has started is finished."""
    ctx.ready()
    batch = 0
    while True:
        await anyio.sleep(0.05)  # wait for the next batch: the cancellation lands here
        with ctx.shielded():
            batch += 1
            await anyio.sleep(0.1)  # process it
            wal.append(batch)


@tree.component
async def cache() -> AsyncIterator[None]:
    """A cache whose snapshot on shutdown takes too long."""
    yield
    print("cache: writing a snapshot")
    await anyio.sleep(10)
    print("cache: snapshot written")  # never printed: cut off at the graceful deadline


async def main() -> None:
    """Start the tree, let it work briefly, stop it and print each outcome."""
    print("stop waves:", tree.graph().named_waves())
    async with lifecycle.running(tree) as handle:
        await handle.ready()
        await anyio.sleep(0.2)
        report = await handle.shutdown()
    for component in report.components:
        phase = "-" if component.phase is None else component.phase.name
        print(f"{component.path:<18} {component.outcome.value:<9} {phase}")


if __name__ == "__main__":
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.INFO))
    anyio.run(main, backend=sys.argv[1] if len(sys.argv) > 1 else "asyncio")
