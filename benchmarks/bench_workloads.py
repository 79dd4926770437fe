"""
Benchmark start and stop of N units: the floors, lifecycle's trees and the peers, on every backend.

Run ``python benchmarks/bench_workloads.py [--sizes 100,1000,10000,100000]
[--full-upto 10000] [--rounds 5] [--large-rounds 3] [--backends asyncio,uvloop,trio]
[--workloads ...] [--shapes flat,chain,dag] [--seed 0] [--clock wall|cpu]
[--memory-upto N] [--no-memory] [--json PATH]``. It prints Markdown tables; ``--json`` also writes
every sample, which ``run_all.py`` turns into the documentation's tables and charts.

The units
    *anyio floor*: N bare tasks started with ``task_group.start_soon``, each
    counting itself ready (the last one sets one event), then cancelled with the
    task group's cancel scope. *asyncio.TaskGroup* and *trio nursery*: the same
    with the native primitives, for reference. *lifecycle*: N async-generator
    components (``async def c(): yield None``) on one ``supervisors.Supervisor``,
    run with ``lifecycle.running()`` until ``ready()``, then ``shutdown()``.
    The peers: see ``_workloads.py`` for exactly what each one runs, and for why
    some shapes cannot be expressed with them.

The shapes
    *flat*: N independent units. *chain*: unit i depends on unit i - 1. *dag*: a
    seeded random DAG, each unit depending on 0 to 3 earlier ones, priorities
    drawn from all five. Floors are flat by nature.

What is timed
    *build*: constructing / registering the N units (and, for lifecycle,
    validating the graph), outside the ratios. *start*: from starting to every
    unit having signalled readiness. *stop*: from asking for the stop to
    everything having stopped. Every run checks that all N units started and
    stopped (lifecycle: a clean ``ShutdownReport`` with N + 1 components).

Rounds
    Each round runs every workload once on every backend, at each size; a
    ratio is taken within a round, and tables show the median with min to max.
    Above ``--full-upto`` only the floors and lifecycle's DAG run (with
    ``--large-rounds`` rounds), to keep the whole run short; the tables say so.

Memory
    In separate, untimed runs (one per cell; tracemalloc slows everything
    down): bytes still allocated once all units are ready, after
    ``gc.collect()``, divided by N; *total* counts construction / registration,
    *running* only what the start allocated. tracemalloc sees Python objects,
    including asyncio's and uvloop's, not libuv's own C allocations. Runs
    under tracemalloc take about three times as long, so above
    ``--memory-upto`` (default: every size) there are none.

structlog is configured to drop events below WARNING, as a production service would.
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import json
import logging
import platform
import statistics
import sys
import time
from collections.abc import Iterator, Sequence
from functools import partial
from pathlib import Path
from typing import Any, Final

import anyio
import structlog
from _machine import cpus, version
from _workloads import SHAPES, WORKLOADS, Meter, Sample, Workload

BACKENDS: Final[dict[str, tuple[str, dict[str, Any]]]] = {
    "asyncio": ("asyncio", {}),
    "uvloop": ("asyncio", {"use_uvloop": True}),
    "trio": ("trio", {}),
}
CLOCKS: Final = {"wall": time.perf_counter, "cpu": time.process_time}
DISTS: Final = (
    "anyio",
    "trio",
    "uvloop",
    "structlog",
    "attrs",
    "anyio-lifecycle",
    "aiomisc",
    "mode-streaming",
    "aiotools",
    "triotp",
)
FLOOR: Final = "anyio floor"
Cell = dict[str, Any]


def configure_logging() -> None:
    """Drop structlog events below WARNING, cheaply, as a production service would."""
    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
        cache_logger_on_first_use=True,
    )


def run_once(workload: Workload, backend: str, shape: str, n: int, seed: int, *, memory: bool, clock: str) -> Sample:
    """Run *workload* once in a fresh event loop of *backend*."""
    meter = Meter(memory=memory, clock=CLOCKS[clock])
    name, options = BACKENDS[backend]
    anyio.run(partial(workload.run, shape, n, seed, meter), backend=name, backend_options=options)
    return meter.sample()


# -- the plan ----------------------------------------------------------------------------------


def why_not(workload: Workload, backend: str, shape: str, n: int, args: argparse.Namespace) -> tuple[str, str] | None:
    """Return ``(status, reason)`` if this cell is not measured, ``None`` if it is."""
    if backend not in workload.backends:
        return "backend", f"{workload.name} does not run on {backend}"
    if shape not in workload.shapes:
        return "n/a", workload.why
    if not workload.available():
        return "missing", f"not installed ({workload.install})"
    if n > args.full_upto and not (workload.floor or (workload.kind is not None and shape == "dag")):
        return "skipped", f"skipped (above N = {args.full_upto:,} only the floors and lifecycle's DAGs run)"
    return None


def cells(args: argparse.Namespace) -> Iterator[tuple[int, str, Workload, str]]:
    """Every (N, backend, workload, shape) of the run, in table order."""
    for n in args.sizes:
        for backend in args.backends:
            for workload in args.workloads:
                for shape in SHAPES:
                    # Floors are flat, and run whatever the shapes: every ratio is taken against one.
                    if (shape != "flat") if workload.floor else (shape not in args.shapes):
                        continue
                    yield n, backend, workload, shape


def _attempt(
    cell: Cell, workload: Workload, args: argparse.Namespace, *, memory: bool, record: bool = True
) -> Sample | None:
    """Run one cell once; on failure, mark the cell failed and return ``None``."""
    if cell["status"] != "ok":
        return None
    try:
        sample = run_once(
            workload, cell["backend"], cell["shape"], cell["n"], args.seed, memory=memory, clock=args.clock
        )
    except Exception as exc:  # noqa: BLE001 - a peer's failure is reported in its cell, the run goes on
        cell["status"] = "error"
        cell["reason"] = f"failed: {type(exc).__name__}: {exc}".splitlines()[0][:200]
        return None
    if record:
        if memory:
            cell["memory"] = {"total": sample.total_bytes, "running": sample.running_bytes}
        else:
            cell["samples"].append({"build": sample.build, "start": sample.start, "stop": sample.stop})
    return sample


def run_benchmark(args: argparse.Namespace) -> list[Cell]:
    """Measure every cell: a warm-up, the interleaved rounds, then the memory runs."""
    table: list[Cell] = []
    by_n: dict[int, list[tuple[Cell, Workload]]] = {}
    for n, backend, workload, shape in cells(args):
        skip = why_not(workload, backend, shape, n, args)
        cell: Cell = {
            "n": n,
            "backend": backend,
            "workload": workload.name,
            "shape": shape,
            "floor": workload.floor,
            "status": "ok" if skip is None else skip[0],
            "reason": "" if skip is None else skip[1],
            "samples": [],
            "memory": None,
        }
        table.append(cell)
        by_n.setdefault(n, []).append((cell, workload))
    for n, todo in by_n.items():
        rounds = args.rounds if n <= args.full_upto else args.large_rounds
        if n == args.sizes[0]:
            for cell, workload in todo:  # warm-up: imports, caches, the first event loop
                _attempt(cell, workload, args, memory=False, record=False)
        for number in range(rounds):
            shift = number % len(todo)  # rotate the order from round to round
            for cell, workload in todo[shift:] + todo[:shift]:
                _attempt(cell, workload, args, memory=False)
            print(f"N = {n:,}: round {number + 1}/{rounds} done", file=sys.stderr, flush=True)
        if args.memory and (args.memory_upto is None or n <= args.memory_upto):
            for cell, workload in todo:
                _attempt(cell, workload, args, memory=True)
            print(f"N = {n:,}: memory done", file=sys.stderr, flush=True)
        gc.collect()
    return table


# -- the report -----------------------------------------------------------------------------


def machine(args: argparse.Namespace, skipped: Sequence[str]) -> dict[str, Any]:
    """The machine, the versions and the run's parameters."""
    return {
        "python": f"{platform.python_version()} ({platform.python_implementation()})",
        "platform": platform.platform(),
        "cpus": cpus(),
        "versions": {dist: version(dist) for dist in DISTS},
        "sizes": args.sizes,
        "full_upto": args.full_upto,
        "rounds": args.rounds,
        "large_rounds": args.large_rounds,
        "memory_upto": args.memory_upto if args.memory else 0,
        "seed": args.seed,
        "clock": args.clock,
        "backends": args.backends,
        "skipped_backends": list(skipped),
    }


