"""The dependency graph: validation, effective priority, start and stop waves."""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import CyclicGraph, GraphSpec, cyclic_graphs, dags, graph_from_edges

from lifecycle import ConfigurationError, Context, LifecycleError, Priority
from supervisors import Graph, Supervisor
from supervisors._graph import build_graph

PROPERTY = settings(max_examples=100, deadline=None)

CRITICAL, HIGH, NORMAL, LOW, LOWEST = (
    Priority.CRITICAL,
    Priority.HIGH,
    Priority.NORMAL,
    Priority.LOW,
    Priority.LOWEST,
)


def build(spec: GraphSpec) -> Graph:
    return build_graph(spec.names, spec.dependencies, spec.priorities)


def wave_of(graph: Graph) -> dict[int, int]:
    return {i: number for number, wave in enumerate(graph.stop_waves) for i in wave}


def transitive_dependents(graph: Graph, i: int) -> set[int]:
    """Everything that depends on *i*, directly or not, by a plain search."""
    found: set[int] = set()
    todo = [i]
    while todo:
        node = todo.pop()
        for dependent in range(len(graph.names)):
            if node in graph.dependencies[dependent] and dependent not in found:
                found.add(dependent)
                todo.append(dependent)
    return found


def cycle_in(message: str) -> list[str]:
    match = re.search(r"Dependency cycle: (.+?)\. ", message)
    assert match is not None, message
    return match.group(1).split(" -> ")


def error_of(spec: GraphSpec) -> str:
    with pytest.raises(ConfigurationError) as excinfo:
        build(spec)
    return str(excinfo.value)


async def idle(ctx: Context) -> None:
    ctx.ready()


def supervisor_for(spec: GraphSpec, name: str = "root") -> Supervisor:
    sup = Supervisor(name)
    for child, deps, priority in zip(spec.names, spec.dependencies, spec.priorities, strict=True):
        sup.add(idle, name=child, depends_on=deps, priority=priority)
    return sup


class TestWaves:
    @PROPERTY
    @given(dags())
    def test_every_component_is_in_exactly_one_stop_wave(self, spec: GraphSpec) -> None:
        """Each component appears once across all stop waves, and nothing else does."""
        graph = build(spec)
        flat = [i for wave in graph.stop_waves for i in wave]
        assert sorted(flat) == list(range(len(spec)))

    @PROPERTY
    @given(dags())
    def test_no_wave_is_empty(self, spec: GraphSpec) -> None:
        """Every stop wave holds at least one component."""
        graph = build(spec)
        assert all(graph.stop_waves)

    @PROPERTY
    @given(dags())
    def test_dependency_stops_after_each_dependent(self, spec: GraphSpec) -> None:
        """A dependency is in a later stop wave than every component that depends on it."""
        graph = build(spec)
        wave = wave_of(graph)
        for i, deps in enumerate(graph.dependencies):
            for j in deps:
                assert wave[j] > wave[i], (spec.names[i], spec.names[j])

    @PROPERTY
    @given(dags())
    def test_no_dependency_inside_a_wave(self, spec: GraphSpec) -> None:
        """Components in the same wave never depend on each other, so they can stop concurrently."""
        graph = build(spec)
        for wave in graph.stop_waves:
            members = set(wave)
            for i in wave:
                assert members.isdisjoint(graph.dependencies[i])

    @PROPERTY
    @given(dags())
    def test_less_important_components_stop_in_earlier_waves(self, spec: GraphSpec) -> None:
        """A component of lower effective importance stops in an earlier wave than a more important one."""
        graph = build(spec)
        wave = wave_of(graph)
        for i in range(len(spec)):
            for j in range(len(spec)):
                if graph.effective[i] > graph.effective[j]:
                    assert wave[i] < wave[j], (spec.names[i], spec.names[j])

    @PROPERTY
    @given(dags())
    def test_each_component_stops_as_early_as_its_order_allows(self, spec: GraphSpec) -> None:
        """A component opens its priority's block of waves or follows one of its dependents directly."""
        graph = build(spec)
        wave = wave_of(graph)
        for i in range(len(spec)):
            first_of_priority = min(wave[k] for k in range(len(spec)) if graph.effective[k] == graph.effective[i])
            assert wave[i] == first_of_priority or any(wave[d] == wave[i] - 1 for d in graph.dependents[i])

    @PROPERTY
    @given(dags())
    def test_start_waves_are_stop_waves_reversed(self, spec: GraphSpec) -> None:
        """The start waves are exactly the stop waves in reverse order."""
        graph = build(spec)
        assert graph.start_waves == tuple(reversed(graph.stop_waves))

    @PROPERTY
    @given(dags())
    def test_dependencies_start_in_earlier_waves(self, spec: GraphSpec) -> None:
        """Every dependency is in an earlier start wave than each of its dependents."""
        graph = build(spec)
        start = {i: number for number, wave in enumerate(graph.start_waves) for i in wave}
        for i, deps in enumerate(graph.dependencies):
            assert all(start[j] < start[i] for j in deps)

    def test_named_waves_give_names_in_stop_and_start_order(self) -> None:
        """named_waves() lists names per wave, stop order by default and start order with stop=False."""
        spec = graph_from_edges(["db", "api"], [("api", "db")])
        graph = build(spec)
        assert graph.named_waves() == [["api"], ["db"]]
        assert graph.named_waves(stop=False) == [["db"], ["api"]]

    def test_independent_components_of_one_priority_share_a_wave(self) -> None:
        """Components without dependencies between them and of one priority stop together."""
        graph = build(graph_from_edges(["a", "b", "c"], []))
        assert graph.named_waves() == [["a", "b", "c"]]

    def test_waves_of_a_service_tree(self) -> None:
        """Priority blocks stop lowest first, and dependencies order the waves inside a block."""
        spec = graph_from_edges(
            ["db", "cache", "api", "metrics", "audit"],
            [("cache", "db"), ("api", "db"), ("api", "cache"), ("audit", "db")],
            [CRITICAL, NORMAL, NORMAL, LOW, LOWEST],
        )
        graph = build(spec)
        assert graph.named_waves() == [["audit"], ["metrics"], ["api"], ["cache"], ["db"]]

    def test_empty_graph_has_no_waves(self) -> None:
        """A supervisor without children has no waves."""
        graph = build_graph([], [], [])
        assert graph.stop_waves == ()
        assert graph.start_waves == ()

    def test_long_chain_is_built_without_recursion(self) -> None:
        """A chain of 100,000 components (the supported size) gets one wave per component."""
        count = 100_000
        names = [f"c{i}" for i in range(count)]
        deps = [(), *(((f"c{i - 1}"),) for i in range(1, count))]
        graph = build_graph(names, deps, [NORMAL] * count)
        assert len(graph.stop_waves) == count
        assert graph.stop_waves[0] == (count - 1,)
        assert graph.stop_waves[-1] == (0,)


