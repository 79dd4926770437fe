"""
anyio-lifecycle: structured-concurrency lifecycles for services.

One component's life and running a program; ``supervisors`` builds trees of
them. Runs unchanged on asyncio (uvloop too) and on Trio through AnyIO.
"""

from __future__ import annotations

from ._asgi import LifespanMiddleware as LifespanMiddleware
from ._cleanup import CleanupOnFailure as CleanupOnFailure
from ._cleanup import cleanup_on_failure as cleanup_on_failure
from ._cleanup import on_failure as on_failure
from ._commands import CommandResult as CommandResult
from ._commands import CommandTimeoutError as CommandTimeoutError
from ._commands import run_command as run_command
from ._context import Context as Context
from ._environ import EnvironScope as EnvironScope
from ._environ import scoped_env as scoped_env
from ._errors import ComponentError as ComponentError
from ._errors import ConfigurationError as ConfigurationError
from ._errors import LifecycleError as LifecycleError
from ._errors import StoppedError as StoppedError
from ._errors import UsageError as UsageError
from ._gather import gather as gather
from ._health import HealthServer as HealthServer
from ._lock import AlreadyRunningError as AlreadyRunningError
from ._lock import InstanceLock as InstanceLock
from ._observe import ComponentStatus as ComponentStatus
from ._observe import Subscription as Subscription
from ._policy import Phase as Phase
from ._policy import Priority as Priority
from ._policy import ShutdownPolicy as ShutdownPolicy
from ._probes import ReadyOnLine as ReadyOnLine
from ._probes import ReadyOnNotify as ReadyOnNotify
from ._probes import ReadyOnPort as ReadyOnPort
from ._probes import ReadyOnSocket as ReadyOnSocket
from ._probes import wait_for_exit as wait_for_exit
from ._probes import wait_for_port as wait_for_port
from ._probes import wait_for_socket as wait_for_socket
from ._process import ProcessComponent as ProcessComponent
from ._process_errors import ProcessExitedError as ProcessExitedError
from ._process_errors import ReadinessTimeoutError as ReadinessTimeoutError
from ._report import ComponentReport as ComponentReport
from ._report import Outcome as Outcome
from ._report import PhaseChange as PhaseChange
from ._report import ShutdownReport as ShutdownReport
from ._report import State as State
from ._report import StopReason as StopReason
from ._reporting import report_error as report_error
from ._runner import ExitCode as ExitCode
from ._runner import run as run
from ._running import RunningTree as RunningTree
from ._running import current_tree as current_tree
from ._running import running as running
from ._scope import ShieldedScope as ShieldedScope
from ._scope import shielded as shielded
from ._singleflight import SingleFlight as SingleFlight
from ._spec import ComponentSpec as ComponentSpec
from ._spec import Style as Style
from ._statefile import StateFile as StateFile
from ._statefile import StateRecord as StateRecord
from ._statefile import read_state_file as read_state_file
from ._statefile import write_state_file as write_state_file
from ._tasks import TaskHandle as TaskHandle
from ._timeouts import call_with_timeout as call_with_timeout
from ._util import fixup_module_metadata

__all__ = [
    "AlreadyRunningError",
    "CleanupOnFailure",
    "CommandResult",
    "CommandTimeoutError",
    "ComponentError",
    "ComponentReport",
    "ComponentSpec",
    "ComponentStatus",
    "ConfigurationError",
    "Context",
    "EnvironScope",
    "ExitCode",
    "HealthServer",
    "InstanceLock",
    "LifecycleError",
    "LifespanMiddleware",
    "Outcome",
    "Phase",
    "PhaseChange",
    "Priority",
    "ProcessComponent",
    "ProcessExitedError",
    "ReadinessTimeoutError",
    "ReadyOnLine",
    "ReadyOnNotify",
    "ReadyOnPort",
    "ReadyOnSocket",
    "RunningTree",
    "ShieldedScope",
    "ShutdownPolicy",
    "ShutdownReport",
    "SingleFlight",
    "State",
    "StateFile",
    "StateRecord",
    "StopReason",
    "StoppedError",
    "Style",
    "Subscription",
    "TaskHandle",
    "UsageError",
    "call_with_timeout",
    "cleanup_on_failure",
    "current_tree",
    "gather",
    "on_failure",
    "read_state_file",
    "report_error",
    "run",
    "run_command",
    "running",
    "scoped_env",
    "shielded",
    "wait_for_exit",
    "wait_for_port",
    "wait_for_socket",
    "write_state_file",
]

fixup_module_metadata(__name__, globals(), __all__)
del fixup_module_metadata

# Imported with the package so their objects carry their public module names
# (`lifecycle.lowlevel.Escalation`) wherever they are first seen.
from . import abc as abc  # noqa: E402
from . import lowlevel as lowlevel  # noqa: E402
