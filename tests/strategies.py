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

from lifecycle import Phase, Priority, ShutdownPolicy

__all__ = [
    "HEALTHY",
    "STYLES",
    "TEARDOWNS",
    "ChildPlan",
    "CyclicGraph",
    "GraphSpec",
    "Life",
    "Scenario",
    "TreePlan",
    "budgets",
    "component_names",
    "cyclic_graphs",
    "dags",
    "graph_from_edges",
    "lives",
    "priorities",
    "scenarios",
    "shutdown_policies",
    "tree_plans",
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


# -- trees with faults -------------------------------------------------------------------
#
# A scenario is plain data, drawn whole as the argument of a @given test (no
# st.data()), so Hypothesis never runs inside the event loop. Times are in
# abstract units: the test picks the length of a unit (a virtual second on
# trio's MockClock, a few milliseconds of real time on asyncio).

STYLES = ("generator", "function", "object")
"""How a component is written: an async generator, an async function taking ``ctx``, a class with ``run``."""

TEARDOWNS = ("ok", "fail", "hang_graceful", "hang_forceful", "hang_terminate", "stubborn")
"""What a component's teardown does: end, raise, hang until a phase ends (and is cut off), ignore cancellation."""


@attrs.frozen
class Life:
    """What one start of a component does.

    Attributes:
        start_delay: Units its start takes.

        start: ``"ok"`` or ``"fail"`` (raises before it is ready).

        run: After it is ready: ``"forever"``, ``"fail"`` (raises after
            ``run_for`` units), ``"finish"`` (returns after ``run_for`` units),
            ``"swallow"`` (catches the cancellation of its stop and returns).
            Generators only do ``"forever"`` and ``"fail"`` (from a critical task).

        run_for: Units before it fails or finishes.

        block: Blocks the event loop briefly (a synchronous call) once ready.

        teardown: One of :data:`TEARDOWNS`.

        stubborn_for: Units a ``"stubborn"`` teardown ignores cancellation.
    """

    start_delay: int = 0
    start: str = "ok"
    run: str = "forever"
    run_for: int = 1
    block: bool = False
    teardown: str = "ok"
    stubborn_for: int = 1


HEALTHY = Life()


@attrs.frozen
class ChildPlan:
    """One child of a supervisor; ``lives[k]`` is what its start number ``k + 1`` does (later ones are healthy)."""

    name: str
    depends_on: tuple[str, ...]
    priority: Priority
    style: str
    restart: str
    lives: tuple[Life, ...] = ()
    tree: TreePlan | None = None

    def life(self, number: int) -> Life:
        """What start *number* (1 for the first) does."""
        return self.lives[number - 1] if number <= len(self.lives) else HEALTHY


@attrs.frozen
class TreePlan:
    """A supervisor and its children, in registration order."""

    name: str
    strategy: str
    max_restarts: int
    backoff: int
    children: tuple[ChildPlan, ...]

    def walk(self, prefix: str = "") -> list[tuple[str, ChildPlan]]:
        """Every child with its path, nested trees included."""
        path = f"{prefix}{self.name}"
        found: list[tuple[str, ChildPlan]] = []
        for child in self.children:
            found.append((f"{path}/{child.name}", child))
            if child.tree is not None:
                found.extend(child.tree.walk(f"{path}/"))
        return found


@attrs.frozen
class Scenario:
    """A tree, its shutdown budgets (units) and when the test asks it to stop (and escalates)."""

    tree: TreePlan
    budgets: tuple[int, int, int]
    stop_at: int
    escalate: tuple[int, Phase] | None = None


def lives(style: str) -> st.SearchStrategy[Life]:
    """One start of a component written in *style*, healthy more often than not."""
    runs = ("forever", "fail") if style == "generator" else ("forever", "fail", "finish", "swallow")
    faulty = st.builds(
        Life,
        start_delay=st.integers(0, 2),
        start=st.sampled_from(("ok", "ok", "fail")),
        run=st.sampled_from(runs),
        run_for=st.integers(0, 3),
        block=st.booleans(),
        teardown=st.sampled_from(TEARDOWNS),
        stubborn_for=st.integers(1, 8),
    )
    return st.one_of(st.just(HEALTHY), st.builds(Life, start_delay=st.integers(0, 2)), faulty)


@st.composite
def tree_plans(draw: st.DrawFn, *, name: str = "root", max_children: int = 5, nest: bool = True) -> TreePlan:
    """A supervisor with random children: dependencies, priorities, styles, restart types and lives."""
    graph = draw(dags(min_size=1, max_size=max_children, max_dependencies=2))
    children = []
    nested_at = draw(st.integers(0, len(graph) - 1)) if nest and draw(st.booleans()) else None
    for i, (child, deps, prio) in enumerate(zip(graph.names, graph.dependencies, graph.priorities, strict=True)):
        style = draw(st.sampled_from(STYLES))
        restart = draw(st.sampled_from(("permanent", "transient", "temporary")))
        if i == nested_at:
            sub = draw(tree_plans(name=child, max_children=3, nest=False))
            children.append(ChildPlan(child, deps, prio, "tree", restart, (), sub))
            continue
        plan_lives = draw(st.lists(lives(style), max_size=3))
        children.append(ChildPlan(child, deps, prio, style, restart, tuple(plan_lives)))
    return TreePlan(
        name=name,
        strategy=draw(st.sampled_from(("one_for_one", "one_for_all", "rest_for_one"))),
        max_restarts=draw(st.integers(0, 3)),
        backoff=draw(st.integers(0, 1)),
        children=tuple(children),
    )


def scenarios() -> st.SearchStrategy[Scenario]:
    """A random tree with faults, budgets of 1-3 units per phase, and a stop request at 0-8 units (maybe escalated)."""
    return st.builds(
        Scenario,
        tree=tree_plans(),
        budgets=st.tuples(st.integers(1, 3), st.integers(1, 3), st.integers(1, 3)),
        stop_at=st.integers(0, 8),
        escalate=st.none() | st.tuples(st.integers(0, 3), st.sampled_from((Phase.FORCEFUL, Phase.TERMINATE))),
    )