class TestEffectivePriority:
    @PROPERTY
    @given(dags())
    def test_effective_is_own_or_most_important_direct_dependent(self, spec: GraphSpec) -> None:
        """Effective priority is the most important of the own priority and each dependent's effective one."""
        graph = build(spec)
        for i in range(len(spec)):
            expected = min([spec.priorities[i], *(graph.effective[d] for d in graph.dependents[i])])
            assert graph.effective[i] == expected

    @PROPERTY
    @given(dags())
    def test_effective_is_most_important_over_all_transitive_dependents(self, spec: GraphSpec) -> None:
        """Effective priority equals a brute-force minimum over the component and all its transitive dependents."""
        graph = build(spec)
        for i in range(len(spec)):
            expected = min(spec.priorities[k] for k in {i} | transitive_dependents(graph, i))
            assert graph.effective[i] == expected

    @PROPERTY
    @given(dags())
    def test_inherited_lists_exactly_the_raised_components(self, spec: GraphSpec) -> None:
        """inherited() gives (name, declared, effective) for each component whose priority a dependent raised."""
        graph = build(spec)
        expected = [
            (name, own, eff)
            for name, own, eff in zip(spec.names, spec.priorities, graph.effective, strict=True)
            if eff != own
        ]
        assert graph.inherited() == expected

    def test_dependency_inherits_its_dependents_priority(self) -> None:
        """A LOW dependency of a CRITICAL component becomes CRITICAL and stops after it."""
        spec = graph_from_edges(["db", "api"], [("api", "db")], [LOW, CRITICAL])
        graph = build(spec)
        assert graph.effective == (CRITICAL, CRITICAL)
        assert graph.priorities == (LOW, CRITICAL)
        assert graph.named_waves() == [["api"], ["db"]]

    def test_priority_is_inherited_through_a_chain(self) -> None:
        """The priority of a component reaches the dependencies of its dependencies."""
        spec = graph_from_edges(["disk", "db", "api"], [("db", "disk"), ("api", "db")], [LOWEST, LOW, HIGH])
        assert build(spec).effective == (HIGH, HIGH, HIGH)


