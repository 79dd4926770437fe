"""
Helpers for testing code built on ``lifecycle``, like :mod:`trio.testing`.

Run a tree in a test (:func:`open_tree`), make a component fail at a chosen
point without editing it (:func:`inject_fault`), record what every component
did (:class:`Recorder`) and check the order of starts and stops, from a
recorder or from a :class:`~lifecycle.ShutdownReport`. Everything here works on
every backend and with any test framework; :mod:`lifecycle.pytest_plugin`
adds pytest fixtures. Importing this module imports neither pytest nor
``supervisors``.
"""

from __future__ import annotations

from ._core._exports import fixup_module_metadata
from ._testing._faults import Fault as Fault
from ._testing._faults import InjectedError as InjectedError
from ._testing._faults import InjectedFault as InjectedFault
from ._testing._faults import inject_fault as inject_fault
from ._testing._harness import assert_start_order as assert_start_order
from ._testing._harness import assert_stop_order as assert_stop_order
from ._testing._harness import open_tree as open_tree
from ._testing._recorder import Recorder as Recorder
from ._testing._recorder import Transition as Transition

__all__ = [
    "Fault",
    "InjectedError",
    "InjectedFault",
    "Recorder",
    "Transition",
    "assert_start_order",
    "assert_stop_order",
    "inject_fault",
    "open_tree",
]

fixup_module_metadata(__name__, globals(), __all__)
del fixup_module_metadata
