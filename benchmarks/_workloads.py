"""
The workloads of ``bench_workloads.py``: the floors, lifecycle's trees and the peers' equivalents.

Every workload is an ``async def (shape, n, seed, meter)`` run by ``anyio.run`` on
one backend. It builds what it needs (``meter.built()``), starts N units that each
signal readiness (``meter.ready()`` once all have), then stops them all
(``meter.stopped()``) and checks that every unit really started and stopped.

Peers are imported with :func:`importlib.import_module` so this file type-checks
and imports without them; a peer that is not installed is reported, never faked.
"""

from __future__ import annotations

import asyncio
import gc
import importlib
import importlib.util
import random
import time
import tracemalloc
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Final, final

import anyio
import attrs

import lifecycle
import supervisors

SHAPES: Final = ("flat", "chain", "dag")
MAX_DEPENDENCIES: Final = 3
Clock = Callable[[], float]


@final
@attrs.frozen
class Sample:
    """
    One run of one workload.

    Attributes:
        build: Seconds to construct / register the N units (not part of the ratios).

        start: Seconds from starting to every unit having signalled readiness.

        stop: Seconds from asking for the stop to every unit having stopped.

        total_bytes: In memory runs, bytes still allocated once all were ready,
            counting construction / registration.

        running_bytes: In memory runs, the part of *total_bytes* allocated by the start.
    """

    build: float = 0.0
    start: float = 0.0
    stop: float = 0.0
    total_bytes: int = 0
    running_bytes: int = 0


@final
class Meter:
    """Time (or, in memory runs, trace) one workload's build, start and stop."""

    def __init__(self, *, memory: bool, clock: Clock = time.perf_counter, mark: Callable[[], object] = int) -> None:
        self.memory = memory
        self.clock = clock
        # Called at each of built(), ready() and stopped(), first: bench_instructions.py's boundaries.
        self.mark = mark
        self._marks: dict[str, float] = {}
        self._built_bytes = 0
        self._ready_bytes = 0

    def begin(self) -> None:
        """Collect garbage, start tracing in memory runs, and take the first time stamp."""
        gc.collect()
        if self.memory:
            tracemalloc.start()
        self._marks["begin"] = self.clock()

    def built(self) -> None:
        """Mark the end of the construction / registration; the start begins now."""
        self.mark()
        self._marks["built"] = self.clock()
        if self.memory:
            self._built_bytes = tracemalloc.get_traced_memory()[0]

    def ready(self) -> None:
        """Mark every unit ready; in memory runs, read the bytes held and stop tracing."""
        self.mark()
        self._marks["ready"] = self.clock()
        if self.memory:
            gc.collect()
            self._ready_bytes = tracemalloc.get_traced_memory()[0]
            tracemalloc.stop()
        self._marks["stopping"] = self.clock()

    def stopped(self) -> None:
        """Mark every unit stopped."""
        self.mark()
        self._marks["stopped"] = self.clock()

    def sample(self) -> Sample:
        """The measurement: times, or bytes in memory runs."""
        if self.memory:
            return Sample(total_bytes=self._ready_bytes, running_bytes=self._ready_bytes - self._built_bytes)
        marks = self._marks
        return Sample(
            build=marks["built"] - marks["begin"],
            start=marks["ready"] - marks["built"],
            stop=marks["stopped"] - marks["stopping"],
        )


Run = Callable[[str, int, int, Meter], Awaitable[None]]


def _check(what: str, expected: int, actual: int) -> None:
    if actual != expected:
        msg = f"{what}: expected {expected}, counted {actual}"
        raise RuntimeError(msg)


def dependencies(shape: str, n: int, seed: int) -> list[tuple[int, ...]]:
    """The dependencies of each of *n* units: none (flat), the previous one (chain) or a random DAG."""
    if shape == "flat":
        return [() for _ in range(n)]
    if shape == "chain":
        return [(i - 1,) if i else () for i in range(n)]
    rng = random.Random(seed)
    return [tuple(rng.sample(range(i), rng.randint(0, min(MAX_DEPENDENCIES, i)))) for i in range(n)]


def priorities(shape: str, n: int, seed: int) -> list[lifecycle.Priority]:
    """One priority per unit: all ``NORMAL`` except in the DAG, where they are drawn from all five."""
    if shape != "dag":
        return [lifecycle.Priority.NORMAL] * n
    rng = random.Random(seed + 1)
    choices = list(lifecycle.Priority)
    return [rng.choice(choices) for _ in range(n)]


