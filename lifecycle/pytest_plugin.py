"""
Pytest fixtures for testing code built on ``lifecycle``.

Enable them in a ``conftest.py`` with ``pytest_plugins = ["lifecycle.pytest_plugin"]``
(or ``-p lifecycle.pytest_plugin``). The fixtures are synchronous, so they work
in async tests under AnyIO's plugin (every backend) and under pytest-trio alike.
This module imports pytest; :mod:`lifecycle.testing` does not.
"""

from __future__ import annotations

from ._core._exports import fixup_module_metadata
from ._testing._fixtures import lifecycle_faults as lifecycle_faults
from ._testing._fixtures import lifecycle_recorder as lifecycle_recorder

__all__ = ["lifecycle_faults", "lifecycle_recorder"]

fixup_module_metadata(__name__, globals(), __all__)
del fixup_module_metadata
