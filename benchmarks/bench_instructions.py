"""
Count the instructions a start and a stop take per unit, with callgrind: steady on a shared machine.

Run ``python benchmarks/bench_instructions.py [--n 2000] [--backends asyncio,uvloop,trio]
[--kinds generator,worker,class] [--shape dag] [--seed 0] [--json PATH]``. It needs
``valgrind`` (``apt-get install valgrind``); without it, it prints one line saying so
and exits 0, and ``run_all.py`` carries on.

Each cell runs the workload of ``bench_workloads.py`` once (the anyio floor's
flat N tasks, or N lifecycle components of one kind in one shape), all of them
in one interpreter under ``valgrind --tool=callgrind``, after a warm-up pass of
every cell with ten units (so that imports and first calls are not counted).
The workload calls
``os.sched_yield()`` when it has built its units, once every unit is ready and
once every unit has stopped, and callgrind dumps its counters at each of those
calls (``--dump-before=sched_yield``), so the instructions of the start and of
the stop are counted apart from the interpreter's start, the imports, the build
and the exit. *Per unit* divides them by N; the fixed costs of a start (the
event loop's first passes, the supervisor's own task) are in it, which at
N = 2,000 is a few per cent. Timings on a shared machine move with the other
work on it; instruction counts do not, so they show what a change gained.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Any, Final

HERE: Final = Path(__file__).resolve().parent
BACKENDS: Final[dict[str, tuple[str, dict[str, Any]]]] = {
    "asyncio": ("asyncio", {}),
    "uvloop": ("asyncio", {"use_uvloop": True}),
    "trio": ("trio", {}),
}
FLOOR: Final = "anyio floor"
KIND_WORKLOADS: Final = {"generator": "lifecycle", "worker": "lifecycle worker", "class": "lifecycle class"}
PHASES: Final = ("start", "stop")


# -- the child: the workloads, with markers ------------------------------------------------------


def child(cells: Sequence[tuple[str, str, str]], n: int, seed: int) -> None:
    """Run each (workload, backend, shape) once small, unmarked, then once with the markers."""
    import anyio  # noqa: PLC0415 - the child only
    import structlog  # noqa: PLC0415 - the child only
    from _workloads import WORKLOADS, Meter  # noqa: PLC0415 - the child only

    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING), cache_logger_on_first_use=True
    )
    by_name = {w.name: w for w in WORKLOADS}
    for units, mark in ((10, int), (n, os.sched_yield)):  # a warm-up: imports and first calls are not counted
        for workload, backend, shape in cells:
            name, options = BACKENDS[backend]
            meter = Meter(memory=False, mark=mark)
            anyio.run(partial(by_name[workload].run, shape, units, seed, meter), backend=name, backend_options=options)


# -- the parent: callgrind and its dumps -----------------------------------------------------------


def _totals(path: Path) -> int:
    for line in path.read_text().splitlines():
        if line.startswith("totals:"):
            return int(line.split()[1])
    msg = f"no totals in {path}"
    raise RuntimeError(msg)


def count(cells: Sequence[tuple[str, str, str]], n: int, seed: int) -> list[dict[str, int]]:
    """Instructions of the start and the stop of each cell, all in one interpreter under callgrind."""
    with tempfile.TemporaryDirectory(prefix="callgrind_") as tmp:
        out = Path(tmp) / "cg.out"
        spec = ";".join(",".join(cell) for cell in cells)
        command = [
            "valgrind",
            "--tool=callgrind",
            "--dump-before=sched_yield",
            f"--callgrind-out-file={out}",
            sys.executable,
            str(Path(__file__).resolve()),
            "--child",
            spec,
            str(n),
            str(seed),
        ]
        done = subprocess.run(command, cwd=HERE, capture_output=True, text=True, check=False)
        if done.returncode:
            msg = f"the workloads under callgrind exited {done.returncode}: {done.stderr[-1000:]}"
            raise RuntimeError(msg)
        # Each cell dumps at "built", "ready" and "stopped": its parts 3i + 2 (start) and 3i + 3 (stop).
        parts = {int(p.name.rsplit(".", 1)[1]): p for p in Path(tmp).glob("cg.out.*")}
        if sorted(parts) != list(range(1, 3 * len(cells) + 1)):
            msg = f"expected {3 * len(cells)} dumps, got {sorted(parts)}"
            raise RuntimeError(msg)
        return [{"start": _totals(parts[3 * i + 2]), "stop": _totals(parts[3 * i + 3])} for i in range(len(cells))]


def measure(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Every cell: the floor and each kind, on each backend."""
    cells = [
        (workload, backend, shape)
        for backend in args.backends
        for workload, shape in [(FLOOR, "flat")] + [(KIND_WORKLOADS[k], args.shape) for k in args.kinds]
    ]
    print(f"[instructions] {len(cells)} cells under callgrind, N = {args.n:,}", file=sys.stderr, flush=True)
    counts = count(cells, args.n, args.seed)
    return [
        {"backend": backend, "workload": workload, "shape": shape, "n": args.n, **counted}
        for (workload, backend, shape), counted in zip(cells, counts, strict=True)
    ]


