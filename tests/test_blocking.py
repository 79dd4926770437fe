from __future__ import annotations

import sys
from pathlib import Path

import anyio
import pytest
from helpers import run_logged

import lifecycle
from lifecycle import ExitCode
from lifecycle._host._blocked_loop import blocked_in
from supervisors import Supervisor

ROOT = Path(__file__).resolve().parent.parent


class TestBlockedIn:
    async def test_names_the_component_running_the_frame(self) -> None:
        """Code running in a component's body is attributed to that component."""
        sup = Supervisor()
        seen: list[dict[str, str]] = []

        @sup.component
        async def api(ctx: lifecycle.Context) -> None:
            seen.append(blocked_in(sys._getframe()))
            ctx.ready()
            await anyio.sleep_forever()

        async with lifecycle.running(sup) as tree:
            await tree.ready()
        assert seen == [{"component": "root/api"}]

    async def test_names_the_spawned_task_and_its_component(self) -> None:
        """Code running in a spawned task is attributed to the task and its component."""
        sup = Supervisor()
        seen: list[dict[str, str]] = []

        async def compact() -> None:
            seen.append(blocked_in(sys._getframe()))

        @sup.component
        async def store(ctx: lifecycle.Context) -> None:
            await ctx.spawn(compact, name="compaction").wait()
            ctx.ready()
            await anyio.sleep_forever()

        async with lifecycle.running(sup) as tree:
            await tree.ready()
        assert seen == [{"component": "root/store", "task": "compaction"}]

    def test_outside_any_component_names_nothing(self) -> None:
        """Code outside every component is attributed to nobody."""
        assert blocked_in(sys._getframe()) == {}
        assert blocked_in(None) == {}


BLOCKING_TASK = """
import sys, time
import anyio, lifecycle
from supervisors import Supervisor

tree = Supervisor("svc")

def rebuild_index() -> None:
    time.sleep(1.0)  # blocks the event loop

async def indexer() -> None:
    rebuild_index()

@tree.component(main=True)
async def search(ctx: lifecycle.Context) -> None:
    ctx.ready()
    await anyio.sleep(0.2)
    await ctx.spawn(indexer, name="indexer").wait()

backend, _, loop = sys.argv[1].partition("+")
lifecycle.run(tree, backend=backend, backend_options={"use_uvloop": True} if loop else None)
"""


@pytest.mark.real_time
@pytest.mark.parametrize("backend", ["asyncio", "asyncio+uvloop", "trio"])
def test_a_blocking_task_is_named_with_its_stack(tmp_path: Path, backend: str) -> None:
    """A time.sleep in a spawned task is logged with its stack, its component and its task, on every backend."""
    script = tmp_path / "blocking_task.py"
    script.write_text(BLOCKING_TASK)
    proc, events = run_logged(script, backend, LIFECYCLE_BLOCKED_LOOP_THRESHOLD="0.3")
    assert proc.returncode == ExitCode.OK, proc.stderr
    (blocked,) = [e for e in events if e["event"] == "loop.blocked"]
    assert "time.sleep(1.0)" in blocked["stack"]
    assert "rebuild_index()" in blocked["stack"]
    assert (blocked["component"], blocked["task"]) == ("svc/search", "indexer")
