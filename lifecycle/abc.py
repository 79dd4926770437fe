"""Protocols that other code implements to plug into ``lifecycle``."""

from __future__ import annotations

from ._core._exports import fixup_module_metadata
from ._core._observe import ChildStatuses as ChildStatuses
from ._core._protocols import ChildInfo as ChildInfo
from ._core._protocols import Tree as Tree
from ._core._protocols import TreeInfo as TreeInfo

__all__ = ["ChildInfo", "ChildStatuses", "Tree", "TreeInfo"]

fixup_module_metadata(__name__, globals(), __all__)
del fixup_module_metadata