def _samples(cell: Cell | None, metric: str) -> list[float]:
    """
    The values of *metric*, one per round.

    *metric* is ``build``, ``start``, ``stop``, ``total`` (start + stop) or
    ``whole`` (build + start + stop: from nothing to everything stopped).
    """
    if cell is None or cell["status"] != "ok":
        return []
    if metric == "total":
        return [s["start"] + s["stop"] for s in cell["samples"]]
    if metric == "whole":
        return [s["build"] + s["start"] + s["stop"] for s in cell["samples"]]
    return [s[metric] for s in cell["samples"]]


def spread(values: Sequence[float], fmt: str = ".2f") -> str:
    """``median (min to max)``, or ``-`` for no values."""
    if not values:
        return "-"
    if len(values) == 1:
        return format(values[0], fmt)
    return f"{statistics.median(values):{fmt}} ({min(values):{fmt}} to {max(values):{fmt}})"


def ratios(mine: Cell | None, other: Cell | None, metric: str, *, inverse: bool = False) -> list[float]:
    """Per-round ratios *mine* / *other* of *metric* (*other* / *mine* with *inverse*)."""
    pairs = zip(_samples(mine, metric), _samples(other, metric), strict=False)
    return [(o / m if inverse else m / o) for m, o in pairs if m > 0 and o > 0]


