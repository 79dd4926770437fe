"""Restart arithmetic: backoff delays and the intensity window, as pure functions of time."""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable

from ._strategy import Backoff, Intensity

__all__ = ["RestartWindow", "backoff_delay"]


def backoff_delay(backoff: Backoff, attempt: int, random: Callable[[], float]) -> float:
    """
    Return the delay before restart number *attempt* (0 for the first) of a child.

    The ceiling grows exponentially, ``initial * multiplier ** attempt``, capped
    at ``maximum``; with ``jitter`` (full jitter) the delay is drawn uniformly
    between 0 and that ceiling, so children of a crash loop do not restart in
    lockstep.

    Args:
        backoff: The policy.

        attempt: How many restarts of this child came before, since it last
            stayed up long enough (see :class:`Backoff`).

        random: Returns a float in ``[0, 1)`` (``random.random``).
    """
    if backoff.initial == 0:
        return 0.0
    # Past this many multiplications the ceiling is the maximum anyway; avoid float overflow.
    limit = math.log(backoff.maximum / backoff.initial, backoff.multiplier) if backoff.multiplier > 1 else math.inf
    if attempt > limit:
        ceiling = backoff.maximum
    else:
        ceiling = min(backoff.maximum, backoff.initial * backoff.multiplier**attempt)
    return random() * ceiling if backoff.jitter else ceiling


class RestartWindow:
    """
    The restarts of one supervisor within its intensity window (Erlang/OTP's MaxR, MaxT).

    A restart at time ``t`` counts while ``now - t < within``. Memory is bounded
    by ``max_restarts + 1`` timestamps, however many restarts happen.
    """

    __slots__ = ("_intensity", "_times")

    def __init__(self, intensity: Intensity) -> None:
        self._intensity = intensity
        self._times: deque[float] = deque(maxlen=intensity.max_restarts + 1)

    def allow(self, now: float) -> bool:
        """
        Record a restart at *now*; return ``False`` if that is one too many.

        More than ``max_restarts`` restarts within ``within`` seconds means the
        supervisor gives up.
        """
        within = self._intensity.within
        while self._times and now - self._times[0] >= within:
            self._times.popleft()
        self._times.append(now)
        return len(self._times) <= self._intensity.max_restarts
