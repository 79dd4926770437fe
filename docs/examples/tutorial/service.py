"""Tutorial, step 5: the shop as a service, run by ``lifecycle run``.

From this directory: ``lifecycle run service:tree`` (Ctrl-C to stop it),
``lifecycle check service:tree`` and ``lifecycle graph service:tree``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import anyio
import anyio.abc
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from lifecycle import Context, Priority
from supervisors import Backoff, Supervisor

Orders = tuple[MemoryObjectSendStream[str], MemoryObjectReceiveStream[str]]

tree = Supervisor("shop", backoff=Backoff(initial=0.1, maximum=5.0))


@tree.component(priority=Priority.CRITICAL)
async def db(ctx: Context) -> AsyncIterator[dict[str, int]]:
    """The stock: opened first, closed last."""
    stock = {"apples": 3, "pears": 5}
    yield stock
    ctx.log.info("db.closed", products=len(stock))


@tree.component(priority=Priority.HIGH)
async def cache(db: dict[str, int]) -> AsyncIterator[dict[str, int]]:
    """A copy of the stock, refreshed by the feed."""
    yield dict(db)


@tree.component
async def orders() -> AsyncIterator[Orders]:
    """A queue of orders."""
    send, receive = anyio.create_memory_object_stream[str](100)
    with send, receive:
        yield send, receive


@tree.component
async def worker(ctx: Context, db: dict[str, int], orders: Orders) -> None:
    """Ship orders one at a time; an order that has started is finished."""
    ctx.ready()
    async for order in orders[1]:
        with ctx.shielded():
            await anyio.sleep(0.1)
            db["apples"] -= 1
            ctx.log.info("order.shipped", order=order)


@tree.component(priority=Priority.LOW)
async def feed(ctx: Context, cache: dict[str, int]) -> None:
    """Refresh the cache every second; restarted with backoff if it fails."""
    ctx.ready()
    while True:
        cache["pears"] += 1
        await anyio.sleep(1)


@tree.component
async def api(ctx: Context, cache: dict[str, int], orders: Orders) -> None:
    """HTTP on 127.0.0.1: every request queues an order and shows the cached stock."""

    async def handle(client: anyio.abc.SocketStream) -> None:
        async with client:
            await client.receive()
            await orders[0].send("http")
            body = f"{cache}\n"
            await client.send(f"HTTP/1.1 200 OK\r\ncontent-length: {len(body)}\r\n\r\n{body}".encode())

    async with await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0) as listener:
        url = f"http://127.0.0.1:{listener.extra(anyio.abc.SocketAttribute.local_port)}/"
        ctx.ready(url)
        ctx.log.info("api.listening", url=url)
        await listener.serve(handle)
