"""
A web service as a tree: a store, a worker, an HTTP API on Hypercorn, probes.

``python -m examples.web_service`` serves the API on ``WEB_PORT`` (8080) and the
probes on ``HEALTH_PORT`` (8081) until SIGTERM or Ctrl-C. Under systemd
(``web-service.service``) it reports READY, STOPPING, STATUS and watchdog pings;
under Kubernetes (``deployment.yaml``) readiness turns false the moment SIGTERM
arrives, and the first component stops ``WEB_DRAIN_DELAY`` seconds later, once the
load balancers have stopped routing here.

Start order: lock and state file, store, worker and API, health endpoint
(probes answer as soon as they can). Stop order: the API (Hypercorn stops
accepting, lets requests in flight finish during GRACEFUL) and the worker (its
batch is shielded), then the store, then the probes, the state file and the lock.
"""

from __future__ import annotations

import os
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Literal, cast

import anyio
import anyio.lowlevel
import sniffio
import structlog
from hypercorn.config import Config
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

import lifecycle
from lifecycle import HealthServer, InstanceLock, Priority, StateFile
from supervisors import Supervisor

log = structlog.get_logger("web_service")


class Store:
    """A stand-in for a database: a key-value map with a write counter."""

    def __init__(self) -> None:
        self.items: dict[str, str] = {}
        self.processed = 0

    async def put(self, key: str, value: str) -> None:
        """Store *value* under *key*."""
        await anyio.lowlevel.checkpoint()
        self.items[key] = value

    async def count(self) -> int:
        """Return how many items are stored."""
        await anyio.lowlevel.checkpoint()
        return len(self.items)


async def store() -> AsyncIterator[Store]:
    """The store: opened first, closed last (its dependents stop before it)."""
    db = Store()
    log.info("store.opened")
    yield db
    log.info("store.closed", items=len(db.items), processed=db.processed)


async def worker(ctx: lifecycle.Context, store: Store) -> None:
    """Process a batch every half second; a batch in progress finishes during GRACEFUL."""
    ctx.ready()
    while True:
        await anyio.sleep(0.5)
        async with ctx.shielded():  # a started batch is never cut in half
            store.processed += await store.count()


def build_app(db: Store) -> Starlette:
    """The HTTP API: item count, writes, and a slow endpoint to watch draining."""

    async def index(_: Request) -> JSONResponse:
        return JSONResponse({"items": await db.count()})

    async def put(request: Request) -> JSONResponse:
        await db.put(request.path_params["key"], (await request.body()).decode())
        return JSONResponse({"items": await db.count()}, status_code=201)

    async def slow(request: Request) -> JSONResponse:
        seconds = float(request.query_params.get("seconds", "1"))
        log.info("request.slow.started", seconds=seconds)
        await anyio.sleep(seconds)
        log.info("request.slow.finished")
        return JSONResponse({"slept": seconds})

    return Starlette(routes=[Route("/", index), Route("/items/{key}", put, methods=["PUT"]), Route("/slow", slow)])


async def serve(ctx: lifecycle.Context, app: Starlette, config: Config) -> None:
    """Serve *app* with Hypercorn on the running backend until the component's stop."""
    if sniffio.current_async_library() == "trio":
        from hypercorn.trio import serve as hypercorn_serve  # noqa: PLC0415 - one backend's server
    else:
        from hypercorn.asyncio import serve as hypercorn_serve  # type: ignore[assignment]  # noqa: PLC0415

    # Shielded until the graceful deadline: the stop cancels the component's body,
    # but Hypercorn must go on serving the requests in flight. Its shutdown
    # trigger is the component's stop; it then stops accepting connections and
    # waits up to graceful_timeout for the requests in flight.
    async with ctx.shielded():
        await hypercorn_serve(app, config, shutdown_trigger=ctx.stopping.wait)  # type: ignore[arg-type]


def listening_socket(host: str, port: int) -> socket.socket:
    """Bind and listen before serving, so the port is known (and taken) when the API is ready."""
    sock = socket.create_server((host, port), reuse_port=False)
    sock.set_inheritable(True)
    return sock


async def web(ctx: lifecycle.Context, store: Store) -> None:
    """The HTTP API: ready once its socket listens; drains in flight requests when stopped."""
    host = os.environ.get("WEB_HOST", "127.0.0.1")
    sock = listening_socket(host, int(os.environ.get("WEB_PORT", "8080")))
    port = sock.getsockname()[1]
    config = Config()
    config.bind = [f"fd://{sock.detach()}"]  # Hypercorn owns the socket from here
    config.graceful_timeout = lifecycle.current_tree().policy.graceful
    config.accesslog = None
    log.info("web.listening", url=f"http://{host}:{port}")
    ctx.ready(f"http://{host}:{port}")
    await serve(ctx, build_app(store), config)


def build() -> Supervisor:
    """The whole tree, configured from the environment."""
    tree = Supervisor("web-service")
    state_dir = os.environ.get("WEB_STATE_DIR")
    if state_dir:
        tree.add(InstanceLock(Path(state_dir) / "lock"), name="lock", priority=Priority.CRITICAL)
        tree.add(StateFile(Path(state_dir) / "state.json"), name="state", priority=Priority.CRITICAL)
    tree.add(store, priority=Priority.HIGH)
    tree.add(worker)
    tree.add(web)
    health = HealthServer(
        host=os.environ.get("HEALTH_HOST", "127.0.0.1"),
        port=int(os.environ.get("HEALTH_PORT", "8081")),
        drain_delay=float(os.environ.get("WEB_DRAIN_DELAY", "5")),
    )
    tree.add(health, name="health", priority=Priority.CRITICAL)
    return tree


def main() -> None:
    """Run the service as the whole program (exit codes: :class:`lifecycle.ExitCode`)."""
    backend = cast("Literal['asyncio', 'trio']", os.environ.get("WEB_BACKEND", "asyncio"))
    lifecycle.run(build(), backend=backend)
