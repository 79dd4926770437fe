"""
Supervision trees for ``lifecycle`` components.

A :class:`Supervisor` starts its children in dependency order, watches them,
and stops them in priority and dependency order through the shutdown phases.
"""

from __future__ import annotations

from ._child import ChildOptions as ChildOptions
from ._errors import GaveUpError as GaveUpError
from ._graph import Graph as Graph
from ._strategy import AutoShutdown as AutoShutdown
from ._strategy import Backoff as Backoff
from ._strategy import Intensity as Intensity
from ._strategy import Restart as Restart
from ._strategy import Strategy as Strategy
from ._supervisor import Supervisor as Supervisor

__all__ = [
    "AutoShutdown",
    "Backoff",
    "ChildOptions",
    "GaveUpError",
    "Graph",
    "Intensity",
    "Restart",
    "Strategy",
    "Supervisor",
]

# Public objects say they live here, so tracebacks and the docs show
# `supervisors.Supervisor` rather than `supervisors._supervisor.Supervisor`.
for _name in __all__:
    globals()[_name].__module__ = __name__
del _name
