"""``python -m lifecycle``: the ``lifecycle`` command."""

from __future__ import annotations

from ._host._cli import entry_point

entry_point()
