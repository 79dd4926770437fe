"""
Virtual time for tests: the ``virtual_time`` marker and ``lifecycle_virtual_clock`` (this module imports pytest).

A test marked ``virtual_time`` (or requesting ``lifecycle_virtual_clock``) is
generated for Trio only, on a fresh ``trio.testing.MockClock(autojump_threshold=0)``
given to AnyIO's pytest plugin as a backend option: time jumps whenever every
task is blocked, so elapsed times are exact and nothing waits on the wall clock.
The test is not generated for the other backends at all, so no run opens with a
page of skips.
"""

from __future__ import annotations

import importlib.util
from typing import TYPE_CHECKING, Final

import pytest

if TYPE_CHECKING:
    import trio.testing

__all__ = ["lifecycle_virtual_clock", "pytest_collection_modifyitems", "pytest_configure", "pytest_generate_tests"]

MARKER: Final = "virtual_time"
FIXTURE: Final = "lifecycle_virtual_clock"
_BACKEND: Final = "anyio_backend"


class _Pending:
    """The value a virtual-time test is generated with; each test gets its own clock at collection's end."""

    def __repr__(self) -> str:
        return "trio with a MockClock"


_PENDING: Final = _Pending()


def pytest_configure(config: pytest.Config) -> None:
    """Register the ``virtual_time`` marker."""
    config.addinivalue_line(
        "markers",
        f"{MARKER}: run only on trio with a fresh MockClock(autojump_threshold=0) (lifecycle.pytest_plugin)",
    )


def _is_virtual(definition: pytest.Function, fixturenames: list[str]) -> bool:
    return definition.get_closest_marker(MARKER) is not None or FIXTURE in fixturenames


def _parametrizes_backend(definition: pytest.Function) -> bool:
    for mark in definition.iter_markers("parametrize"):
        names = mark.args[0] if mark.args else mark.kwargs.get("argnames", "")
        listed = [n.strip() for n in names.split(",")] if isinstance(names, str) else list(names)
        if _BACKEND in listed:
            return True
    return False


@pytest.hookimpl(tryfirst=True)
def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """
    Generate a virtual-time async test for Trio only.

    It runs before pytest reads the ``parametrize`` markers, and adds one that
    parametrizes ``anyio_backend`` directly, which takes precedence over any
    ``anyio_backend`` fixture and its backends. A test that parametrizes
    ``anyio_backend`` itself is left as it is.
    """
    definition = metafunc.definition
    if _BACKEND not in metafunc.fixturenames or not _is_virtual(definition, metafunc.fixturenames):
        return
    if _parametrizes_backend(definition):
        return
    definition.add_marker(pytest.mark.parametrize(_BACKEND, [pytest.param(_PENDING, id="trio")]), append=False)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Give every virtual-time test its own ``MockClock``, or skip it with the reason when Trio is missing."""
    have_trio = importlib.util.find_spec("trio") is not None
    for item in items:
        callspec = getattr(item, "callspec", None)
        if callspec is None or callspec.params.get(_BACKEND) is not _PENDING:
            continue
        if not have_trio:
            reason = "virtual-time tests run on trio's MockClock: install trio (the `trio` extra)"
            item.add_marker(pytest.mark.skip(reason=reason))
            callspec.params[_BACKEND] = "asyncio"
            continue
        import trio.testing  # noqa: PLC0415 - trio is optional; imported only when a test needs it

        callspec.params[_BACKEND] = ("trio", {"clock": trio.testing.MockClock(autojump_threshold=0)})


@pytest.fixture
def lifecycle_virtual_clock(anyio_backend: object) -> trio.testing.MockClock:
    """
    The ``trio.testing.MockClock`` of a virtual-time test.

    Requesting it makes the test a virtual-time test, like the ``virtual_time``
    marker: it runs only on Trio, on a fresh ``MockClock(autojump_threshold=0)``,
    and this is that clock (to read ``current_time()`` outside the loop, or to
    ``jump()`` by hand).
    """
    import trio.testing  # noqa: PLC0415 - trio is optional

    options = anyio_backend[1] if isinstance(anyio_backend, tuple) else {}
    clock = options.get("clock") if isinstance(options, dict) else None
    if not isinstance(clock, trio.testing.MockClock):
        msg = (
            f"`{FIXTURE}` needs the test to run on trio's MockClock, but `anyio_backend` is {anyio_backend!r}: "
            f"drop the test's own parametrization of `anyio_backend`, or give it a MockClock"
        )
        raise RuntimeError(msg)  # noqa: TRY004 - a test set up wrongly, not an argument of the wrong type
    return clock
