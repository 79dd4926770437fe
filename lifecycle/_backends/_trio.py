"""Trio: thread-safe and signal-safe scheduling."""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import trio

from . import Primitives


def current_scheduler() -> Callable[[Callable[[], None]], None]:
    """Return ``TrioToken.run_sync_soon`` for the running loop, ignoring a finished run."""
    token = trio.lowlevel.current_trio_token()

    def schedule(callback: Callable[[], None]) -> None:
        # A finished run raises RunFinishedError: the tree has stopped already.
        with contextlib.suppress(trio.RunFinishedError):
            token.run_sync_soon(callback)

    return schedule


def _shielded_scope() -> trio.CancelScope:
    return trio.CancelScope(shield=True)


def current_primitives() -> Primitives:
    """Return ``trio.current_time``, ``trio.Event``, a shielded ``trio.CancelScope`` and ``trio.Cancelled``."""
    return Primitives(
        clock=trio.current_time, event=trio.Event, shielded_scope=_shielded_scope, cancelled=trio.Cancelled
    )
