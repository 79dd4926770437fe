"""The dependency graph of a supervisor's children: validation, priority, waves."""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from typing import final

import attrs

from lifecycle import ConfigurationError, Priority

__all__ = ["Graph", "build_graph"]

# Beyond this many names, "did you mean" suggestions (difflib, quadratic) are skipped.
_SUGGEST_LIMIT = 5000


@final
@attrs.frozen
class Graph:
    """
    A validated dependency graph with its start and stop waves.

    Built by :meth:`Supervisor.graph`; every sequence is indexed like
    :attr:`names`, which is registration order.

    Attributes:
        names: The components, in registration order.

        dependencies: For each component, the indices of the components it
            depends on.

        dependents: For each component, the indices of the components that
            depend on it.

        priorities: Each component's declared priority.

        effective: Each component's effective priority: the most important of
            its own and that of everything that depends on it, directly or not.

        stop_waves: Indices grouped in stop waves, first wave first. A
            component's dependents are all in earlier waves; lower effective
            priorities stop in earlier waves than higher ones.

    """

    names: tuple[str, ...]
    dependencies: tuple[tuple[int, ...], ...]
    dependents: tuple[tuple[int, ...], ...]
    priorities: tuple[Priority, ...]
    effective: tuple[Priority, ...]
    stop_waves: tuple[tuple[int, ...], ...]

    @property
    def start_waves(self) -> tuple[tuple[int, ...], ...]:
        """Indices grouped in start waves (the stop waves, reversed)."""
        return self.stop_waves[::-1]

    def named_waves(self, *, stop: bool = True) -> list[list[str]]:
        """
        Return the stop (or start) waves as lists of names.

        Args:
            stop: ``True`` for stop waves, ``False`` for start waves.
        """
        waves = self.stop_waves if stop else self.start_waves
        return [[self.names[i] for i in wave] for wave in waves]

    def inherited(self) -> list[tuple[str, Priority, Priority]]:
        """
        Return the components whose effective priority was raised by a dependent.

        Each entry is ``(name, declared, effective)``.
        """
        return [
            (self.names[i], own, eff)
            for i, (own, eff) in enumerate(zip(self.priorities, self.effective, strict=True))
            if eff < own
        ]


def _unknown_dependency_message(owner: str, missing: str, names: Sequence[str]) -> str:
    msg = (
        f"Component {owner!r} depends on {missing!r}, but no component named {missing!r} "
        "is registered with this supervisor."
    )
    # difflib is quadratic in the worst case; a name list this long only shows the error.
    # The owner itself is never suggested: that would suggest a self-dependency.
    candidates = [name for name in names if name != owner] if len(names) < _SUGGEST_LIMIT else []
    close = difflib.get_close_matches(missing, candidates, n=1, cutoff=0.75)
    if close:
        msg += f" Did you mean {close[0]!r}?"
    else:
        msg += " Register it first, or fix the parameter name or `depends_on` entry."
    return msg


def _cycle_message(start: int, names: Sequence[str], dependents: Sequence[list[int]], left: set[int]) -> str:
    # Every node left after Kahn's pass has a dependent that is also left, so walking
    # dependents inside `left` must come back to a node already seen: that loop is a cycle.
    seen: dict[int, int] = {}
    walk: list[int] = []
    node = start
    while node not in seen:
        seen[node] = len(walk)
        walk.append(node)
        node = min(d for d in dependents[node] if d in left)
    cycle = walk[seen[node] :]
    # `cycle` runs in the dependent direction (each depends on the one before it);
    # print it as "depends on" arrows, starting from the earliest registered name.
    cycle.reverse()
    first = cycle.index(min(cycle))
    cycle = cycle[first:] + cycle[:first]
    path = " -> ".join(names[i] for i in [*cycle, cycle[0]])
    return (
        f"Dependency cycle: {path}. A component cannot (even indirectly) depend on "
        "itself; remove one of these dependencies."
    )


def build_graph(  # noqa: C901, PLR0912 - one linear pass per step, kept together for speed
    names: Sequence[str],
    dependencies: Sequence[Sequence[str]],
    priorities: Sequence[Priority],
) -> Graph:
    """
    Validate a dependency graph and compute effective priorities and waves.

    Runs in O(V + E).

    Args:
        names: Component names in registration order; they must be unique.

        dependencies: For each component, the names it depends on.

        priorities: For each component, its declared priority.

    Raises:
        ConfigurationError: A name is duplicated, a dependency is unknown, or
            the dependencies form a cycle (the message shows the whole cycle).
    """
    count = len(names)
    index: dict[str, int] = {}
    for i, name in enumerate(names):
        if name in index:
            msg = f"Two components are named {name!r}; every component of a supervisor needs a unique `name`."
            raise ConfigurationError(msg)
        index[name] = i

    deps: list[tuple[int, ...]] = []
    dependents: list[list[int]] = [[] for _ in range(count)]
    unknown: list[str] = []
    for i, wanted in enumerate(dependencies):
        resolved: dict[int, None] = {}
        for dep in wanted:
            j = index.get(dep)
            if j is None:
                unknown.append(_unknown_dependency_message(names[i], dep, names))
            elif j not in resolved:
                resolved[j] = None
                dependents[j].append(i)
        deps.append(tuple(resolved))
    if len(unknown) == 1:
        raise ConfigurationError(unknown[0])
    if unknown:  # every one of them at once, not one per attempt
        msg = f"{len(unknown)} dependencies are unknown:\n" + "\n".join(f"  - {m}" for m in unknown)
        raise ConfigurationError(msg)

    # Kahn's algorithm from the components nothing depends on, so each node is
    # visited after all of its dependents.
    remaining = [len(d) for d in dependents]
    order = [i for i in range(count) if not remaining[i]]
    for i in order:  # `order` grows while we walk it
        for j in deps[i]:
            remaining[j] -= 1
            if not remaining[j]:
                order.append(j)
    if len(order) < count:
        left = set(range(count)).difference(order)
        raise ConfigurationError(_cycle_message(min(left), names, dependents, left))

    # `order` lists every component after all of its dependents, so a component's
    # effective priority is final when it is reached and can be pushed down.
    effective = list(priorities)
    for i in order:
        eff = effective[i]
        for j in deps[i]:
            effective[j] = min(effective[j], eff)
    # Within one effective priority, a dependency stops in a later wave than
    # each of its dependents: its level is the longest chain of such dependents.
    level = [0] * count
    for i in order:
        eff = effective[i]
        nxt = level[i] + 1
        for j in deps[i]:
            if effective[j] == eff and level[j] < nxt:
                level[j] = nxt

    depth: dict[Priority, int] = {}
    for i in range(count):
        eff = effective[i]
        if level[i] >= depth.get(eff, 0):
            depth[eff] = level[i] + 1
    offset: dict[Priority, int] = {}
    total = 0
    for prio in sorted(depth, reverse=True):  # LOWEST stops first, CRITICAL last
        offset[prio] = total
        total += depth[prio]
    waves: list[list[int]] = [[] for _ in range(total)]
    for i in range(count):
        waves[offset[effective[i]] + level[i]].append(i)

    return Graph(
        names=tuple(names),
        dependencies=tuple(deps),
        dependents=tuple(tuple(d) for d in dependents),
        priorities=tuple(priorities),
        effective=tuple(effective),
        stop_waves=tuple(tuple(w) for w in waves),
    )
