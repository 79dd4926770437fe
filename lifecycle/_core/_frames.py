"""
Reading a suspended task's stack: for the stacks of stubborn components and for the stop's settling.

A coroutine's frames are walked through ``cr_await`` (and ``ag_await``,
``gi_yieldfrom``), from the task's outermost coroutine to the innermost
frame where it is suspended now. Frames of anyio and of this package are left
out of the stacks shown to users when any other frame remains, so a stack
shows the component's own code.
"""

from __future__ import annotations

import traceback
from pathlib import Path
from types import FrameType

import anyio

__all__ = ["coroutine_frames", "format_own_stack", "suspension_point"]

# The folders of anyio and of the whole lifecycle package (this file is in lifecycle/_core/).
_FRAMEWORK_DIRS = (str(Path(anyio.__file__).parent), str(Path(__file__).parent.parent))


def coroutine_frames(coro: object) -> list[FrameType]:
    """Return the frames of *coro* and of everything it awaits, outermost first."""
    frames: list[FrameType] = []
    while coro is not None:
        frame = getattr(coro, "cr_frame", None) or getattr(coro, "ag_frame", None) or getattr(coro, "gi_frame", None)
        if frame is not None:
            frames.append(frame)
        coro = getattr(coro, "cr_await", None) or getattr(coro, "ag_await", None) or getattr(coro, "gi_yieldfrom", None)
    return frames


def format_own_stack(coro: object) -> list[str]:
    """
    Return the stack *coro* is suspended in, formatted like a traceback.

    Frames of anyio and of this package are left out when any other frame
    remains, so the stack shows the user's code.
    """
    frames = coroutine_frames(coro)
    own = [f for f in frames if not f.f_code.co_filename.startswith(_FRAMEWORK_DIRS)]
    return traceback.StackSummary.extract((f, f.f_lineno) for f in own or frames).format()


def suspension_point(coro: object) -> tuple[tuple[FrameType, int], ...] | None:
    """
    Where *coro* is suspended now: each frame of its chain with its instruction; ``None`` without frames.

    The frames themselves, not their ids: a caller that keeps a point keeps its
    frames alive, so a frame that ended cannot be mistaken for a new one that
    Python allocated at the same address (it does, for the short-lived frames
    of a backend's innermost ``yield``).
    """
    frames = coroutine_frames(coro)
    return tuple((frame, frame.f_lasti) for frame in frames) or None
