"""
Benchmark SIGTERM-to-exit of a real process holding N components.

Run ``python benchmarks/bench_sigterm.py [--n 1000] [--rounds 5] [--seed 0]
[--warmup 1] [--timeout 120] [--json PATH]``; ``--json`` also writes the per-round
ratios (for ``run_all.py``). Each measurement spawns a fresh interpreter
(``sys.executable`` running a small script written to a temporary directory),
waits until it prints ``ready`` on stdout, which it does only once all N
components / tasks / services are up, then takes ``t0 = time.perf_counter()``,
sends SIGTERM, waits for the process to end (a blocking ``waitpid``, no
polling) and takes ``t1``. ``t1 - t0`` is *SIGTERM to exit*: signal delivery,
the program's own shutdown, the interpreter's teardown and the reaping.
Every exit code must be 0; any other is reported in the table.

The programs, each with the same N:

bare
    N anyio tasks in one task group, each waiting forever
    (``anyio.sleep_forever()``); ``anyio.open_signal_receiver(SIGTERM)`` cancels
    the task group on the first SIGTERM; ``anyio.run`` returns and the process
    exits 0. The floor: what anyio itself needs.

lifecycle
    One ``supervisors.Supervisor`` with N components run by
    ``lifecycle.run(sup)``: a seeded random DAG in which component *i* depends on
    0 to 3 earlier ones (``depends_on=``) with a random ``Priority``; nine in ten
    are async-generator resources (``yield`` a value, then a trivial teardown
    that counts itself), one in ten are ``ctx`` workers (``ctx.ready()``, then
    ``anyio.sleep_forever()``). One extra harness component, ``bench_ready``
    (priority ``LOWEST``, depending on every component nobody else depends on,
    so it starts last), prints ``ready``. structlog is configured in the child
    before ``run()`` (which leaves a user's configuration alone) to drop events
    below WARNING and write JSON lines to stderr, as a production service would.

aiomisc
    ``with aiomisc.entrypoint(*services, log_level="warning") as loop:
    loop.run_forever()`` with N ``aiomisc.Service`` instances in lifecycle's
    mix: nine in ten are resource-like (``start()`` returns at once), one in ten
    are workers (``start()`` sets ``start_event`` and then waits forever, so the
    entrypoint keeps its task and cancels it at shutdown, as lifecycle cancels
    its ``ctx`` workers); every ``stop()`` counts itself, and the child exits
    non-zero unless all N ran, as lifecycle's child checks its teardowns.
    Nothing special is needed
    for SIGTERM: the entrypoint installs its own SIGINT/SIGTERM handlers
    (``catch_signals`` defaults to both in the main thread) once the services
    are up; the handler runs ``graceful_shutdown()`` (stops the services,
    cancels the remaining tasks, shuts down async generators and the default
    executor) and then ``loop.stop()``, so ``run_forever()`` returns and the
    ``with`` block exits. aiomisc is asyncio-only (no Trio). It runs on uvloop
    by default whenever uvloop is importable (``AIOMISC_USE_UVLOOP=1``), so the
    asyncio row passes ``loop_factory=asyncio.new_event_loop`` and the uvloop
    row uses aiomisc's default.

Backends: asyncio, uvloop (if installed) and trio (if installed) for bare and
lifecycle; asyncio and uvloop for aiomisc. Rounds are interleaved (each round
runs every program once, in an order rotated from round to round) after
``--warmup`` unrecorded runs of each; tables show the median with min to max,
and ratios are taken within a round.

Where the time goes: every child prints ``stopped <perf_counter>`` once its
event loop has returned, so SIGTERM to exit splits into *stop* (SIGTERM to the
loop having returned, in the child) and *teardown* (from there to the process
having been reaped: interpreter finalization and exit). This needs
``perf_counter`` to be the system-wide monotonic clock (it is on Linux); the
split is left out otherwise. Set ``BENCH_SIGTERM_PROFILE=<dir>`` to run every
child with ``-X importtime`` (its stderr is kept as ``<dir>/<program>-<backend>-<run>.stderr``)
and under cProfile from ``ready`` until its loop has returned
(``<dir>/<program>-<backend>-<run>.prof``, read with ``python -m pstats``).
The interpreter's exit is mostly garbage collection (CPython runs several full
collections while it finalizes, and frees whatever only the cyclic collector
can free), so a profiled child also runs two timed ``gc.collect()`` after its
loop has returned, and the report gets a table of them: the objects the first
one freed and its CPU time, and the CPU time of a second one, which only
traverses the live objects (counted too). The timings of such a run are
distorted and the table says so.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Final, final

import attrs
from _machine import cpus, version

ROOT: Final = Path(__file__).resolve().parent.parent
PROFILE_ENV: Final = "BENCH_SIGTERM_PROFILE"
CHILD_PROFILE_ENV: Final = "BENCH_SIGTERM_PROFILE_FILE"
PROGRAMS: Final = ("bare", "lifecycle", "aiomisc")
BACKENDS: Final = ("asyncio", "uvloop", "trio")
NOT_INSTALLED: Final = "aiomisc not installed"
ASYNCIO_ONLY: Final = "n/a (aiomisc is asyncio-only)"

# -- the child programs ------------------------------------------------------------------
#
# Plain source text, run as scripts: the parent never imports aiomisc (it may be
# missing, and it has no role in type-checking this file). Each takes
# `N BACKEND SEED`, prints "ready <process_time>" once everything is up and
# "stopped <perf_counter> <process_time>" once its loop has returned;
# BENCH_SIGTERM_PROFILE_FILE turns on cProfile between the two.

_PROFILER = """\
import os
import time

