"""Profile the tree workload of ``bench_core.py``: its start and its stop, separately.

Run ``python benchmarks/profile_core.py [--backend asyncio|uvloop|trio] [--n 10000]
[--sort tottime|cumulative] [--limit 25] [--out DIR]``. It registers the same
seeded random DAG as ``bench_core.py``, runs it once untraced (warm-up), then
once under :mod:`cProfile`, with one profile from entering ``running()`` to
``h.ready()`` returning and another from calling ``h.shutdown()`` to its return.
It prints the top functions of each and, with ``--out``, writes
``<backend>_start.prof`` and ``<backend>_stop.prof`` for ``snakeviz`` or
:mod:`pstats`. cProfile's per-call overhead inflates call-heavy code, so read
the output for *where* time goes and measure gains with ``bench_core.py``.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import pstats
import sys
from collections.abc import Sequence
from functools import partial
from pathlib import Path

import anyio
import bench_core

import lifecycle
import supervisors


async def profiled_tree(sup: supervisors.Supervisor, start: cProfile.Profile, stop: cProfile.Profile) -> None:
    """Run the tree once, profiling its start and its stop."""
    gc.collect()
    start.enable()
    async with lifecycle.running(sup) as handle:
        await handle.ready()
        start.disable()
        stop.enable()
        await handle.shutdown()
        stop.disable()


def main(argv: Sequence[str] | None = None) -> int:
    """Profile the tree's start and stop on one backend and print the hot spots."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=bench_core.BACKENDS, default="asyncio")
    parser.add_argument("--n", type=int, default=10_000, help="components (10000)")
    parser.add_argument("--style", choices=bench_core.STYLES, default="generator")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sort", choices=("tottime", "cumulative"), default="tottime")
    parser.add_argument("--limit", type=int, default=25, help="rows per profile (25)")
    parser.add_argument("--out", type=Path, help="directory for the .prof files")
    args = parser.parse_args(argv)
    bench_core.configure_logging()
    sup, _ = bench_core.build_tree(args.n, args.seed, args.style)
    sup.graph()
    bench_core.run_on(args.backend, partial(bench_core.tree_workload, sup, args.n, False))
    profiles = {"start": cProfile.Profile(), "stop": cProfile.Profile()}
    name, options = bench_core.BACKENDS[args.backend]
    anyio.run(profiled_tree, sup, profiles["start"], profiles["stop"], backend=name, backend_options=options)
    for phase, profile in profiles.items():
        print(f"## {args.backend}: tree {phase}, N = {args.n}, sorted by {args.sort}")
        if args.out is not None:
            args.out.mkdir(parents=True, exist_ok=True)
            profile.dump_stats(args.out / f"{args.backend}_{phase}.prof")
        pstats.Stats(profile, stream=sys.stdout).sort_stats(args.sort).print_stats(args.limit)
    return 0


if __name__ == "__main__":
    sys.exit(main())
