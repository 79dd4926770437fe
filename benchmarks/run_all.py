"""
Run every benchmark and write its tables and growth charts into the documentation.

Run ``python benchmarks/run_all.py [--quick]`` from the project root, after
``pip install -e '.[bench]'``. It runs, each in its own interpreter:

1. ``bench_workloads.py``: start and stop of N units for the floors (anyio,
   ``asyncio.TaskGroup``, a trio nursery), lifecycle (flat, chain, random DAG)
   and the peers (mode, aiomisc, aiotools, triotp), with memory per unit;
2. ``bench_sigterm.py``: SIGTERM to exit of a real process with 1,000
   components, against bare anyio and aiomisc;
3. ``bench_supervision.py``: restart throughput of a crash-looping child and
   dynamic children (``--full-supervision``: the full 10^6 restarts and 10^5
   children, which take much longer than the rest together);
4. ``bench_instructions.py``: instructions per unit of a start and a stop,
   counted with callgrind (skipped, with a line saying so, without valgrind).

and writes Markdown fragments into ``docs/_generated/`` (included by
``docs/performance.rst``) and two SVG charts into ``docs/_static/``. The
default sizes take about thirteen minutes on two cores; ``--quick`` runs
tiny sizes in well under a minute, to check that everything works (its numbers
mean nothing, and the fragments say so).
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

import bench_workloads
from _machine import cpus, version
from _svg import Series, line_chart

HERE: Final = Path(__file__).resolve().parent
ROOT: Final = HERE.parent
COLORS: Final = {"asyncio": "#1f77b4", "uvloop": "#2ca02c", "trio": "#d62728"}
PARTS: Final = ("workloads", "sigterm", "supervision", "instructions")
GENERATED_NOTE: Final = "<!-- Written by benchmarks/run_all.py: edit the script, not this file. -->"

# What each part runs with (the default sizes take about thirteen minutes on 2 cores, under the 15 allowed).
DEFAULT: Final = {
    "workloads": [
        "--sizes",
        "100,1000,10000,100000",
        "--full-upto",
        "10000",
        "--rounds",
        "3",
        "--large-rounds",
        "2",
        "--memory-upto",
        "1000",
    ],
    "sigterm": ["--n", "1000", "--rounds", "5", "--warmup", "1"],
    "supervision": ["--restarts", "20000", "--children", "5000", "--rounds", "3"],
    "instructions": ["--n", "1000", "--backends", "asyncio,trio"],
}
QUICK: Final = {
    "workloads": ["--sizes", "20,100", "--full-upto", "20", "--rounds", "2", "--large-rounds", "1"],
    "sigterm": ["--n", "20", "--rounds", "1", "--warmup", "0"],
    "supervision": ["--restarts", "200", "--children", "50", "--rounds", "1"],
    "instructions": ["--n", "30", "--backends", "asyncio", "--kinds", "generator"],
}
FULL_SUPERVISION: Final = ["--restarts", "1000000", "--children", "100000", "--rounds", "1"]

# triotp 0.3 needs Python 3.13 (the bench extra installs it there). On older
# Pythons 0.2.1 has the same supervisor, but pins a Trio this project cannot
# use: it goes, without its dependencies' pins, into a directory of its own
# that only the workloads part puts on its path.
PEERS: Final = HERE / ".peers"
OLD_PYTHON_TRIOTP: Final = ("triotp==0.2.1", "trio-util", "tenacity", "logbook", "async_generator")

# The targets of the issue.
DAG_VS_FLOOR: Final = 1.5
EVERY_KIND_VS_FLOOR: Final = 1.5
SUPERVISION_VS_FLOOR: Final = 2.0
DYNAMIC_MEMORY_VS_TASK: Final = 1.5
FASTER_THAN_MODE: Final = 3.0
FASTER_THAN_TRIOTP: Final = 10.0
MEMORY_VS_TASK: Final = 2.0
SIGTERM_VS_AIOMISC: Final = 1.0


def triotp_path(*, install: bool) -> Path | None:
    """
    Where triotp 0.2.1 is on Python < 3.13, installed there if *install*; ``None`` if not needed or absent.

    A failed install (no network, say) is reported and the run goes on: the
    triotp rows then say it is not installed.
    """
    if sys.version_info >= (3, 13) or importlib.util.find_spec("triotp") is not None:
        return None
    if (PEERS / "triotp").is_dir():
        return PEERS
    if not install:
        return None
    command = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(PEERS)]
    print(f"[run_all] triotp: {shlex.join([*command[1:], *OLD_PYTHON_TRIOTP])}", file=sys.stderr, flush=True)
    done = subprocess.run([*command, *OLD_PYTHON_TRIOTP], check=False)
    if done.returncode:
        print(f"[run_all] triotp: pip exited {done.returncode}; its rows will say it is missing", file=sys.stderr)
        return None
    return PEERS


def run_part(
    name: str, script: str, args: Sequence[str], json_path: Path | None, *, path: Path | None = None
) -> tuple[int, str, float]:
    """Run one benchmark script (with *path* first on its ``PYTHONPATH``); return its exit code, stdout and duration."""
    command = [sys.executable, str(HERE / script), *args]
    if json_path is not None:
        command += ["--json", str(json_path)]
    env = None
    if path is not None:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(path), os.environ.get("PYTHONPATH")]))}
    print(f"[run_all] {name}: {shlex.join(command[1:])}", file=sys.stderr, flush=True)
    began = time.perf_counter()
    # stderr (progress) goes straight to ours.
    done = subprocess.run(command, cwd=ROOT, stdout=subprocess.PIPE, text=True, check=False, env=env)
    elapsed = time.perf_counter() - began
    print(f"[run_all] {name}: exit {done.returncode} after {elapsed:.0f} s", file=sys.stderr, flush=True)
    return done.returncode, done.stdout, elapsed


# -- fragments ------------------------------------------------------------------------------------


def flatten_headings(markdown: str) -> str:
    """Turn Markdown headings into bold lines, so a fragment fits under any section of the page."""
    lines = []
    for line in markdown.splitlines():
        if line.startswith("#"):
            lines.append(f"**{line.lstrip('#').strip()}**")
        else:
            lines.append(line)
    return "\n".join(lines).strip() + "\n"


def from_first_table_section(markdown: str) -> str:
    """Drop a script's own title and machine list: keep everything from its first ``##`` heading."""
    index = markdown.find("\n## ")
    return markdown if index < 0 else markdown[index + 1 :]


