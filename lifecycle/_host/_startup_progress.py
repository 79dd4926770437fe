"""Startup progress: while a tree is slow to start, say which components it waits for."""

from __future__ import annotations

import anyio
import anyio.abc

from lifecycle._core._instance import ComponentInstance
from lifecycle._core._safe_logging import module_logger
from lifecycle._core._states import State

__all__ = ["still_starting", "watch_startup"]

_log = module_logger


def still_starting(root: ComponentInstance, now: float) -> dict[str, float]:
    """
    Return the components the start of *root* is waiting for, with their seconds in ``STARTING``.

    Only the innermost ones: a supervisor that is starting because one of its
    children is starting is left out, so the events name the slow component,
    not every tree above it.
    """
    starting = [i for i in root.walk_live() if i.state is State.STARTING and i.started_at is not None]
    waiting_on_child = {i.parent for i in starting if i.parent is not None}
    return {i.path: round(now - i.started_at, 3) for i in starting if i not in waiting_on_child}  # type: ignore[operator]


def watch_startup(root: ComponentInstance, task_group: anyio.abc.TaskGroup, interval: float) -> None:
    """
    Log ``startup.waiting`` every *interval* seconds until *root* is ready or stopping.

    Each event carries ``elapsed`` (seconds since the root's start began) and
    ``starting``, the paths of the components still ``STARTING`` with the
    seconds each has spent there. The watching task runs in *task_group* and
    ends the moment the root becomes ready, begins its stop or ends, so it
    never holds the group open. An *interval* of 0 watches nothing. Not a
    checkpoint.
    """
    if not interval:
        return
    scope = anyio.CancelScope()

    def stop(_: ComponentInstance) -> None:
        scope.cancel()

    root.add_ready_callback(stop)
    root.add_stop_callback(stop)
    root.add_exit_callback(stop)
    task_group.start_soon(_watch, root, scope, interval, name=f"lifecycle:startup-progress:{root.path}")


async def _watch(root: ComponentInstance, scope: anyio.CancelScope, interval: float) -> None:
    with scope:
        while True:
            await anyio.sleep(interval)
            now = anyio.current_time()
            starting = still_starting(root, now)
            if starting:
                started = root.started_at if root.started_at is not None else now
                _log.info("startup.waiting", tree=root.path, elapsed=round(now - started, 3), starting=starting)