def find(table: Sequence[Cell], n: int, backend: str, workload: str, shape: str = "flat") -> Cell | None:
    """The cell of (n, backend, workload, shape), if any."""
    for cell in table:
        if (cell["n"], cell["backend"], cell["workload"], cell["shape"]) == (n, backend, workload, shape):
            return cell
    return None


def time_table(table: Sequence[Cell], n: int) -> str:
    """Start and stop at size *n*, with ratios to the anyio floor on the same backend."""
    lines = [
        f"### N = {n:,}",
        "",
        "| backend | workload | shape | build ms | start ms | stop ms | start / floor | stop / floor |",
        "|---|---|---|---:|---:|---:|---:|---:|",
    ]
    for cell in table:
        # A workload that does not run on a backend at all is said once, under the tables.
        if cell["n"] != n or cell["status"] == "backend":
            continue
        label = f"| {cell['backend']} | {cell['workload']} | {cell['shape']} |"
        if cell["status"] != "ok":
            lines.append(f"{label} {cell['reason']} | | | | |")
            continue
        floor = find(table, n, cell["backend"], FLOOR)
        ms = [{k: v * 1e3 for k, v in s.items()} for s in cell["samples"]]
        build = spread([s["build"] for s in ms], ".1f")
        start = spread([s["start"] for s in ms], ".1f")
        stop = spread([s["stop"] for s in ms], ".1f")
        if cell["workload"] == FLOOR:
            rel_start = rel_stop = "1"
        else:
            rel_start = spread(ratios(cell, floor, "start"))
            rel_stop = spread(ratios(cell, floor, "stop"))
        lines.append(f"{label} {build} | {start} | {stop} | {rel_start} | {rel_stop} |")
    return "\n".join(lines)


def memory_table(table: Sequence[Cell]) -> str:
    """Bytes per unit once all are ready, with the ratio to a bare anyio task on the same backend."""
    lines = [
        "| N | backend | workload | shape | B per unit (total) | B per unit (running) | total / floor |",
        "|---:|---|---|---|---:|---:|---:|",
    ]
    for cell in table:
        memory = cell["memory"]
        if memory is None:
            continue
        n = cell["n"]
        floor = find(table, n, cell["backend"], FLOOR)
        floor_memory = None if floor is None else floor["memory"]
        ratio = "-" if not floor_memory else f"{memory['total'] / floor_memory['total']:.2f}"
        lines.append(
            f"| {n:,} | {cell['backend']} | {cell['workload']} | {cell['shape']} "
            f"| {memory['total'] / n:,.0f} | {memory['running'] / n:,.0f} | {ratio} |"
        )
    return "\n".join(lines)


def render(data: dict[str, Any]) -> str:
    """The Markdown tables of a run (its JSON form)."""
    table = data["cells"]
    sizes = sorted({cell["n"] for cell in table})
    parts = [time_table(table, n) for n in sizes]
    parts.append("### Memory per unit\n\n" + memory_table(table))
    only = sorted({f"{w.name}: {', '.join(w.backends)} only" for w in WORKLOADS if len(w.backends) < len(BACKENDS)})
    parts.append(f"Backends: {'; '.join(only)}.")
    return "\n\n".join(parts)


