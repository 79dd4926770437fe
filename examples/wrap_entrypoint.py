"""
Wrap a service entrypoint: a database pool and an HTTP server, stopped in order.

``python examples/wrap_entrypoint.py`` serves on 127.0.0.1 until Ctrl-C (once:
graceful, twice: forceful, three times: terminate). ``lifecycle run
examples.wrap_entrypoint:tree`` runs the same tree through the CLI.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import anyio
import anyio.abc
import anyio.lowlevel

import lifecycle
from lifecycle import Priority
from supervisors import Supervisor

tree = Supervisor("app")


class Pool:
    """A stand-in for a database connection pool."""

    async def query(self) -> str:
        """Answer a query."""
        await anyio.lowlevel.checkpoint()
        return "42"

    async def close(self) -> None:
        """Close the connections."""
        await anyio.sleep(0.01)


@tree.component(priority=Priority.CRITICAL)
async def db(ctx: lifecycle.Context) -> AsyncIterator[Pool]:
    """Open the pool; close it after everything that uses it has stopped."""
    pool = Pool()
    yield pool  # ready: `pool` is injected into dependents
    await pool.close()  # shielded until the graceful deadline
    ctx.log.info("db.closed")


@tree.component
async def api(ctx: lifecycle.Context, db: Pool) -> None:
    """Serve HTTP; cancelled when the stop reaches it, before `db` stops."""

    async def handle(client: anyio.abc.SocketStream) -> None:
        async with client:
            await client.receive()
            body = await db.query()
            await client.send(f"HTTP/1.1 200 OK\r\ncontent-length: {len(body)}\r\n\r\n{body}".encode())

    async with await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0) as listener:
        port = listener.extra(anyio.abc.SocketAttribute.local_port)
        ctx.ready(port)
        ctx.log.info("api.listening", url=f"http://127.0.0.1:{port}/")
        await listener.serve(handle)


if __name__ == "__main__":
    lifecycle.run(tree)