def _verdict(values: Sequence[float], goal: float, *, at_most: bool) -> tuple[str, str]:
    if not values:
        return "-", "not measured"
    median = statistics.median(values)
    met = median <= goal if at_most else median >= goal
    return bench_workloads.spread(values), "met" if met else "**missed**"


def _largest(table: Sequence[dict[str, Any]], backend: str, *needed: tuple[str, str]) -> int | None:
    """The largest N at which every (workload, shape) in *needed* was measured on *backend*."""
    sizes: list[int] = sorted({c["n"] for c in table}, reverse=True)
    for n in sizes:
        found = [bench_workloads.find(table, n, backend, w, s) for w, s in needed]
        if all(c is not None and c["status"] == "ok" and c["samples"] for c in found):
            return n
    return None


FLOOR_CELL: Final = ("anyio floor", "flat")
DAG_CELL: Final = ("lifecycle", "dag")


def _floor_rows(table: Sequence[dict[str, Any]], backend: str) -> list[str]:
    """Random DAG start and stop against the anyio floor."""
    n = _largest(table, backend, FLOOR_CELL, DAG_CELL)
    if n is None:
        return []
    mine = bench_workloads.find(table, n, backend, *DAG_CELL)
    base = bench_workloads.find(table, n, backend, *FLOOR_CELL)
    rows = []
    for metric in ("start", "stop"):
        shown, met = _verdict(bench_workloads.ratios(mine, base, metric), DAG_VS_FLOOR, at_most=True)
        rows.append(
            f"| random DAG {metric} / anyio floor | {backend} | {n:,} | {shown} | <= {DAG_VS_FLOOR:g} | {met} |"
        )
    return rows


def _peer_rows(table: Sequence[dict[str, Any]], backend: str, peer: str, shape: str, goal: float) -> list[str]:
    """How many times faster than *peer* lifecycle is on *shape* (peer time / lifecycle time, per round)."""
    where = "random DAG" if shape == "dag" else "flat tree (triotp cannot express an ordered one)"
    n = _largest(table, backend, (peer, shape), ("lifecycle", shape))
    if n is None:
        cell = bench_workloads.find(table, max(c["n"] for c in table), backend, peer, shape)
        reason = "not measured" if cell is None else cell["reason"] or cell["status"]
        return [f"| {peer} / lifecycle, {where} | {backend} | - | {reason} | >= {goal:g} | - |"]
    mine = bench_workloads.find(table, n, backend, "lifecycle", shape)
    theirs = bench_workloads.find(table, n, backend, peer, shape)
    rows = []
    for metric in ("start", "stop", "total", "whole"):
        label = {"total": "start + stop", "whole": "build + start + stop"}.get(metric, metric)
        shown, met = _verdict(bench_workloads.ratios(mine, theirs, metric, inverse=True), goal, at_most=False)
        rows.append(f"| {peer} / lifecycle {label}, {where} | {backend} | {n:,} | {shown} | >= {goal:g} | {met} |")
    return rows