class TestStructure:
    @PROPERTY
    @given(dags())
    def test_dependencies_and_dependents_mirror_each_other(self, spec: GraphSpec) -> None:
        """j is among i's dependencies exactly when i is among j's dependents, by registration index."""
        graph = build(spec)
        index = {name: i for i, name in enumerate(spec.names)}
        for i, deps in enumerate(spec.dependencies):
            assert set(graph.dependencies[i]) == {index[d] for d in deps}
        pairs = {(i, j) for i, deps in enumerate(graph.dependencies) for j in deps}
        mirrored = {(i, j) for j, users in enumerate(graph.dependents) for i in users}
        assert pairs == mirrored

    def test_names_and_priorities_keep_registration_order(self) -> None:
        """names and priorities are the inputs, in registration order."""
        spec = graph_from_edges(["b", "a"], [], [LOW, HIGH])
        graph = build(spec)
        assert graph.names == ("b", "a")
        assert graph.priorities == (LOW, HIGH)

    def test_repeated_dependency_counts_once(self) -> None:
        """A dependency listed twice is one edge."""
        graph = build_graph(["db", "api"], [(), ("db", "db")], [NORMAL, NORMAL])
        assert graph.dependencies == ((), (0,))
        assert graph.dependents == ((1,), ())


class TestUnknownDependency:
    def test_error_names_owner_and_missing_dependency(self) -> None:
        """The error names the component and the dependency that is not registered."""
        message = error_of(graph_from_edges(["api"], [("api", "database")]))
        assert "'api'" in message
        assert "'database'" in message

    def test_error_suggests_a_close_name(self) -> None:
        """A misspelt dependency gets "Did you mean 'x'?" with the registered name."""
        message = error_of(graph_from_edges(["database", "api"], [("api", "databse")]))
        assert "Did you mean 'database'?" in message

    def test_error_without_close_name_says_what_to_do(self) -> None:
        """Without a close name the error says to register it or fix the name, and suggests nothing."""
        message = error_of(graph_from_edges(["database", "api"], [("api", "queue")]))
        assert "Did you mean" not in message
        assert "Register it first" in message

    def test_error_never_suggests_the_component_itself(self) -> None:
        """A missing name close only to the owner's own name does not suggest a self-dependency."""
        message = error_of(graph_from_edges(["worker"], [("worker", "workers")]))
        assert "Did you mean 'worker'?" not in message

    def test_error_is_a_configuration_error_and_a_value_error(self) -> None:
        """An unknown dependency raises ConfigurationError, which is a LifecycleError and a ValueError."""
        with pytest.raises(ConfigurationError) as excinfo:
            build(graph_from_edges(["api"], [("api", "db")]))
        assert isinstance(excinfo.value, LifecycleError)
        assert isinstance(excinfo.value, ValueError)


