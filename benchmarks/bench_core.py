"""Benchmark the core of anyio-lifecycle against bare anyio tasks.

Run ``python benchmarks/bench_core.py [--n 10000] [--rounds 5]
[--backends asyncio,uvloop,trio] [--style generator|function|class|mix]
[--seed 0] [--clock wall|cpu] [--no-gc]``; a default run takes about three
minutes on two cores, mostly registering the 10,000 components of each round.
One run prints, for each backend, a Markdown table comparing two workloads of
the same size N:

The floor
    N bare anyio tasks started with ``task_group.start_soon``. Each task signals
    readiness in the cheapest honest way: it decrements a shared counter, and the
    last one sets a single :class:`anyio.Event`; then it sleeps forever. *start*
    runs from entering the task group to the event being set (every task has
    run once); *stop* runs from ``tg.cancel_scope.cancel()`` to the task group
    having exited (every task has ended).

The tree
    A random DAG of N components on one :class:`supervisors.Supervisor`
    (seeded: each component depends on 0 to 3 earlier-registered components
    chosen at random, through ``depends_on=``; priorities are drawn uniformly
    from :class:`lifecycle.Priority`). By default every component is the
    cheapest realistic kind, an async generator ``async def c(): yield None``;
    ``--style`` picks ``ctx.ready()`` functions, ``run(self, ctx)`` objects or a
    mix. It runs as ``async with lifecycle.running(sup) as h: await h.ready();
    await h.shutdown()``. *start* runs from entering ``running()`` to
    ``h.ready()`` returning, *stop* from calling ``h.shutdown()`` to its return.
    Each round uses a freshly registered supervisor whose graph was built
    just before, so ``running()`` finds it cached: the graph's cost is reported
    on its own (a cold start costs start + build), while the rest of the
    validation ``running()`` does (every child's ``validate_tree``) counts in
    *start*.

Memory
    Measured in separate runs (tracemalloc slows everything down, so those runs
    are not timed): tracing starts right before the workload starts, and the
    bytes still allocated once everything is ready (after a ``gc.collect()``)
    are divided by N. For the tree this is what running costs on top of the
    registered specs and the validated graph (the "static" line reports those).
    tracemalloc sees every Python object, including asyncio's and uvloop's, but
    not libuv's own C allocations.

How to read it
    Each round runs floor and tree back to back on each backend; a ratio is
    tree / floor within one round, and the table shows the median ratio over
    the rounds with its minimum and maximum. A ratio of 2.0 on *start* means the
    framework spends as much time starting a component as anyio spends starting
    the task plus the same again. The targets (start and stop at most 2x the
    floor, memory at most 3x a bare task) are marked met or missed. Absolute
    numbers are medians in milliseconds (time) and bytes per component or task
    (memory). structlog is configured to drop events below WARNING, as a
    production service would, so formatting log lines does not dominate.
    The garbage collector stays on (it is part of the real cost; ``--no-gc``
    turns it off while measuring, to see the interpreter's work alone);
    ``gc.collect()`` runs before each measurement so one run's garbage is not
    billed to the next. Times are wall-clock (``time.perf_counter``); on a
    machine shared with other work, ``--clock cpu`` measures this process's CPU
    time instead, which is steadier (everything measured here is CPU-bound).
"""

from __future__ import annotations

import argparse
import gc
import importlib.metadata
import importlib.util
import logging
import platform
import random
import shutil
import statistics
import subprocess
import sys
import time
import tracemalloc
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any, Final, final

import anyio
import attrs
import structlog
from _machine import cpus, version

import lifecycle
import supervisors

BACKENDS: Final[dict[str, tuple[str, dict[str, Any]]]] = {
    "asyncio": ("asyncio", {}),
    "uvloop": ("asyncio", {"use_uvloop": True}),
    "trio": ("trio", {}),
}
STYLES: Final = ("generator", "function", "class", "mix")
# The targets of this stage: tree / floor at most this much.
TARGETS: Final = {"start": 2.0, "stop": 2.0, "memory": 3.0}
MAX_DEPENDENCIES: Final = 3
Clock = Callable[[], float]
# Wall-clock time is what users wait for; CPU time of this process is steadier on a busy machine.
CLOCKS: Final[dict[str, Clock]] = {"wall": time.perf_counter, "cpu": time.process_time}
DESIGN_GRAPH_SIZE: Final = 100_000


def configure_logging() -> None:
    """Drop structlog events below WARNING, cheaply, as a production service would."""
    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
        cache_logger_on_first_use=True,
    )


# -- the components -----------------------------------------------------------------


async def _generator_component() -> AsyncIterator[None]:
    yield None


