"""Sphinx configuration for the anyio-lifecycle documentation.

The build runs with ``-n -W`` (nitpicky, warnings are errors). Intersphinx
inventories are fetched only on Read the Docs (``READTHEDOCS`` is set) or when
``LIFECYCLE_DOCS_INTERSPHINX=1``; without them, references into other projects
cannot resolve and are ignored, while references to ``lifecycle`` and
``supervisors`` are always checked.
"""

from __future__ import annotations

import builtins
import doctest
import enum
import importlib
import os
import re
import sys
import tomllib
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sphinx.application import Sphinx

ROOT = Path(__file__).resolve().parent.parent
# Document the checkout next to this file, even if another copy is installed.
sys.path.insert(0, str(ROOT))

# Import every public module before autodoc runs: each one rewrites the
# `__module__` of the objects it re-exports, so annotations that mention them
# (such as `Escalation` in `lifecycle.Context`) name the public path.
for _module in ("lifecycle", "lifecycle.abc", "lifecycle.lowlevel", "supervisors"):
    importlib.import_module(_module)

_PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]

# -- Project -----------------------------------------------------------------

project = "anyio-lifecycle"
author = "anyio-lifecycle developers"
copyright = "anyio-lifecycle developers"
release = _PROJECT["version"]
version = ".".join(release.split(".")[:2])

# -- General -----------------------------------------------------------------

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.intersphinx",
    "sphinx.ext.doctest",
    "myst_parser",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
# `_generated` holds Markdown fragments that benchmarks/run_all.py writes and performance.rst includes.
exclude_patterns = ["_build", "examples", "Thumbs.db", ".DS_Store", "_generated"]
default_role = "py:obj"
nitpicky = True

# -- autodoc and napoleon ----------------------------------------------------

autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_typehints_description_target = "documented_params"
autodoc_class_signature = "mixed"
autodoc_default_options = {"show-inheritance": True}

napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_rtype = False
napoleon_use_ivar = False
napoleon_attr_annotations = True

# -- MyST --------------------------------------------------------------------

myst_heading_anchors = 3

# -- doctest -----------------------------------------------------------------

# Unlike Sphinx's default, compare exception messages too: they are part of
# what the pages document.
doctest_default_flags = doctest.ELLIPSIS | doctest.DONT_ACCEPT_TRUE_FOR_1
doctest_global_setup = """
import lifecycle
import supervisors
"""

# -- intersphinx -------------------------------------------------------------

INTERSPHINX = bool(os.environ.get("READTHEDOCS")) or (os.environ.get("LIFECYCLE_DOCS_INTERSPHINX") == "1")

if INTERSPHINX:
    intersphinx_mapping = {
        "python": ("https://docs.python.org/3", None),
        "anyio": ("https://anyio.readthedocs.io/en/stable", None),
        "trio": ("https://trio.readthedocs.io/en/stable", None),
        "attrs": ("https://www.attrs.org/en/stable", None),
        "structlog": ("https://www.structlog.org/en/stable", None),
    }
    nitpick_ignore_regex: list[tuple[str, str]] = []
else:
    intersphinx_mapping = {}
    # Without inventories, references into these projects cannot resolve. Only
    # names outside `lifecycle` and `supervisors` are listed here.
    _EXTERNAL_MODULES = [
        "abc",
        "anyio",
        "asyncio",
        "attr",
        "attrs",
        "collections",
        "contextlib",
        "contextvars",
        "enum",
        "functools",
        "inspect",
        "json",
        "math",
        "os",
        "re",
        "signal",
        "sniffio",
        "structlog",
        "subprocess",
        "threading",
        "traceback",
        "trio",
        "types",
        "typing",
        "typing_extensions",
    ]
    _BUILTINS = sorted(name for name in dir(builtins) if not name.startswith("_"))
    nitpick_ignore_regex = [
        ("py:.*", "|".join(re.escape(name) for name in _BUILTINS)),
        ("py:.*", rf"(?:{'|'.join(_EXTERNAL_MODULES)})(?:\..+)?"),
    ]

# Names in `lifecycle` and `supervisors` that cannot resolve, each for a reason.
nitpick_ignore = [
    # Type variables of generic signatures have no entry of their own.
    ("py:class", "Ts"),
    ("py:class", "lifecycle._core._context.T"),
    ("py:class", "lifecycle._core._tasks.T"),
    ("py:obj", "lifecycle._core._tasks.T"),
    ("py:class", "supervisors._supervisor.F"),
    ("py:class", "supervisors._supervisor.T"),
    ("py:class", "~P"),
    ("py:class", "lifecycle._helpers._timeouts.T"),
    ("py:class", "lifecycle._helpers._timeouts.D"),
    ("py:class", "lifecycle._helpers._cleanup.T"),
    ("py:class", "lifecycle._helpers._gather.T"),
    ("py:class", "lifecycle._helpers._singleflight.T"),
    ("py:obj", "lifecycle._helpers._singleflight.T"),
    ("py:class", "lifecycle._core._validation.T"),
]

# -- Attribute docstrings of re-exported classes -----------------------------
#
# Public classes say they live in `lifecycle` or `supervisors` (their
# `__module__` is rewritten on import), so autodoc looks for the docstrings of
# their attributes (the string after `GENERATOR = "generator"` in an enum) in
# the package's `__init__.py`, finds none, and drops them. Read them from the
# private module (in any layer's folder) that defines the class and add them to
# the class's content.

_PUBLIC_MODULES = ("lifecycle", "lifecycle.abc", "lifecycle.lowlevel", "supervisors")


def _attribute_docs() -> dict[str, list[str]]:
    from sphinx.pycode import ModuleAnalyzer  # noqa: PLC0415 - only needed at build time

    docs: dict[str, list[str]] = {}
    for public_name in _PUBLIC_MODULES:
        public = importlib.import_module(public_name)
        package = public_name.partition(".")[0]
        # Parsed, not imported: `__main__` would run the CLI.
        analyzers = [
            ModuleAnalyzer.for_module(".".join(path.relative_to(ROOT).with_suffix("").parts))
            for path in sorted((ROOT / package).rglob("_*.py"))
            if not path.stem.startswith("__")
        ]
        for name in public.__all__:
            cls = getattr(public, name)
            if not isinstance(cls, type):
                continue
            for analyzer in analyzers:
                if analyzer.find_tags().get(cls.__qualname__, ("",))[0] != "class":
                    continue
                lines: list[str] = []
                for (qualname, attr), doc in analyzer.find_attr_docs().items():
                    if qualname != cls.__qualname__:
                        continue
                    lines += ["", f".. attribute:: {attr}"]
                    member = getattr(cls, attr, None)
                    if isinstance(member, enum.Enum):
                        lines.append(f"   :value: {member.value!r}")
                    lines += ["", *(f"   {line}" if line else "" for line in doc)]
                if lines:
                    docs[f"{public_name}.{name}"] = lines
    return docs


_ATTRIBUTE_DOCS = _attribute_docs()


def _add_attribute_docs(  # noqa: PLR0917 - the signature of autodoc-process-docstring
    app: Sphinx,
    what: str,
    name: str,
    obj: object,
    options: object,
    lines: list[str],
) -> None:
    del app, obj, options
    if what in {"class", "exception"}:
        lines.extend(_ATTRIBUTE_DOCS.get(name, []))


def setup(app: Sphinx) -> None:
    """Add the attribute docstrings that autodoc cannot find."""
    app.connect("autodoc-process-docstring", _add_attribute_docs)


# -- HTML --------------------------------------------------------------------

html_theme = "furo"
html_title = f"anyio-lifecycle {release}"
html_static_path: list[str] = []