async def _forever() -> None:
    """Wait until cancelled, on one future of its own: the least an asyncio task can wait on."""
    await asyncio.get_running_loop().create_future()


# -- the floors --------------------------------------------------------------------------


async def anyio_floor(shape: str, n: int, seed: int, meter: Meter) -> None:  # noqa: ARG001 - one signature for all
    """N bare anyio tasks started with ``start_soon``, each counting itself ready, then cancelled."""
    remaining = n
    all_ready = anyio.Event()

    async def task() -> None:
        nonlocal remaining
        remaining -= 1
        if not remaining:
            all_ready.set()
        await anyio.sleep_forever()

    meter.begin()
    meter.built()
    async with anyio.create_task_group() as tg:
        for _ in range(n):
            tg.start_soon(task)
        await all_ready.wait()
        meter.ready()
        tg.cancel_scope.cancel()
    meter.stopped()
    _check("anyio floor: tasks ready", 0, remaining)


async def asyncio_floor(shape: str, n: int, seed: int, meter: Meter) -> None:  # noqa: ARG001 - one signature for all
    """N tasks in a native :class:`asyncio.TaskGroup`, each counting itself ready, then each cancelled."""
    remaining = n
    all_ready = asyncio.Event()

    async def task() -> None:
        nonlocal remaining
        remaining -= 1
        if not remaining:
            all_ready.set()
        await _forever()

    meter.begin()
    meter.built()
    async with asyncio.TaskGroup() as tg:
        tasks = [tg.create_task(task()) for _ in range(n)]
        await all_ready.wait()
        meter.ready()
        # A TaskGroup has no cancel of its own: cancel every task, as its users do.
        for t in tasks:
            t.cancel()
    meter.stopped()
    _check("asyncio.TaskGroup: tasks ready", 0, remaining)
    _check("asyncio.TaskGroup: tasks cancelled", n, sum(t.cancelled() for t in tasks))


async def trio_floor(shape: str, n: int, seed: int, meter: Meter) -> None:  # noqa: ARG001 - one signature for all
    """N tasks in a native trio nursery, each counting itself ready, then cancelled."""
    trio: Any = importlib.import_module("trio")
    remaining = n
    all_ready = trio.Event()

    async def task() -> None:
        nonlocal remaining
        remaining -= 1
        if not remaining:
            all_ready.set()
        await trio.sleep_forever()

    meter.begin()
    meter.built()
    async with trio.open_nursery() as nursery:
        for _ in range(n):
            nursery.start_soon(task)
        await all_ready.wait()
        meter.ready()
        nursery.cancel_scope.cancel()
    meter.stopped()
    _check("trio nursery: tasks ready", 0, remaining)


# -- lifecycle ---------------------------------------------------------------------------


async def _resource() -> AsyncIterator[None]:
    """A resource: ready when it yields; its stop *wakes* it."""
    yield None


async def _worker(ctx: lifecycle.Context) -> None:
    """A worker: ready when it says so, then serves until its stop *cancels* it."""
    ctx.ready()
    await anyio.sleep_forever()


@final
class _Service:
    """An object whose ``run(self, ctx)`` is the component: a worker written as a class."""

    __slots__ = ()

    async def run(self, ctx: lifecycle.Context) -> None:
        """Signal readiness, then serve until cancelled."""
        ctx.ready()
        await anyio.sleep_forever()


# The kinds of component, each a way users write one (see the design's component model).
KINDS: Final = ("generator", "worker", "class")


def _target(kind: str) -> object:
    if kind == "generator":
        return _resource
    if kind == "worker":
        return _worker
    return _Service()


def build_tree(shape: str, n: int, seed: int, kind: str = "generator") -> supervisors.Supervisor:
    """Register *n* components of *kind* in *shape* on one supervisor and validate its graph."""
    sup = supervisors.Supervisor("bench")
    for i, (deps, priority) in enumerate(zip(dependencies(shape, n, seed), priorities(shape, n, seed), strict=True)):
        sup.add(_target(kind), name=f"c{i}", depends_on=tuple(f"c{j}" for j in deps), priority=priority)
    sup.graph()
    return sup


async def lifecycle_tree(shape: str, n: int, seed: int, meter: Meter, *, kind: str = "generator") -> None:
    """``lifecycle.running(sup)`` until ``ready()``, then ``shutdown()``; every component must stop cleanly."""
    meter.begin()
    sup = build_tree(shape, n, seed, kind)
    meter.built()
    async with lifecycle.running(sup) as handle:
        await handle.ready()
        meter.ready()
        report = await handle.shutdown()
        meter.stopped()
    if not report.ok or len(report.components) != n + 1:
        msg = f"lifecycle {kind} {shape}: unexpected shutdown report:\n{report}"
        raise RuntimeError(msg)