async def _function_component(ctx: lifecycle.Context) -> None:
    ctx.ready()
    await anyio.sleep_forever()


@final
class _ObjectComponent:
    async def run(self, ctx: lifecycle.Context) -> None:
        ctx.ready()
        await anyio.sleep_forever()


def _component(style: str, i: int) -> object:
    if style == "mix":
        style = STYLES[i % 3]
    if style == "generator":
        return _generator_component
    if style == "function":
        return _function_component
    return _ObjectComponent()


def build_tree(n: int, seed: int, style: str) -> tuple[supervisors.Supervisor, int]:
    """Register a random DAG of *n* components; return the supervisor and its edge count."""
    rng = random.Random(seed)
    priorities = list(lifecycle.Priority)
    sup = supervisors.Supervisor("bench")
    edges = 0
    for i in range(n):
        deps = rng.sample(range(i), rng.randint(0, min(MAX_DEPENDENCIES, i)))
        edges += len(deps)
        sup.add(
            _component(style, i),
            name=f"c{i}",
            depends_on=tuple(f"c{j}" for j in deps),
            priority=rng.choice(priorities),
        )
    return sup, edges


# -- one measurement ------------------------------------------------------------------


@final
@attrs.frozen
class Sample:
    """One run of a workload.

    Attributes:
        start: Seconds to all-ready (0.0 in memory runs).

        stop: Seconds to all-stopped (0.0 in memory runs).

        held: Bytes still allocated when all were ready (0 in timing runs).

        peak: Peak bytes allocated up to that point (0 in timing runs).
    """

    start: float = 0.0
    stop: float = 0.0
    held: int = 0
    peak: int = 0


def _begin(memory: bool) -> None:
    gc.collect()
    if memory:
        tracemalloc.start()


def _memory_now(memory: bool) -> tuple[int, int]:
    if not memory:
        return 0, 0
    gc.collect()
    held, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return held, peak


async def floor_workload(n: int, memory: bool, clock: Clock = time.perf_counter) -> Sample:
    """Start *n* bare tasks, wait until all are ready, cancel them all."""
    remaining = n
    all_ready = anyio.Event()

    async def task() -> None:
        nonlocal remaining
        remaining -= 1
        if not remaining:
            all_ready.set()
        await anyio.sleep_forever()

    _begin(memory)
    began = clock()
    async with anyio.create_task_group() as tg:
        for _ in range(n):
            tg.start_soon(task)
        await all_ready.wait()
        ready = clock()
        held, peak = _memory_now(memory)
        stopping = clock()
        tg.cancel_scope.cancel()
    stopped = clock()
    if remaining:
        msg = f"floor: {remaining} of {n} tasks never became ready"
        raise RuntimeError(msg)
    if memory:
        return Sample(held=held, peak=peak)
    return Sample(start=ready - began, stop=stopped - stopping)


async def tree_workload(sup: supervisors.Supervisor, n: int, memory: bool, clock: Clock = time.perf_counter) -> Sample:
    """Run the tree with ``running()`` until it is ready, then shut it down."""
    _begin(memory)
    began = clock()
    async with lifecycle.running(sup) as handle:
        await handle.ready()
        ready = clock()
        held, peak = _memory_now(memory)
        stopping = clock()
        report = await handle.shutdown()
        stopped = clock()
    # Checked outside the timings: every component (and the root) stopped cleanly.
    if not report.ok or len(report.components) != n + 1:
        msg = f"tree: unexpected shutdown report:\n{report}"
        raise RuntimeError(msg)
    if memory:
        return Sample(held=held, peak=peak)
    return Sample(start=ready - began, stop=stopped - stopping)


def run_on(backend: str, workload: Callable[[], Awaitable[Sample]]) -> Sample:
    """Run *workload* in a fresh event loop of *backend*."""
    name, options = BACKENDS[backend]
    return anyio.run(workload, backend=name, backend_options=options)


# -- the rounds -----------------------------------------------------------------------


@final
@attrs.define
class Results:
    """Everything measured, per backend and workload."""

    n: int
    registration: list[float] = attrs.Factory(list)
    graph: list[float] = attrs.Factory(list)
    waves: int = 0
    edges: int = 0
    static_bytes: int = 0
    samples: dict[tuple[str, str, str], list[Sample]] = attrs.Factory(dict)

    def add(self, backend: str, workload: str, kind: str, sample: Sample) -> None:
        """Record *sample* of *workload* (``floor``/``tree``) on *backend*."""
        self.samples.setdefault((backend, workload, kind), []).append(sample)

    def series(self, backend: str, metric: str) -> tuple[list[float], list[float]]:
        """Return the floor and tree values of *metric* on *backend*, one per round."""
        kind = "memory" if metric == "memory" else "time"

        def values(workload: str) -> list[float]:
            samples = self.samples[backend, workload, kind]
            if metric == "memory":
                return [s.held for s in samples]
            return [getattr(s, metric) for s in samples]

        return values("floor"), values("tree")


