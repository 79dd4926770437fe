from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from typing import Literal

import pytest
from helpers import Recorder
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.testclient import TestClient
from structlog.testing import capture_logs

from lifecycle import ComponentError, ConfigurationError, LifecycleError, LifespanMiddleware, RunningTree
from supervisors import Supervisor

Backend = Literal["asyncio", "trio"]
BACKENDS: list[Backend] = ["asyncio", "trio"]
Receive = Callable[[], Awaitable[MutableMapping[str, object]]]
Send = Callable[[MutableMapping[str, object]], Awaitable[None]]


def store_tree(rec: Recorder) -> Supervisor:
    sup = Supervisor(name="app")
    sup.add(rec.resource("store", {"answer": 42}))
    sup.add(rec.service("worker"), depends_on=("store",))
    return sup


async def answer(request: Request) -> JSONResponse:
    tree = request.state.lifecycle
    assert isinstance(tree, RunningTree)
    return JSONResponse({"store": request.state.store, "again": tree.value("store"), "state": tree.state.value})


@pytest.mark.parametrize("backend", BACKENDS)
class TestStarlette:
    def test_tree_lives_with_the_app(self, backend: Backend) -> None:
        """The tree starts with the lifespan, its values reach requests, and it stops in order at shutdown."""
        rec = Recorder()
        app = LifespanMiddleware(Starlette(routes=[Route("/", answer)]), store_tree(rec))
        with TestClient(app, backend=backend) as client:
            assert rec.names("start") == ["store", "worker"]
            response = client.get("/")
            assert rec.names("stop") == []
        assert response.json() == {"store": {"answer": 42}, "again": {"answer": 42}, "state": "running"}
        assert rec.names("stop") == ["worker", "store"]
        assert app.tree is None

    def test_the_stop_says_the_asgi_server_shut_down(self, backend: Backend) -> None:
        """The stop at lifespan.shutdown is logged and reported as the ASGI server shutting down."""
        app = LifespanMiddleware(Starlette(routes=[Route("/", answer)]), store_tree(Recorder()))
        with capture_logs() as logs, TestClient(app, backend=backend):
            pass
        (stopping,) = [e for e in logs if e["event"] == "tree.stopping"]
        assert (stopping["reason"], stopping["detail"]) == (
            "request",
            "the ASGI server is shutting down (lifespan.shutdown)",
        )

    def test_apps_own_lifespan_runs_inside_the_trees(self, backend: Backend) -> None:
        """The wrapped app's lifespan starts after the tree and ends before it stops."""
        rec = Recorder()

        @asynccontextmanager
        async def own(_: Starlette) -> AsyncIterator[None]:
            rec.add("start", "app-lifespan")
            yield
            rec.add("stop", "app-lifespan")

        app = LifespanMiddleware(Starlette(lifespan=own), store_tree(rec))
        with TestClient(app, backend=backend):
            pass
        assert rec.names("start") == ["store", "worker", "app-lifespan"]
        assert rec.names("stop") == ["app-lifespan", "worker", "store"]

    def test_startup_failure_is_reported_with_its_message(self, backend: Backend) -> None:
        """A tree that fails to start sends lifespan.startup.failed with the failure's message."""

        async def broken() -> AsyncIterator[None]:
            msg = "database unreachable"
            raise ConnectionError(msg)
            yield  # pragma: no cover - never reached

        sup = Supervisor(name="app")
        sup.add(broken)
        app = LifespanMiddleware(Starlette(), sup)
        with (
            capture_logs() as logs,
            pytest.RaisesGroup(ComponentError, flatten_subgroups=True),
            TestClient(app, backend=backend),
        ):
            pass  # pragma: no cover - startup fails
        failed = [e for e in logs if e["event"] == "lifespan.startup.failed"]
        assert len(failed) == 1
        assert "database unreachable" in failed[0]["message"]
        assert "app/broken" in failed[0]["message"]

    def test_apps_startup_failure_stops_the_tree(self, backend: Backend) -> None:
        """If the wrapped app's own startup fails, the server is told and the tree stops."""
        rec = Recorder()

        @asynccontextmanager
        async def own(_: Starlette) -> AsyncIterator[None]:
            msg = "no config"
            raise KeyError(msg)
            yield  # pragma: no cover - never reached

        app = LifespanMiddleware(Starlette(lifespan=own), store_tree(rec))
        with pytest.raises(LifecycleError, match="no config"), TestClient(app, backend=backend):
            pass  # pragma: no cover - startup fails
        assert rec.names("stop") == ["worker", "store"]

    def test_app_without_lifespan_support(self, backend: Backend) -> None:
        """A wrapped app that rejects lifespan scopes still gets its requests; the tree runs around it."""
        rec = Recorder()

        async def bare(scope: MutableMapping[str, object], receive: Receive, send: Send) -> None:
            if scope["type"] != "http":
                msg = "only HTTP here"
                raise TypeError(msg)
            await send({"type": "http.response.start", "status": 204, "headers": []})
            await send({"type": "http.response.body", "body": b""})

        app = LifespanMiddleware(bare, store_tree(rec))
        with TestClient(app, backend=backend) as client:
            assert client.get("/").status_code == 204
        assert rec.names("stop") == ["worker", "store"]

    def test_failed_stop_is_reported_at_shutdown(self, backend: Backend) -> None:
        """A teardown that raises is sent as lifespan.shutdown.failed with its message."""

        async def leaky() -> AsyncIterator[None]:
            yield
            msg = "could not flush"
            raise OSError(msg)

        sup = Supervisor(name="app")
        sup.add(leaky)
        with capture_logs() as logs, TestClient(LifespanMiddleware(Starlette(), sup), backend=backend):
            pass
        failed = [e for e in logs if e["event"] == "lifespan.shutdown.failed"]
        assert len(failed) == 1
        assert failed[0]["message"] == "app/leaky: could not flush"


def test_wrong_root_is_reported_at_once() -> None:
    """Wrapping something that is not a component is a ConfigurationError when the app is built."""
    with pytest.raises(ConfigurationError):
        LifespanMiddleware(Starlette(), 42)