class TestCycles:
    def test_self_dependency_is_a_cycle_of_one(self) -> None:
        """A component that depends on itself is reported as `a -> a`."""
        assert cycle_in(error_of(graph_from_edges(["a"], [("a", "a")]))) == ["a", "a"]

    def test_two_cycle_shows_the_whole_path(self) -> None:
        """Two components depending on each other are reported as `a -> b -> a`."""
        spec = graph_from_edges(["a", "b"], [("a", "b"), ("b", "a")])
        assert "Dependency cycle: a -> b -> a." in error_of(spec)

    def test_three_cycle_shows_the_whole_path(self) -> None:
        """A cycle of three is reported as `a -> b -> c -> a`, each arrow meaning "depends on"."""
        spec = graph_from_edges(["a", "b", "c"], [("a", "b"), ("b", "c"), ("c", "a")])
        assert "Dependency cycle: a -> b -> c -> a." in error_of(spec)

    def test_cycle_path_starts_at_its_earliest_registered_member(self) -> None:
        """The reported path starts with the cycle member registered first."""
        spec = graph_from_edges(["c", "b", "a"], [("a", "b"), ("b", "c"), ("c", "a")])
        assert cycle_in(error_of(spec)) == ["c", "a", "b", "c"]

    def test_cycle_reached_from_outside_shows_only_the_cycle(self) -> None:
        """Components that depend on a cycle, or that it depends on, are not part of the path."""
        spec = graph_from_edges(
            ["base", "a", "b", "user"],
            [("a", "b"), ("a", "base"), ("b", "a"), ("user", "a")],
        )
        assert cycle_in(error_of(spec)) == ["a", "b", "a"]

    def test_error_says_how_to_fix_it(self) -> None:
        """The cycle error tells the user to remove one of the dependencies."""
        spec = graph_from_edges(["a", "b"], [("a", "b"), ("b", "a")])
        assert "remove one of these dependencies" in error_of(spec)

    def test_error_is_a_configuration_error_and_a_value_error(self) -> None:
        """A cycle raises ConfigurationError, also a ValueError."""
        with pytest.raises(ValueError, match="Dependency cycle") as excinfo:
            build(graph_from_edges(["a"], [("a", "a")]))
        assert type(excinfo.value) is ConfigurationError

    @PROPERTY
    @given(cyclic_graphs())
    def test_reported_cycle_is_a_real_cycle(self, case: CyclicGraph) -> None:
        """The reported path is closed, visits each member once, and each arrow is a real dependency."""
        path = cycle_in(error_of(case.graph))
        edges = case.graph.edges()
        assert path[0] == path[-1]
        assert len(set(path[:-1])) == len(path) - 1
        assert all((a, b) in edges for a, b in itertools.pairwise(path))

    @PROPERTY
    @given(cyclic_graphs(max_cycle=1))
    def test_self_dependency_is_reported_alone(self, case: CyclicGraph) -> None:
        """In an otherwise acyclic graph, a self-dependency is the reported cycle."""
        (name,) = case.cycle
        assert cycle_in(error_of(case.graph)) == [name, name]

    def test_long_cycle_is_reported_without_recursion(self) -> None:
        """A cycle through 100,000 components is reported in full."""
        count = 100_000
        names = [f"c{i}" for i in range(count)]
        deps: list[Sequence[str]] = [(f"c{i + 1}",) for i in range(count - 1)]
        deps.append(("c0",))
        path = cycle_in(error_of(GraphSpec(tuple(names), tuple(map(tuple, deps)), (NORMAL,) * count)))
        assert path == [*names, "c0"]


class TestDuplicateNames:
    def test_duplicate_name_is_a_configuration_error(self) -> None:
        """Two components with one name raise ConfigurationError naming it and the `name` option."""
        with pytest.raises(ConfigurationError, match=r"'db'.*`name`"):
            build(graph_from_edges(["db", "api", "db"], []))

    @PROPERTY
    @given(dags(min_size=1), st.data())
    def test_any_repeated_name_is_rejected(self, spec: GraphSpec, data: st.DataObject) -> None:
        """Registering any name a second time fails, wherever the copy is."""
        name = data.draw(st.sampled_from(spec.names))
        where = data.draw(st.integers(0, len(spec)))
        names = [*spec.names]
        names.insert(where, name)
        deps = [*spec.dependencies]
        deps.insert(where, ())
        with pytest.raises(ConfigurationError, match=re.escape(repr(name))):
            build_graph(names, deps, [NORMAL] * len(names))