_profile_file = os.environ.get("BENCH_SIGTERM_PROFILE_FILE")
if _profile_file:
    import cProfile

    _profiler = cProfile.Profile()
else:
    _profiler = None


def announce_ready():
    print(f"ready {time.process_time()!r}", flush=True)
    if _profiler is not None:
        _profiler.enable()


def announce_stopped():
    stamp, cpu = time.perf_counter(), time.process_time()
    if _profiler is not None:
        _profiler.disable()
        # Before the dump, whose allocations could start a collection of their own.
        exit_gc = _collect_twice()
        _profiler.dump_stats(_profile_file)
        print(exit_gc, flush=True)
    print(f"stopped {stamp!r} {cpu!r}", flush=True)


def _collect_twice():
    import gc

    began = time.process_time()
    freed = gc.collect()
    first = time.process_time() - began
    began = time.process_time()
    gc.collect()
    second = time.process_time() - began
    return f"exitgc {freed} {first!r} {second!r} {len(gc.get_objects())}"
"""

BARE: Final = (
    _PROFILER
    + """
import signal
import sys

import anyio


async def main(n):
    remaining = n
    all_up = anyio.Event()

    async def task():
        nonlocal remaining
        remaining -= 1
        if not remaining:
            all_up.set()
        await anyio.sleep_forever()

    with anyio.open_signal_receiver(signal.SIGTERM) as signals:
        async with anyio.create_task_group() as tg:
            for _ in range(n):
                tg.start_soon(task)
            await all_up.wait()
            announce_ready()
            async for _ in signals:
                tg.cancel_scope.cancel()
                break


n, backend = int(sys.argv[1]), sys.argv[2]
options = {"use_uvloop": True} if backend == "uvloop" else {}
anyio.run(main, n, backend="trio" if backend == "trio" else "asyncio", backend_options=options)
announce_stopped()
"""
)

LIFECYCLE: Final = (
    _PROFILER
    + """
import logging
import random
import sys

import anyio
import structlog

import lifecycle
import supervisors

structlog.configure(
    processors=[
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.JSONRenderer(),
    ],
    wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
    logger_factory=structlog.PrintLoggerFactory(sys.stderr),
    cache_logger_on_first_use=True,
)

torn_down = [0]


def resource(i):
    async def component():
        yield i
        torn_down[0] += 1

    return component


async def worker(ctx):
    ctx.ready()
    await anyio.sleep_forever()


async def bench_ready():
    announce_ready()
    yield None


def build(n, seed):
    rng = random.Random(seed)
    priorities = list(lifecycle.Priority)
    sup = supervisors.Supervisor("bench")
    depended_on = set()
    for i in range(n):
        deps = rng.sample(range(i), rng.randint(0, min(3, i)))
        depended_on.update(deps)
        sup.add(
            worker if i % 10 == 9 else resource(i),
            name=f"c{i}",
            depends_on=tuple(f"c{j}" for j in deps),
            priority=rng.choice(priorities),
        )
    sinks = tuple(f"c{i}" for i in range(n) if i not in depended_on)
    sup.add(bench_ready, depends_on=sinks, priority=lifecycle.Priority.LOWEST)
    return sup