async def lifecycle_workers(shape: str, n: int, seed: int, meter: Meter) -> None:
    """The same tree of workers: ``async def w(ctx): ctx.ready(); await anyio.sleep_forever()``."""
    await lifecycle_tree(shape, n, seed, meter, kind="worker")


async def lifecycle_classes(shape: str, n: int, seed: int, meter: Meter) -> None:
    """The same tree of objects whose ``async def run(self, ctx)`` is a worker."""
    await lifecycle_tree(shape, n, seed, meter, kind="class")


# -- the peers -----------------------------------------------------------------------------


def _module(name: str) -> Any:  # noqa: ANN401 - a peer's module, untyped here on purpose
    return importlib.import_module(name)


async def aiomisc_services(shape: str, n: int, seed: int, meter: Meter) -> None:  # noqa: ARG001 - one signature
    """
    N ``aiomisc.Service`` run by ``aiomisc.entrypoint``: each ``start()`` signals ``start_event`` and runs on.

    The entrypoint starts every service concurrently and, on exit, cancels their
    ``start()`` tasks and calls every ``stop()`` concurrently: there is no order.
    """
    aiomisc = _module("aiomisc")
    counts = {"started": 0, "stopped": 0}

    base: Any = aiomisc.Service

    class Unit(base):  # type: ignore[misc] # aiomisc is untyped here
        async def start(self) -> None:
            counts["started"] += 1
            self.start_event.set()
            await _forever()

        async def stop(self, exception: Exception | None = None) -> None:  # noqa: ARG002 - aiomisc's signature
            counts["stopped"] += 1

    meter.begin()
    services = [Unit() for _ in range(n)]
    entrypoint = aiomisc.entrypoint(*services, log_config=False, catch_signals=())
    meter.built()
    async with entrypoint:
        meter.ready()
    meter.stopped()
    _check("aiomisc: services started", n, counts["started"])
    _check("aiomisc: services stopped", n, counts["stopped"])


async def aiotools_supervisor(shape: str, n: int, seed: int, meter: Meter) -> None:  # noqa: ARG001 - one signature
    """
    N tasks in an ``aiotools.Supervisor``, each counting itself ready; ``abort()`` cancels them all.

    ``abort()`` cancels every task and returns; leaving the ``async with`` block
    waits for them. (``aclose()`` would also cancel the block's own task.)
    """
    aiotools = _module("aiotools")
    remaining = n
    all_ready = asyncio.Event()
    cancelled = 0

    async def task() -> None:
        nonlocal remaining, cancelled
        remaining -= 1
        if not remaining:
            all_ready.set()
        try:
            await _forever()
        except asyncio.CancelledError:
            cancelled += 1
            raise

    meter.begin()
    meter.built()
    async with aiotools.Supervisor() as sup:
        for _ in range(n):
            sup.create_task(task())
        await all_ready.wait()
        meter.ready()
        sup.abort()
    meter.stopped()
    _check("aiotools: tasks ready", 0, remaining)
    _check("aiotools: tasks cancelled", n, cancelled)


async def mode_services(shape: str, n: int, seed: int, meter: Meter) -> None:
    """
    N ``mode.Service`` with one ``Service.task`` each, as the dependencies of one root service.

    mode starts a service's dependencies one at a time in the order they were
    added and stops them in the reverse order, so the units are added in a
    topological order of *shape* (dependencies first): the start and stop orders
    are then correct for every shape, and strictly sequential. (Linking the
    units to each other with ``add_dependency`` is not an option for a DAG: mode
    stops a service's dependencies right after it, so a shared dependency would
    stop before its other dependents.)
    """
    mode = _module("mode")
    counts = {"started": 0, "stopped": 0}
    order = dependencies(shape, n, seed)  # in index order, which is topological

    base: Any = mode.Service

    class Unit(base):  # type: ignore[misc] # mode is untyped here
        async def on_started(self) -> None:
            counts["started"] += 1

        async def on_stop(self) -> None:
            counts["stopped"] += 1

        @mode.Service.task  # type: ignore[untyped-decorator] # mode is untyped here
        async def _body(self) -> None:
            await _forever()

    class Root(base):  # type: ignore[misc] # mode is untyped here
        pass

    meter.begin()
    root = Root()
    for _ in order:
        root.add_dependency(Unit())
    meter.built()
    await root.start()
    meter.ready()
    await root.stop()
    meter.stopped()
    _check("mode: services started", n, counts["started"])
    _check("mode: services stopped", n, counts["stopped"])


