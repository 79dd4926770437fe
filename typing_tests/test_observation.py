"""
What type checkers see of the observation API, option checks and child options.

An ``assert_type`` that does not hold fails mypy; so does a ``# type: ignore``
that is not needed. Never run.
"""

from __future__ import annotations

from typing import assert_type

import lifecycle
from lifecycle import Phase, PhaseChange, RunningTree, ShutdownReport, StopReason, Subscription
from lifecycle.lowlevel import Option
from supervisors import ChildOptions, Restart, Supervisor


async def observe(tree: RunningTree) -> None:
    assert_type(tree.subscribe_ready(lambda: None), Subscription)
    assert_type(tree.subscribe_stop(print), Subscription)
    assert_type(tree.subscribe_phases(lambda change: change.phase), Subscription)
    assert_type(tree.subscribe_report(lambda report: report.ok), Subscription)
    tree.subscribe_ready(lambda _: None)  # type: ignore[arg-type, misc]
    tree.subscribe_phases(lambda: None)  # type: ignore[arg-type, misc]
    assert_type(tree.phase, Phase | None)
    assert_type(tree.phase_changes, tuple[PhaseChange, ...])
    assert_type(tree.stop_reason, StopReason | None)
    assert_type(tree.stop_detail, str | None)


def on_report(report: ShutdownReport) -> None:
    del report


async def subscribe(tree: RunningTree) -> None:
    with tree.subscribe_report(on_report) as subscription:
        assert_type(subscription.active, bool)


def options() -> None:
    timeout = Option.seconds().or_none()
    assert_type(timeout.check("timeout", 1.5), float)
    assert_type(Option.error("timeout", "1", "a number of seconds"), lifecycle.ConfigurationError)


async def worker() -> None:
    """A component."""


sup = Supervisor("root")
sup.add(worker, name="w", restart=Restart.TRANSIENT, depends_on=())
sup.add(worker, restart="transient")  # type: ignore[arg-type]
sup.add(worker, nmae="w")  # type: ignore[call-arg]
defaults: ChildOptions = {"priority": lifecycle.Priority.HIGH}
sup.add(worker, **defaults)