n, backend, seed = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
tree = build(n, seed)
lifecycle.run(
    tree,
    backend="trio" if backend == "trio" else "asyncio",
    backend_options={"use_uvloop": True} if backend == "uvloop" else None,
)
if torn_down[0] != n - n // 10:
    sys.exit(f"only {torn_down[0]} teardowns ran")
announce_stopped()
"""
)

AIOMISC: Final = (
    _PROFILER
    + """
import asyncio
import sys

import aiomisc

stopped = [0]


class Resource(aiomisc.Service):
    async def start(self):
        pass

    async def stop(self, exception=None):
        stopped[0] += 1


class Worker(aiomisc.Service):
    async def start(self):
        self.start_event.set()
        await asyncio.Event().wait()

    async def stop(self, exception=None):
        stopped[0] += 1


n, backend = int(sys.argv[1]), sys.argv[2]
# aiomisc picks uvloop by default whenever it is importable: force plain asyncio.
options = {"loop_factory": asyncio.new_event_loop} if backend == "asyncio" else {}
services = [Worker() if i % 10 == 9 else Resource() for i in range(n)]
with aiomisc.entrypoint(*services, log_level="warning", **options) as loop:
    announce_ready()
    loop.run_forever()
if stopped[0] != n:
    sys.exit(f"only {stopped[0]} services stopped")
