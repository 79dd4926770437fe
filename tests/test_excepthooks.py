from __future__ import annotations

import asyncio
import gc
import sys
import threading
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from types import TracebackType
from typing import Any

import anyio
import pytest
import structlog
from structlog.testing import capture_logs

import lifecycle
from lifecycle._host._unhandled_errors import routing_unhandled_errors
from supervisors import Supervisor

BACKENDS = [
    pytest.param("asyncio", {}, id="asyncio"),
    pytest.param("asyncio", {"use_uvloop": True}, id="uvloop"),
    pytest.param("trio", {}, id="trio"),
]


@pytest.fixture(autouse=True)
def _fresh_structlog() -> Iterator[None]:
    structlog.reset_defaults()
    yield
    structlog.reset_defaults()


def run_job(
    body: Callable[[], Awaitable[None]], backend: str, options: dict[str, object]
) -> list[MutableMapping[str, Any]]:
    """Run a tree whose main job is *body* with run(); return the captured log events."""
    sup = Supervisor("job")
    sup.component(main=True, name="work")(body)
    with capture_logs() as logs:
        report = lifecycle.run(sup, backend=backend, backend_options=options)  # type: ignore[arg-type]
    assert report.ok
    return logs


class TestRunRoutesUnhandledErrors:
    @pytest.mark.parametrize(("backend", "options"), BACKENDS)
    def test_thread_errors_are_reported(self, backend: str, options: dict[str, object]) -> None:
        """An exception that kills a thread reaches threading.excepthook, which reports it safely."""

        def crash() -> None:
            raise RuntimeError("worker thread died")

        async def work() -> None:
            thread = threading.Thread(target=crash, name="crasher")
            thread.start()
            await anyio.to_thread.run_sync(thread.join)

        logs = run_job(work, backend, options)
        (entry,) = [e for e in logs if e["event"] == "thread.failed"]
        assert entry["thread"] == "crasher"
        assert isinstance(entry["exc_info"], RuntimeError)

    @pytest.mark.parametrize(("backend", "options"), BACKENDS)
    def test_a_thread_that_exits_is_not_an_error(self, backend: str, options: dict[str, object]) -> None:
        """SystemExit in a thread is ignored, as by the default hook."""

        async def work() -> None:
            thread = threading.Thread(target=sys.exit, args=(3,))
            thread.start()
            await anyio.to_thread.run_sync(thread.join)

        logs = run_job(work, backend, options)
        assert [e for e in logs if e["event"] == "thread.failed"] == []

    @pytest.mark.parametrize(("backend", "options"), BACKENDS)
    def test_sys_excepthook_reports(self, backend: str, options: dict[str, object]) -> None:
        """Code that hands an error to sys.excepthook during run() reaches the safe reporter."""

        async def work() -> None:
            error = ValueError("handed to excepthook")
            sys.excepthook(ValueError, error, None)

        logs = run_job(work, backend, options)
        (entry,) = [e for e in logs if e["event"] == "unhandled.error"]
        assert str(entry["exc_info"]) == "handed to excepthook"

    @pytest.mark.parametrize(("backend", "options"), BACKENDS[:2])
    def test_asyncio_loop_errors_are_reported(self, backend: str, options: dict[str, object]) -> None:
        """A failing loop callback and a fire-and-forget task nobody awaited reach the loop's handler."""

        def callback() -> None:
            raise KeyError("in a callback")

        async def orphan() -> None:
            raise LookupError("never retrieved")

        async def work() -> None:
            loop = asyncio.get_running_loop()
            loop.call_soon(callback)
            task = loop.create_task(orphan())
            await asyncio.sleep(0)
            await asyncio.sleep(0)
            del task
            gc.collect()

        logs = run_job(work, backend, options)
        entries = [e for e in logs if e["event"] == "loop.exception"]
        messages = sorted(str(e["message"]).split(" ")[0] for e in entries)
        assert messages == ["Exception", "Task"]
        assert {type(e["exc_info"]) for e in entries} == {KeyError, LookupError}

    @pytest.mark.parametrize(("backend", "options"), BACKENDS)
    def test_previous_hooks_are_restored(
        self, backend: str, options: dict[str, object], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """After run() returns, sys.excepthook and threading.excepthook are the ones set before it."""

        def mine(exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
            pass  # pragma: no cover - never called

        def my_thread_hook(args: threading.ExceptHookArgs) -> None:
            pass  # pragma: no cover - never called

        monkeypatch.setattr(sys, "excepthook", mine)
        monkeypatch.setattr(threading, "excepthook", my_thread_hook)
        during: list[object] = []

        async def work() -> None:
            during.extend([sys.excepthook, threading.excepthook])

        run_job(work, backend, options)
        assert during[0] is not mine
        assert during[1] is not my_thread_hook
        assert sys.excepthook is mine
        assert threading.excepthook is my_thread_hook


class TestLoopHandler:
    @pytest.mark.parametrize("use_uvloop", [False, True], ids=["asyncio", "uvloop"])
    def test_previous_loop_handler_is_restored(self, use_uvloop: bool) -> None:
        """The asyncio loop's own exception handler is put back when the routed main returns."""
        seen: list[object] = []

        def previous(loop: asyncio.AbstractEventLoop, context: dict[str, object]) -> None:
            pass  # pragma: no cover - never called

        async def inner() -> None:
            seen.append(asyncio.get_running_loop().get_exception_handler())

        async def outer() -> None:
            loop = asyncio.get_running_loop()
            loop.set_exception_handler(previous)
            await routing_unhandled_errors(inner)()
            seen.append(loop.get_exception_handler())

        anyio.run(outer, backend_options={"use_uvloop": use_uvloop})
        assert seen[0] is not previous
        assert seen[1] is previous

    def test_trio_has_nothing_to_route(self) -> None:
        """On trio only the two process hooks are routed, and restored."""
        hooks: list[object] = []

        async def inner() -> None:
            hooks.append(sys.excepthook)

        before = sys.excepthook
        anyio.run(routing_unhandled_errors(inner), backend="trio")
        assert hooks[0] is not before
        assert sys.excepthook is before
