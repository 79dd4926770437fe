"""
Low-level building blocks for code that runs components itself.

``supervisors`` is built on these; use them to write a supervisor of your own.
Everything here keeps the guarantees of the high-level API (shielded component
tasks, phase deadlines, reports), but the caller must stop every instance it
starts. :class:`Option` checks options the way the package checks its own.
"""

from __future__ import annotations

from ._core._escalation import Escalation as Escalation
from ._core._escalation import combine_policies as combine_policies
from ._core._exports import fixup_module_metadata
from ._core._failures import failure_group as failure_group
from ._core._failures import flatten_failures as flatten_failures
from ._core._instance import ComponentInstance as ComponentInstance
from ._core._instance import current_instance as current_instance
from ._core._observe import status_of as status_of
from ._core._safe_logging import safe_logger as safe_logger
from ._core._stop import stop_instances as stop_instances
from ._core._validation import Option as Option

__all__ = [
    "ComponentInstance",
    "Escalation",
    "Option",
    "combine_policies",
    "current_instance",
    "failure_group",
    "flatten_failures",
    "safe_logger",
    "status_of",
    "stop_instances",
]

fixup_module_metadata(__name__, globals(), __all__)
del fixup_module_metadata
