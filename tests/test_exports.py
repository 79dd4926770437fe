"""The public surface: __all__, module metadata, @final, py.typed and import direction."""

from __future__ import annotations
import __future__

import ast
import enum
import importlib
import importlib.resources
import inspect
import subprocess
import sys
import types
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PUBLIC_MODULES = [
    "lifecycle",
    "lifecycle.lowlevel",
    "lifecycle.abc",
    "lifecycle.testing",
    "lifecycle.pytest_plugin",
    "supervisors",
]
# `from __future__ import annotations` binds a `__future__._Feature` in every module.
_FUTURE_FEATURE = type(__future__.annotations)


def public_names(module: types.ModuleType) -> set[str]:
    """Names a user sees on *module*: not underscored, not submodules, not __future__ features."""
    return {
        name
        for name in dir(module)
        if not name.startswith("_") and not isinstance(getattr(module, name), types.ModuleType | _FUTURE_FEATURE)
    }


def exported(module_name: str) -> list[tuple[str, object]]:
    module = importlib.import_module(module_name)
    return [(name, getattr(module, name)) for name in module.__all__]


def all_exports() -> list[tuple[str, str, object]]:
    return [(module, name, obj) for module in PUBLIC_MODULES for name, obj in exported(module)]


def export_ids(exports: list[tuple[str, str, object]]) -> list[str]:
    return [f"{module}.{name}" for module, name, _ in exports]


def must_be_final(obj: type) -> bool:
    """Classes that are not designed for subclassing; trio's test_exports exempts the same kinds."""
    return not (
        issubclass(obj, enum.Enum | BaseException)  # enums cannot be subclassed; exceptions form a hierarchy
        or getattr(obj, "_is_protocol", False)  # protocols exist to be implemented
    )


EXPORTS = all_exports()
FINAL_CLASSES = [export for export in EXPORTS if isinstance(export[2], type) and must_be_final(export[2])]


