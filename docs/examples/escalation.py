"""Escalating a stop: a second Ctrl-C cuts GRACEFUL scopes, a third cuts every scope.

Run it with ``python docs/examples/escalation.py [asyncio|trio]``. The budgets
are 6, 4 and 3 seconds, but the stop is escalated twice, as a second and a
third Ctrl-C would do, so it takes one second:

- ``worker`` holds a default (``until=GRACEFUL``) scope in its ``finally``: the
  escalation to FORCEFUL at +0.5 s cuts it at once;
- ``wal`` flushes in an ``until=FORCEFUL`` scope: the escalation to TERMINATE
  at +1 s cuts it at once, though its forceful deadline was still 3.5 s away;
- ``db`` stops last, when its stop begins TERMINATE is already in effect: its
  teardown runs up to its first checkpoint (the synchronous close runs, the
  awaited one is cut off).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import AsyncIterator

import anyio
import structlog

import lifecycle
from lifecycle import Context, Phase, ShutdownPolicy
from supervisors import Supervisor

tree = Supervisor("app", policy=ShutdownPolicy(graceful=6, forceful=4, terminate=3))
began = 0.0


def now() -> str:
    """Seconds since the stop was requested."""
    return f"+{anyio.current_time() - began:.1f}s"


@tree.component
async def db() -> AsyncIterator[str]:
    """A connection pool: everything depends on it, so it stops last."""
    yield "pool"
    print(f"db: closing sockets at {now()}")  # runs: no checkpoint before it
    try:
        await anyio.sleep(1)  # say goodbye to the server: cut off, TERMINATE is in effect
        print("db: said goodbye")  # never printed
    finally:
        print(f"db: teardown ended at {now()}")


@tree.component(depends_on=("db",))
async def worker(ctx: Context) -> None:
    """Finishes its batch in a default scope, bounded by GRACEFUL."""
    ctx.ready()
    try:
        await anyio.sleep_forever()
    finally:
        with ctx.shielded():
            await anyio.sleep(20)  # finish the batch
        print(f"worker: batch cut off at {now()}")


@tree.component(depends_on=("db",))
async def wal(ctx: Context) -> None:
    """Flushes a write-ahead log in a scope bounded by FORCEFUL."""
    ctx.ready()
    try:
        await anyio.sleep_forever()
    finally:
        with ctx.shielded(until=Phase.FORCEFUL):
            await anyio.sleep(20)  # flush
        print(f"wal: flush cut off at {now()}")


async def stop(handle: lifecycle.RunningTree) -> lifecycle.ShutdownReport:
    """Request the stop, escalate to FORCEFUL after 0.5 s and to TERMINATE after 1 s."""
    global began  # noqa: PLW0603 - the example's clock origin
    await handle.ready()
    began = anyio.current_time()
    handle.request_shutdown()  # the first Ctrl-C
    await anyio.sleep(0.5)
    handle.escalate(Phase.FORCEFUL)  # the second
    await anyio.sleep(0.5)
    handle.escalate(Phase.TERMINATE)  # the third
    return await handle.wait()


async def main() -> None:
    """Run the tree, stop it with two escalations and print what each phase change and component did."""
    async with lifecycle.running(tree) as handle:
        report = await stop(handle)
    for change in report.phase_changes:
        print(f"{change.phase.name} began at +{change.at - began:.1f}s ({change.reason})")
    for component in report.components:
        print(f"{component.path:<11} {component.outcome.value:<10} cut off: {component.cut_off}")
    print(f"clean: {report.clean}")


if __name__ == "__main__":
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.ERROR))
    anyio.run(main, backend=sys.argv[1] if len(sys.argv) > 1 else "asyncio")
