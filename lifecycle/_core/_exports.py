"""What the packages' ``__init__`` modules share: public module names, and names loaded on first use."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterable, Mapping
from types import ModuleType

__all__ = ["fixup_module_metadata", "load_lazy_export"]


def fixup_module_metadata(module_name: str, namespace: dict[str, object], names: Iterable[str]) -> None:
    """
    Make public objects say they live in *module_name*.

    Tracebacks, pickles, reprs and the docs then show ``lifecycle.Supervisor``
    rather than ``lifecycle._spec.ComponentSpec`` (trio does the same).
    """
    seen: set[int] = set()

    def fix(qualname: str, obj: object) -> None:
        if id(obj) in seen or isinstance(obj, ModuleType):
            return
        seen.add(id(obj))
        mod = getattr(obj, "__module__", None)
        if mod is None or not mod.startswith(("lifecycle.", "supervisors.")) or "._" not in mod:
            return
        try:
            obj.__module__ = module_name
        except (
            AttributeError,
            TypeError,
        ):  # pragma: no cover - immutable builtins are not exported
            return
        if isinstance(obj, type):
            obj.__qualname__ = qualname
            for attr_name, attr in vars(obj).items():
                if callable(attr) and getattr(attr, "__module__", None) == mod:
                    attr.__module__ = module_name
                    attr.__qualname__ = f"{qualname}.{attr_name}"

    for name in names:
        fix(name, namespace[name])


def load_lazy_export(module_name: str, namespace: dict[str, object], lazy: Mapping[str, str], name: str) -> object:
    """
    Return the lazily exported *name* of the package *module_name*, importing its module now.

    The package's module ``__getattr__`` calls this for a name it exports but
    did not import (*lazy* maps each such name to its module). Every lazy name
    whose module is loaded by then (this one, and those it imported) is bound in
    the package's *namespace*, so the next access is a plain attribute, and gets
    its public ``__module__`` like the names imported at once.

    Raises:
        AttributeError: The package has no such name.
    """
    source = lazy.get(name)
    if source is None:
        msg = f"module {module_name!r} has no attribute {name!r}"
        raise AttributeError(msg)
    importlib.import_module(source)
    loaded = [n for n, m in lazy.items() if n not in namespace and m in sys.modules]
    for lazy_name in loaded:
        namespace[lazy_name] = getattr(sys.modules[lazy[lazy_name]], lazy_name)
    fixup_module_metadata(module_name, namespace, loaded)
    return namespace[name]
