"""Benchmark supervision: a crash-looping child, and dynamic children at scale.

Run ``python benchmarks/bench_supervision.py [--restarts 1000000]
[--children 100000] [--backends asyncio,uvloop,trio]``; the default run takes
a few minutes per backend on two cores. It prints one Markdown table per
workload, each comparing the framework with the floor (bare anyio) on the same
backend in the same run:

Crash loop
    One PERMANENT child that becomes ready and raises at once, under a
    supervisor with zero backoff and an intensity window that never gives up
    (``Intensity(max_restarts=1_000_000, within=0.001)``), until it has been
    restarted ``--restarts`` times. The floor does the same with bare anyio: a
    task group with one task that raises, caught and started again.
    *restarts/s* is the throughput; *RSS* is the process's resident memory
    after 10 %, 50 % and 100 % of the restarts (after ``gc.collect()``): flat
    numbers mean nothing is retained per restart. structlog drops events below
    CRITICAL here, so the cost measured is supervision's, not formatting a
    million tracebacks (a real service would log each one).

Dynamic children
    A supervisor with one resource, ``pool``; ``--children`` children, each
    ``async def conn(ctx, pool)`` that calls ``ctx.ready()`` and sleeps, are
    started one after the other with ``await sup.start_child(conn, name=...)``,
    then stopped one after the other with ``await sup.stop_child(name)``. The
    floor starts as many bare tasks one after the other with ``await
    task_group.start(...)``, each in its own cancel scope, then cancels them one
    after the other and waits for each to end. Memory per child is measured in
    a separate run under tracemalloc (bytes still allocated once every child is
    ready, divided by the count).
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import platform
import resource
import statistics
import sys
import time
import tracemalloc
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any, Final, TypeVar

import anyio
import structlog
from _machine import cpus, version

import lifecycle
import supervisors

BACKENDS: Final[dict[str, tuple[str, dict[str, Any]]]] = {
    "asyncio": ("asyncio", {}),
    "uvloop": ("asyncio", {"use_uvloop": True}),
    "trio": ("trio", {}),
}
T = TypeVar("T")
CHECKPOINTS: Final = (0.1, 0.5, 1.0)
NO_DELAY: Final = supervisors.Backoff(initial=0.0, maximum=0.0, jitter=False)
NEVER_GIVE_UP: Final = supervisors.Intensity(max_restarts=1_000_000, within=0.001)


def rss_mib() -> float:
    """The resident memory of this process now, in MiB (after a full collection)."""
    gc.collect()
    with open("/proc/self/statm") as statm:  # noqa: PTH123 - Linux only, as the machine info says
        pages = int(statm.read().split()[1])
    return pages * resource.getpagesize() / 2**20


# -- crash loop ---------------------------------------------------------------------


async def crash_loop(restarts: int) -> tuple[float, list[float]]:
    """Restart a crashing child *restarts* times; return the seconds taken and RSS at the checkpoints."""
    marks = [max(1, int(restarts * c)) for c in CHECKPOINTS]
    rss: list[float] = []
    count = 0
    done = anyio.Event()
    sup = supervisors.Supervisor(backoff=NO_DELAY, intensity=NEVER_GIVE_UP)

    @sup.component
    async def crasher(ctx: lifecycle.Context) -> None:
        nonlocal count
        ctx.ready()
        count += 1
        if marks and count == marks[0]:
            marks.pop(0)
            rss.append(rss_mib())
        if count > restarts:
            done.set()
            await anyio.sleep_forever()
        msg = "crash"
        raise RuntimeError(msg)

    async with lifecycle.running(sup) as tree:
        began = time.perf_counter()
        await done.wait()
        elapsed = time.perf_counter() - began
        await tree.shutdown()
    return elapsed, rss


async def crash_loop_floor(restarts: int) -> tuple[float, list[float]]:
    """The same loop with bare anyio: a task group whose one task raises, started again."""
    marks = [max(1, int(restarts * c)) for c in CHECKPOINTS]
    rss: list[float] = []

    async def crasher() -> None:
        await anyio.lowlevel.checkpoint()
        msg = "crash"
        raise RuntimeError(msg)

    began = time.perf_counter()
    for count in range(1, restarts + 1):
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(crasher)
        except ExceptionGroup:
            pass
        if marks and count == marks[0]:
            marks.pop(0)
            rss.append(rss_mib())
    return time.perf_counter() - began, rss


# -- dynamic children ---------------------------------------------------------------


async def dynamic_children(count: int, *, memory: bool) -> tuple[float, float, int]:
    """Start and stop *count* dynamic children; return start and stop seconds and bytes per child."""
    sup = supervisors.Supervisor()

    @sup.component
    async def pool() -> AsyncIterator[str]:
        yield "pool"

    async def conn(ctx: lifecycle.Context, pool: str) -> None:  # noqa: ARG001 - injected: the dependency is the point
        ctx.ready()
        await anyio.sleep_forever()

    per_child = 0
    async with lifecycle.running(sup) as tree:
        await tree.ready()
        gc.collect()
        if memory:
            tracemalloc.start()
        base = tracemalloc.get_traced_memory()[0]
        began = time.perf_counter()
        for n in range(count):
            await sup.start_child(conn, name=f"conn{n}")
        started = time.perf_counter() - began
        if memory:
            gc.collect()
            per_child = (tracemalloc.get_traced_memory()[0] - base) // count
            tracemalloc.stop()
        began = time.perf_counter()
        for n in range(count):
            await sup.stop_child(f"conn{n}")
        stopped = time.perf_counter() - began
        await tree.shutdown()
    return started, stopped, per_child


async def dynamic_floor(count: int, *, memory: bool) -> tuple[float, float, int]:
    """Start *count* bare tasks one by one with ``tg.start()``, then cancel them one by one."""
    scopes: list[tuple[anyio.CancelScope, anyio.Event]] = []

    async def conn(*, task_status: anyio.abc.TaskStatus[None]) -> None:
        ended = anyio.Event()
        with anyio.CancelScope() as scope:
            scopes.append((scope, ended))
            task_status.started()
            try:
                await anyio.sleep_forever()
            finally:
                ended.set()

    per_task = 0
    async with anyio.create_task_group() as tg:
        gc.collect()
        if memory:
            tracemalloc.start()
        base = tracemalloc.get_traced_memory()[0]
        began = time.perf_counter()
        for _ in range(count):
            await tg.start(conn)
        started = time.perf_counter() - began
        if memory:
            gc.collect()
            per_task = (tracemalloc.get_traced_memory()[0] - base) // count
            tracemalloc.stop()
        began = time.perf_counter()
        for scope, ended in scopes:
            scope.cancel()
            await ended.wait()
        stopped = time.perf_counter() - began
    return started, stopped, per_task


# -- report ---------------------------------------------------------------------------


def run(backend: str, workload: Callable[[], Awaitable[T]]) -> T:
    """Run *workload* in a fresh event loop of *backend*."""
    name, options = BACKENDS[backend]
    return anyio.run(workload, backend=name, backend_options=options)


def _spread(values: Sequence[float]) -> str:
    """``median (min to max)`` of per-round ratios, or the one value."""
    if len(values) == 1:
        return f"{values[0]:.2f}"
    return f"{statistics.median(values):.2f} ({min(values):.2f} to {max(values):.2f})"


def main(argv: Sequence[str] | None = None) -> int:  # noqa: PLR0915 - one report, printed in order
    """Run both workloads on each backend, round after round, and print their tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--restarts", type=int, default=1_000_000, help="restarts in the crash loop")
    parser.add_argument("--children", type=int, default=100_000, help="dynamic children to start and stop")
    parser.add_argument("--backends", default="asyncio,uvloop,trio", help="comma-separated backends")
    parser.add_argument("--rounds", type=int, default=1, help="rounds; ratios are taken within one (1)")
    parser.add_argument("--json", type=Path, help="also write the per-round ratios to this file")
    args = parser.parse_args(argv)
    backends = [b for b in args.backends.split(",") if b]
    unknown = sorted(set(backends) - set(BACKENDS))
    if unknown:
        parser.error(f"unknown backend(s) {unknown}; choose from {sorted(BACKENDS)}")
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    skipped = [b for b in backends if b != "asyncio" and version(b) == "not installed"]
    backends = [b for b in backends if b not in skipped]
    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(logging.CRITICAL),
        cache_logger_on_first_use=True,
    )

    print(f"Python {platform.python_version()} on {platform.machine()}, CPUs: {cpus()}")
    print(f"anyio {version('anyio')}, trio {version('trio')}, uvloop {version('uvloop')}")
    if skipped:
        print(f"skipped (not installed): {', '.join(skipped)}")
    print(f"{args.rounds} round(s); the ratios are medians (min to max) of the per-round ratios")
    crash: dict[str, list[tuple[float, float, list[float]]]] = {b: [] for b in backends}
    dynamic: dict[str, list[tuple[float, float, float, float]]] = {b: [] for b in backends}
    n = args.children
    for number in range(args.rounds):
        for backend in backends:
            floor_s, _ = run(backend, partial(crash_loop_floor, args.restarts))
            tree_s, rss = run(backend, partial(crash_loop, args.restarts))
            crash[backend].append((floor_s, tree_s, rss))
            f_start, f_stop, _ = run(backend, partial(dynamic_floor, n, memory=False))
            t_start, t_stop, _ = run(backend, partial(dynamic_children, n, memory=False))
            dynamic[backend].append((f_start, t_start, f_stop, t_stop))
        print(f"round {number + 1}/{args.rounds} done", file=sys.stderr, flush=True)
    memory = {}
    for backend in backends:
        _, _, f_mem = run(backend, partial(dynamic_floor, n, memory=True))
        _, _, t_mem = run(backend, partial(dynamic_children, n, memory=True))
        memory[backend] = (f_mem, t_mem)

    print(f"\n## Crash loop: {args.restarts:,} restarts, zero backoff\n")
    print("| backend | floor restarts/s | tree restarts/s | tree/floor time | tree RSS MiB at 10% / 50% / 100% |")
    print("|---|---|---|---|---|")
    ratios: dict[str, dict[str, Any]] = {}
    for backend in backends:
        runs = crash[backend]
        floor_s = statistics.median(r[0] for r in runs)
        tree_s = statistics.median(r[1] for r in runs)
        restart = [t / f for f, t, _ in runs]
        marks = " / ".join(f"{m:.1f}" for m in runs[-1][2])
        print(
            f"| {backend} | {args.restarts / floor_s:,.0f} | {args.restarts / tree_s:,.0f} "
            f"| {_spread(restart)} | {marks} |",
        )
        ratios[backend] = {"restart": restart, "rss": runs[-1][2]}
    print(f"\n## Dynamic children: {n:,} started one by one, then stopped one by one\n")
    print(
        "| backend | floor start/s | start_child/s | tree/floor start | floor stop/s | stop_child/s "
        "| tree/floor stop | floor B/task | tree B/child | tree/floor memory |",
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for backend in backends:
        runs_d = dynamic[backend]
        f_start, t_start, f_stop, t_stop = (statistics.median(r[i] for r in runs_d) for i in range(4))
        start = [r[1] / r[0] for r in runs_d]
        stop = [r[3] / r[2] for r in runs_d]
        f_mem, t_mem = memory[backend]
        print(
            f"| {backend} | {n / f_start:,.0f} | {n / t_start:,.0f} | {_spread(start)} "
            f"| {n / f_stop:,.0f} | {n / t_stop:,.0f} | {_spread(stop)} | {f_mem:,} | {t_mem:,} "
            f"| {t_mem / f_mem:.2f} |",
        )
        ratios[backend].update(start_child=start, stop_child=stop, memory=t_mem / f_mem)
    if args.json is not None:
        args.json.write_text(json.dumps({"restarts": args.restarts, "children": n, "ratios": ratios}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