announce_stopped()
"""
)

SOURCES: Final = {"bare": BARE, "lifecycle": LIFECYCLE, "aiomisc": AIOMISC}


# -- one measurement --------------------------------------------------------------------


@final
@attrs.frozen
class ExitGC:
    """
    Two ``gc.collect()`` a profiled child ran after its loop had returned.

    Attributes:
        freed: Objects the first collection found unreachable: what only the
            cyclic collector frees (at exit, CPython's own collections would).

        first: CPU seconds of the first collection (traversal and freeing).

        second: CPU seconds of the second one: a traversal of the live objects,
            which the interpreter's exit repeats in each of its collections.

        live: Objects the collector tracks after both.
    """

    freed: int
    first: float
    second: float
    live: int


@final
@attrs.frozen
class Sample:
    """
    One spawn, SIGTERM and exit of a child program.

    Attributes:
        total: Seconds from SIGTERM to the process having been reaped.

        stop: Seconds from SIGTERM to the child's loop having returned
            (``None`` if the clocks are not comparable or it never said so).

        startup: Seconds from spawning to ``ready``.

        cpu: CPU seconds (user + system, all threads) the child used from
            ``ready`` to its exit, from its rusage (``None`` if unknown).

        stop_cpu: CPU seconds the child used from ``ready`` until its loop had
            returned (``None`` if it never said so).

        returncode: The exit code (negative: killed by that signal).

        error: Why the sample failed, with the tail of the child's stderr.

        timed_out: Whether it was killed after the timeout.

        exit_gc: Only in a profiled run: the garbage collections after the
            loop had returned (see :class:`ExitGC`).
    """

    total: float
    stop: float | None
    startup: float
    cpu: float | None
    stop_cpu: float | None
    returncode: int
    error: str = ""
    timed_out: bool = False
    exit_gc: ExitGC | None = None

    @property
    def teardown(self) -> float | None:
        """Seconds from the loop having returned to the process having been reaped."""
        return None if self.stop is None else self.total - self.stop

    @property
    def ok(self) -> bool:
        """Whether the child started, stopped on SIGTERM and exited with 0."""
        return self.returncode == 0 and not self.error


def _shared_clock() -> bool:
    """Whether ``perf_counter`` values of two processes are comparable (CLOCK_MONOTONIC)."""
    return "CLOCK_MONOTONIC" in time.get_clock_info("perf_counter").implementation


def _read_ready(stdout: IO[bytes]) -> float | None:
    """Read the child's stdout up to its ``ready`` line; return its CPU time then, ``None`` at end of file."""
    while line := stdout.readline():
        words = line.split()
        if words and words[0] == b"ready":
            return float(words[1])
    return None


def _stopped_at(rest: bytes) -> tuple[float, float] | None:
    """Return the child's ``perf_counter`` and CPU time when its loop had returned."""
    for line in rest.decode(errors="replace").splitlines():
        words = line.split()
        if words and words[0] == "stopped":
            return float(words[1]), float(words[2])
    return None


def _exit_gc(rest: bytes) -> ExitGC | None:
    """Return what a profiled child said about its garbage collections after the loop."""
    for line in rest.decode(errors="replace").splitlines():
        words = line.split()
        if len(words) == 5 and words[0] == "exitgc":
            return ExitGC(freed=int(words[1]), first=float(words[2]), second=float(words[3]), live=int(words[4]))
    return None


def _tail(path: Path, lines: int = 15) -> str:
    text = path.read_text(errors="replace").strip()
    return "\n".join(text.splitlines()[-lines:])


@final
@attrs.frozen
class _Run:
    """What the parent saw of one child: its timestamps, exit status, CPU time and last output."""

    startup: float
    t0: float
    t1: float
    ready_cpu: float | None
    returncode: int
    cpu_total: float
    output: bytes
    timed_out: bool


def _spawn_and_stop(command: list[str], env: dict[str, str], err_path: Path, timeout: float) -> _Run:
    """Spawn *command*, wait for ``ready``, send SIGTERM, reap it and time it all."""
    timed_out = threading.Event()
    with err_path.open("wb") as err:
        spawned = time.perf_counter()
        proc = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err, cwd=ROOT, env=env
        )
        stdout = proc.stdout
        if stdout is None:  # pragma: no cover - stdout=PIPE always gives one
            msg = "subprocess.Popen gave no stdout pipe"
            raise RuntimeError(msg)

        def kill() -> None:
            timed_out.set()
            proc.kill()

        # A timer rather than a polling wait(timeout=...), which would add up to 50 ms of sleep to t1.
        watchdog = threading.Timer(timeout, kill)
        watchdog.start()
        try:
            ready_cpu = _read_ready(stdout)
            startup = time.perf_counter() - spawned
            t0 = time.perf_counter()
            if ready_cpu is not None:
                proc.send_signal(signal.SIGTERM)
            # wait4: a blocking reap (no polling) that also gives the child's CPU usage.
            _, status, usage = os.wait4(proc.pid, 0)
            t1 = time.perf_counter()
            proc.returncode = os.waitstatus_to_exitcode(status)
        finally:
            watchdog.cancel()
        output = stdout.read()
        stdout.close()
    return _Run(
        startup=startup,
        t0=t0,
        t1=t1,
        ready_cpu=ready_cpu,
        returncode=proc.returncode,
        cpu_total=usage.ru_utime + usage.ru_stime,
        output=output,
        timed_out=timed_out.is_set(),
    )


def _sample(run: _Run, tag: str, err_path: Path, timeout: float) -> Sample:
    """Turn what the parent saw into a sample, with an error message if the run failed."""
    error = ""
    if run.timed_out:
        error = f"killed after the {timeout:g} s timeout"
    elif run.ready_cpu is None:
        error = "exited before printing ready"
    elif run.returncode != 0:
        error = f"exit code {run.returncode}"
    if error:
        error = f"{tag}: {error}\n{_tail(err_path)}"
    stopped = _stopped_at(run.output)
    stop = stop_cpu = cpu = None
    if run.ready_cpu is not None:
        cpu = run.cpu_total - run.ready_cpu
        if stopped is not None:
            stop_cpu = stopped[1] - run.ready_cpu
            if _shared_clock() and stopped[0] >= run.t0:
                stop = stopped[0] - run.t0
    return Sample(
        total=run.t1 - run.t0,
        stop=stop,
        startup=run.startup,
        cpu=cpu,
        stop_cpu=stop_cpu,
        returncode=run.returncode,
        error=error,
        timed_out=run.timed_out,
        exit_gc=_exit_gc(run.output),
    )


