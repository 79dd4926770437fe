"""
anyio-lifecycle: structured-concurrency lifecycles for services.

One component's life and running a program; ``supervisors`` builds trees of
them. Runs unchanged on asyncio (uvloop too) and on Trio through AnyIO.
"""

# The layout, inside out; each layer imports only from the layers above it in this list:
#
#   _core/          the kernel: declaring components (spec, context), the component
#                   engine and its stop, shielded scopes, escalation, policies, reports,
#                   errors, owned tasks, option checks, settings, the observation
#                   vocabulary, and _backends/ (what the engine needs from each loop)
#   _helpers/       cancellation-safe helpers on the kernel: gather, SingleFlight,
#                   call_with_timeout, scoped_env, on_failure / cleanup_on_failure
#   _host/          running a tree in a program: RunningTree and its observation API,
#                   running(), run(), signals, the watchdog, logging setup,
#                   unhandled-error routing, startup progress, the `lifecycle` command
#   _processes/     child processes: ProcessComponent, readiness probes, process
#                   groups, run_command(), output pumping
#   _integrations/  health endpoint, systemd notify, ASGI lifespan, state file and
#                   instance lock, each written on the public API only (the observation
#                   API of RunningTree), never on another object's private attributes
#   _testing/       the kit behind lifecycle.testing and lifecycle.pytest_plugin
#
# `supervisors` is built on the public API of this package; nothing here imports it.
# Processes and integrations load on first use (`__getattr__` below), so `import
# lifecycle` starts no HTTP server code, ASGI adapter or process management.

from __future__ import annotations

import typing

from ._core._context import Context as Context
from ._core._errors import ComponentError as ComponentError
from ._core._errors import ConfigurationError as ConfigurationError
from ._core._errors import LifecycleError as LifecycleError
from ._core._errors import StoppedError as StoppedError
from ._core._errors import UsageError as UsageError
from ._core._exports import fixup_module_metadata
from ._core._exports import load_lazy_export as _load_lazy_export
from ._core._observe import ComponentStatus as ComponentStatus
from ._core._observe import Subscription as Subscription
from ._core._policy import Phase as Phase
from ._core._policy import Priority as Priority
from ._core._policy import ShutdownPolicy as ShutdownPolicy
from ._core._reload import ReloadReport as ReloadReport
from ._core._report import ComponentReport as ComponentReport
from ._core._report import ShutdownReport as ShutdownReport
from ._core._report_error import report_error as report_error
from ._core._scope import ShieldedScope as ShieldedScope
from ._core._scope import shielded as shielded
from ._core._spec import ComponentSpec as ComponentSpec
from ._core._spec import Style as Style
from ._core._states import Outcome as Outcome
from ._core._states import PhaseChange as PhaseChange
from ._core._states import State as State
from ._core._states import StopReason as StopReason
from ._core._tasks import TaskHandle as TaskHandle
from ._helpers._cleanup import CleanupOnFailure as CleanupOnFailure
from ._helpers._cleanup import cleanup_on_failure as cleanup_on_failure
from ._helpers._cleanup import on_failure as on_failure
from ._helpers._environ import EnvironScope as EnvironScope
from ._helpers._environ import scoped_env as scoped_env
from ._helpers._gather import gather as gather
from ._helpers._singleflight import SingleFlight as SingleFlight
from ._helpers._timeouts import call_with_timeout as call_with_timeout
from ._host._embedded import running as running
from ._host._program import ExitCode as ExitCode
from ._host._program import run as run
from ._host._running_tree import RunningTree as RunningTree
from ._host._running_tree import current_tree as current_tree

if typing.TYPE_CHECKING:
    from ._integrations._asgi import LifespanMiddleware as LifespanMiddleware
    from ._integrations._health import HealthServer as HealthServer
    from ._integrations._instance_lock import AlreadyRunningError as AlreadyRunningError
    from ._integrations._instance_lock import InstanceLock as InstanceLock
    from ._integrations._state_file import StateFile as StateFile
    from ._integrations._state_file import StateRecord as StateRecord
    from ._integrations._state_file import read_state_file as read_state_file
    from ._integrations._state_file import write_state_file as write_state_file
    from ._processes._commands import CommandResult as CommandResult
    from ._processes._commands import CommandTimeoutError as CommandTimeoutError
    from ._processes._commands import run_command as run_command
    from ._processes._component import ProcessComponent as ProcessComponent
    from ._processes._errors import ContainmentError as ContainmentError
    from ._processes._errors import ProcessExitedError as ProcessExitedError
    from ._processes._errors import ReadinessTimeoutError as ReadinessTimeoutError
    from ._processes._probes import ReadyOnLine as ReadyOnLine
    from ._processes._probes import ReadyOnNotify as ReadyOnNotify
    from ._processes._probes import ReadyOnPort as ReadyOnPort
    from ._processes._probes import ReadyOnSocket as ReadyOnSocket
    from ._processes._probes import wait_for_exit as wait_for_exit
    from ._processes._probes import wait_for_port as wait_for_port
    from ._processes._probes import wait_for_socket as wait_for_socket

# Loaded on first use: a public name -> the module that defines it.
_LAZY = {
    "AlreadyRunningError": "lifecycle._integrations._instance_lock",
    "CommandResult": "lifecycle._processes._commands",
    "CommandTimeoutError": "lifecycle._processes._commands",
    "HealthServer": "lifecycle._integrations._health",
    "InstanceLock": "lifecycle._integrations._instance_lock",
    "LifespanMiddleware": "lifecycle._integrations._asgi",
    "ContainmentError": "lifecycle._processes._errors",
    "ProcessComponent": "lifecycle._processes._component",
    "ProcessExitedError": "lifecycle._processes._errors",
    "ReadinessTimeoutError": "lifecycle._processes._errors",
    "ReadyOnLine": "lifecycle._processes._probes",
    "ReadyOnNotify": "lifecycle._processes._probes",
    "ReadyOnPort": "lifecycle._processes._probes",
    "ReadyOnSocket": "lifecycle._processes._probes",
    "StateFile": "lifecycle._integrations._state_file",
    "StateRecord": "lifecycle._integrations._state_file",
    "read_state_file": "lifecycle._integrations._state_file",
    "run_command": "lifecycle._processes._commands",
    "wait_for_exit": "lifecycle._processes._probes",
    "wait_for_port": "lifecycle._processes._probes",
    "wait_for_socket": "lifecycle._processes._probes",
    "write_state_file": "lifecycle._integrations._state_file",
}

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
    "ContainmentError",
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
    "ReloadReport",
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

fixup_module_metadata(__name__, globals(), [name for name in __all__ if name not in _LAZY])
del fixup_module_metadata


def __getattr__(name: str) -> object:
    """Load a name of the processes or integrations layer on first use."""
    return _load_lazy_export(__name__, globals(), _LAZY, name)


def __dir__() -> list[str]:
    """List the loaded names and those still to be loaded on first use."""
    return sorted({*globals(), *_LAZY})


# Imported with the package so their objects carry their public module names
# (`lifecycle.lowlevel.Escalation`) wherever they are first seen.
from . import abc as abc  # noqa: E402
from . import lowlevel as lowlevel  # noqa: E402
