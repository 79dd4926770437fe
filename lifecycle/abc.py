"""Protocols that other code implements to plug into ``lifecycle``."""

from __future__ import annotations

from ._observe import ChildStatuses as ChildStatuses
from ._tree import ChildInfo as ChildInfo
from ._tree import Tree as Tree
from ._tree import TreeInfo as TreeInfo
from ._util import fixup_module_metadata

__all__ = ["ChildInfo", "ChildStatuses", "Tree", "TreeInfo"]

fixup_module_metadata(__name__, globals(), __all__)
del fixup_module_metadata
