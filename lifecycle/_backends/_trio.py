"""Trio: thread-safe and signal-safe scheduling."""

from __future__ import annotations

from collections.abc import Callable

import trio


def current_scheduler() -> Callable[[Callable[[], None]], None]:
    """Return ``TrioToken.run_sync_soon`` for the running loop, ignoring a finished run."""
    token = trio.lowlevel.current_trio_token()

    def schedule(callback: Callable[[], None]) -> None:
        try:
            token.run_sync_soon(callback)
        except trio.RunFinishedError:  # the run has finished: the tree has stopped already
            pass

    return schedule
