"""
Run everything CI runs, in one command.

Formatting, lint, types, the docs with their doctests, and the test suite on
every backend with branch coverage; then the test suite again on every other
supported Python (the ``Programming Language :: Python :: 3.x`` classifiers of
``pyproject.toml``) found on this machine, each in its own virtual environment
under ``.check/py3.x`` (created on first use, reinstalled when
``pyproject.toml`` or the interpreter changes). A supported Python that is not
installed is skipped, with a line saying so. Lint, types, docs and the 95 %
branch-coverage gate run once, on the interpreter that runs this script.

Hypothesis runs with the ``ci`` profile (``tests/conftest.py``) and a fixed
seed, printed before the tests, so a failure can be reproduced.

Usage: ``python scripts/check.py`` (from the project root, in the environment
where ``pip install -e '.[test]'`` ran). Exits non-zero if any step fails; every
step runs even when an earlier one failed, so one run shows every problem.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import time
import tomllib
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / ".check"
PY = sys.executable
MAIN = f"{sys.version_info.major}.{sys.version_info.minor}"
# Fixed, so every run tries the same examples and a failure in CI reproduces with the printed command.
HYPOTHESIS_SEED = 20240622
HYPOTHESIS = ["--hypothesis-profile=ci", f"--hypothesis-seed={HYPOTHESIS_SEED}"]

# A step is a command, or a function returning an exit code (setting up an interpreter's environment).
Action = list[str] | Callable[[], int]


class Step(NamedTuple):
    """One step of the check; it runs only if the step named *after* (if any) passed."""

    name: str
    action: Action
    after: str | None = None


def pytest_args(junit: Path) -> list[str]:
    """The arguments of one test-suite run, writing its JUnit report to *junit*."""
    return ["-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={junit}", *HYPOTHESIS]


def junit_of(version: str) -> Path:
    """Where the test-suite run on Python *version* writes its JUnit report."""
    return OUT / f"junit-{version}.xml"


def sphinx(builder: str) -> list[str]:
    """Build the docs with *builder*, warnings as errors, every reference checked."""
    return [PY, "-m", "sphinx", "-n", "-W", "--keep-going", "-q", "-b", builder, "docs", str(OUT / builder)]


STEPS: list[tuple[str, Action]] = [
    ("ruff format", [PY, "-m", "ruff", "format", "--check", "--diff", "."]),
    ("ruff check", [PY, "-m", "ruff", "check", "."]),
    ("mypy", [PY, "-m", "mypy"]),
    ("docs (html, nitpicky)", sphinx("html")),
    ("docs (doctest)", sphinx("doctest")),
    (f"tests (Python {MAIN}, coverage)", [PY, "-m", "coverage", "run", *pytest_args(junit_of(MAIN))]),
    ("coverage", [PY, "-m", "coverage", "combine", "-q"]),
    ("coverage report", [PY, "-m", "coverage", "report", "--fail-under=95"]),
]


def supported_versions() -> list[str]:
    """The Python versions ``pyproject.toml`` lists in its classifiers (``3.11``, ...), oldest first."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    found = (re.fullmatch(r"Programming Language :: Python :: (3\.\d+)", c) for c in project["classifiers"])
    return sorted({m[1] for m in found if m}, key=lambda v: tuple(map(int, v.split("."))))


