"""The pytest fixtures of ``lifecycle.pytest_plugin`` (this module imports pytest)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack

import pytest

from lifecycle._core._policy import Phase

from ._faults import Fault, InjectedFault, inject_fault
from ._recorder import Recorder

__all__ = ["lifecycle_faults", "lifecycle_recorder"]


@pytest.fixture
def lifecycle_recorder() -> Iterator[Recorder]:
    """A :class:`~lifecycle.testing.Recorder` active for the whole test."""
    with Recorder() as recorder:
        yield recorder


@pytest.fixture
def lifecycle_faults() -> Iterator[Callable[..., InjectedFault]]:
    """
    :func:`~lifecycle.testing.inject_fault`, with every fault removed when the test ends.

    ``lifecycle_faults("db", Fault.START)`` takes the arguments of
    :func:`~lifecycle.testing.inject_fault` and returns the active
    :class:`~lifecycle.testing.InjectedFault`.
    """
    with ExitStack() as stack:

        def inject(
            component: str,
            at: Fault,
            *,
            error: BaseException | None = None,
            delay: float = 0.0,
            until: Phase = Phase.GRACEFUL,
            times: int | None = 1,
        ) -> InjectedFault:
            fault = inject_fault(component, at, error=error, delay=delay, until=until, times=times)
            return stack.enter_context(fault)

        yield inject
