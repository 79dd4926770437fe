"""Budget alignment: warn when the stop may outlast the platform's grace period."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lifecycle._core._safe_logging import module_logger

if TYPE_CHECKING:
    from ._running_tree import RunningTree

__all__ = ["check_budget"]

_log = module_logger


def check_budget(tree: RunningTree) -> bool:
    """
    Warn (``budget.exceeds_grace_period``) if the tree's stop may outlast its grace period.

    The grace period is the tree's :attr:`~lifecycle.RunningTree.grace_period`
    (``LIFECYCLE_GRACE_PERIOD`` unless set otherwise): the time the platform (Kubernetes'
    ``terminationGracePeriodSeconds``, systemd's ``TimeoutStopSec``) waits after
    its stop signal before it kills the process. The stop needs the drain delay
    plus graceful + forceful + terminate. Called when the tree has started, so
    drain delays registered by components count.

    Returns:
        ``True`` if the budgets fit (or there is no grace period to compare with).
    """
    grace = tree.grace_period
    if grace is None:
        return True
    policy = tree.policy
    needed = tree.drain_delay + policy.total
    if needed <= grace:
        return True
    _log.warning(
        "budget.exceeds_grace_period",
        tree=tree.name,
        grace_period=grace,
        needed=needed,
        drain_delay=tree.drain_delay,
        graceful=policy.graceful,
        forceful=policy.forceful,
        terminate=policy.terminate,
        advice="raise the platform's grace period, or lower the LIFECYCLE_*_TIMEOUT budgets",
    )
    return False
