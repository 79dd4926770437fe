"""
The architecture holds: no import cycles, layers that import only downwards, integrations on the public API.

How imports are counted (see docs/architecture.rst):

- An *import cycle* is one among the runtime imports of the modules of
  ``lifecycle`` and ``supervisors``: module-level imports and imports inside
  functions both count (a function-level import is a runtime dependency that
  only happens later), and so do the names ``lifecycle/__init__.py`` loads on
  first use. Imports under ``if TYPE_CHECKING:`` do not: they never run. That
  importing ``a.b`` runs ``a/__init__.py`` first is not an edge either.
- The *layer* rules apply to every import, ``TYPE_CHECKING`` ones included.
"""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("lifecycle", "supervisors")
PUBLIC_MODULES = ["lifecycle", "lifecycle.lowlevel", "lifecycle.abc", "lifecycle.testing", "lifecycle.pytest_plugin"]
MAX_LINES = 600

# What each layer of lifecycle may import from the package (its own layer included).
LAYERS: dict[str, set[str]] = {
    "_core": {"_core"},
    "_helpers": {"_core", "_helpers"},
    "_host": {"_core", "_host"},
    "_processes": {"_core", "_processes"},
    "_integrations": {"_core", "_host", "_integrations"},
    "_testing": {"_core", "_host", "_testing"},
}
# The one arrow that points up: running(notify=True) switches the systemd integration
# on, importing it only then.
UPWARD_ALLOWED = {("lifecycle._host._embedded", "lifecycle._integrations._systemd")}

