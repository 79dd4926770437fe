"""asyncio: thread-safe and signal-safe scheduling."""

from __future__ import annotations

import asyncio
from collections.abc import Callable


def current_scheduler() -> Callable[[Callable[[], None]], None]:
    """Return a thread-safe ``call_soon`` for the running loop that ignores a closed loop."""
    loop = asyncio.get_running_loop()

    def schedule(callback: Callable[[], None]) -> None:
        try:
            loop.call_soon_threadsafe(callback)
        except RuntimeError:  # the loop is closed: the tree has stopped already
            pass

    return schedule
