from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from supervisors import Backoff, Intensity
from supervisors._restart_timing import RestartWindow, backoff_delay


def top(_: object = None) -> float:
    """A 'random' that always draws the top of the range (almost 1)."""
    return 0.999999


class TestBackoff:
    def test_grows_exponentially_up_to_the_maximum(self) -> None:
        """Without jitter the delays are initial * multiplier**attempt, capped."""
        backoff = Backoff(initial=0.1, maximum=1.0, multiplier=2.0, jitter=False)
        assert [backoff_delay(backoff, n, top) for n in range(6)] == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.0, 1.0])

    def test_full_jitter_draws_between_zero_and_the_ceiling(self) -> None:
        """With jitter the delay is random() times the ceiling."""
        backoff = Backoff(initial=1.0, maximum=8.0, multiplier=2.0, jitter=True)
        assert backoff_delay(backoff, 2, lambda: 0.5) == 2.0
        assert backoff_delay(backoff, 2, lambda: 0.0) == 0.0

    def test_zero_initial_means_no_delay(self) -> None:
        """Backoff(initial=0) restarts at once."""
        assert backoff_delay(Backoff(initial=0.0, maximum=0.0), 50, top) == 0.0

    def test_huge_attempts_do_not_overflow(self) -> None:
        """A millionth restart still gets the maximum, without float overflow."""
        assert backoff_delay(Backoff(jitter=False), 10**6, top) == 30.0

    @given(attempt=st.integers(0, 10_000), draw=st.floats(0, 1, exclude_max=True))
    def test_delay_stays_within_bounds(self, attempt: int, draw: float) -> None:
        """Every delay is between 0 and the maximum."""
        delay = backoff_delay(Backoff(), attempt, lambda: draw)
        assert 0.0 <= delay <= 30.0

    def test_multiplier_one_is_constant(self) -> None:
        """multiplier=1 keeps the initial delay."""
        backoff = Backoff(initial=0.5, maximum=5.0, multiplier=1.0, jitter=False)
        assert {backoff_delay(backoff, n, random.random) for n in range(20)} == {0.5}


class TestRestartWindow:
    def test_more_than_max_restarts_within_the_window_is_too_many(self) -> None:
        """The fourth restart within 5 s exceeds Intensity(3, 5)."""
        window = RestartWindow(Intensity(max_restarts=3, within=5.0))
        assert [window.allow(t) for t in (0.0, 1.0, 2.0, 3.0)] == [True, True, True, False]

    def test_restarts_older_than_the_window_do_not_count(self) -> None:
        """A restart exactly `within` seconds old has left the window (sliding)."""
        window = RestartWindow(Intensity(max_restarts=3, within=5.0))
        assert [window.allow(t) for t in (0.0, 1.0, 2.0, 5.0, 6.0, 7.0)] == [True] * 6
        assert window.allow(7.5) is False

    def test_zero_restarts_gives_up_at_the_first(self) -> None:
        """Intensity(max_restarts=0) never restarts."""
        assert RestartWindow(Intensity(max_restarts=0, within=5.0)).allow(0.0) is False

    def test_memory_is_bounded(self) -> None:
        """A million spaced restarts keep at most max_restarts + 1 timestamps."""
        window = RestartWindow(Intensity(max_restarts=3, within=1.0))
        for n in range(10**6):
            window.allow(n * 2.0)
        assert len(window._times) <= 4
