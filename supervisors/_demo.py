"""
The program behind ``lifecycle demo``: a small, real service tree.

A store (sqlite in a temporary directory), a cache in front of it, a worker pool
that consumes a job queue and finishes its current job in a shielded scope, a
ticker that queues a job every half second, an HTTP API on 127.0.0.1, and a
supervised child process (a small Python script) that reports ready by
sd_notify and logs a heartbeat. It is found by ``lifecycle demo`` through the
``anyio_lifecycle.programs`` entry point.

With ``--slow`` its cleanups take seconds, each bound to a phase of the stop,
and its budgets are 4 seconds each, so the three phases (and what each Ctrl-C
does to them) can be watched: the workers finish queued jobs until GRACEFUL
ends, the store flushes its log until FORCEFUL ends, and the child process,
which ignores SIGTERM and stops last, is killed when TERMINATE begins.
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
from lifecycle import Phase, Priority, ProcessComponent, ReadyOnNotify, ShutdownPolicy

from ._supervisor import Supervisor

__all__ = ["SLOW_POLICY", "build", "slow_cleanup"]

Jobs = MemoryObjectSendStream[str]

#: The budgets of the slow demo: short enough to wait for, long enough to watch.
SLOW_POLICY = ShutdownPolicy(graceful=4.0, forceful=4.0, terminate=4.0)

_HINTS = {
    Phase.GRACEFUL: "cut off when GRACEFUL ends; Ctrl-C again to force",
    Phase.FORCEFUL: "cut off when FORCEFUL ends; Ctrl-C again to terminate",
    Phase.TERMINATE: "cut off when TERMINATE ends",
}


async def slow_cleanup(ctx: lifecycle.Context, what: str, until: Phase, seconds: float = 3600.0) -> None:
    """
    A cleanup of the slow demo: *seconds* of work in a scope cut off when *until* ends.

    Logs ``cleanup.started`` (with the phase that bounds it), then
    ``cleanup.done``, or ``cleanup.cut_off`` when the phase's end came first.
    """
    ctx.log.info("cleanup.started", what=what, until=until.name, hint=_HINTS[until])
    finished = False
    with ctx.shielded(until=until):
        await anyio.sleep(seconds)
        finished = True
    if finished:
        ctx.log.info("cleanup.done", what=what)
    else:
        ctx.log.warning("cleanup.cut_off", what=what, phase=ctx.phase.name if ctx.phase else None)


def make_store(*, slow: bool) -> object:
    """The store component; with *slow*, its teardown flushes its log until FORCEFUL ends."""

    async def store(ctx: lifecycle.Context) -> AsyncIterator[sqlite3.Connection]:
        """A sqlite database in a temporary directory, closed and deleted in teardown."""
        with tempfile.TemporaryDirectory(prefix="lifecycle-demo-") as folder:
            db = sqlite3.connect(Path(folder) / "store.sqlite3", check_same_thread=False)
            db.execute("create table jobs (name text, worker text)")
            yield db
            if slow:
                await slow_cleanup(ctx, "flushing the write-ahead log", Phase.FORCEFUL)
            (count,) = db.execute("select count(*) from jobs").fetchone()
            db.close()
            ctx.log.info("store.closed", jobs_stored=count)

    return store


async def cache(store: sqlite3.Connection) -> AsyncIterator[dict[str, int]]:
    """A read cache in front of the store: the number of finished jobs."""
    (count,) = store.execute("select count(*) from jobs").fetchone()
    yield {"jobs": count}


def make_workers(*, slow: bool) -> object:
    """The worker pool; with *slow*, its teardown finishes queued jobs until GRACEFUL ends."""

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
        if slow:
            await slow_cleanup(ctx, "finishing the queued jobs", Phase.GRACEFUL)
        send.close()

    return workers


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
if "--stubborn" in sys.argv:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # only TERMINATE's SIGKILL ends it
else:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as notify:
    notify.sendto(b"READY=1\\nSTATUS=beating", os.environ["NOTIFY_SOCKET"])
beat = 0
while True:
    beat += 1
    print(f"heartbeat {beat}", flush=True)
    time.sleep(1)
"""


def sidecar(*, stubborn: bool = False) -> ProcessComponent:
    """The demo's child process: ready by sd_notify, a heartbeat on stdout, stopped by SIGTERM (unless *stubborn*)."""
    argv = [sys.executable, "-c", SIDECAR, *(["--stubborn"] if stubborn else [])]
    return ProcessComponent(argv, ready=ReadyOnNotify(), ready_timeout=30)


def build(seconds: float | None = None, *, slow: bool = False) -> Supervisor:
    """
    Build the demo tree; with *seconds*, a ``main`` timer stops it after that long.

    Args:
        seconds: Run for this long, then stop in order (exit 0); ``None`` runs
            until Ctrl-C or SIGTERM.

        slow: Cleanups that take seconds, each bound to a phase, and budgets
            of 4 seconds each (:data:`SLOW_POLICY`), to watch the phases.
    """
    tree = Supervisor("demo", policy=SLOW_POLICY if slow else None)
    tree.add(make_store(slow=slow), name="store", priority=Priority.CRITICAL)
    tree.add(cache, priority=Priority.HIGH)
    tree.add(make_workers(slow=slow), name="workers")
    tree.add(ticker, priority=Priority.LOW)
    tree.add(api, depends_on=("store",))
    # Slow, the sidecar ignores SIGTERM and stops last, beside the store: TERMINATE's SIGKILL ends it.
    tree.add(sidecar(stubborn=slow), name="sidecar", priority=Priority.CRITICAL if slow else Priority.LOWEST)
    if seconds is not None:

        async def timer() -> None:
            await anyio.sleep(seconds)

        tree.add(timer, name="timer", main=True, depends_on=("api",))
    return tree
