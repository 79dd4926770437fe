"""Every async test runs on asyncio, uvloop (where installed) and trio."""

from __future__ import annotations

import importlib.util
from typing import Any

import pytest
import trio.testing

_BACKENDS = [
    pytest.param("asyncio", id="asyncio"),
    pytest.param(
        ("asyncio", {"use_uvloop": True}),
        id="uvloop",
        marks=pytest.mark.skipif(importlib.util.find_spec("uvloop") is None, reason="uvloop is not installed"),
    ),
    pytest.param("trio", id="trio"),
]


@pytest.fixture(params=_BACKENDS)
def anyio_backend(request: pytest.FixtureRequest) -> Any:
    """
    The backend of an async test.

    Tests marked ``virtual_time`` run only on trio, with a fresh
    ``MockClock(autojump_threshold=0)``: time jumps whenever every task is
    blocked, so elapsed times are exact and nothing waits on the wall clock.
    """
    if request.node.get_closest_marker("virtual_time"):
        if request.param != "trio":
            pytest.skip("virtual-time tests run on trio's MockClock")
        return ("trio", {"clock": trio.testing.MockClock(autojump_threshold=0)})
    return request.param