def _memory_rows(table: Sequence[dict[str, Any]], backend: str) -> list[str]:
    """Bytes per DAG component against a bare anyio task, at the largest N measured."""
    sizes = [
        c["n"]
        for c in table
        if c["backend"] == backend and (c["workload"], c["shape"]) == DAG_CELL and c["memory"] is not None
    ]
    if not sizes:
        return []
    n = max(sizes)
    mine = bench_workloads.find(table, n, backend, *DAG_CELL)
    base = bench_workloads.find(table, n, backend, *FLOOR_CELL)
    if mine is None or base is None or base["memory"] is None:
        return []
    ratio = mine["memory"]["total"] / base["memory"]["total"]
    met = "met" if ratio <= MEMORY_VS_TASK else "**missed**"
    label = "memory per DAG component / bare anyio task"
    return [f"| {label} | {backend} | {n:,} | {ratio:.2f} | <= {MEMORY_VS_TASK:g} | {met} |"]


KINDS: Final = ("lifecycle", "lifecycle worker", "lifecycle class")


def _kind_rows(table: Sequence[dict[str, Any]], backend: str) -> list[str]:
    """The worst start and stop ratio over every kind and shape, at the two largest N where kinds ran."""
    sizes = sorted(
        {c["n"] for c in table if c["backend"] == backend and c["workload"] in KINDS and c["samples"]}, reverse=True
    )[:2]
    rows = []
    for n in sorted(sizes):
        base = bench_workloads.find(table, n, backend, *FLOOR_CELL)
        if base is None or not base["samples"]:
            continue
        cells = [
            c
            for c in table
            if (c["n"], c["backend"]) == (n, backend)
            and c["workload"] in KINDS
            and c["status"] == "ok"
            and c["samples"]
        ]
        for metric in ("start", "stop"):
            measured = [(bench_workloads.ratios(c, base, metric), c) for c in cells]
            measured = [(values, c) for values, c in measured if values]
            if not measured:
                continue
            values, worst = max(measured, key=lambda pair: statistics.median(pair[0]))
            kind = worst["workload"].removeprefix("lifecycle").strip() or "generator"
            shown, met = _verdict(values, EVERY_KIND_VS_FLOOR, at_most=True)
            label = f"{metric} / anyio floor, worst kind and shape ({kind}, {worst['shape']}; {len(measured)} measured)"
            rows.append(f"| {label} | {backend} | {n:,} | {shown} | <= {EVERY_KIND_VS_FLOOR:g} | {met} |")
    return rows


def _supervision_rows(supervision: dict[str, Any]) -> list[str]:
    """Restarts, start_child and stop_child against their floors; memory per dynamic child against a task."""
    rows = []
    labels = {
        "restart": f"restart time / floor ({supervision['restarts']:,} restarts)",
        "start_child": f"start_child / floor ({supervision['children']:,} children)",
        "stop_child": f"stop_child / floor ({supervision['children']:,} children)",
    }
    for backend, ratios in supervision["ratios"].items():
        for key, label in labels.items():
            shown, met = _verdict(ratios[key], SUPERVISION_VS_FLOOR, at_most=True)
            rows.append(f"| {label} | {backend} | - | {shown} | <= {SUPERVISION_VS_FLOOR:g} | {met} |")
        memory = ratios["memory"]
        met = "met" if memory <= DYNAMIC_MEMORY_VS_TASK else "**missed**"
        rows.append(
            f"| memory per dynamic child / bare task | {backend} | {supervision['children']:,} "
            f"| {memory:.2f} | <= {DYNAMIC_MEMORY_VS_TASK:g} | {met} |"
        )
    return rows


