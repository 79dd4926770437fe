"""Running a tree in a test, and checking the order in its report."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager

from lifecycle._core._policy import ShutdownPolicy
from lifecycle._core._report import ComponentReport, ShutdownReport
from lifecycle._core._states import Outcome
from lifecycle._host._embedded import running
from lifecycle._host._running_tree import RunningTree

__all__ = ["assert_start_order", "assert_stop_order", "open_tree"]

# What open_tree(check=True) fails a test for, handled failures included.
_UNCLEAN = frozenset({Outcome.FAILED, Outcome.STUBBORN})


@asynccontextmanager
async def open_tree(
    root: object,
    *,
    policy: ShutdownPolicy | None = None,
    check: bool = True,
) -> AsyncIterator[RunningTree]:
    """
    Start a tree for a test, wait until it is ready, and stop it at the end.

    The test's own event loop runs it, whatever the backend and the pytest
    plugin (anyio's, pytest-trio, or none). It is :func:`lifecycle.running` plus
    ``await tree.ready()``; after the block the report is
    :attr:`lifecycle.RunningTree.report`. Leaving the block stops the tree in order,
    shielded from cancellation, exactly as :func:`~lifecycle.running` does.

    Args:
        root: The tree (usually a ``Supervisor``) or any component.

        policy: The stop's budgets (see :func:`~lifecycle.running`).

        check: After the stop, fail the test if a component failed or was
            stubborn, even when supervision handled the failure (a
            ``TEMPORARY`` child's is in the report but raised by nothing, and
            :attr:`~lifecycle.ShutdownReport.ok` stays true). A failed run that
            was restarted does not count: the report shows the last run.

    Raises:
        AssertionError: *check* is on and a component failed or was stubborn;
            the message is the report's table.

        ExceptionGroup: Components failed and nothing handled it (as from
            :func:`~lifecycle.running`).

        StoppedError: The tree stopped before it was ready.
    """
    async with running(root, policy=policy) as tree:
        await tree.ready()
        yield tree
    report = tree.report
    if check and report is not None and any(c.outcome in _UNCLEAN for c in report.components):
        msg = f"The tree's stop was not clean:\n{report}"
        raise AssertionError(msg)


def _find(report: ShutdownReport, component: str) -> ComponentReport:
    try:
        return report[component]
    except KeyError as exc:
        raise AssertionError(exc.args[0]) from None


def _groups(report: ShutdownReport, groups: tuple[str | Iterable[str], ...]) -> list[list[ComponentReport]]:
    return [[_find(report, g)] if isinstance(g, str) else [_find(report, c) for c in g] for g in groups]


def assert_start_order(report: ShutdownReport, *groups: str | Iterable[str]) -> None:
    """
    Assert from a report that each group was ready before the next group began to start.

    Each argument is a component's path or unique name, or a collection of them
    started in any order among themselves (a wave). The times compared are the
    loop clock's, so components started at the same clock reading pass in
    either order; :class:`~lifecycle.testing.Recorder` sees the exact order.

    Raises:
        AssertionError: A component was ready later than a component of a later
            group began to start, or never ready; the message shows the report.
    """
    resolved = _groups(report, groups)
    for before, after in itertools.pairwise(resolved):
        for a in before:
            for b in after:
                if a.ready_at is None or b.started_at is None or a.ready_at > b.started_at:
                    msg = f"{a.path!r} was not ready before {b.path!r} began to start.\n{report}"
                    raise AssertionError(msg)


def assert_stop_order(report: ShutdownReport, *groups: str | Iterable[str]) -> None:
    """
    Assert from a report that each group had stopped before the next group's stop.

    Each argument is a component's path or unique name, or a collection of them
    stopped in any order among themselves (a wave). A component of one group
    must come before every component of the next in
    :attr:`~lifecycle.ShutdownReport.components` (the order the stops ended), and
    must have ended no later, on the loop clock, than each of them began to stop.

    Raises:
        AssertionError: The order was different; the message shows the report.
    """
    resolved = _groups(report, groups)
    position = {c.path: i for i, c in enumerate(report.components)}
    for before, after in itertools.pairwise(resolved):
        for a in before:
            for b in after:
                began = b.stop_began if b.stop_began is not None else b.stopped_at
                late = a.stopped_at is None or began is None or a.stopped_at > began
                if position[a.path] > position[b.path] or late:
                    msg = f"{a.path!r} had not stopped before {b.path!r} began to stop.\n{report}"
                    raise AssertionError(msg)
