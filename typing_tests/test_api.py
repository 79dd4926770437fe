"""What users see of the public API, pinned for type checkers (never run).

An ``assert_type`` that does not hold fails mypy; so does a ``# type: ignore``
that is not needed (``warn_unused_ignores``), which pins the errors users get.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any, assert_type

import lifecycle
from lifecycle import (
    ComponentError,
    ComponentReport,
    ComponentStatus,
    Context,
    Priority,
    RunningTree,
    ShieldedScope,
    ShutdownReport,
    State,
    Subscription,
    TaskHandle,
)
from supervisors import AutoShutdown, GaveUpError, Graph, Restart, Supervisor

sup = Supervisor("root")


# -- @sup.component returns the function unchanged -------------------------------------


@sup.component
async def db() -> AsyncIterator[int]:
    yield 1


@sup.component(priority=Priority.HIGH, restart=Restart.TRANSIENT, depends_on=("db",))
async def api(ctx: Context, db: int) -> None:
    ctx.ready(db)


assert_type(db, Callable[[], AsyncIterator[int]])


async def call_components(ctx: Context) -> None:
    await assert_type(api(ctx, 1), Coroutine[Any, Any, None])
    await api(ctx, "1")  # type: ignore[arg-type]
    await api(ctx)  # type: ignore[call-arg]
    async for value in db():
        assert_type(value, int)


# -- sup.add(obj) returns obj with its own type ----------------------------------------


class Worker:
    """A class-based component."""

    name = "worker"

    async def run(self, ctx: Context) -> None:
        """Become ready and return."""
        ctx.ready()


assert_type(sup.add(Worker()), Worker)
assert_type(sup.add(Supervisor("jobs")), Supervisor)
assert_type(sup.graph(), Graph)


# -- ctx.spawn checks the arguments against the target ----------------------------------


async def fetch(a: int, b: str) -> int:
    return a + len(b)


async def spawning(ctx: Context) -> None:
    handle = ctx.spawn(fetch, 1, "x")
    assert_type(handle, TaskHandle[int])
    assert_type(await handle.result(), int)
    assert_type(handle.done, bool)
    ctx.spawn(fetch, 1, "x", name="fetch", critical=False)
    ctx.spawn(fetch, "1", "x")  # type: ignore[arg-type]
    ctx.spawn(fetch, 1)  # type: ignore[arg-type]
    ctx.spawn(fetch, 1, "x", 2)  # type: ignore[arg-type]
    assert_type(ctx.shielded(), ShieldedScope)


# -- running a tree ---------------------------------------------------------------------


async def main() -> None:
    async with lifecycle.running(sup) as handle:
        assert_type(handle, RunningTree)
        assert_type(handle.state, State)
        assert_type(await handle.ready(), None)
        report = await handle.shutdown()
        assert_type(report, ShutdownReport)
        assert_type(await handle.wait(), ShutdownReport)
        assert_type(report["db"], ComponentReport)
    async with lifecycle.shielded() as scope:
        assert_type(scope, ShieldedScope)


# -- observing a running tree and supervision's errors ----------------------------------


async def observe(handle: RunningTree) -> None:
    statuses = handle.components()
    assert_type(statuses, tuple[ComponentStatus, ...])
    assert_type(statuses[0].next_attempt, float | None)
    assert_type(statuses[0].error, BaseException | None)
    subscription = handle.subscribe_components(print)
    assert_type(subscription, Subscription)
    with handle.subscribe_components(repr) as same:
        assert_type(same, Subscription)
    handle.subscribe_components(lambda status: status.path)  # whatever it returns is ignored
    handle.subscribe_components(lambda: None)  # type: ignore[arg-type, misc]
    subscription.cancel()


def gave_up(error: GaveUpError) -> None:
    assert_type(error.child, str)
    assert_type(error.errors, tuple[BaseException, ...])
    as_component_error: ComponentError = error  # a GaveUpError is a ComponentError
    del as_component_error


Supervisor("root", auto_shutdown=AutoShutdown.ALL_SIGNIFICANT)
Supervisor("root", auto_shutdown="never")  # type: ignore[arg-type]