def measure_round(results: Results, sup: supervisors.Supervisor, n: int, backends: Sequence[str], clock: Clock) -> None:
    """Run floor and tree, timed and traced, on every backend once."""
    for backend in backends:
        for memory, kind in ((False, "time"), (True, "memory")):
            results.add(backend, "floor", kind, run_on(backend, partial(floor_workload, n, memory, clock)))
            results.add(backend, "tree", kind, run_on(backend, partial(tree_workload, sup, n, memory, clock)))


def measure_static(n: int, seed: int, style: str) -> int:
    """Return the bytes a registered tree with a validated graph holds."""
    gc.collect()
    tracemalloc.start()
    sup, _ = build_tree(n, seed, style)
    sup.graph()
    gc.collect()
    held, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return held


def run_benchmark(args: argparse.Namespace, backends: Sequence[str]) -> Results:
    """Run the warm-up and the measured rounds; report progress on stderr."""
    results = Results(args.n)
    clock = CLOCKS[args.clock]
    for number in range(args.rounds):
        began = clock()
        sup, results.edges = build_tree(args.n, args.seed, args.style)
        built = clock()
        graph = sup.graph()
        results.registration.append(built - began)
        results.graph.append(clock() - built)
        results.waves = len(graph.stop_waves)
        if number == 0:
            for backend in backends:  # warm-up: imports, caches, the first loop
                run_on(backend, partial(floor_workload, args.n, False))
                run_on(backend, partial(tree_workload, sup, args.n, False))
        measure_round(results, sup, args.n, backends, clock)
        print(f"round {number + 1}/{args.rounds} done", file=sys.stderr, flush=True)
    results.static_bytes = measure_static(args.n, args.seed, args.style)
    return results


# -- the report -----------------------------------------------------------------------