@final
class Child:
    """How to spawn one program on one backend."""

    def __init__(self, script: Path, program: str, backend: str, args: argparse.Namespace) -> None:
        self.script = script
        self.program = program
        self.backend = backend
        self.n: int = args.n
        self.seed: int = args.seed
        self.timeout: float = args.timeout
        self.profile_dir: Path | None = args.profile_dir
        self.runs = 0

    def measure(self, workdir: Path) -> Sample:
        """Spawn the child, wait for ``ready``, send SIGTERM and time the exit."""
        self.runs += 1
        tag = f"{self.program}-{self.backend}-{self.runs}"
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
        env.pop(CHILD_PROFILE_ENV, None)
        flags: list[str] = []
        err_path = workdir / f"{tag}.stderr"
        if self.profile_dir is not None:
            flags = ["-X", "importtime"]
            env[CHILD_PROFILE_ENV] = str(self.profile_dir / f"{tag}.prof")
            err_path = self.profile_dir / f"{tag}.stderr"
        command = [sys.executable, *flags, str(self.script), str(self.n), self.backend, str(self.seed)]
        run = _spawn_and_stop(command, env, err_path, self.timeout)
        return _sample(run, tag, err_path, self.timeout)


# -- the whole run --------------------------------------------------------------------------


@final
class Results:
    """Samples per (program, backend), in round order."""

    def __init__(self) -> None:
        self.samples: dict[tuple[str, str], list[Sample]] = {}

    def add(self, program: str, backend: str, sample: Sample) -> None:
        """Record one measured sample."""
        self.samples.setdefault((program, backend), []).append(sample)

    def ok(self, program: str, backend: str) -> list[Sample | None]:
        """The samples of *program* on *backend* per round, ``None`` where the run failed."""
        return [s if s.ok else None for s in self.samples.get((program, backend), [])]

    def failures(self) -> list[str]:
        """The errors of every failed run."""
        return [s.error for samples in self.samples.values() for s in samples if not s.ok]


def cases(backends: Sequence[str], aiomisc: bool) -> list[tuple[str, str]]:
    """The (program, backend) pairs to measure."""
    return [
        (program, backend)
        for backend in backends
        for program in PROGRAMS
        if program != "aiomisc" or (aiomisc and backend != "trio")
    ]


def run_benchmark(args: argparse.Namespace, backends: Sequence[str], aiomisc: bool) -> Results:
    """Warm up, then measure every case once per round, interleaved."""
    results = Results()
    todo = cases(backends, aiomisc)
    with tempfile.TemporaryDirectory(prefix="bench_sigterm_") as tmp:
        workdir = Path(tmp)
        scripts = {}
        for program, source in SOURCES.items():
            scripts[program] = workdir / f"child_{program}.py"
            scripts[program].write_text(source)
        children = [Child(scripts[program], program, backend, args) for program, backend in todo]
        for _ in range(args.warmup):
            for child in children:
                child.measure(workdir)
        for number in range(args.rounds):
            shift = number % len(children)
            for child in children[shift:] + children[:shift]:
                results.add(child.program, child.backend, child.measure(workdir))
    return results


# -- the report -------------------------------------------------------------------------------


def machine_info(args: argparse.Namespace, backends: Sequence[str], skipped: Sequence[str], aiomisc: bool) -> str:
    """Describe the machine, the versions and the run's parameters."""
    python = f"{platform.python_version()} ({platform.python_implementation()})"
    dists = ("anyio", "trio", "uvloop", "structlog", "attrs", "aiomisc", "anyio-lifecycle")
    versions = ", ".join(f"{dist} {version(dist)}" for dist in dists)
    lines = [
        "# SIGTERM to exit: a real process with N components",
        "",
        f"- Python {python} on {platform.platform()}; CPUs: {cpus()}",
        f"- {versions}",
        (
            f"- N = {args.n} tasks / components / services (lifecycle: plus its `bench_ready` harness component); "
            f"{args.rounds} interleaved rounds after {args.warmup} warm-up run(s) of each; seed {args.seed}; "
            f"backends: {', '.join(backends)}"
        ),
        "- lifecycle child: structlog drops events below WARNING (JSON lines to stderr), configured before `run()`",
        (
            "- aiomisc: catches SIGTERM itself (default `catch_signals` = SIGINT, SIGTERM): nothing special needed; "
            "asyncio-only (no trio row); on uvloop by default when installed, so its asyncio row passes "
            "`loop_factory=asyncio.new_event_loop`; `log_level='warning'`"
        ),
    ]
    if not aiomisc:
        lines.append(f"- {NOT_INSTALLED}: `pip install aiomisc` (or the `bench` extra) to compare with it")
    if not _shared_clock():
        lines.append("- perf_counter is not CLOCK_MONOTONIC here: stop / teardown split left out")
    lines.extend(f"- skipped backend {name}: not importable" for name in skipped)
    if args.profile_dir is not None:
        lines.append(
            f"- **profiling** ({PROFILE_ENV}={args.profile_dir}): children ran with -X importtime and cProfile; "
            "timings are distorted"
        )
    return "\n".join(lines)


