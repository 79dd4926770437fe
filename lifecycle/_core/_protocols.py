"""How the runner and the CLI see a tree without knowing who built it."""

from __future__ import annotations

from typing import Protocol, final, runtime_checkable

import attrs

from ._policy import Priority

__all__ = ["ChildInfo", "Tree", "TreeInfo"]


@final
@attrs.frozen
class ChildInfo:
    """
    One component of a tree, as ``lifecycle check`` and ``lifecycle graph`` show it.

    Attributes:
        name: The component's name.

        priority: Its declared priority.

        effective: Its effective priority (inherited from its dependents).

        depends_on: The names it depends on.

        main: Whether it is the program's job.

        restart: When it is restarted, as a word (``"permanent"``).

        tree: The nested tree, if the component is one.
    """

    name: str
    priority: Priority
    effective: Priority
    depends_on: tuple[str, ...] = ()
    main: bool = False
    restart: str = ""
    tree: TreeInfo | None = None


@final
@attrs.frozen
class TreeInfo:
    """
    A validated tree: its components and its start and stop waves.

    Attributes:
        name: The tree's (supervisor's) name.

        children: Its components, in registration order.

        start_waves: Names grouped in start waves, first wave first.

        stop_waves: Names grouped in stop waves, first wave first.
    """

    name: str
    children: tuple[ChildInfo, ...]
    start_waves: tuple[tuple[str, ...], ...]
    stop_waves: tuple[tuple[str, ...], ...]


@runtime_checkable
class Tree(Protocol):
    """
    A component that holds other components (a supervisor).

    :func:`lifecycle.running`, :func:`lifecycle.run` and the CLI call
    :meth:`validate_tree` before anything starts; ``lifecycle check`` and
    ``lifecycle graph`` show :meth:`describe_tree`.
    """

    def validate_tree(self) -> None:
        """Raise :class:`~lifecycle.ConfigurationError` if the tree is declared wrongly."""

    def describe_tree(self) -> TreeInfo:
        """Validate the tree and describe it."""
