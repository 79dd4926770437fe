"""Hypothesis strategies shared across the test suite.

Dependency graphs are plain data (:class:`GraphSpec`): the three sequences
:func:`supervisors._graph.build_graph` takes, in registration order. Random
DAGs depend only on names registered earlier, so they never contain a cycle;
:func:`cyclic_graphs` adds one cycle to such a DAG and says which.
"""

from __future__ import annotations

import keyword
import string
from collections.abc import Sequence

import attrs
from hypothesis import strategies as st

from lifecycle import Priority, ShutdownPolicy

__all__ = [
    "CyclicGraph",
    "GraphSpec",
    "budgets",
    "component_names",
    "cyclic_graphs",
    "dags",
    "graph_from_edges",
    "priorities",
    "shutdown_policies",
]

_RESERVED = frozenset(keyword.kwlist) | frozenset(keyword.softkwlist) | {"ctx"}


def _usable(name: str) -> bool:
    return name.isidentifier() and name not in _RESERVED


component_names: st.SearchStrategy[str] = st.text(
    alphabet=string.ascii_lowercase + string.digits + "_", min_size=1, max_size=8
).filter(_usable)
"""Names a component can have, usable as a parameter name too (never ``ctx`` or a keyword)."""

priorities: st.SearchStrategy[Priority] = st.sampled_from(Priority)
"""Any :class:`lifecycle.Priority`."""


@attrs.frozen
class GraphSpec:
    """A dependency graph as a supervisor declares it, in registration order."""

    names: tuple[str, ...]
    dependencies: tuple[tuple[str, ...], ...]
    priorities: tuple[Priority, ...]

    def __len__(self) -> int:
        return len(self.names)

    def edges(self) -> set[tuple[str, str]]:
        """Return every ``(dependent, dependency)`` pair."""
        return {(name, dep) for name, deps in zip(self.names, self.dependencies, strict=True) for dep in deps}


@attrs.frozen
class CyclicGraph:
    """A graph with at least one cycle; :attr:`cycle` is the one that was injected.

    ``cycle[k]`` depends on ``cycle[k + 1]`` and the last name on the first.
    """

    graph: GraphSpec
    cycle: tuple[str, ...]


@st.composite
def dags(
    draw: st.DrawFn,
    *,
    min_size: int = 0,
    max_size: int = 25,
    max_dependencies: int = 4,
) -> GraphSpec:
    """Random acyclic graphs: each component depends only on earlier-registered ones.

    Args:
        min_size: The fewest components.

        max_size: The most components.

        max_dependencies: The most (distinct) dependencies of one component.
    """
    names = draw(st.lists(component_names, min_size=min_size, max_size=max_size, unique=True))
    dependencies: list[tuple[str, ...]] = []
    for i in range(len(names)):
        if i == 0:
            dependencies.append(())
            continue
        chosen = draw(
            st.lists(
                st.sampled_from(names[:i]),
                max_size=min(i, max_dependencies),
                unique=True,
            )
        )
        dependencies.append(tuple(chosen))
    prios = draw(st.lists(priorities, min_size=len(names), max_size=len(names)))
    return GraphSpec(tuple(names), tuple(dependencies), tuple(prios))


def _with_extra_dependencies(graph: GraphSpec, extra: dict[str, str]) -> GraphSpec:
    deps = tuple(
        deps if name not in extra or extra[name] in deps else (*deps, extra[name])
        for name, deps in zip(graph.names, graph.dependencies, strict=True)
    )
    return attrs.evolve(graph, dependencies=deps)


@st.composite
def cyclic_graphs(draw: st.DrawFn, *, max_size: int = 25, max_cycle: int = 5) -> CyclicGraph:
    """Random graphs with an injected cycle of 1 to *max_cycle* components.

    A cycle of one is a component that depends on itself. The rest of the
    graph is a random DAG, so other cycles may form through its edges.
    """
    graph = draw(dags(min_size=1, max_size=max_size))
    length = draw(st.integers(1, min(max_cycle, len(graph))))
    members = draw(st.permutations(graph.names).map(lambda names: tuple(names[:length])))
    extra = {members[k]: members[(k + 1) % length] for k in range(length)}
    return CyclicGraph(_with_extra_dependencies(graph, extra), members)


budgets: st.SearchStrategy[float] = st.one_of(
    st.integers(0, 120).map(float),
    st.floats(0, 120, allow_nan=False, allow_infinity=False),
    st.just(float("inf")),
)
"""A valid phase budget in seconds, ``math.inf`` included."""


def shutdown_policies() -> st.SearchStrategy[ShutdownPolicy]:
    """Any valid :class:`lifecycle.ShutdownPolicy`, infinite budgets included."""
    return st.builds(ShutdownPolicy, graceful=budgets, forceful=budgets, terminate=budgets)


def graph_from_edges(
    names: Sequence[str],
    edges: Sequence[tuple[str, str]],
    prios: Sequence[Priority] | None = None,
) -> GraphSpec:
    """Build a :class:`GraphSpec` from ``(dependent, dependency)`` pairs (for examples)."""
    deps = tuple(tuple(dep for owner, dep in edges if owner == name) for name in names)
    chosen = tuple(prios) if prios is not None else (Priority.NORMAL,) * len(names)
    return GraphSpec(tuple(names), deps, chosen)
