"""Protocols that other code implements to plug into ``lifecycle``."""

from __future__ import annotations

from ._spec import Tree as Tree
from ._util import fixup_module_metadata

__all__ = ["Tree"]

fixup_module_metadata(__name__, globals(), __all__)
del fixup_module_metadata