def targets(
    workloads: dict[str, Any] | None, sigterm: dict[str, Any] | None, supervision: dict[str, Any] | None = None
) -> str:
    """The targets of the issue, each with its measured ratio and whether it was met."""
    lines = [
        "| target | backend | N | measured: median (min to max) | goal | result |",
        "|---|---|---:|---:|---:|---|",
    ]
    if workloads is not None:
        table, backends = workloads["cells"], workloads["machine"]["backends"]
        for backend in backends:
            lines += _floor_rows(table, backend)
        for backend in backends:
            lines += _kind_rows(table, backend)
        lines += [
            row
            for b in ("asyncio", "uvloop")
            if b in backends
            for row in _peer_rows(table, b, "mode", "dag", FASTER_THAN_MODE)
        ]
        if "trio" in backends:
            lines += _peer_rows(table, "trio", "triotp", "flat", FASTER_THAN_TRIOTP)
        for backend in backends:
            lines += _memory_rows(table, backend)
    if supervision is not None:
        lines += _supervision_rows(supervision)
    sigterm = sigterm or {"n": 0, "ratios": {}}
    for backend, values in sigterm["ratios"].items():
        if "aiomisc" not in values:
            continue  # asyncio-only, or not installed
        shown, met = _verdict(values["aiomisc"], SIGTERM_VS_AIOMISC, at_most=True)
        lines.append(
            f"| SIGTERM to exit, lifecycle / aiomisc | {backend} | {sigterm['n']:,} | {shown} "
            f"| <= {SIGTERM_VS_AIOMISC:g} | {met} |"
        )
    return "\n".join(lines) + "\n"


def growth_charts(workloads: dict[str, Any], static: Path) -> list[Path]:
    """Draw time and memory per unit against N for lifecycle's DAG and the anyio floor."""
    table = workloads["cells"]
    time_series, memory_series = [], []
    for backend in workloads["machine"]["backends"]:
        for workload, shape, dashed in (("lifecycle", "dag", False), ("anyio floor", "flat", True)):
            cells = [
                c
                for c in table
                if (c["backend"], c["workload"], c["shape"]) == (backend, workload, shape) and c["status"] == "ok"
            ]
            per_unit = [
                (c["n"], statistics.median(s["start"] + s["stop"] for s in c["samples"]) / c["n"] * 1e6)
                for c in cells
                if c["samples"]
            ]
            memory = [(c["n"], c["memory"]["total"] / c["n"]) for c in cells if c["memory"] is not None]
            label = f"{'lifecycle DAG' if workload == 'lifecycle' else 'anyio floor'}, {backend}"
            time_series.append(Series(label, COLORS[backend], per_unit, dashed=dashed))
            memory_series.append(Series(label, COLORS[backend], memory, dashed=dashed))
    static.mkdir(parents=True, exist_ok=True)
    charts = {
        "benchmarks_time.svg": line_chart(
            "Start + stop time per unit (flat = linear in N)", "N (log scale)", "microseconds per unit", time_series
        ),
        "benchmarks_memory.svg": line_chart(
            "Memory per unit once all are ready (flat = linear in N)", "N (log scale)", "bytes per unit", memory_series
        ),
    }
    written = []
    for name, svg in charts.items():
        path = static / name
        path.write_text(svg)
        written.append(path)
    return written


def machine_fragment(command: str, quick: bool, durations: dict[str, float]) -> str:
    """The machine, the versions and the command, as a Markdown list."""
    dists = ", ".join(f"{d} {version(d)}" for d in bench_workloads.DISTS)
    took = ", ".join(f"{name} {seconds:.0f} s" for name, seconds in durations.items())
    lines = [
        f"- measured {dt.datetime.now(tz=dt.UTC):%Y-%m-%d %H:%M} UTC with `{command}`",
        f"- Python {platform.python_version()} ({platform.python_implementation()}) on {platform.platform()}",
        f"- CPUs: {cpus()}",
        f"- {dists}",
        f"- time taken: {took}; total {sum(durations.values()):.0f} s",
    ]
    if quick:
        lines.insert(
            0,
            "- **`--quick`: tiny sizes to check that the benchmarks run. These numbers mean nothing; "
            "run `python benchmarks/run_all.py` for real ones.**",
        )
    return "\n".join(lines) + "\n"