def header(info: dict[str, Any], elapsed: float) -> str:
    """The machine, versions and parameters as a Markdown list."""
    versions = ", ".join(f"{dist} {v}" for dist, v in info["versions"].items())
    lines = [
        f"- Python {info['python']} on {info['platform']}; CPUs: {info['cpus']}",
        f"- {versions}",
        (
            f"- N = {', '.join(f'{n:,}' for n in info['sizes'])}; {info['rounds']} rounds up to "
            f"N = {info['full_upto']:,}, {info['large_rounds']} above; seed {info['seed']}; "
            f"clock: {info['clock']}; backends: {', '.join(info['backends'])}; this part took {elapsed:.0f} s"
        ),
    ]
    memory_upto = info.get("memory_upto")
    if memory_upto == 0:
        lines.append("- no memory runs")
    elif memory_upto is not None and memory_upto < max(info["sizes"]):
        lines.append(f"- memory runs up to N = {memory_upto:,} (tracemalloc slows a run about threefold)")
    lines.extend(f"- skipped backend {name}: not importable" for name in info["skipped_backends"])
    return "\n".join(lines)


# -- the command line ---------------------------------------------------------------------------


def _sizes(text: str) -> list[int]:
    sizes = sorted({int(part.replace("_", "")) for part in text.split(",") if part.strip()})
    if not sizes or sizes[0] < 1:
        msg = f"sizes must be positive integers, got {text!r}"
        raise argparse.ArgumentTypeError(msg)
    return sizes


def parse_args(argv: Sequence[str] | None) -> tuple[argparse.Namespace, list[str]]:
    """Parse the command line; return the arguments and the backends skipped as not importable."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").strip().splitlines()[0])
    parser.add_argument("--sizes", type=_sizes, default=_sizes("100,1000,10000,100000"), help="N values")
    parser.add_argument(
        "--full-upto", type=int, default=10_000, help="above this N only the floors and lifecycle's DAG run (10000)"
    )
    parser.add_argument("--rounds", type=int, default=5, help="rounds up to --full-upto (5)")
    parser.add_argument("--large-rounds", type=int, default=3, help="rounds above --full-upto (3)")
    parser.add_argument("--backends", default="asyncio,uvloop,trio", help="comma-separated (all)")
    names = [w.name for w in WORKLOADS]
    parser.add_argument("--workloads", default=",".join(names), help=f"comma-separated, from: {', '.join(names)}")
    parser.add_argument("--shapes", default=",".join(SHAPES), help="comma-separated, from flat, chain, dag")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random DAG (0)")
    parser.add_argument("--clock", choices=CLOCKS, default="wall", help="wall: perf_counter; cpu: process_time")
    parser.add_argument("--no-memory", dest="memory", action="store_false", help="skip the memory runs")
    parser.add_argument("--memory-upto", type=int, help="no memory runs above this N (default: at every N)")
    parser.add_argument("--json", type=Path, help="also write every sample to this file")
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.large_rounds < 1:
        parser.error("--rounds and --large-rounds must be at least 1")
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    unknown = [b for b in backends if b not in BACKENDS]
    if unknown or not backends:
        parser.error(f"unknown backend(s) {unknown}; choose from {', '.join(BACKENDS)}")
    wanted = [w.strip() for w in args.workloads.split(",") if w.strip()]
    unknown = [w for w in wanted if w not in names]
    if unknown or not wanted:
        parser.error(f"unknown workload(s) {unknown}; choose from {', '.join(names)}")
    if FLOOR not in wanted:
        wanted.insert(0, FLOOR)  # every ratio is taken against it
    args.workloads = [w for w in WORKLOADS if w.name in wanted]
    args.shapes = [s.strip() for s in args.shapes.split(",") if s.strip()]
    if not set(args.shapes) <= set(SHAPES) or not args.shapes:
        parser.error(f"unknown shape(s) in {args.shapes}; choose from {', '.join(SHAPES)}")
    args.backends = [b for b in backends if b in {"asyncio", "trio"} or importlib.util.find_spec(b) is not None]
    args.backends = [b for b in args.backends if b != "trio" or importlib.util.find_spec("trio") is not None]
    return args, [b for b in backends if b not in args.backends]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark, print its tables and write its JSON; return 1 if a lifecycle run failed."""
    args, skipped = parse_args(argv)
    configure_logging()
    began = time.perf_counter()
    table = run_benchmark(args)
    data: dict[str, Any] = {"machine": machine(args, skipped), "elapsed": time.perf_counter() - began, "cells": table}
    if args.json is not None:
        args.json.write_text(json.dumps(data, indent=1))
    print("# Start and stop of N units: floors, lifecycle, peers")
    print()
    print(header(data["machine"], data["elapsed"]))
    print()
    print(render(data))
    failed = [c for c in table if c["status"] == "error" and c["workload"] in {"lifecycle", FLOOR}]
    for cell in failed:
        print(f"\nfailed: {cell['workload']} {cell['shape']} N = {cell['n']} on {cell['backend']}: {cell['reason']}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
