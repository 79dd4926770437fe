from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, MutableMapping
from typing import Any

import anyio
import pytest
import structlog
import trio.testing
from structlog.testing import capture_logs

import lifecycle
from lifecycle import ConfigurationError
from supervisors import Supervisor


@pytest.fixture(autouse=True)
def _default_interval(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LIFECYCLE_STARTUP_PROGRESS_INTERVAL", raising=False)


def slow_tree(start_seconds: float) -> Supervisor:
    sup = Supervisor()

    @sup.component
    async def db() -> AsyncIterator[str]:
        yield "db"

    @sup.component
    async def search(ctx: lifecycle.Context, db: str) -> None:
        await anyio.sleep(start_seconds)  # building an index
        ctx.ready()
        await anyio.sleep_forever()

    return sup


def waiting(logs: list[MutableMapping[str, Any]]) -> list[MutableMapping[str, Any]]:
    return [e for e in logs if e["event"] == "startup.waiting"]


@pytest.mark.virtual_time
class TestStartupProgress:
    async def test_slow_start_is_reported_every_interval(self) -> None:
        """Every 5 s until ready, startup.waiting names the starting component and its time so far."""
        with capture_logs() as logs:
            async with lifecycle.running(slow_tree(12)) as tree:
                await tree.ready()
                ready_at = anyio.current_time()
                await anyio.sleep(20)
        assert ready_at == 12
        events = waiting(logs)
        assert [(e["elapsed"], e["starting"]) for e in events] == [
            (5.0, {"root/search": 5.0}),
            (10.0, {"root/search": 10.0}),
        ]
        assert all(e["tree"] == "root" and e["log_level"] == "info" for e in events)

    async def test_interval_comes_from_the_environment(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """LIFECYCLE_STARTUP_PROGRESS_INTERVAL sets the period."""
        monkeypatch.setenv("LIFECYCLE_STARTUP_PROGRESS_INTERVAL", "2")
        with capture_logs() as logs:
            async with lifecycle.running(slow_tree(7)) as tree:
                await tree.ready()
        assert [e["elapsed"] for e in waiting(logs)] == [2.0, 4.0, 6.0]

    async def test_zero_turns_it_off(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """An interval of 0 logs no progress."""
        monkeypatch.setenv("LIFECYCLE_STARTUP_PROGRESS_INTERVAL", "0")
        with capture_logs() as logs:
            async with lifecycle.running(slow_tree(12)) as tree:
                await tree.ready()
        assert waiting(logs) == []

    async def test_nested_trees_name_the_innermost_component(self) -> None:
        """A supervisor that waits for a slow child is not listed; the child is, with its full path."""
        outer = Supervisor("outer")
        outer.add(slow_tree(6), name="inner")
        with capture_logs() as logs:
            async with lifecycle.running(outer) as tree:
                await tree.ready()
        assert [e["starting"] for e in waiting(logs)] == [{"outer/inner/search": 5.0}]

    async def test_a_stop_during_startup_ends_the_reports(self) -> None:
        """Once the stop begins, no more progress is logged, and the watcher does not delay the exit."""
        with capture_logs() as logs:
            async with lifecycle.running(slow_tree(100)) as tree:
                await anyio.sleep(6)
                await tree.shutdown()
                stopped_at = anyio.current_time()
        assert stopped_at == 6
        assert anyio.current_time() == 6
        assert [e["elapsed"] for e in waiting(logs)] == [5.0]

    async def test_a_fast_start_logs_nothing_and_holds_nothing(self) -> None:
        """A tree ready at once logs no progress, and leaving the block takes no time."""
        with capture_logs() as logs:
            async with lifecycle.running(slow_tree(0)) as tree:
                await tree.ready()
        assert waiting(logs) == []
        assert anyio.current_time() == 0


class TestConfiguration:
    async def test_bad_interval_is_a_configuration_error(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """A value that is not a number of seconds is refused before anything starts."""
        monkeypatch.setenv("LIFECYCLE_STARTUP_PROGRESS_INTERVAL", "often")
        with pytest.raises(ConfigurationError, match="LIFECYCLE_STARTUP_PROGRESS_INTERVAL='often'"):
            async with lifecycle.running(slow_tree(0)):
                pytest.fail("the tree started")  # pragma: no cover


@pytest.fixture
def _fresh_structlog() -> Iterator[None]:
    structlog.reset_defaults()
    yield
    structlog.reset_defaults()


@pytest.mark.usefixtures("_fresh_structlog")
def test_run_reports_startup_progress(monkeypatch: pytest.MonkeyPatch) -> None:
    """run() logs startup.waiting too (here on trio's MockClock, so no time is waited)."""
    monkeypatch.setenv("LIFECYCLE_BLOCKED_LOOP_THRESHOLD", "0")
    sup = Supervisor("svc")

    @sup.component
    async def warmup(ctx: lifecycle.Context) -> None:
        await anyio.sleep(11)
        ctx.ready()
        await anyio.sleep_forever()

    @sup.component(main=True, depends_on=("warmup",))
    async def job() -> None:
        pass

    with capture_logs() as logs:
        lifecycle.run(sup, backend="trio", backend_options={"clock": trio.testing.MockClock(autojump_threshold=0)})
    assert [(e["elapsed"], e["starting"]) for e in waiting(logs)] == [
        (5.0, {"svc/warmup": 5.0}),
        (10.0, {"svc/warmup": 10.0}),
    ]
