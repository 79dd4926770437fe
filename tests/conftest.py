"""Every async test runs on asyncio, uvloop (where installed) and trio."""

from __future__ import annotations

import importlib.util
from typing import Any

import pytest
from hypothesis import settings

# The suite's virtual time is the one users get: tests marked `virtual_time` are generated for trio
# only, each on a fresh MockClock(autojump_threshold=0).
pytest_plugins = ["lifecycle.pytest_plugin"]

_BACKENDS = [
    pytest.param("asyncio", id="asyncio"),
    pytest.param(
        ("asyncio", {"use_uvloop": True}),
        id="uvloop",
        marks=pytest.mark.skipif(importlib.util.find_spec("uvloop") is None, reason="uvloop is not installed"),
    ),
    pytest.param("trio", id="trio"),
]

# The profile scripts/check.py runs with (`--hypothesis-profile=ci`, with a fixed and printed
# `--hypothesis-seed`): no example database, so a run depends only on the code and the seed, and no
# deadline, so a slow or loaded machine cannot fail a test by its speed; a failure prints its blob.
settings.register_profile("ci", database=None, deadline=None, print_blob=True)


@pytest.fixture(params=_BACKENDS)
def anyio_backend(request: pytest.FixtureRequest) -> Any:
    """
    The backend of an async test.

    Tests marked ``virtual_time`` never reach this fixture: ``lifecycle.pytest_plugin``
    generates them for trio only, each on a fresh ``MockClock(autojump_threshold=0)``.
    """
    return request.param