# Every public name before the layered redesign: none may go missing.
PUBLIC_BEFORE = {
    "lifecycle": (
        "AlreadyRunningError CleanupOnFailure CommandResult CommandTimeoutError ComponentError ComponentReport "
        "ComponentSpec ConfigurationError Context EnvironScope ExitCode HealthServer InstanceLock LifecycleError "
        "LifespanMiddleware Outcome Phase PhaseChange Priority ProcessComponent ProcessExitedError "
        "ReadinessTimeoutError ReadyOnLine ReadyOnNotify ReadyOnPort ReadyOnSocket RunningTree ShieldedScope "
        "ShutdownPolicy ShutdownReport SingleFlight State StateFile StateRecord StopReason StoppedError Style "
        "TaskHandle UsageError call_with_timeout cleanup_on_failure current_tree gather on_failure read_state_file "
        "report_error run run_command running scoped_env shielded wait_for_exit wait_for_port wait_for_socket "
        "write_state_file"
    ),
    "lifecycle.lowlevel": (
        "ComponentInstance Escalation combine_policies current_instance failure_group flatten_failures stop_instances"
    ),
    "lifecycle.abc": "ChildInfo Tree TreeInfo",
    "lifecycle.testing": (
        "Fault InjectedError InjectedFault Recorder Transition assert_start_order assert_stop_order inject_fault "
        "open_tree"
    ),
    "lifecycle.pytest_plugin": (
        "lifecycle_faults lifecycle_recorder lifecycle_virtual_clock pytest_collection_modifyitems pytest_configure "
        "pytest_generate_tests"
    ),
    "supervisors": "Backoff Graph Intensity Restart Strategy Supervisor",
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def all_modules() -> dict[str, Path]:
    return {module_name(p): p for package in PACKAGES for p in sorted((ROOT / package).rglob("*.py"))}


MODULES = all_modules()


def _is_type_checking(test: ast.expr) -> bool:
    return "TYPE_CHECKING" in ast.unparse(test)


def _resolve(importer: str, is_package: bool, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = importer.split(".") if is_package else importer.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def imports(name: str, *, type_checking: bool) -> Iterator[tuple[str, list[str]]]:
    """Yield ``(module imported, names)`` for every import of module *name*, TYPE_CHECKING ones if asked."""
    path = MODULES[name]
    is_package = path.name == "__init__.py"

    def walk(node: ast.AST) -> Iterator[tuple[str, list[str]]]:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for stmt in [*node.body, *node.orelse] if type_checking else node.orelse:
                yield from walk(stmt)
            return
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, []
        elif isinstance(node, ast.ImportFrom):
            yield _resolve(name, is_package, node), [alias.name for alias in node.names]
        for child in ast.iter_child_nodes(node):
            yield from walk(child)

    yield from walk(ast.parse(path.read_text()))
    if name == "lifecycle":  # the names loaded on first use
        lazy = importlib.import_module("lifecycle")._LAZY
        yield from ((module, []) for module in lazy.values())


def runtime_graph() -> dict[str, set[str]]:
    """Module -> the package modules it imports at run time (a `from a import b` of a module b counts as a.b)."""
    graph: dict[str, set[str]] = {}
    for name in MODULES:
        targets: set[str] = set()
        for module, names in imports(name, type_checking=False):
            for target in [f"{module}.{n}" for n in names if f"{module}.{n}" in MODULES] or [module]:
                if target in MODULES and target != name:
                    targets.add(target)
        graph[name] = targets
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:  # noqa: C901 - Tarjan's algorithm, whole
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def layer_of(name: str) -> str | None:
    parts = name.split(".")
    return parts[1] if parts[0] == "lifecycle" and len(parts) > 2 and parts[1] in LAYERS else None


class TestImportCycles:
    def test_there_is_no_import_cycle(self) -> None:
        """The runtime imports of both packages (function-level ones and lazy names included) form no cycle."""
        assert cycles(runtime_graph()) == []

    def test_the_cycle_finder_sees_a_cycle(self) -> None:
        """A cycle through three modules, or a function-level import back, is found."""
        assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
        assert cycles({"a": {"b"}, "b": set()}) == []

    def test_function_level_imports_count_and_type_checking_ones_do_not(self) -> None:
        """running(notify=True)'s import of the systemd notifier is an edge; a TYPE_CHECKING import is not."""
        graph = runtime_graph()
        assert "lifecycle._integrations._systemd" in graph["lifecycle._host._embedded"]
        assert "lifecycle._host._running_tree" not in graph["lifecycle._integrations._systemd"]


class TestLayers:
    @pytest.mark.parametrize("name", [n for n in MODULES if layer_of(n)])
    def test_a_layer_imports_only_the_layers_below_it(self, name: str) -> None:
        """No module imports a layer above its own, not even under TYPE_CHECKING (one arrow excepted)."""
        layer = layer_of(name)
        assert layer is not None
        bad = [
            module
            for module, _ in imports(name, type_checking=True)
            if (other := layer_of(module)) is not None
            and other not in LAYERS[layer]
            and (name, module) not in UPWARD_ALLOWED
        ]
        assert bad == []

    @pytest.mark.parametrize("name", [n for n in MODULES if n.startswith("lifecycle._core.")])
    def test_the_kernel_depends_on_nothing_above_it(self, name: str) -> None:
        """A _core module imports nothing of the package outside _core, and never a public facade."""
        bad = [
            module
            for module, _ in imports(name, type_checking=True)
            if module.split(".")[0] == "lifecycle" and not module.startswith("lifecycle._core")
        ]
        assert bad == []


def public_names() -> set[str]:
    return {name for module in PUBLIC_MODULES for name in importlib.import_module(module).__all__}


INTEGRATIONS = [n for n in MODULES if n.startswith("lifecycle._integrations.")]


class TestIntegrationsUsePublicApi:
    @pytest.mark.parametrize("name", INTEGRATIONS)
    def test_an_integration_imports_only_public_names(self, name: str) -> None:
        """Every name an integration imports from lifecycle is in a public module's __all__."""
        allowed = public_names()
        bad = [
            (module, n)
            for module, names in imports(name, type_checking=True)
            if module.startswith("lifecycle._") and not module.startswith("lifecycle._integrations")
            for n in names
            if n not in allowed
        ]
        assert bad == []

    @pytest.mark.parametrize("name", INTEGRATIONS)
    def test_an_integration_touches_no_private_attribute_of_another_object(self, name: str) -> None:
        """No `obj._attr` in an integration, unless obj is `self` or `cls` (its own state)."""
        tree = ast.parse(MODULES[name].read_text())
        bad = [
            f"{MODULES[name].name}:{node.lineno}: {ast.unparse(node)}"
            for node in ast.walk(tree)
            if isinstance(node, ast.Attribute)
            and node.attr.startswith("_")
            and not (node.attr.startswith("__") and node.attr.endswith("__"))
            and not (isinstance(node.value, ast.Name) and node.value.id in {"self", "cls"})
        ]
        assert bad == []

    def test_the_private_access_scan_sees_a_reach_in(self) -> None:
        """The scan flags `tree._instance` and leaves `self._tree` alone."""
        source = "def f(self, tree):\n    return tree._instance, self._tree, type(tree).__name__\n"
        flagged = [
            ast.unparse(node)
            for node in ast.walk(ast.parse(source))
            if isinstance(node, ast.Attribute)
            and node.attr.startswith("_")
            and not (node.attr.startswith("__") and node.attr.endswith("__"))
            and not (isinstance(node.value, ast.Name) and node.value.id in {"self", "cls"})
        ]
        assert flagged == ["tree._instance"]


class TestSize:
    @pytest.mark.parametrize("name", sorted(MODULES))
    def test_no_module_is_over_600_lines(self, name: str) -> None:
        """Every module of both packages fits in 600 lines."""
        assert len(MODULES[name].read_text().splitlines()) <= MAX_LINES


class TestPublicSurface:
    @pytest.mark.parametrize("module", sorted(PUBLIC_BEFORE))
    def test_every_public_name_from_before_the_redesign_is_still_exported(self, module: str) -> None:
        """The layered redesign kept every public name, exported from the same public module, with that __module__."""
        mod = importlib.import_module(module)
        for name in PUBLIC_BEFORE[module].split():
            assert name in mod.__all__
            obj = getattr(mod, name)
            assert getattr(obj, "__module__", module) == module, name


def _fresh(code: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True, timeout=60
    )
    return result.stdout.strip()


class TestLazyImports:
    def test_import_lifecycle_loads_no_process_management_nor_integration(self) -> None:
        """In a fresh interpreter, `import lifecycle` leaves _processes and _integrations unimported."""
        code = (
            "import sys, lifecycle\n"
            "layers = ('lifecycle._processes.', 'lifecycle._integrations.')\n"
            "print(sorted(m for m in sys.modules if m.startswith(layers)))"
        )
        assert _fresh(code) == "[]"

    def test_a_name_loaded_on_first_use_and_its_neighbours_say_lifecycle(self) -> None:
        """lifecycle.ProcessComponent loads its module; the errors it raises, loaded with it, say lifecycle too."""
        code = (
            "import sys, lifecycle\n"
            "lifecycle.ProcessComponent\n"
            "errors = sys.modules['lifecycle._processes._errors']\n"
            "print(errors.ProcessExitedError.__module__, lifecycle.HealthServer.__module__)"
        )
        assert _fresh(code) == "lifecycle lifecycle"

    def test_from_import_and_dir_see_lazy_names(self) -> None:
        """`from lifecycle import HealthServer` works and dir(lifecycle) lists names not loaded yet."""
        code = (
            "import lifecycle\n"
            "print('ProcessComponent' in dir(lifecycle))\n"
            "from lifecycle import HealthServer\n"
            "print(HealthServer.__qualname__)"
        )
        assert _fresh(code).split() == ["True", "HealthServer"]

    def test_an_unknown_name_is_an_attribute_error(self) -> None:
        """A name the package does not export is an AttributeError, as for any module."""
        import lifecycle  # noqa: PLC0415 - the test is about this package

        with pytest.raises(AttributeError, match="no attribute 'Nope'"):
            lifecycle.Nope  # noqa: B018
