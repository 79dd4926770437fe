"""An ASGI lifespan adapter: a tree that starts and stops with an ASGI application."""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, MutableMapping
from typing import final

import anyio
import anyio.abc

from lifecycle._core._errors import LifecycleError
from lifecycle._core._policy import ShutdownPolicy
from lifecycle._core._safe_logging import safe_logger
from lifecycle._core._spec import ComponentSpec
from lifecycle._host._embedded import running
from lifecycle._host._running_tree import RunningTree

__all__ = ["LifespanMiddleware"]

_log = safe_logger("lifecycle.asgi")

Scope = MutableMapping[str, object]
Message = MutableMapping[str, object]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def _describe(error: BaseException) -> str:
    """One readable line for *error*: the leaves of a group, with their causes."""
    if isinstance(error, BaseExceptionGroup):
        return "; ".join(_describe(e) for e in error.exceptions)
    return str(error) or type(error).__name__


@final
class LifespanMiddleware:
    """
    Run a tree for the life of an ASGI application.

    Wraps any ASGI app; every server that speaks the ASGI lifespan protocol
    (Hypercorn, Uvicorn, Daphne, Starlette's ``TestClient``) then starts the tree
    on ``lifespan.startup`` and stops it, in order, on ``lifespan.shutdown``.
    The tree runs inside the server's lifespan task (:func:`~lifecycle.running`),
    so it is structured: it cannot outlive the server's lifespan.

    ``lifespan.startup.complete`` is sent once the whole tree is up and the
    wrapped app's own lifespan startup (if it has one) has completed. If the tree
    fails to start, ``lifespan.startup.failed`` is sent with the failure as its
    ``message`` and the error is raised from the lifespan call (as Starlette
    does), so the server refuses to start. On shutdown the wrapped app's
    own lifespan shutdown runs first, then the tree stops; a failure in the
    tree's stop (a teardown that raised, a component that had to be cut off)
    is sent as ``lifespan.shutdown.failed`` with the components' errors.

    The app reaches the tree through the lifespan ``state`` (the ASGI
    ``state`` extension, ``request.state`` in Starlette and FastAPI):
    ``state["lifecycle"]`` is the :class:`~lifecycle.RunningTree`, and each of
    the root's direct children that provided a value is there under its name
    (``request.state.db``). A component that may be restarted provides a new
    value: look it up through ``request.state.lifecycle.value("db")`` each time.
    Other requests pass through untouched.

    Args:
        app: The ASGI application.

        root: The tree (usually a ``Supervisor``).

        policy: The stop's budgets; see :func:`~lifecycle.running`.

        notify: Report to systemd too; see :func:`~lifecycle.running`.

    Attributes:
        app: The wrapped application.

        tree: The running tree, between startup and shutdown; else ``None``.

    .. versionadded:: 0.1.0
    """

    def __init__(
        self,
        app: Callable[
            [
                MutableMapping[str, object],
                Callable[[], Awaitable[MutableMapping[str, object]]],
                Callable[[MutableMapping[str, object]], Awaitable[None]],
            ],
            Awaitable[None],
        ],
        root: object,
        *,
        policy: ShutdownPolicy | None = None,
        notify: bool = False,
    ) -> None:
        if not isinstance(root, ComponentSpec):
            ComponentSpec.from_target(root)  # a wrong root is a mistake to report now, not at the first startup
        self.app = app
        self._root = root
        self._policy = policy
        self._notify = notify
        self.tree: RunningTree | None = None

    async def __call__(
        self,
        scope: MutableMapping[str, object],
        receive: Callable[[], Awaitable[MutableMapping[str, object]]],
        send: Callable[[MutableMapping[str, object]], Awaitable[None]],
    ) -> None:
        """The ASGI entry point: handle ``lifespan`` scopes, pass everything else on."""
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return
        await self._lifespan(scope, receive, send)

    async def _lifespan(self, scope: Scope, receive: Receive, send: Send) -> None:
        message = await receive()
        if message["type"] != "lifespan.startup":  # pragma: no cover - servers always start with startup
            return
        started = False
        inner = _InnerLifespan(self.app, scope)
        cancelled = anyio.get_cancelled_exc_class()
        try:
            async with running(self._root, policy=self._policy, notify=self._notify) as tree, inner:
                await tree.ready()
                self.tree = tree
                state = scope.get("state")
                if isinstance(state, MutableMapping):
                    state["lifecycle"] = tree
                    state.update(_provided(tree))
                await inner.forward("lifespan.startup")
                await send({"type": "lifespan.startup.complete"})
                started = True
                _log.info("lifespan.started", tree=tree.name)
                await receive()  # lifespan.shutdown: the only message that can come now
                await inner.forward("lifespan.shutdown")
                await tree.shutdown(detail="the ASGI server is shutting down (lifespan.shutdown)")
        except cancelled:
            raise
        except BaseException as exc:
            text = _describe(exc)
            if not started:
                _log.error("lifespan.startup.failed", message=text)
                await send({"type": "lifespan.startup.failed", "message": text})
            else:
                _log.error("lifespan.shutdown.failed", message=text)
                await send({"type": "lifespan.shutdown.failed", "message": text})
            # Like Starlette's own lifespan: the server has the message, and the
            # error still ends the lifespan call (TestClient raises it).
            raise
        finally:
            self.tree = None
        report = tree.report
        if report is not None and not report.ok:
            # Teardown errors of a normal stop are recorded in the report, not raised.
            text = "; ".join(f"{c.path}: {_describe(c.error) if c.error else c.outcome.value}" for c in report.failures)
            _log.error("lifespan.shutdown.failed", message=text)
            await send({"type": "lifespan.shutdown.failed", "message": text})
            return
        await send({"type": "lifespan.shutdown.complete"})