def render(rows: Sequence[dict[str, Any]]) -> str:
    """A Markdown table: instructions per unit and the ratio to the floor on the same backend."""
    lines = [
        (
            "| backend | workload | shape | start: instructions per unit | stop: instructions per unit "
            "| start / floor | stop / floor |"
        ),
        "|---|---|---|---:|---:|---:|---:|",
    ]
    for row in rows:
        floor = next(r for r in rows if r["backend"] == row["backend"] and r["workload"] == FLOOR)
        per = {p: row[p] / row["n"] for p in PHASES}
        rel = {p: row[p] / floor[p] for p in PHASES}
        lines.append(
            f"| {row['backend']} | {row['workload']} | {row['shape']} | {per['start']:,.0f} | {per['stop']:,.0f} "
            f"| {rel['start']:.2f} | {rel['stop']:.2f} |"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Count, print the table (and write the JSON); without valgrind, say so and return 0."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--child"]:
        spec, n, seed = argv[1:4]
        cells = [tuple(cell.split(",")) for cell in spec.split(";")]
        child([(w, b, s) for w, b, s in cells], int(n), int(seed))
        return 0
    parser = argparse.ArgumentParser(description=(__doc__ or "").strip().splitlines()[0])
    parser.add_argument("--n", type=int, default=2000, help="units per run (2000)")
    parser.add_argument("--backends", default="asyncio,uvloop,trio", help="comma-separated (all)")
    parser.add_argument("--kinds", default="generator,worker,class", help="comma-separated kinds of component")
    parser.add_argument("--shape", default="dag", choices=("flat", "chain", "dag"), help="lifecycle's shape (dag)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random DAG (0)")
    parser.add_argument("--json", type=Path, help="also write the counts to this file")
    args = parser.parse_args(argv)
    args.backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    args.kinds = [k.strip() for k in args.kinds.split(",") if k.strip()]
    if unknown := [k for k in args.kinds if k not in KIND_WORKLOADS]:
        parser.error(f"unknown kind(s) {unknown}; choose from {', '.join(KIND_WORKLOADS)}")
    print("# Instructions per unit (callgrind)")
    print()
    if shutil.which("valgrind") is None:
        print("valgrind is not installed: instruction counts skipped (`apt-get install valgrind` adds them).")
        if args.json is not None:
            args.json.write_text(json.dumps({"skipped": "valgrind is not installed", "rows": []}))
        return 0
    rows = measure(args)
    print(
        f"- N = {args.n:,}; one run per cell, after a warm-up pass, in one interpreter under "
        f"`valgrind --tool=callgrind`; Python {sys.version.split()[0]}"
    )
    print()
    print("## Instructions per unit")
    print()
    print(render(rows))
    if args.json is not None:
        args.json.write_text(json.dumps({"n": args.n, "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