def sizes_fragment(args: Sequence[str]) -> str:
    """Which sizes ran what, and why the rest was skipped."""
    options = dict(zip(args[::2], args[1::2], strict=True))
    sizes = [int(s) for s in options["--sizes"].split(",")]
    upto = int(options["--full-upto"])
    large = [n for n in sizes if n > upto]
    lines = [
        f"- every workload at N = {', '.join(f'{n:,}' for n in sizes if n <= upto)}, {options['--rounds']} rounds each",
    ]
    if large:
        lines.append(
            f"- at N = {', '.join(f'{n:,}' for n in large)}: the floors and lifecycle's random DAG only "
            "(every kind of component), "
            f"{options['--large-rounds']} round(s). Skipped there: lifecycle's flat tree and chain (they grow "
            "like the DAG up to the smaller sizes, and would double the longest part of the run) and every "
            "peer (mode starts its services one at a time, and each peer would add minutes). "
            "Everything is skipped to keep the whole command under 15 minutes on 2 cores; "
            "`python benchmarks/bench_workloads.py --sizes 100000 --full-upto 100000` runs them all."
        )
    memory_upto = options.get("--memory-upto")
    if memory_upto is not None and any(n > int(memory_upto) for n in sizes):
        lines.append(
            f"- memory up to N = {int(memory_upto):,}: a run under tracemalloc takes about three times as long, "
            "and at N = 100,000 the memory runs alone took over five minutes; per unit, memory is flat from "
            "N = 100 to 10,000 (see the chart), and `--memory-upto 100000` measures it there too. "
            "`bench_supervision.py` measures memory per dynamic child against a bare task as well."
        )
    return "\n".join(lines) + "\n"


# -- the command line ------------------------------------------------------------------------------


def _write(path: Path, markdown: str) -> None:
    path.write_text(f"{GENERATED_NOTE}\n\n{markdown}")


def run_parts(
    parts: Sequence[str], plan: dict[str, list[str]], out: Path, static: Path, *, peers: Path | None = None
) -> tuple[dict[str, Any], list[str]]:
    """Run each part, write its fragment; return the JSON results and durations, and the failures."""
    results: dict[str, Any] = {"durations": {}}
    failed: list[str] = []
    with tempfile.TemporaryDirectory(prefix="run_all_") as tmp:
        for part in parts:
            path = Path(tmp) / f"{part}.json"
            json_path = path
            code, stdout, results["durations"][part] = run_part(
                part, f"bench_{part}.py", plan[part], json_path, path=peers if part == "workloads" else None
            )
            if code:
                failed.append(f"{part} (exit {code}):\n{stdout[-2000:]}")
            if path.exists():
                results[part] = json.loads(path.read_text())
            if part == "workloads":
                if part not in results:
                    continue
                _write(out / "workloads.md", flatten_headings(bench_workloads.render(results[part])))
                _write(out / "sizes.md", sizes_fragment(plan[part]))
                for chart in growth_charts(results[part], static):
                    print(f"[run_all] wrote {chart}", file=sys.stderr)
            else:
                _write(out / f"{part}.md", flatten_headings(from_first_table_section(stdout)))
    return results, failed


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmarks and write the fragments and charts; return 1 if a part failed."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").strip().splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes: check that everything runs")
    parser.add_argument(
        "--full-supervision",
        action="store_true",
        help="the supervision part with 10^6 restarts and 10^5 dynamic children (much longer)",
    )
    parser.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated, from {', '.join(PARTS)} (all)")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "_generated", help="Markdown fragments")
    parser.add_argument("--static", type=Path, default=ROOT / "docs" / "_static", help="SVG charts")
    parser.add_argument(
        "--no-peer-install",
        dest="peer_install",
        action="store_false",
        help=f"on Python < 3.13, do not pip-install triotp 0.2.1 into {PEERS.relative_to(ROOT)}/",
    )
    args = parser.parse_args(argv)
    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    if not parts or not set(parts) <= set(PARTS):
        parser.error(f"unknown part(s) in {args.parts!r}; choose from {', '.join(PARTS)}")
    plan = {name: list(options) for name, options in (QUICK if args.quick else DEFAULT).items()}
    if args.full_supervision:
        plan["supervision"] = list(FULL_SUPERVISION)
    command = shlex.join(["python", "benchmarks/run_all.py", *(argv if argv is not None else sys.argv[1:])])
    args.out.mkdir(parents=True, exist_ok=True)
    peers = triotp_path(install=args.peer_install and not args.quick) if "workloads" in parts else None
    if peers is not None:
        sys.path.append(str(peers))  # only so that the machine fragment finds triotp's version
    results, failed = run_parts(parts, plan, args.out, args.static, peers=peers)
    summary = targets(results.get("workloads"), results.get("sigterm"), results.get("supervision"))
    if sorted(parts) == sorted(PARTS):
        # The targets and the machine describe one whole run: a partial run leaves them as they were.
        _write(args.out / "targets.md", summary)
        _write(args.out / "machine.md", machine_fragment(command, args.quick, results["durations"]))
    print(f"[run_all] wrote {args.out}; total {sum(results['durations'].values()):.0f} s", file=sys.stderr)
    print(summary)
    for failure in failed:
        print(f"failed: {failure}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
