"""A Starlette application whose components live and die with its lifespan.

Serve it with any ASGI server, for example ``hypercorn asgi_app:app`` from
this directory; ``python docs/examples/asgi_app.py [asyncio|trio]`` runs it
under Starlette's TestClient instead: the lifespan starts the tree, one
request reads the store, and the lifespan's shutdown stops the tree in order.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from typing import Literal

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from lifecycle import Context, LifespanMiddleware, Priority, RunningTree
from supervisors import Supervisor

tree = Supervisor("shop")


@tree.component(priority=Priority.CRITICAL)
async def store() -> AsyncIterator[dict[str, int]]:
    """The application's data: opened before the first request, closed after the last."""
    print("store: open")
    yield {"apples": 3}
    print("store: closed")


@tree.component
async def restocker(ctx: Context, store: dict[str, int]) -> None:
    """Background work that must stop before the store closes."""
    ctx.ready()
    try:
        await ctx.stopping.wait()
    finally:
        print(f"restocker: stopped, {store['apples']} apples in store")


async def stock(request: Request) -> JSONResponse:
    """Read the store: from the lifespan state, or from the tree (the value after any restart)."""
    lifecycle_tree: RunningTree = request.state.lifecycle
    current = lifecycle_tree.value("store")
    return JSONResponse({"apples": request.state.store["apples"], "same": current is request.state.store})


app = LifespanMiddleware(Starlette(routes=[Route("/stock", stock)]), tree)


if __name__ == "__main__":
    from starlette.testclient import TestClient

    backend: Literal["asyncio", "trio"] = "trio" if sys.argv[1:] == ["trio"] else "asyncio"
    with TestClient(app, backend=backend) as client:
        print(f"GET /stock: {client.get('/stock').json()}")
    print("server: shut down")
