"""
Run everything CI runs, in one command.

Formatting, lint, types, the docs with their doctests, and the test suite on
every backend with branch coverage.

Usage: ``python scripts/check.py`` (from the project root, in the environment
where ``pip install -e '.[test]'`` ran). Exits non-zero if any step fails; every
step runs even when an earlier one failed, so one run shows every problem.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / ".check"
PY = sys.executable

STEPS: list[tuple[str, list[str]]] = [
    ("ruff format", [PY, "-m", "ruff", "format", "--check", "--diff", "."]),
    ("ruff check", [PY, "-m", "ruff", "check", "."]),
    ("mypy", [PY, "-m", "mypy"]),
    (
        "docs (html, nitpicky)",
        [
            PY,
            "-m",
            "sphinx",
            "-n",
            "-W",
            "--keep-going",
            "-q",
            "-b",
            "html",
            "docs",
            str(OUT / "html"),
        ],
    ),
    (
        "docs (doctest)",
        [
            PY,
            "-m",
            "sphinx",
            "-n",
            "-W",
            "--keep-going",
            "-q",
            "-b",
            "doctest",
            "docs",
            str(OUT / "doctest"),
        ],
    ),
    (
        "tests",
        [
            PY,
            "-m",
            "coverage",
            "run",
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            f"--junitxml={OUT / 'junit.xml'}",
        ],
    ),
    ("coverage", [PY, "-m", "coverage", "combine", "-q"]),
    ("coverage report", [PY, "-m", "coverage", "report", "--fail-under=95"]),
]


def _test_counts() -> str | None:
    try:
        suite = ET.parse(OUT / "junit.xml").getroot()  # noqa: S314 - our own pytest output
    except (OSError, ET.ParseError):
        return None
    node = suite if suite.tag == "testsuite" else suite.find("testsuite")
    if node is None:
        return None
    total, failures, errors, skipped = (int(node.get(k, "0")) for k in ("tests", "failures", "errors", "skipped"))
    passed = total - failures - errors - skipped
    return f"{passed} passed, {failures + errors} failed, {skipped} skipped"


def main() -> int:
    """Run every step and print a summary; return the exit code."""
    OUT.mkdir(exist_ok=True)
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    results: list[tuple[str, int, float]] = []
    for name, cmd in STEPS:
        print(f"\n==> {name}: {' '.join(cmd[1:] if cmd[0] == PY else cmd)}", flush=True)
        began = time.monotonic()
        code = subprocess.call(cmd, cwd=ROOT, env=env)  # noqa: S603 - fixed argument lists
        results.append((name, code, time.monotonic() - began))
    print("\n==> summary")
    for name, code, seconds in results:
        print(f"  {'ok  ' if code == 0 else 'FAIL'}  {name}  ({seconds:.1f}s)")
    failed = [name for name, code, _ in results if code]
    counts = _test_counts()
    if counts is not None:
        print(f"tests: {counts}")
    if failed:
        print(f"check: failed: {', '.join(failed)}")
        return 1
    print("check: all steps passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