def _provided(tree: RunningTree) -> dict[str, object]:
    """The values the root's direct children provided, by name."""
    values: dict[str, object] = {}
    for status in tree.components():
        if status.path.rpartition("/")[0] != tree.name or not status.ready:
            continue
        try:
            value = tree.value(status.name)
        except LookupError:  # pragma: no cover - it ended since components() was taken
            continue
        if value is not None:
            values[status.name] = value
    return values


class _AppLifespanError(LifecycleError):
    """The wrapped app's own lifespan startup or shutdown failed."""


@final
class _InnerLifespan:
    """The wrapped app's lifespan, driven message by message (if it has one)."""

    def __init__(self, app: ASGIApp, scope: Scope) -> None:
        self._app = app
        self._scope = scope
        self._to_app, self._app_receives = anyio.create_memory_object_stream[Message](math.inf)
        self._app_sends, self._from_app = anyio.create_memory_object_stream[Message](math.inf)
        self._tg: anyio.abc.TaskGroup | None = None
        self._supported = True

    async def __aenter__(self) -> _InnerLifespan:
        self._tg = anyio.create_task_group()
        await self._tg.__aenter__()
        self._tg.start_soon(self._run)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._tg is not None  # noqa: S101 - set by __aenter__
        self._tg.cancel_scope.cancel()
        try:
            await self._tg.__aexit__(None, None, None)
        finally:
            for stream in (self._to_app, self._app_receives, self._app_sends, self._from_app):
                stream.close()

    async def _run(self) -> None:
        try:
            await self._app(self._scope, self._app_receives.receive, self._app_sends.send)
        except Exception as exc:  # noqa: BLE001 - an app without lifespan support raises here (ASGI spec)
            _log.debug("lifespan.unsupported", error=str(exc))
        finally:
            self._app_sends.close()

    async def forward(self, kind: str) -> None:
        """Send ``lifespan.startup`` or ``lifespan.shutdown`` to the app and wait for its answer."""
        if not self._supported:
            return
        await self._to_app.send({"type": kind})
        try:
            answer = await self._from_app.receive()
        except anyio.EndOfStream:
            # The app returned or raised without answering: no lifespan support.
            self._supported = False
            return
        if answer["type"] == f"{kind}.failed":
            raise _AppLifespanError(str(answer.get("message", "")) or f"the app's {kind} failed")
