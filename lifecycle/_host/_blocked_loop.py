"""Which component is blocking the event loop: read from the blocked thread's stack."""

from __future__ import annotations

from types import FrameType

from lifecycle._core._component_task import run_component
from lifecycle._core._instance import ComponentInstance
from lifecycle._core._tasks import TaskHandle

__all__ = ["blocked_in"]

_COMPONENT_CODE = run_component.__code__
_TASK_CODE = TaskHandle._main.__code__


def blocked_in(frame: FrameType | None) -> dict[str, str]:
    """
    Return ``component`` (and ``task``, for a spawned task) whose code runs in *frame*'s stack.

    Walks outwards from the innermost frame to the first frame of a component's
    task or of a task it spawned. Called from the watchdog thread while the
    loop's thread is stuck in that stack; returns ``{}`` when the blocking code
    is not inside a component (or the stack cannot be read).
    """
    try:
        while frame is not None:
            code = frame.f_code
            if code is _TASK_CODE:
                local = frame.f_locals
                handle, owner = local.get("self"), local.get("owner")
                if isinstance(handle, TaskHandle) and isinstance(owner, ComponentInstance):
                    return {"component": owner.path, "task": handle.name}
            elif code is _COMPONENT_CODE:
                instance = frame.f_locals.get("instance")
                if isinstance(instance, ComponentInstance):
                    return {"component": instance.path}
            frame = frame.f_back
    except Exception:  # noqa: BLE001 - the stack moved on while being read; the event has its stack anyway
        return {}
    return {}
