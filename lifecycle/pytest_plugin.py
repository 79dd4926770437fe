"""
Pytest fixtures for testing code built on ``lifecycle``.

Enable them in a ``conftest.py`` with ``pytest_plugins = ["lifecycle.pytest_plugin"]``
(or ``-p lifecycle.pytest_plugin``). The fixtures are synchronous, so they work
in async tests under AnyIO's plugin (every backend) and under pytest-trio alike.
This module imports pytest; :mod:`lifecycle.testing` does not.

It also makes virtual time a marker: a test marked ``virtual_time`` (or
requesting ``lifecycle_virtual_clock``) is generated for Trio only, on a fresh
``trio.testing.MockClock(autojump_threshold=0)``.
"""

from __future__ import annotations

from ._core._exports import fixup_module_metadata
from ._testing._fixtures import lifecycle_faults as lifecycle_faults
from ._testing._fixtures import lifecycle_recorder as lifecycle_recorder
from ._testing._virtual_time import lifecycle_virtual_clock as lifecycle_virtual_clock
from ._testing._virtual_time import pytest_collection_modifyitems as pytest_collection_modifyitems
from ._testing._virtual_time import pytest_configure as pytest_configure
from ._testing._virtual_time import pytest_generate_tests as pytest_generate_tests

__all__ = [
    "lifecycle_faults",
    "lifecycle_recorder",
    "lifecycle_virtual_clock",
    "pytest_collection_modifyitems",
    "pytest_configure",
    "pytest_generate_tests",
]

fixup_module_metadata(__name__, globals(), __all__)
del fixup_module_metadata
