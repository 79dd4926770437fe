"""Random trees, run for real on every backend: order, priority and exactly-once stops."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import anyio
import anyio.lowlevel
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import GraphSpec, dags

import lifecycle
from lifecycle import Priority
from supervisors import Supervisor


def reference_effective(graph: GraphSpec) -> dict[str, Priority]:
    """Brute force: the most important priority among a component and all its transitive dependents."""
    dependents: dict[str, set[str]] = {n: set() for n in graph.names}
    for name, deps in zip(graph.names, graph.dependencies, strict=True):
        for dep in deps:
            dependents[dep].add(name)
    own = dict(zip(graph.names, graph.priorities, strict=True))
    result: dict[str, Priority] = {}
    for name in graph.names:
        seen, todo = {name}, [name]
        while todo:
            for d in dependents[todo.pop()]:
                if d not in seen:
                    seen.add(d)
                    todo.append(d)
        result[name] = min(own[n] for n in seen)
    return result


def build(graph: GraphSpec, generator_style: list[bool], log: list[tuple[str, str]]) -> Supervisor:
    sup = Supervisor("root")

    def make(name: str, as_generator: bool) -> Callable[..., object]:
        if as_generator:

            async def resource() -> AsyncIterator[str]:
                log.append(("start", name))
                await anyio.lowlevel.checkpoint()
                log.append(("ready", name))
                yield name
                log.append(("stop_begin", name))
                await anyio.lowlevel.checkpoint()
                log.append(("stop_end", name))

            return resource

        async def service(ctx: lifecycle.Context) -> None:
            log.append(("start", name))
            await anyio.lowlevel.checkpoint()
            log.append(("ready", name))
            ctx.ready(name)
            try:
                await anyio.sleep_forever()
            finally:
                log.append(("stop_begin", name))
                with ctx.shielded():
                    await anyio.lowlevel.checkpoint()
                log.append(("stop_end", name))

        return service

    for name, deps, prio, gen in zip(graph.names, graph.dependencies, graph.priorities, generator_style, strict=True):
        sup.add(make(name, gen), name=name, depends_on=deps, priority=prio)
    return sup


def with_styles(graph: GraphSpec) -> st.SearchStrategy[tuple[GraphSpec, list[bool]]]:
    """The graph with an authoring style per component (True: async generator)."""
    return st.tuples(st.just(graph), st.lists(st.booleans(), min_size=len(graph), max_size=len(graph)))


# Everything is drawn before the test body runs (no st.data()): Hypothesis's own
# control flow then never has to pass through the event loop.
@settings(max_examples=40, deadline=None)
@given(case=dags(max_size=12).flatmap(with_styles))
async def test_random_trees_start_and_stop_in_order(case: tuple[GraphSpec, list[bool]]) -> None:
    """Dependencies start first, dependents stop first, priorities order the stop, each stop happens once."""
    graph, styles = case
    log: list[tuple[str, str]] = []
    async with lifecycle.running(build(graph, styles, log)) as tree:
        await tree.ready()
        report = await tree.shutdown()
    assert report.ok
    at = {event: i for i, event in enumerate(log)}
    names = graph.names
    assert sorted(log) == sorted((e, n) for n in names for e in ("start", "ready", "stop_begin", "stop_end"))
    for name, deps in zip(names, graph.dependencies, strict=True):
        for dep in deps:
            # started after its dependency was ready, stopped before its dependency began stopping
            assert at["ready", dep] < at["start", name]
            assert at["stop_end", name] < at["stop_begin", dep]
    effective = reference_effective(graph)
    assert {r.name: r.priority for r in report.components if r.path != "root"} == effective
    for a in names:
        for b in names:
            if effective[a] > effective[b]:  # a is less important: its stop ends before b's begins
                assert at["stop_end", a] < at["stop_begin", b]
