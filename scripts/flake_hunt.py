"""
Run the time-sensitive tests many times and count failures per test and backend.

A flaky test is a bug (STYLE.md). The tests most likely to flake are the ones
that wait on the wall clock: real processes, signals, deadlines on asyncio and
uvloop. They carry the ``real_time`` marker; this script runs them *runs* times
(20 by default) in fresh pytest processes, each run on every backend (asyncio,
uvloop, trio), and prints a table: a row per test, a column per backend, each
cell the failures out of the runs. A test without a backend parameter (a CLI
test in a subprocess) counts in the ``-`` column.

Usage::

    python scripts/flake_hunt.py                      # -m real_time, 20 runs
    python scripts/flake_hunt.py -n 50 -- tests/test_cutoffs.py -k RealTime

Arguments after ``--`` replace the default selection (``-m real_time``).
It runs the pytest of the interpreter that runs it, so
``.check/py3.13/bin/python scripts/flake_hunt.py`` hunts on Python 3.13.
Exits 0 when nothing failed, 1 when something did, 2 when pytest could not run.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BACKENDS = ("asyncio", "uvloop", "trio", "-")
DEFAULT_SELECTION = ("-m", "real_time")
# pytest's exit codes 0 (all passed) and 1 (some failed) mean the run happened.
RAN = (0, 1)


def backend_of(param_id: str) -> tuple[str, str]:
    """
    Split a test's parameter id into its backend and the rest.

    ``uvloop`` and ``asyncio+uvloop`` are uvloop; ``trio-mockclock`` is trio.
    An id that names no backend gives ``-``.
    """
    parts = param_id.split("-")
    for i, part in enumerate(parts):
        backend = "uvloop" if part == "asyncio+uvloop" else part
        if backend in BACKENDS:
            return backend, "-".join(parts[:i] + parts[i + 1 :])
    return "-", param_id


def node_id(classname: str, name: str) -> str:
    """Rebuild a pytest node id from a JUnit ``classname`` (``tests.test_x.TestY``) and test name."""
    parts = classname.split(".")
    for i in range(len(parts), 0, -1):
        module = Path(*parts[:i]).with_suffix(".py")
        if (ROOT / module).is_file():
            return "::".join([module.as_posix(), *parts[i:], name])
    return f"{classname}::{name}"


def row_and_backend(classname: str, name: str) -> tuple[str, str]:
    """Return the table row (the node id without its backend) and the backend of one test case."""
    test = node_id(classname, name)
    if not test.endswith("]") or "[" not in test:
        return test, "-"
    base, _, param_id = test[:-1].partition("[")
    backend, rest = backend_of(param_id)
    return (f"{base}[{rest}]" if rest else base), backend


class Tally:
    """Runs and failures per (row, backend), and the first failure message of each row."""

    def __init__(self) -> None:
        self.runs: Counter[tuple[str, str]] = Counter()
        self.failures: Counter[tuple[str, str]] = Counter()
        self.messages: dict[tuple[str, str], str] = {}

    def add_junit(self, path: Path) -> int:
        """Count the test cases of one JUnit report; return how many failed."""
        failed = 0
        for case in ET.parse(path).getroot().iter("testcase"):  # noqa: S314 - our own pytest output
            if case.find("skipped") is not None:
                continue
            key = row_and_backend(case.get("classname", ""), case.get("name", ""))
            self.runs[key] += 1
            problem = case.find("failure")
            if problem is None:
                problem = case.find("error")
            if problem is not None:
                failed += 1
                self.failures[key] += 1
                message = (problem.get("message") or problem.text or "").strip().splitlines()
                self.messages.setdefault(key, message[0][:200] if message else "")
        return failed

    def table(self) -> str:
        """Render the counts: a row per test, a column per backend that ran, ``failures/runs`` in each cell."""
        rows = sorted({row for row, _ in self.runs})
        columns = [b for b in BACKENDS if any((row, b) in self.runs for row in rows)]
        width = max([len("test"), *map(len, rows)])
        lines = ["  ".join(["test".ljust(width), *(c.rjust(7) for c in columns)])]
        for row in rows:
            cells = [f"{self.failures[row, c]}/{self.runs[row, c]}" if (row, c) in self.runs else "" for c in columns]
            lines.append("  ".join([row.ljust(width), *(cell.rjust(7) for cell in cells)]))
        totals = [f"{sum(self.failures[r, c] for r in rows)}" for c in columns]
        lines.append("  ".join(["failures per backend".ljust(width), *(t.rjust(7) for t in totals)]))
        return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the selection *runs* times, print the table; return the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0].strip() if __doc__ else None)
    parser.add_argument("-n", "--runs", type=int, default=20, help="how many times to run the tests (20)")
    parser.add_argument("pytest_args", nargs="*", help="pytest arguments replacing `-m real_time` (after --)")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error(f"`--runs` must be at least 1, not {args.runs!r}")
    selection = args.pytest_args or list(DEFAULT_SELECTION)
    print(f"flake hunt: Python {sys.version.split()[0]}, {args.runs} runs of pytest {' '.join(selection)}", flush=True)

    tally = Tally()
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    with tempfile.TemporaryDirectory(prefix="flake-hunt-") as folder:
        for n in range(1, args.runs + 1):
            junit = Path(folder) / f"run-{n}.xml"
            cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={junit}", *selection]
            began = time.monotonic()
            proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, check=False)  # noqa: S603 - fixed argument list
            if proc.returncode not in RAN or not junit.exists():
                print(proc.stdout[-3000:], proc.stderr[-3000:], sep="\n", file=sys.stderr)
                print(f"flake hunt: pytest could not run (exit code {proc.returncode})", file=sys.stderr)
                return 2
            failed = tally.add_junit(junit)
            print(f"  run {n}/{args.runs}: {failed} failed ({time.monotonic() - began:.1f}s)", flush=True)

    print()
    print(tally.table())
    if tally.messages:
        print("\nfirst failure of each:")
        for (row, backend), message in sorted(tally.messages.items()):
            print(f"  {row} [{backend}]: {message}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
