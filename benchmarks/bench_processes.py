"""
Benchmark child processes: ``lifecycle.ProcessComponent`` against raw ``anyio.open_process``.

Run ``python benchmarks/bench_processes.py [--n 100] [--rounds 5] [--backends asyncio,trio]``.
Every measurement runs in this process, on each backend, with the same child
program: ``sh -c 'echo ready; exec sleep 600'``, which is ready once it has
written ``ready`` on stdout and exits at once on SIGTERM. ``sh`` starts in about
a millisecond, so what is measured is the framework's own cost, not the child's.

spawn to ready
    raw: ``anyio.open_process(..., start_new_session=True)``, then read stdout
    until ``ready``. lifecycle: ``lifecycle.running()`` of a tree holding one
    ``ProcessComponent(..., ready=ReadyOnLine("ready"))`` until the tree is
    ready: its containment (the cgroup or the subreaper), the exec helper that
    sets the parent-death signal, the output pumps and the readiness probe.

stop to reaped
    raw: ``process.terminate()`` then ``await process.wait()``. lifecycle:
    ``await tree.shutdown()``, which signals the group and every descendant,
    waits until all have exited, reaps the child and removes its cgroup.

N stopping together
    raw: N processes, all terminated at once, all waited for in one task
    group. lifecycle: one tree of N ``ProcessComponent`` s, ``tree.shutdown()``.

Each metric is the median over ``--rounds`` rounds; ratios are lifecycle/raw
of the medians. structlog drops events below WARNING, as a production service
would. The containment mechanism in effect is printed (``LIFECYCLE_PROCESS_CONTAINMENT``
chooses it).
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import structlog

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import cpus, version

import lifecycle
from lifecycle import ProcessComponent, ReadyOnLine
from supervisors import Supervisor

CHILD = ["sh", "-c", "echo ready; exec sleep 600"]
Metric = Callable[[int], Coroutine[Any, Any, tuple[float, float]]]


async def _raw_spawn() -> tuple[anyio.abc.Process, float]:
    began = time.perf_counter()
    process = await anyio.open_process(
        CHILD, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True
    )
    assert process.stdout is not None  # noqa: S101 - a pipe
    seen = b""
    while b"ready\n" not in seen:
        seen += await process.stdout.receive()
    return process, time.perf_counter() - began


async def _raw_stop(processes: list[anyio.abc.Process]) -> float:
    began = time.perf_counter()
    async with anyio.create_task_group() as tg:
        for process in processes:
            process.terminate()
            tg.start_soon(process.wait)
    took = time.perf_counter() - began
    for process in processes:
        await process.aclose()
    return took


async def raw(n: int) -> tuple[float, float]:
    """Spawn *n* children until ready, one after the other, then stop them together: (spawn each, stop all)."""
    processes, spawns = [], []
    for _ in range(n):
        process, took = await _raw_spawn()
        processes.append(process)
        spawns.append(took)
    return statistics.mean(spawns), await _raw_stop(processes)


def _tree(n: int) -> Supervisor:
    tree = Supervisor("bench", policy=lifecycle.ShutdownPolicy(graceful=30, forceful=10, terminate=5))
    for i in range(n):
        tree.add(ProcessComponent(CHILD, ready=ReadyOnLine("ready")), name=f"child{i}")
    return tree


async def tree(n: int) -> tuple[float, float]:
    """A tree of *n* process components: (spawn to ready of the tree / n, shutdown)."""
    began = time.perf_counter()
    async with lifecycle.running(_tree(n)) as handle:
        await handle.ready()
        started = time.perf_counter() - began
        began = time.perf_counter()
        report = await handle.shutdown()
        stopped = time.perf_counter() - began
    if not report.ok:
        raise RuntimeError(str(report))
    return started / n, stopped


async def tree_one_by_one(n: int) -> tuple[float, float]:
    """*n* trees of one process component each, in turn: (mean spawn to ready, mean stop to reaped)."""
    spawns, stops = [], []
    for _ in range(n):
        spawn, stop = await tree(1)
        spawns.append(spawn)
        stops.append(stop)
    return statistics.mean(spawns), statistics.mean(stops)


async def raw_one_by_one(n: int) -> tuple[float, float]:
    """*n* raw children in turn, each spawned and stopped alone: (mean spawn to ready, mean stop to reaped)."""
    spawns, stops = [], []
    for _ in range(n):
        process, spawn = await _raw_spawn()
        spawns.append(spawn)
        stops.append(await _raw_stop([process]))
    return statistics.mean(spawns), statistics.mean(stops)


def measure(backend: str, n: int, rounds: int) -> list[tuple[str, float, float]]:
    """Return ``(metric, raw, lifecycle)`` medians in milliseconds for *backend*."""
    singles = min(n, 10)
    rows: dict[str, tuple[list[float], list[float]]] = {
        "spawn to ready, one (ms)": ([], []),
        "stop to reaped, one (ms)": ([], []),
        f"{n} stopping together (ms)": ([], []),
    }
    keys = list(rows)
    for _ in range(rounds):
        for column, (one, many) in enumerate(((raw_one_by_one, raw), (tree_one_by_one, tree))):
            spawn, stop = anyio.run(one, singles, backend=backend)
            _, together = anyio.run(many, n, backend=backend)
            rows[keys[0]][column].append(spawn * 1000)
            rows[keys[1]][column].append(stop * 1000)
            rows[keys[2]][column].append(together * 1000)
    return [(key, statistics.median(a), statistics.median(b)) for key, (a, b) in rows.items()]


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print its table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--n", type=int, default=100, help="process components stopping together")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--backends", default="asyncio,trio")
    args = parser.parse_args(argv)
    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
        cache_logger_on_first_use=True,
    )
    from lifecycle._processes._containment import Containment  # noqa: PLC0415 - only to name the mechanism

    probe = Containment.create("probe")
    anyio.run(probe.aclose)
    print(f"Python {platform.python_version()}, anyio {version('anyio')}, trio {version('trio')}, CPUs: {cpus()}")
    print(f"N = {args.n} process components; {args.rounds} rounds; containment: {probe.mechanism}")
    print("structlog drops events below WARNING")
    print()
    print("| backend | metric | raw anyio | lifecycle | lifecycle/raw |")
    print("|---|---|---|---|---|")
    for backend in args.backends.split(","):
        if backend == "trio" and importlib.util.find_spec("trio") is None:
            continue
        for metric, raw_ms, tree_ms in measure(backend, args.n, args.rounds):
            print(f"| {backend} | {metric} | {raw_ms:.2f} | {tree_ms:.2f} | {tree_ms / raw_ms:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