def _revision() -> str:
    """Name the commit of the measured packages, and whether they have uncommitted changes."""
    git = shutil.which("git")
    root = Path(__file__).resolve().parent.parent
    if git is None:
        return "unknown (no git)"
    # Read-only commands: neither rewrites the index.
    head = subprocess.run([git, "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True, check=False)
    if head.returncode:
        return "unknown (not a git checkout)"
    diff = subprocess.run(
        [git, "diff", "--quiet", "HEAD", "--", "lifecycle", "supervisors"], cwd=root, capture_output=True, check=False
    )
    changed = " with uncommitted changes in lifecycle/ or supervisors/" if diff.returncode else ""
    return f"git {head.stdout.strip()}{changed}"


def machine_info(args: argparse.Namespace, backends: Sequence[str], skipped: Sequence[str], revision: str) -> str:
    """Describe the machine, the versions and the run's parameters."""
    python = f"{platform.python_version()} ({platform.python_implementation()})"
    versions = ", ".join(
        f"{dist} {version(dist)}" for dist in ("anyio", "trio", "uvloop", "structlog", "attrs", "anyio-lifecycle")
    )
    lines = [
        "# anyio-lifecycle core benchmark",
        "",
        f"- Python {python} on {platform.platform()}; CPUs: {cpus()}",
        f"- {versions}",
        f"- measured code: {revision}",
        (
            f"- N = {args.n} tasks / components; {args.rounds} rounds after one warm-up; seed {args.seed}; "
            f"component style: {args.style}; backends: {', '.join(backends)}; clock: {args.clock}"
        ),
        (
            "- structlog drops events below WARNING: "
            "`make_filtering_bound_logger(logging.WARNING)`, `cache_logger_on_first_use=True`"
        ),
        (
            f"- gc {'disabled while measuring' if args.no_gc else 'enabled'}, `gc.collect()` before each run; "
            "memory from tracemalloc in separate, untimed runs (bytes held once all are ready, per task / component)"
        ),
    ]
    lines.extend(f"- skipped backend {name}: not importable" for name in skipped)
    return "\n".join(lines)


def _spread(values: Sequence[float], fmt: str) -> tuple[str, str]:
    return format(statistics.median(values), fmt), f"{min(values):{fmt}} to {max(values):{fmt}}"


def graph_table(results: Results) -> str:
    """The backend-independent costs: registration, graph build, static memory."""
    n = results.n
    build = statistics.median(results.graph)
    register = statistics.median(results.registration)
    reg_median, reg_range = _spread([s * 1e3 for s in results.registration], ".1f")
    graph_median, graph_range = _spread([s * 1e3 for s in results.graph], ".2f")
    projected = f"{build / n * DESIGN_GRAPH_SIZE:.3f} s for {DESIGN_GRAPH_SIZE} if linear (DESIGN: well under 1 s)"
    return "\n".join(
        [
            f"## Graph: {n} components, {results.edges} dependencies, {results.waves} waves (any backend)",
            "",
            "| step | median ms | min to max ms | us per component | note |",
            "|---|---:|---:|---:|---|",
            (
                f"| registration (`sup.add`, N times) | {reg_median} | {reg_range} | {register / n * 1e6:.1f} "
                "| not part of the ratios |"
            ),
            (
                f"| build + validate (`sup.graph()`) | {graph_median} | {graph_range} | {build / n * 1e6:.2f} "
                f"| {projected} |"
            ),
            "",
            (
                f"Registered specs + validated graph hold {results.static_bytes / n:.0f} B per component "
                "(not part of the tree's memory below)."
            ),
        ]
    )


def _row(results: Results, backend: str, metric: str, target: float) -> str:
    floor, tree = results.series(backend, metric)
    unit, scale, fmt = ("B each", 1.0 / results.n, ".0f") if metric == "memory" else ("ms", 1e3, ".2f")
    ratios = [t / f for f, t in zip(floor, tree, strict=True)]
    ratio, spread = _spread(ratios, ".2f")
    met = "yes" if statistics.median(ratios) <= target else "**no**"
    floor_median = statistics.median(floor) * scale
    tree_median = statistics.median(tree) * scale
    return (
        f"| {backend} | {metric} ({unit}) | {floor_median:{fmt}} | {tree_median:{fmt}} "
        f"| {ratio} | {spread} | <= {target:g} | {met} |"
    )


def ratio_table(results: Results, backends: Sequence[str]) -> str:
    """The main table: floor, tree and tree / floor per backend and metric."""
    lines = [
        "## Tree vs floor (medians over the rounds; ratio = tree / floor within a round)",
        "",
        "| backend | metric | floor | tree | tree/floor | min to max | target | met |",
        "|---|---|---:|---:|---:|---:|---:|---|",
    ]
    lines.extend(_row(results, backend, metric, target) for backend in backends for metric, target in TARGETS.items())
    return "\n".join(lines)


# -- the command line -----------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> tuple[argparse.Namespace, list[str], list[str]]:
    """Parse the command line; return the arguments, the backends to run and the skipped."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=10_000, help="tasks / components (10000)")
    parser.add_argument("--rounds", type=int, default=5, help="measured rounds (5)")
    parser.add_argument(
        "--backends",
        default="asyncio,uvloop,trio",
        help="comma-separated, from asyncio, uvloop, trio (all); missing ones are skipped",
    )
    parser.add_argument("--style", choices=STYLES, default="generator", help="component style")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random DAG (0)")
    parser.add_argument(
        "--clock",
        choices=CLOCKS,
        default="wall",
        help="wall: time.perf_counter (default); cpu: time.process_time, steadier when other processes compete",
    )
    parser.add_argument(
        "--no-gc",
        action="store_true",
        help="disable the cyclic garbage collector while measuring (it still runs between runs)",
    )
    args = parser.parse_args(argv)
    if args.n < 1 or args.rounds < 1:
        parser.error("--n and --rounds must be at least 1")
    wanted = [b.strip() for b in args.backends.split(",") if b.strip()]
    unknown = [b for b in wanted if b not in BACKENDS]
    if unknown or not wanted:
        parser.error(f"unknown backend(s) {unknown}; choose from {', '.join(BACKENDS)}")
    modules = {"asyncio": "asyncio", "uvloop": "uvloop", "trio": "trio"}
    available = [b for b in wanted if importlib.util.find_spec(modules[b]) is not None]
    skipped = [b for b in wanted if b not in available]
    return args, available, skipped


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print its tables; return the exit code."""
    args, backends, skipped = parse_args(argv)
    configure_logging()
    if args.no_gc:
        gc.disable()
    # Named before the run: the modules measured are the ones imported at startup.
    revision = _revision()
    began = time.perf_counter()
    results = run_benchmark(args, backends)
    print(machine_info(args, backends, skipped, revision))
    print(f"- the whole run took {time.perf_counter() - began:.0f} s")
    print()
    print(graph_table(results))
    print()
    print(ratio_table(results, backends))
    return 0


if __name__ == "__main__":
    sys.exit(main())
