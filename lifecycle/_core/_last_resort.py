"""
What the hard exit runs before ``os._exit``: hooks registered by the layers above.

The hard exit (the terminate deadline passed under :func:`lifecycle.run`)
happens in the watchdog thread while the event loop may be blocked, so nothing
async can run. A layer that owns something outside this process that must not
outlive it (child processes) registers a synchronous hook here; the host calls
them all, each guarded, just before it exits.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

__all__ = ["on_hard_exit", "run_hard_exit_hooks"]

_lock = threading.Lock()
_hooks: list[Callable[[], None]] = []


def on_hard_exit(hook: Callable[[], None]) -> None:
    """Register *hook* (once) to run, synchronously and from any thread, on the hard exit."""
    with _lock:
        if hook not in _hooks:
            _hooks.append(hook)


def run_hard_exit_hooks() -> None:  # pragma: no cover - called by the hard exit, tested in a subprocess
    """Run every hook; one that fails is printed and does not stop the others."""
    with _lock:
        hooks = list(_hooks)
    for hook in hooks:
        try:
            hook()
        except Exception:  # noqa: BLE001 - the hard exit must go on
            import traceback  # noqa: PLC0415 - only on this last path

            traceback.print_exc()
