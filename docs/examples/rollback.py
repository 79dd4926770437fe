"""A start that fails is rolled back, and its error is raised with the component's name.

Run it with ``python docs/examples/rollback.py [asyncio|trio]``. ``db`` and
``cache`` start, ``api`` fails to start, so ``cache`` and then ``db`` are
stopped again (in reverse order, with the same phases) and ``running()`` raises
the start failure when its block exits.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import AsyncIterator

import anyio
import anyio.lowlevel
import structlog

import lifecycle
from lifecycle import Context, Priority
from supervisors import Supervisor

tree = Supervisor("shop")


@tree.component(priority=Priority.CRITICAL)
async def db() -> AsyncIterator[str]:
    """A resource that starts fine."""
    print("db: open")
    yield "postgresql://localhost/shop"
    print("db: closed")


@tree.component(priority=Priority.HIGH)
async def cache(db: str) -> AsyncIterator[dict[str, str]]:
    """Another resource that starts fine."""
    print(f"cache: warmed from {db}")
    yield {}
    print("cache: dropped")


async def listen(host: str, port: int) -> None:
    """Stand in for binding a server socket to a port that is taken."""
    await anyio.lowlevel.checkpoint()
    msg = f"[Errno 98] Address already in use: {(host, port)!r}"
    raise OSError(msg)


@tree.component
async def api(ctx: Context, db: str, cache: dict[str, str]) -> None:
    """A server whose port is taken: it fails before it is ready."""
    print(f"api: starting with {db} and {len(cache)} cached pages")
    await listen("127.0.0.1", 8080)
    ctx.ready()


async def main() -> None:
    """Try to run the tree and show what ``running()`` raises."""
    try:
        async with lifecycle.running(tree) as handle:
            await handle.ready()
            print("never printed: the body is cancelled when the start fails")
    except* lifecycle.ComponentError as group:
        for error in group.exceptions:
            if isinstance(error, lifecycle.ComponentError):
                print(f"{error.path} failed at {error.stage}: {error.__cause__!r}")
    report = handle.report  # set once the block has exited
    for component in report.components if report else ():
        print(f"{component.path:<10} {component.outcome.value}")


if __name__ == "__main__":
    # Only warnings and errors: the failure is logged with its traceback.
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    anyio.run(main, backend=sys.argv[1] if len(sys.argv) > 1 else "asyncio")