async def triotp_supervisor(shape: str, n: int, seed: int, meter: Meter) -> None:  # noqa: ARG001 - one signature
    """N children of one ``triotp.supervisor``, each counting itself ready; cancelling its nursery stops them."""
    trio: Any = importlib.import_module("trio")
    supervisor = _module("triotp.supervisor")
    remaining = n
    all_ready = trio.Event()

    async def child() -> None:
        nonlocal remaining
        remaining -= 1
        if not remaining:
            all_ready.set()
        await trio.sleep_forever()

    meter.begin()
    specs = [supervisor.child_spec(id=f"c{i}", task=child, args=[]) for i in range(n)]
    options = supervisor.options()
    meter.built()
    async with trio.open_nursery() as nursery:
        await nursery.start(supervisor.start, specs, options)
        await all_ready.wait()
        meter.ready()
        nursery.cancel_scope.cancel()
    meter.stopped()
    _check("triotp: children ready", 0, remaining)


# -- the catalogue -------------------------------------------------------------------------


ASYNCIO_BACKENDS: Final = ("asyncio", "uvloop")
ALL_BACKENDS: Final = ("asyncio", "uvloop", "trio")


@final
@attrs.frozen
class Workload:
    """
    One framework's way to run N units, and what it can express.

    Attributes:
        name: The row label.

        run: The workload itself.

        backends: The backends it runs on.

        shapes: The shapes it can express; the others are *not expressible*, for *why*.

        why: Why the other shapes cannot be expressed.

        module: The module it needs (``None``: always available).

        install: How to get that module.

        floor: Whether this is a floor (a reference, not a competitor).

        kind: For lifecycle's workloads, the kind of component (one of :data:`KINDS`).
    """

    name: str
    run: Run
    backends: tuple[str, ...]
    shapes: tuple[str, ...]
    why: str = ""
    module: str | None = None
    install: str = ""
    floor: bool = False
    kind: str | None = None

    def available(self) -> bool:
        """Whether its module is importable."""
        return self.module is None or importlib.util.find_spec(self.module.partition(".")[0]) is not None


NO_ORDER_AIOMISC: Final = "cannot express: no ordering (the entrypoint starts and stops all services concurrently)"
NO_ORDER_AIOTOOLS: Final = "cannot express: no ordering (a task scope: no readiness, no dependencies)"
NO_ORDER_TRIOTP: Final = (
    "cannot express: no ordering (children are spawned in list order without waiting for readiness; "
    "the stop cancels them all at once)"
)

WORKLOADS: Final = (
    Workload("anyio floor", anyio_floor, ALL_BACKENDS, ("flat",), "a floor", floor=True),
    Workload("asyncio.TaskGroup", asyncio_floor, ASYNCIO_BACKENDS, ("flat",), "a floor", floor=True),
    Workload("trio nursery", trio_floor, ("trio",), ("flat",), "a floor", module="trio", floor=True),
    Workload("lifecycle", lifecycle_tree, ALL_BACKENDS, SHAPES, kind="generator"),
    Workload("lifecycle worker", lifecycle_workers, ALL_BACKENDS, SHAPES, kind="worker"),
    Workload("lifecycle class", lifecycle_classes, ALL_BACKENDS, SHAPES, kind="class"),
    Workload("mode", mode_services, ASYNCIO_BACKENDS, SHAPES, module="mode", install="pip install mode-streaming"),
    Workload(
        "aiomisc", aiomisc_services, ASYNCIO_BACKENDS, ("flat",), NO_ORDER_AIOMISC, "aiomisc", "pip install aiomisc"
    ),
    Workload(
        "aiotools",
        aiotools_supervisor,
        ASYNCIO_BACKENDS,
        ("flat",),
        NO_ORDER_AIOTOOLS,
        "aiotools",
        "pip install aiotools",
    ),
    Workload(
        "triotp",
        triotp_supervisor,
        ("trio",),
        ("flat",),
        NO_ORDER_TRIOTP,
        "triotp.supervisor",
        # triotp 0.3 needs Python 3.13; 0.2.1 pins trio < 0.20 but its supervisor is the same code.
        (
            "Python >= 3.13: pip install triotp; older: run_all.py installs it, or "
            "pip install --no-deps triotp==0.2.1 trio-util tenacity logbook async_generator"
        ),
    ),
)