def _ms(values: Sequence[float]) -> tuple[str, str]:
    ms = [v * 1e3 for v in values]
    return f"{statistics.median(ms):.1f}", f"{min(ms):.1f} to {max(ms):.1f}"


def _median_ms(values: Sequence[float | None]) -> str:
    present = [v for v in values if v is not None]
    return f"{statistics.median(present) * 1e3:.1f}" if present else "-"


def _exit_codes(samples: Sequence[Sample]) -> str:
    if all(s.ok for s in samples):
        return "all 0"
    return ", ".join("timeout" if s.timed_out else str(s.returncode) for s in samples)


def _skip_reason(program: str, backend: str, aiomisc: bool) -> str | None:
    if program != "aiomisc":
        return None
    if backend == "trio":
        return ASYNCIO_ONLY
    return None if aiomisc else NOT_INSTALLED


def times_table(results: Results, backends: Sequence[str], aiomisc: bool) -> str:
    """SIGTERM to exit for every program and backend, with its split and its CPU time."""
    lines = [
        "## SIGTERM to exit (ms; median over the rounds)",
        "",
        (
            "| backend | program | SIGTERM to exit | min to max | stop (in loop) | teardown (exit) "
            "| CPU after ready | CPU of the stop | spawn to ready | exit codes |"
        ),
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for backend in backends:
        for program in PROGRAMS:
            reason = _skip_reason(program, backend, aiomisc)
            if reason is not None:
                lines.append(f"| {backend} | {program} | {reason} | | | | | | | |")
                continue
            samples = results.samples.get((program, backend), [])
            good = [s for s in results.ok(program, backend) if s is not None]
            if not good:
                lines.append(f"| {backend} | {program} | failed | | | | | | | {_exit_codes(samples)} |")
                continue
            median, spread = _ms([s.total for s in good])
            columns = [
                _median_ms([s.stop for s in good]),
                _median_ms([s.teardown for s in good]),
                _median_ms([s.cpu for s in good]),
                _median_ms([s.stop_cpu for s in good]),
                _median_ms([s.startup for s in good]),
            ]
            lines.append(
                f"| {backend} | {program} | {median} | {spread} | {' | '.join(columns)} | {_exit_codes(samples)} |"
            )
    return "\n".join(lines)


def ratio_values(results: Results, backend: str, other: str, *, cpu: bool = False) -> list[float]:
    """The ratios lifecycle / *other* on *backend*, one per round in which both ran cleanly."""
    pairs = [
        (mine.cpu, theirs.cpu) if cpu else (mine.total, theirs.total)
        for mine, theirs in zip(results.ok("lifecycle", backend), results.ok(other, backend), strict=True)
        if mine is not None and theirs is not None
    ]
    return [mine / theirs for mine, theirs in pairs if mine is not None and theirs]


def _ratio(results: Results, backend: str, other: str, *, cpu: bool = False) -> tuple[str, str, float | None]:
    ratios = ratio_values(results, backend, other, cpu=cpu)
    if not ratios:
        return "-", "", None
    median = statistics.median(ratios)
    return f"{median:.2f}", f"{min(ratios):.2f} to {max(ratios):.2f}", median


def exit_gc_table(results: Results, backends: Sequence[str]) -> str:
    """In a profiled run: the garbage collections after each program's loop had returned (medians)."""
    lines = [
        "## Garbage collection after the loop (profiled run; medians)",
        "",
        (
            "| backend | program | objects freed | first collection (ms CPU) "
            "| a pass over the live objects (ms CPU) | live objects |"
        ),
        "|---|---|---:|---:|---:|---:|",
    ]
    for backend in backends:
        for program in PROGRAMS:
            gcs = [s.exit_gc for s in results.ok(program, backend) if s is not None and s.exit_gc is not None]
            if not gcs:
                continue
            freed = statistics.median(g.freed for g in gcs)
            live = statistics.median(g.live for g in gcs)
            first = _median_ms([g.first for g in gcs])
            second = _median_ms([g.second for g in gcs])
            lines.append(f"| {backend} | {program} | {freed:.0f} | {first} | {second} | {live:.0f} |")
    return "\n".join(lines)


def ratio_table(results: Results, backends: Sequence[str], aiomisc: bool) -> str:
    """The ratios lifecycle / bare and lifecycle / aiomisc within each round, wall-clock and CPU."""
    lines = [
        "## Ratios (within a round; DESIGN target: SIGTERM to exit no slower than aiomisc)",
        "",
        (
            "| backend | lifecycle/bare | min to max | lifecycle/aiomisc | min to max | target met "
            "| CPU lifecycle/bare | CPU lifecycle/aiomisc |"
        ),
        "|---|---:|---:|---:|---:|---|---:|---:|",
    ]
    for backend in backends:
        bare, bare_spread, _ = _ratio(results, backend, "bare")
        bare_cpu = _ratio(results, backend, "bare", cpu=True)[0]
        reason = _skip_reason("aiomisc", backend, aiomisc)
        if reason is not None:
            lines.append(f"| {backend} | {bare} | {bare_spread} | {reason} | | - | {bare_cpu} | - |")
            continue
        other, other_spread, median = _ratio(results, backend, "aiomisc")
        other_cpu = _ratio(results, backend, "aiomisc", cpu=True)[0]
        met = "-" if median is None else ("yes" if median <= 1.0 else "**no**")
        lines.append(
            f"| {backend} | {bare} | {bare_spread} | {other} | {other_spread} | {met} | {bare_cpu} | {other_cpu} |"
        )
    return "\n".join(lines)


# -- the command line ------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> tuple[argparse.Namespace, list[str], list[str]]:
    """Parse the command line; return the arguments, the backends to run and the skipped ones."""
    parser = argparse.ArgumentParser(description="SIGTERM-to-exit of N components: bare anyio, lifecycle, aiomisc.")
    parser.add_argument("--n", type=int, default=1000, help="components / tasks / services per process (1000)")
    parser.add_argument("--rounds", type=int, default=5, help="measured rounds (5)")
    parser.add_argument("--warmup", type=int, default=1, help="unrecorded runs of each program first (1)")
    parser.add_argument("--seed", type=int, default=0, help="seed of lifecycle's random DAG (0)")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds before a child is killed (120)")
    parser.add_argument("--json", type=Path, help="also write the per-round ratios to this file")
    args = parser.parse_args(argv)
    if args.n < 1 or args.rounds < 1 or args.warmup < 0:
        parser.error("--n and --rounds must be at least 1, --warmup at least 0")
    profile = os.environ.get(PROFILE_ENV)
    args.profile_dir = Path(profile).resolve() if profile else None
    if args.profile_dir is not None:
        args.profile_dir.mkdir(parents=True, exist_ok=True)
    available = [b for b in BACKENDS if b == "asyncio" or importlib.util.find_spec(b) is not None]
    skipped = [b for b in BACKENDS if b not in available]
    return args, available, skipped


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print its tables; return 1 if a child did not exit 0 on SIGTERM."""
    args, backends, skipped = parse_args(argv)
    aiomisc = importlib.util.find_spec("aiomisc") is not None
    began = time.perf_counter()
    results = run_benchmark(args, backends, aiomisc)
    print(machine_info(args, backends, skipped, aiomisc))
    print(f"- the whole run took {time.perf_counter() - began:.0f} s")
    print()
    print(times_table(results, backends, aiomisc))
    print()
    print(ratio_table(results, backends, aiomisc))
    if args.profile_dir is not None:
        print()
        print(exit_gc_table(results, backends))
    if args.json is not None:
        ratios = {
            backend: {
                other: ratio_values(results, backend, other)
                for other in ("bare", "aiomisc")
                if _skip_reason(other, backend, aiomisc) is None
            }
            for backend in backends
        }
        args.json.write_text(json.dumps({"n": args.n, "rounds": args.rounds, "ratios": ratios}, indent=1))
    failures = results.failures()
    if failures:
        print()
        print("## Failed runs")
        for failure in failures:
            print()
            print("```")
            print(failure)
            print("```")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