def python_files(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def imported_modules(source: str, package: str) -> list[tuple[str, list[str]]]:
    """Every import in *source*, TYPE_CHECKING blocks and import_module("...") calls included.

    Each is (absolute module, imported names).

    *package* is the package the source belongs to, for relative imports.
    """
    found: list[tuple[str, list[str]]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.extend((alias.name, []) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                module = ".".join([*base, module] if module else base)
            found.append((module, [alias.name for alias in node.names]))
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute | ast.Name)
            and (node.func.attr if isinstance(node.func, ast.Attribute) else node.func.id)
            in {"import_module", "__import__"}
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            found.append((node.args[0].value, []))
    return found


def imports_of(path: Path) -> list[tuple[str, list[str]]]:
    package = ".".join(path.relative_to(ROOT).parent.parts)
    return imported_modules(path.read_text(), package)


class TestAll:
    @pytest.mark.parametrize("module_name", PUBLIC_MODULES)
    def test_all_is_exactly_the_public_names(self, module_name: str) -> None:
        """Every public name of the module is in __all__ and every __all__ entry exists."""
        module = importlib.import_module(module_name)
        assert sorted(public_names(module)) == sorted(module.__all__)

    @pytest.mark.parametrize("module_name", PUBLIC_MODULES)
    def test_all_has_no_private_or_repeated_names(self, module_name: str) -> None:
        """__all__ lists no underscore name and no name twice."""
        names = importlib.import_module(module_name).__all__
        assert [n for n in names if n.startswith("_")] == []
        assert len(names) == len(set(names))

    def test_no_name_is_exported_twice(self) -> None:
        """Each public object is exported from exactly one public module."""
        owners: dict[int, list[str]] = {}
        for module, name, obj in EXPORTS:
            owners.setdefault(id(obj), []).append(f"{module}.{name}")
        assert [paths for paths in owners.values() if len(paths) > 1] == []


class TestModuleMetadata:
    @pytest.mark.parametrize(("module_name", "obj"), [(m, o) for m, _, o in EXPORTS], ids=export_ids(EXPORTS))
    def test_module_is_the_public_package(self, module_name: str, obj: object) -> None:
        """A public class or function says it lives in the module that exports it."""
        assert getattr(obj, "__module__", None) == module_name

    @pytest.mark.parametrize(("name", "obj"), [(n, o) for _, n, o in EXPORTS], ids=export_ids(EXPORTS))
    def test_qualname_is_the_public_name(self, name: str, obj: object) -> None:
        """A public class or function's __qualname__ is the name it is exported under."""
        assert getattr(obj, "__qualname__", None) == name


class TestFinal:
    @pytest.mark.parametrize("obj", [o for _, _, o in FINAL_CLASSES], ids=export_ids(FINAL_CLASSES))
    def test_classes_are_final(self, obj: type) -> None:
        """Public classes are @final, except enums, Protocols and exceptions."""
        assert getattr(obj, "__final__", False) is True

    def test_exception_hierarchy_has_one_root(self) -> None:
        """Every public exception derives from lifecycle.LifecycleError."""
        import lifecycle  # noqa: PLC0415 - the test is about this package

        errors = [obj for _, _, obj in EXPORTS if isinstance(obj, type) and issubclass(obj, BaseException)]
        assert errors
        assert all(issubclass(error, lifecycle.LifecycleError) for error in errors)


class TestPackaging:
    @pytest.mark.parametrize("package", ["lifecycle", "supervisors"])
    def test_ships_py_typed(self, package: str) -> None:
        """Each package ships a py.typed marker."""
        assert importlib.resources.files(package).joinpath("py.typed").is_file()

    @pytest.mark.parametrize("module_name", PUBLIC_MODULES)
    def test_public_modules_have_docstrings(self, module_name: str) -> None:
        """Every public module is documented."""
        assert inspect.getdoc(importlib.import_module(module_name))


class TestImportDirection:
    @pytest.mark.parametrize("module_name", ["lifecycle", "lifecycle.lowlevel", "lifecycle.abc", "lifecycle.testing"])
    def test_importing_lifecycle_does_not_import_supervisors(self, module_name: str) -> None:
        """In a fresh interpreter, importing a lifecycle module leaves supervisors unimported."""
        code = f"import sys, {module_name}; print(sorted(m for m in sys.modules if m.split('.')[0] == 'supervisors'))"
        result = subprocess.run(
            [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True, timeout=60
        )
        assert result.stdout.strip() == "[]"

    @pytest.mark.parametrize("path", python_files("lifecycle"), ids=lambda p: str(p.relative_to(ROOT)))
    def test_lifecycle_never_imports_supervisors(self, path: Path) -> None:
        """No module under lifecycle/ imports supervisors, not even under TYPE_CHECKING."""
        bad = [module for module, _ in imports_of(path) if module.split(".")[0] == "supervisors"]
        assert bad == []

    @pytest.mark.parametrize("path", python_files("supervisors"), ids=lambda p: str(p.relative_to(ROOT)))
    def test_supervisors_uses_only_public_lifecycle_modules(self, path: Path) -> None:
        """No module under supervisors/ imports a private lifecycle module or a private lifecycle name."""
        bad = []
        for module, names in imports_of(path):
            parts = module.split(".")
            if parts[0] != "lifecycle":
                continue
            if any(part.startswith("_") for part in parts) or any(n.startswith("_") for n in names):
                bad.append((module, names))
        assert bad == []

    def test_import_scan_sees_relative_and_type_checking_imports(self) -> None:
        """The scanner resolves relative imports and sees TYPE_CHECKING blocks and import_module() calls."""
        source = (
            "from typing import TYPE_CHECKING\n"
            "from . import _spec\n"
            "from .._errors import Error\n"
            "if TYPE_CHECKING:\n"
            "    import supervisors._graph\n"
            "def f():\n"
            "    return importlib.import_module('supervisors')\n"
        )
        assert imported_modules(source, "lifecycle._backends") == [
            ("typing", ["TYPE_CHECKING"]),
            ("lifecycle._backends", ["_spec"]),
            ("lifecycle._errors", ["Error"]),
            ("supervisors._graph", []),
            ("supervisors", []),
        ]