def _version_of(python: str) -> str | None:
    try:
        proc = subprocess.run(  # noqa: S603 - a fixed argument list
            [python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return proc.stdout.strip() if proc.returncode == 0 else None


def _release(python: Path) -> list[int]:
    """The numbers of a pyenv build's folder (``3.12.1`` in ``versions/3.12.1/bin/python3.12``)."""
    return [int(n) for n in re.findall(r"\d+", python.parts[-3])]


def find_interpreter(version: str) -> str | None:
    """
    Find an installed Python *version*: ``python3.x`` on the ``PATH``, else the newest pyenv build of it.

    A pyenv shim on the ``PATH`` fails for a version that is installed but not
    selected, so each candidate is run to check that it works and is *version*.
    """
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    builds = sorted(pyenv.glob(f"{version}.*/bin/python{version}"), key=_release, reverse=True)
    candidates = [shutil.which(f"python{version}"), *map(str, builds)]
    return next((c for c in candidates if c is not None and _version_of(c) == version), None)


def environment(version: str, interpreter: str) -> tuple[str, Callable[[], int]]:
    """
    The Python of the test environment for *version*, and the step that creates or refreshes it.

    The environment is ``.check/py<version>`` with the project installed in
    editable mode with its ``test`` extra. It is reinstalled only when
    ``pyproject.toml`` or the interpreter changed since the last install.
    """
    folder = OUT / f"py{version}"
    python = folder / "bin" / "python"
    stamp = folder / "installed.sha256"
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes() + os.fsencode(interpreter)).hexdigest()

    def refresh() -> int:
        print(f"{folder.relative_to(ROOT)}, from {interpreter}", flush=True)
        if stamp.exists() and stamp.read_text() == digest and _version_of(str(python)) == version:
            print("up to date")
            return 0
        steps = [
            [interpreter, "-m", "venv", "--clear", str(folder)],
            [str(python), "-m", "pip", "install", "-q", "-e", ".[test]"],
        ]
        for cmd in steps:
            print(f"    {' '.join(cmd)}", flush=True)
            code = subprocess.call(cmd, cwd=ROOT)  # noqa: S603 - fixed argument lists
            if code:
                return code
        stamp.write_text(digest)
        return 0

    return str(python), refresh


def run(action: Action, env: dict[str, str]) -> int:
    """Run one step; return its exit code."""
    if callable(action):
        return action()
    return subprocess.call(action, cwd=ROOT, env=env)  # noqa: S603 - fixed argument lists


def _test_counts(junit: Path) -> str | None:
    try:
        suite = ET.parse(junit).getroot()  # noqa: S314 - our own pytest output
    except (OSError, ET.ParseError):
        return None
    node = suite if suite.tag == "testsuite" else suite.find("testsuite")
    if node is None:
        return None
    total, failures, errors, skipped = (int(node.get(k, "0")) for k in ("tests", "failures", "errors", "skipped"))
    passed = total - failures - errors - skipped
    return f"{passed} passed, {failures + errors} failed, {skipped} skipped"


def _shown(cmd: list[str]) -> str:
    return " ".join(cmd[1:] if cmd[0] == PY else cmd)


def plan() -> tuple[list[Step], list[str], list[str]]:
    """The steps to run, the Python versions they test, and the supported versions not installed here."""
    steps = [Step(name, action) for name, action in STEPS]
    tested = [MAIN]
    missing: list[str] = []
    for version in supported_versions():
        if version == MAIN:
            continue
        interpreter = find_interpreter(version)
        if interpreter is None:
            missing.append(version)
            print(f"check: Python {version} is not installed: its tests are skipped")
            continue
        python, refresh = environment(version, interpreter)
        setup = Step(f"environment (Python {version})", refresh)
        steps += [setup, Step(f"tests (Python {version})", [python, *pytest_args(junit_of(version))], setup.name)]
        tested.append(version)
    return steps, tested, missing


def summary(results: dict[str, tuple[int, float]], tested: list[str], missing: list[str]) -> list[str]:
    """The lines of the summary: each step's result and time, skipped interpreters, test counts."""
    lines = [
        f"  {'ok  ' if code == 0 else 'FAIL'}  {name}  ({seconds:.1f}s)" for name, (code, seconds) in results.items()
    ]
    lines += [f"  skip  tests (Python {version}): not installed" for version in missing]
    for version in tested:
        counts = _test_counts(junit_of(version))
        if counts is not None:
            lines.append(f"tests (Python {version}): {counts}")
    return lines


def main() -> int:
    """Run every step and print a summary; return the exit code."""
    OUT.mkdir(exist_ok=True)
    for old in OUT.glob("junit-*.xml"):
        old.unlink()  # the counts come from this run only
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    steps, tested, missing = plan()
    print(f"check: tests on Python {', '.join(tested)}; coverage on Python {MAIN}")
    print(f"check: Hypothesis seed {HYPOTHESIS_SEED}; reproduce a failure with `pytest {' '.join(HYPOTHESIS)} <test>`")

    began_all = time.monotonic()
    results: dict[str, tuple[int, float]] = {}
    for step in steps:
        if step.after is not None and results[step.after][0]:
            print(f"\n==> {step.name}: not run ({step.after} failed)")
            results[step.name] = (1, 0.0)
            continue
        print(f"\n==> {step.name}" + ("" if callable(step.action) else f": {_shown(step.action)}"), flush=True)
        began = time.monotonic()
        code = run(step.action, env)
        results[step.name] = (code, time.monotonic() - began)

    print("\n==> summary", *summary(results, tested, missing), sep="\n")
    print(f"check: {time.monotonic() - began_all:.0f}s in all")
    failed = [name for name, (code, _) in results.items() if code]
    if failed:
        print(f"check: failed: {', '.join(failed)}")
        return 1
    print("check: all steps passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
