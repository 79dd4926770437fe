"""asyncio: thread-safe and signal-safe scheduling."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from . import Primitives


def current_scheduler() -> Callable[[Callable[[], None]], None]:
    """Return a thread-safe ``call_soon`` for the running loop that ignores a closed loop."""
    loop = asyncio.get_running_loop()

    def schedule(callback: Callable[[], None]) -> None:
        # A closed loop raises RuntimeError: the tree has stopped already.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(callback)

    return schedule


def current_primitives() -> Primitives:
    """Return the running loop's ``time`` and ``asyncio.Event``."""
    return Primitives(clock=asyncio.get_running_loop().time, event=asyncio.Event)
