"""
A probe of your own, written on the public observation API, as the package's integrations are.

``ChangeLog`` is a component that watches the tree it runs in through
``lifecycle.current_tree()``: it prints every change of a component's state,
the tree becoming ready, each phase of the stop and the final report. Nothing
in it reaches into the framework: a health endpoint, a metrics exporter or an
audit log are written the same way.

Run: ``python docs/examples/observing.py [asyncio|trio]``.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import AsyncIterator

import anyio
import structlog

import lifecycle
from lifecycle import ComponentStatus, Context, PhaseChange, Priority, ShutdownReport
from supervisors import Backoff, Supervisor


class ChangeLog:
    """Print what happens to the tree this component runs in; it provides itself."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    def say(self, line: str) -> None:
        """Print *line* and keep it."""
        self.seen.append(line)
        print(line)

    def component_changed(self, status: ComponentStatus) -> None:
        """Called at each change of a component's state; it must be quick and must not block."""
        if status.name != "changes":  # its own changes are not news
            error = f" after {type(status.error).__name__}" if status.error is not None else ""
            self.say(f"{status.path}: {status.state.value}{error}")

    def phase_began(self, change: PhaseChange) -> None:
        """Called when a phase of the tree's stop begins."""
        self.say(f"phase {change.phase.name} ({change.reason})")

    def report_made(self, report: ShutdownReport) -> None:
        """Called once, when the tree has stopped."""
        self.say(f"stopped: {report.reason.value}, clean={report.clean}, {len(report.components)} components")

    async def run(self, ctx: Context) -> None:
        """Subscribe, and stay subscribed while this component runs (the report comes after its stop)."""
        tree = lifecycle.current_tree()
        tree.subscribe_report(self.report_made)
        with tree.subscribe_components(self.component_changed), tree.subscribe_phases(self.phase_began):
            tree.subscribe_ready(lambda: self.say(f"tree ready: {len(tree.components())} components"))
            ctx.ready(self)
            await anyio.sleep_forever()


def build() -> Supervisor:
    """A tree whose worker crashes once and is restarted, then whose job returns."""
    tree = Supervisor("app", backoff=Backoff(initial=0.0, maximum=0.0, jitter=False))
    tree.add(ChangeLog(), name="changes", priority=Priority.CRITICAL)
    restarted = anyio.Event()
    runs = 0

    @tree.component
    async def db() -> AsyncIterator[str]:
        yield "db-connection"

    @tree.component(depends_on=("changes", "db"))
    async def worker(ctx: Context) -> None:
        nonlocal runs
        runs += 1
        ctx.ready()
        if runs == 1:
            msg = "lost the connection"
            raise ConnectionError(msg)
        restarted.set()
        await anyio.sleep_forever()

    @tree.component(main=True, depends_on=("changes",))
    async def job(ctx: Context) -> None:
        ctx.ready()
        await restarted.wait()

    return tree


async def main() -> None:
    """Run the tree until its job returns."""
    async with lifecycle.running(build()) as tree:
        await tree.wait()


if __name__ == "__main__":
    # The framework's own events (warnings and up) to stderr: stdout shows what ChangeLog saw.
    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
    )
    anyio.run(main, backend=sys.argv[1] if len(sys.argv) > 1 else "asyncio")
