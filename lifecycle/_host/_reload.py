"""A running tree's reloads: one at a time, never during its start or stop, told to subscribers."""

from __future__ import annotations

from typing import TYPE_CHECKING, final

import anyio

from lifecycle._core._observe import Topic
from lifecycle._core._reload import ReloadReport, reload_instances
from lifecycle._core._safe_logging import module_logger

if TYPE_CHECKING:
    from ._running_tree import RunningTree

__all__ = ["TreeReloads"]

_log = module_logger


@final
class TreeReloads:
    """The reload state of one :class:`~lifecycle.RunningTree` and its subscribers (internal)."""

    __slots__ = ("running", "topic")

    def __init__(self, tree: str) -> None:
        # None when a reload begins, its report when it ends.
        self.topic: Topic[ReloadReport | None] = Topic(tree, "reloads")
        self.running = False

    def start(self, tree: RunningTree, detail: str) -> None:
        """Start a reload in the tree's own task group; in the loop."""
        task_group = tree._task_group
        if task_group is None or tree.report is not None:
            _log.warning("reload.ignored", tree=tree.name, detail=detail, reason="the tree is not running")
            return
        task_group.start_soon(self.run, tree, detail, name=f"lifecycle:reload:{tree.name}")

    def _refusal(self, tree: RunningTree) -> str | None:
        if tree.stop_requested:
            return "the tree is stopping"
        if not tree._instance.ready:
            return "the tree has not finished starting"
        if self.running:
            return "another reload is running"
        return None

    async def run(self, tree: RunningTree, detail: str) -> ReloadReport:
        """Run one reload of *tree* in the calling task, unless it must be ignored; return its report."""
        started = anyio.current_time()
        refusal = self._refusal(tree)
        if refusal is not None:
            _log.warning("reload.ignored", tree=tree.name, detail=detail, reason=refusal)
            return ReloadReport(tree.name, detail, started, started, ignored=refusal)
        self.running = True
        _log.info("reload.began", tree=tree.name, detail=detail)
        self.topic.publish(None)
        reloaded: tuple[str, ...] = ()
        errors: dict[str, Exception] = {}
        try:
            # The tree's stop cuts a reload short: its hooks are cancelled, and the stop goes on.
            with anyio.CancelScope() as scope, tree.subscribe_stop(scope.cancel):
                reloaded, errors = await reload_instances(tree._instance)
        finally:
            self.running = False
        interrupted = "the tree's stop began during the reload" if scope.cancelled_caught else None
        report = ReloadReport(tree.name, detail, started, anyio.current_time(), reloaded, errors, ignored=interrupted)
        log = _log.info if report.ok else _log.error
        log(
            "reload.finished",
            tree=tree.name,
            ok=report.ok,
            reloaded=len(report.reloaded),
            failed=sorted(report.errors),
            interrupted=interrupted is not None,
            duration=round(report.duration, 6),
        )
        self.topic.publish(report)
        return report
