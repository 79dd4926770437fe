"""
A small service tree: a store, a cache, a worker pool and an HTTP API.

Run it with ``python examples/service.py`` (Ctrl-C stops it in order) or
``python examples/service.py --for 2`` to stop after two seconds. It prints the
API's URL, serves ``GET /`` with the store's row count, and prints the shutdown
report at the end.
"""

from __future__ import annotations

import argparse
import logging
import sqlite3
import sys
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import anyio.abc
import structlog
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

import lifecycle
from lifecycle import Priority
from supervisors import Supervisor

tree = Supervisor("service")


@tree.component(priority=Priority.CRITICAL)
async def store() -> AsyncIterator[sqlite3.Connection]:
    """A sqlite database in a temporary directory, closed (and deleted) in teardown."""
    with tempfile.TemporaryDirectory() as folder:
        db = sqlite3.connect(Path(folder) / "store.sqlite3", check_same_thread=False)
        db.execute("create table jobs (n integer)")
        yield db
        db.close()


@tree.component(priority=Priority.HIGH)
async def cache(store: sqlite3.Connection) -> AsyncIterator[dict[str, int]]:
    """A read cache in front of the store."""
    (count,) = store.execute("select count(*) from jobs").fetchone()
    yield {"jobs": count}


@tree.component
async def workers(
    ctx: lifecycle.Context,
    store: sqlite3.Connection,
    cache: dict[str, int],
) -> AsyncIterator[MemoryObjectSendStream[int]]:
    """Three workers consuming a queue; each finishes its current job in a shielded scope."""
    send, receive = anyio.create_memory_object_stream[int](100)

    async def worker(name: str, jobs: MemoryObjectReceiveStream[int]) -> None:
        async for n in jobs:
            with ctx.shielded():  # a job that started is finished, within the graceful budget
                await anyio.sleep(0.01)
                store.execute("insert into jobs values (?)", (n,))
                cache["jobs"] += 1
                ctx.log.debug("job.done", worker=name, n=n)

    for i in range(3):
        ctx.spawn(worker, f"w{i}", receive.clone(), name=f"worker-{i}")
    receive.close()
    yield send
    send.close()


@tree.component(depends_on=("store",))
async def api(ctx: lifecycle.Context, cache: dict[str, int], workers: MemoryObjectSendStream[int]) -> None:
    """An HTTP API on 127.0.0.1: each request queues a job and answers with the job count."""

    async def handle(client: anyio.abc.SocketStream) -> None:
        async with client:
            await client.receive(65536)
            await workers.send(cache["jobs"])
            body = f'{{"jobs": {cache["jobs"]}}}\n'.encode()
            head = f"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {len(body)}\r\n"
            await client.send(head.encode() + b"connection: close\r\n\r\n" + body)

    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    async with listener:
        port = listener.extra(anyio.abc.SocketAttribute.local_port)
        ctx.log.info("api.listening", url=f"http://127.0.0.1:{port}/")
        ctx.ready(f"http://127.0.0.1:{port}/")
        await listener.serve(handle)


async def main(seconds: float | None) -> lifecycle.ShutdownReport:
    """Run the tree until Ctrl-C (or *seconds*), then stop it in order."""
    async with lifecycle.running(tree, signals=True) as handle:
        await handle.ready()
        if seconds is None:
            return await handle.wait()
        with anyio.move_on_after(seconds):
            await handle.wait()
        return await handle.shutdown()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--for", dest="seconds", type=float, help="stop after this many seconds")
    parser.add_argument("--backend", choices=["asyncio", "trio"], default="asyncio")
    args = parser.parse_args()
    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
    )
    report = anyio.run(main, args.seconds, backend=args.backend)
    print(report)
    sys.exit(0 if report.ok else 1)
