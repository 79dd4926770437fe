"""asyncio: thread-safe and signal-safe scheduling."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable


def current_scheduler() -> Callable[[Callable[[], None]], None]:
    """Return a thread-safe ``call_soon`` for the running loop that ignores a closed loop."""
    loop = asyncio.get_running_loop()

    def schedule(callback: Callable[[], None]) -> None:
        # A closed loop raises RuntimeError: the tree has stopped already.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(callback)

    return schedule
