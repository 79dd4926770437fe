"""SIGINT/SIGTERM escalation and the SIGUSR1 tree dump."""

from __future__ import annotations

import math
import signal
from typing import TYPE_CHECKING

import anyio
import anyio.abc

from lifecycle._core._policy import Phase
from lifecycle._core._safe_logging import module_logger
from lifecycle._core._states import StopReason

if TYPE_CHECKING:
    from lifecycle._core._instance import ComponentInstance

    from ._running_tree import RunningTree

__all__ = ["dump_tree", "watch_signals"]

_log = module_logger

_STEPS = (
    (Phase.GRACEFUL, "stopping gracefully; send the signal again (Ctrl-C) to force"),
    (Phase.FORCEFUL, "forcing: cleanup scopes of the graceful phase are cut off; once more to terminate"),
    (Phase.TERMINATE, "terminating: whatever is still running is stubborn"),
)

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
DUMP_SIGNAL: signal.Signals | None = getattr(signal, "SIGUSR1", None)


def _remaining(instance: ComponentInstance, now: float) -> dict[str, float] | None:
    escalation = instance.escalation
    if escalation is None:
        return None
    return {
        phase.name: round(max(0.0, escalation.end(phase) - now), 3)
        for phase in Phase
        if not math.isinf(escalation.end(phase))
    }


def dump_tree(root: ComponentInstance) -> list[dict[str, object]]:
    """
    Describe every live component under *root*: state, restarts, deadlines, stack.

    Safe to call from another thread (it only reads); stacks are then a snapshot.
    """
    now = anyio.current_time() if _in_loop() else None
    return [
        {
            "component": instance.path,
            "state": instance.state.value,
            "restarts": instance.restarts,
            "phase": None if instance.escalation is None or now is None else instance.escalation.phase_at(now).name,
            "remaining": None if now is None else _remaining(instance, now),
            "stack": "".join(instance.stack()),
        }
        for instance in root.walk_live()
    ]


def _in_loop() -> bool:
    try:
        anyio.current_time()
    except Exception:  # noqa: BLE001 - any "no event loop here" error means: not in the loop
        return False
    return True


async def watch_signals(
    tree: RunningTree,
    *,
    task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """
    Turn SIGINT/SIGTERM into stop requests and escalations; dump the tree on SIGUSR1.

    The first stop signal requests a graceful stop, the second jumps to FORCEFUL,
    the third to TERMINATE; later ones are logged and ignored. Runs until
    cancelled; the handlers are installed when ``task_status.started()`` is
    called, and restored when it ends.
    """
    signums = [*STOP_SIGNALS, *([DUMP_SIGNAL] if DUMP_SIGNAL is not None else [])]
    received = 0
    with anyio.open_signal_receiver(*signums) as signals:
        task_status.started()
        async for signum in signals:
            name = signal.Signals(signum).name
            if signum == DUMP_SIGNAL:
                _log.warning("tree.dump", tree=tree.name, signal=name, components=dump_tree(tree._instance))
                continue
            if received < len(_STEPS):
                phase, what = _STEPS[received]
                _log.warning("signal.received", signal=name, phase=phase.name, next=what)
                if phase is Phase.GRACEFUL:
                    tree._request(StopReason.SIGNAL, f"{name} received")
                else:
                    tree._escalate(phase, "signal")
            else:
                _log.warning("signal.ignored", signal=name, reason="already terminating")
            received += 1
