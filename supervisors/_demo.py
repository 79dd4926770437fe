"""
The program behind ``lifecycle demo``: a small, real service tree.

A store (sqlite in a temporary directory), a cache in front of it, a worker pool
that consumes a job queue and finishes its current job in a shielded scope, a
ticker that queues a job every half second, an HTTP API on 127.0.0.1, and a
supervised child process (a small Python script) that reports ready by
sd_notify and logs a heartbeat. It is found by ``lifecycle demo`` through the
``anyio_lifecycle.programs`` entry point.
"""

from __future__ import annotations

import sqlite3
import sys
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import anyio.abc
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

import lifecycle
from lifecycle import Priority, ProcessComponent, ReadyOnNotify

from ._supervisor import Supervisor

__all__ = ["build"]

Jobs = MemoryObjectSendStream[str]


async def store(ctx: lifecycle.Context) -> AsyncIterator[sqlite3.Connection]:
    """A sqlite database in a temporary directory, closed and deleted in teardown."""
    with tempfile.TemporaryDirectory(prefix="lifecycle-demo-") as folder:
        db = sqlite3.connect(Path(folder) / "store.sqlite3", check_same_thread=False)
        db.execute("create table jobs (name text, worker text)")
        yield db
        (count,) = db.execute("select count(*) from jobs").fetchone()
        db.close()
        ctx.log.info("store.closed", jobs_stored=count)


async def cache(store: sqlite3.Connection) -> AsyncIterator[dict[str, int]]:
    """A read cache in front of the store: the number of finished jobs."""
    (count,) = store.execute("select count(*) from jobs").fetchone()
    yield {"jobs": count}


async def workers(ctx: lifecycle.Context, store: sqlite3.Connection, cache: dict[str, int]) -> AsyncIterator[Jobs]:
    """Three workers on a job queue; a job that started is finished within the graceful budget."""
    send, receive = anyio.create_memory_object_stream[str](100)

    async def worker(name: str, jobs: MemoryObjectReceiveStream[str]) -> None:
        async with jobs:
            async for job in jobs:
                with ctx.shielded():
                    await anyio.sleep(0.05)
                    store.execute("insert into jobs values (?, ?)", (job, name))
                    cache["jobs"] += 1
                    ctx.log.info("job.done", job=job, worker=name)

    for i in range(3):
        ctx.spawn(worker, f"worker-{i}", receive.clone(), name=f"worker-{i}")
    receive.close()
    yield send
    send.close()


async def ticker(ctx: lifecycle.Context, workers: Jobs) -> None:
    """Queue a job every half second."""
    ctx.ready()
    n = 0
    while True:
        n += 1
        await workers.send(f"tick-{n}")
        await anyio.sleep(0.5)


async def api(ctx: lifecycle.Context, cache: dict[str, int], workers: Jobs) -> None:
    """An HTTP API on 127.0.0.1: ``GET /`` shows the job count, ``POST /jobs`` queues a job."""

    async def handle(client: anyio.abc.SocketStream) -> None:
        async with client:
            request = (await client.receive(65536)).decode(errors="replace")
            if request.startswith("POST /jobs"):
                await workers.send("http")
                status, body = "202 Accepted", '{"queued": true}\n'
            else:
                status, body = "200 OK", f'{{"jobs_done": {cache["jobs"]}}}\n'
            head = f"HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {len(body)}\r\n"
            await client.send(f"{head}connection: close\r\n\r\n{body}".encode())

    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    async with listener:
        port = listener.extra(anyio.abc.SocketAttribute.local_port)
        url = f"http://127.0.0.1:{port}/"
        ctx.log.info("api.listening", url=url, hint=f"curl {url}  or  curl -X POST {url}jobs")
        ctx.ready(url)
        await listener.serve(handle)


# The child process: it stops on SIGTERM, tells its parent it is ready over the
# sd_notify protocol (the socket in NOTIFY_SOCKET), and prints a heartbeat.
SIDECAR = """
import os, signal, socket, sys, time
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as notify:
    notify.sendto(b"READY=1\\nSTATUS=beating", os.environ["NOTIFY_SOCKET"])
beat = 0
while True:
    beat += 1
    print(f"heartbeat {beat}", flush=True)
    time.sleep(1)
"""


def sidecar() -> ProcessComponent:
    """The demo's child process: ready by sd_notify, a heartbeat on stdout, stopped by SIGTERM."""
    return ProcessComponent([sys.executable, "-c", SIDECAR], ready=ReadyOnNotify(), ready_timeout=30)


def build(seconds: float | None = None) -> Supervisor:
    """
    Build the demo tree; with *seconds*, a ``main`` timer stops it after that long.

    Args:
        seconds: Run for this long, then stop in order (exit 0); ``None`` runs
            until Ctrl-C or SIGTERM.
    """
    tree = Supervisor("demo")
    tree.add(store, priority=Priority.CRITICAL)
    tree.add(cache, priority=Priority.HIGH)
    tree.add(workers)
    tree.add(ticker, priority=Priority.LOW)
    tree.add(api, depends_on=("store",))
    tree.add(sidecar(), name="sidecar", priority=Priority.LOWEST)
    if seconds is not None:

        async def timer() -> None:
            await anyio.sleep(seconds)

        tree.add(timer, name="timer", main=True, depends_on=("api",))
    return tree