class TestSupervisorGraph:
    @settings(max_examples=60, deadline=None)
    @given(dags())
    def test_graph_is_built_from_the_registered_children(self, spec: GraphSpec) -> None:
        """Supervisor.graph() is the graph of the children's names, dependencies and priorities."""
        assert supervisor_for(spec).graph() == build(spec)

    def test_injected_parameters_are_dependencies(self) -> None:
        """Parameters named after siblings and `depends_on` entries are both edges of the graph."""
        sup = Supervisor()

        @sup.component
        async def db(ctx: Context) -> None:
            ctx.ready()

        @sup.component
        async def cache(ctx: Context) -> None:
            ctx.ready()

        @sup.component(depends_on=("cache",))
        async def api(ctx: Context, db: object) -> None:
            ctx.ready()

        graph = sup.graph()
        assert graph.dependencies == ((), (), (0, 1))
        assert graph.named_waves(stop=False) == [["db", "cache"], ["api"]]

    def test_adding_a_child_rebuilds_the_graph(self) -> None:
        """The graph reflects a child added after an earlier graph() call."""
        sup = supervisor_for(graph_from_edges(["db"], []))
        assert sup.graph().names == ("db",)
        sup.add(idle, name="api", depends_on=("db",))
        assert sup.graph().names == ("db", "api")

    def test_unknown_dependency_is_reported_by_graph(self) -> None:
        """graph() raises for an unknown dependency, naming the owner and the missing name."""
        sup = supervisor_for(graph_from_edges(["api"], [("api", "db")]))
        with pytest.raises(ConfigurationError, match=r"'api' depends on 'db'"):
            sup.graph()

    def test_registration_does_not_validate_dependencies(self) -> None:
        """A dependency on a component registered later is fine, as long as it exists at validation."""
        sup = Supervisor()
        sup.add(idle, name="api", depends_on=("db",))
        sup.add(idle, name="db")
        assert sup.graph().named_waves() == [["api"], ["db"]]

    def test_validate_tree_names_the_supervisor(self) -> None:
        """validate_tree() prefixes the error with the supervisor's name."""
        sup = supervisor_for(graph_from_edges(["a", "b"], [("a", "b"), ("b", "a")]), name="web")
        with pytest.raises(ConfigurationError) as excinfo:
            sup.validate_tree()
        message = str(excinfo.value)
        assert message.startswith("In supervisor 'web': ")
        assert "a -> b -> a" in message

    def test_validate_tree_error_is_not_chained(self) -> None:
        """The error raised by validate_tree() hides the inner one (raised from None)."""
        sup = supervisor_for(graph_from_edges(["api"], [("api", "db")]))
        with pytest.raises(ConfigurationError) as excinfo:
            sup.validate_tree()
        assert excinfo.value.__suppress_context__
        assert excinfo.value.__cause__ is None

    def test_nested_supervisor_error_names_the_nested_supervisor(self) -> None:
        """A nested tree's validation error names the nested supervisor and the problem."""
        inner = supervisor_for(graph_from_edges(["worker"], [("worker", "queue")]), name="jobs")
        outer = Supervisor("app")
        outer.add(inner)
        with pytest.raises(ConfigurationError) as excinfo:
            outer.validate_tree()
        message = str(excinfo.value)
        assert message.startswith("In supervisor 'app/jobs': ")
        assert "'worker' depends on 'queue'" in message
        assert (excinfo.value.path, excinfo.value.reason) == ("app/jobs", message.split(": ", 1)[1])

    def test_nested_supervisor_error_names_its_path(self) -> None:
        """A nested tree's validation error gives its path from the root, as validate_tree() documents."""
        inner = supervisor_for(graph_from_edges(["worker"], [("worker", "queue")]), name="jobs")
        outer = Supervisor("app")
        outer.add(inner)
        with pytest.raises(ConfigurationError, match="app/jobs"):
            outer.validate_tree()

    def test_nested_error_does_not_break_the_outer_graph(self) -> None:
        """The outer supervisor's own graph is valid even when a nested tree is not."""
        inner = supervisor_for(graph_from_edges(["a"], [("a", "missing")]), name="jobs")
        outer = Supervisor("app")
        outer.add(inner)
        assert outer.graph().names == ("jobs",)

    def test_duplicate_child_name_fails_at_registration(self) -> None:
        """Adding a second child with a taken name is a ConfigurationError at once."""
        sup = supervisor_for(graph_from_edges(["db"], []))
        with pytest.raises(ConfigurationError, match=r"already has a component named 'db'"):
            sup.add(idle, name="db")

    def test_self_dependency_fails_at_registration(self) -> None:
        """A child that lists itself in `depends_on` is rejected when it is added."""
        sup = Supervisor()
        with pytest.raises(ConfigurationError, match="depends on itself"):
            sup.add(idle, name="db", depends_on=("db",))


class TestAllMistakesAtOnce:
    def test_every_unknown_dependency_is_reported_at_once(self) -> None:
        """Several unknown dependencies are listed in one error, each with its owner."""
        sup = Supervisor("app")
        sup.add(idle, name="api", depends_on=("dbb", "cache"))
        sup.add(idle, name="db")
        with pytest.raises(ConfigurationError) as info:
            sup.validate_tree()
        message = str(info.value)
        assert message.startswith("In supervisor 'app': 2 dependencies are unknown:")
        assert "Component 'api' depends on 'dbb'" in message
        assert "Did you mean 'db'?" in message
        assert "Component 'api' depends on 'cache'" in message

    def test_mistakes_in_several_nested_trees_are_reported_together(self) -> None:
        """Each broken nested tree is a separate problem with its own path."""
        root = Supervisor("app")
        for name in ("web", "jobs"):
            nested = Supervisor(name)
            nested.add(idle, name="worker", depends_on=("queue",))
            root.add(nested)
        with pytest.raises(ConfigurationError) as info:
            root.validate_tree()
        assert [p.path for p in info.value.problems] == ["app/web", "app/jobs"]
        assert str(info.value).startswith("2 mistakes in the tree:")
