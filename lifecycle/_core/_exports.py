"""Small helpers shared by the packages' ``__init__`` modules."""

from __future__ import annotations

from collections.abc import Iterable
from types import ModuleType


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
