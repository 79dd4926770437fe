"""
anyio-lifecycle: structured-concurrency lifecycles for services.

One component's life and running a program; ``supervisors`` builds trees of
them. Runs unchanged on asyncio (uvloop too) and on Trio through AnyIO.
"""

from __future__ import annotations

from ._asgi import LifespanMiddleware as LifespanMiddleware
from ._context import Context as Context
from ._errors import ComponentError as ComponentError
from ._errors import ConfigurationError as ConfigurationError
from ._errors import LifecycleError as LifecycleError
from ._errors import StoppedError as StoppedError
from ._errors import UsageError as UsageError
from ._health import HealthServer as HealthServer
from ._lock import AlreadyRunningError as AlreadyRunningError
from ._lock import InstanceLock as InstanceLock
from ._policy import Phase as Phase
from ._policy import Priority as Priority
from ._policy import ShutdownPolicy as ShutdownPolicy
from ._report import ComponentReport as ComponentReport
from ._report import Outcome as Outcome
from ._report import ShutdownReport as ShutdownReport
from ._report import State as State
from ._report import StopReason as StopReason
from ._runner import ExitCode as ExitCode
from ._runner import run as run
from ._running import RunningTree as RunningTree
from ._running import current_tree as current_tree
from ._running import running as running
from ._scope import ShieldedScope as ShieldedScope
from ._scope import shielded as shielded
from ._spec import ComponentSpec as ComponentSpec
from ._spec import Style as Style
from ._statefile import StateFile as StateFile
from ._statefile import StateRecord as StateRecord
from ._statefile import read_state_file as read_state_file
from ._statefile import write_state_file as write_state_file
from ._tasks import TaskHandle as TaskHandle
from ._util import fixup_module_metadata

__all__ = [
    "AlreadyRunningError",
    "ComponentError",
    "ComponentReport",
    "ComponentSpec",
    "ConfigurationError",
    "Context",
    "ExitCode",
    "HealthServer",
    "InstanceLock",
    "LifecycleError",
    "LifespanMiddleware",
    "Outcome",
    "Phase",
    "Priority",
    "RunningTree",
    "ShieldedScope",
    "ShutdownPolicy",
    "ShutdownReport",
    "State",
    "StateFile",
    "StateRecord",
    "StopReason",
    "StoppedError",
    "Style",
    "TaskHandle",
    "UsageError",
    "current_tree",
    "read_state_file",
    "run",
    "running",
    "shielded",
    "write_state_file",
]

fixup_module_metadata(__name__, globals(), __all__)
del fixup_module_metadata

# Imported with the package so their objects carry their public module names
# (`lifecycle.lowlevel.Escalation`) wherever they are first seen.
from . import abc as abc  # noqa: E402
from . import lowlevel as lowlevel  # noqa: E402
