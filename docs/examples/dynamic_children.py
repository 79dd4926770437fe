"""Children started and stopped at run time: one per tenant.

Run it with ``python docs/examples/dynamic_children.py [asyncio|trio]``. The
tree has a database; its ``tenants`` job starts a ``session`` child per
tenant with :meth:`Supervisor.start_child`, each depending on the database,
then stops one with :meth:`Supervisor.stop_child` and returns, which stops
the tree in order: the remaining sessions first, the database last.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import AsyncIterator

import anyio
import structlog

import lifecycle
from lifecycle import Context
from supervisors import Restart, Supervisor

tree = Supervisor("hub")


@tree.component
async def db() -> AsyncIterator[str]:
    """The shared resource every session depends on."""
    print("db: open")
    yield "postgresql://localhost/hub"
    print("db: closed")


def session_for(tenant: str) -> object:
    """A session component for one tenant; it receives the database by parameter name."""

    async def session(ctx: Context, db: str) -> None:
        print(f"{ctx.name}: connected to {db}")
        ctx.ready(f"{tenant}@{db}")
        try:
            await anyio.sleep_forever()
        finally:
            print(f"{ctx.name}: closed")

    return session


@tree.component(main=True)
async def tenants(ctx: Context) -> None:
    """Start a session per tenant, stop one, and finish."""
    ctx.ready()
    for tenant in ("acme", "globex", "initech"):
        value = await tree.start_child(session_for(tenant), name=f"session-{tenant}", restart=Restart.TRANSIENT)
        print(f"started session-{tenant}: {value}")
    report = await tree.stop_child("session-globex")
    print(f"stopped {report.name}: {report.outcome.value}")


async def main() -> None:
    """Run the tree until its job returns, and print who stopped in which order."""
    async with lifecycle.running(tree) as handle:
        report = await handle.wait()
    print(", ".join(component.name for component in report.components))


if __name__ == "__main__":
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    anyio.run(main, backend=sys.argv[1] if len(sys.argv) > 1 else "asyncio")
