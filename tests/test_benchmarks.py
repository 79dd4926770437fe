"""Smoke tests of the scripts in ``benchmarks/``: they run and print their tables (timings are never asserted)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "benchmarks" / "bench_core.py"
PROFILER = ROOT / "benchmarks" / "profile_core.py"


def run_bench(*args: str, script: Path = SCRIPT) -> subprocess.CompletedProcess[str]:
    # -W error: a warning raised inside the benchmark fails the test, as in the suite.
    return subprocess.run(
        [sys.executable, "-W", "error", str(script), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


class TestBenchCore:
    def test_tiny_run_prints_the_ratio_table(self) -> None:
        """A tiny run on every installed backend exits 0 and prints the tree/floor table for each."""
        result = run_bench("--n", "50", "--rounds", "1")

        assert result.returncode == 0, result.stderr
        out = result.stdout
        assert "| backend | metric | floor | tree | tree/floor | min to max | target | met |" in out
        for metric in ("start (ms)", "stop (ms)", "memory (B each)"):
            assert f"| asyncio | {metric} |" in out
            assert f"| trio | {metric} |" in out

    def test_tiny_run_prints_machine_info_and_logging_setup(self) -> None:
        """The output names the versions, the CPU count, N and the structlog filtering."""
        result = run_bench("--n", "20", "--rounds", "1", "--backends", "asyncio")

        assert result.returncode == 0, result.stderr
        out = result.stdout
        assert "CPUs:" in out
        assert "anyio " in out
        assert "N = 20 tasks / components" in out
        assert "structlog drops events below WARNING" in out
        assert "build + validate (`sup.graph()`)" in out

    def test_every_component_style_runs(self) -> None:
        """The mixed style (generator, ``ctx.ready()`` function and ``run(self, ctx)`` object) runs cleanly."""
        result = run_bench("--n", "30", "--rounds", "1", "--backends", "trio", "--style", "mix")

        assert result.returncode == 0, result.stderr
        assert "component style: mix" in result.stdout
        assert "| trio | start (ms) |" in result.stdout

    def test_unknown_backend_is_a_usage_error(self) -> None:
        """An unknown backend name exits with argparse's usage code 2 and names the choices."""
        result = run_bench("--backends", "asyncio,curio")

        assert result.returncode == 2
        assert "unknown backend(s) ['curio']" in result.stderr


class TestProfileCore:
    def test_tiny_run_prints_start_and_stop_profiles(self, tmp_path: Path) -> None:
        """A tiny profile prints one table for the start and one for the stop, and writes both files."""
        result = run_bench("--n", "30", "--limit", "3", "--out", str(tmp_path), script=PROFILER)

        assert result.returncode == 0, result.stderr
        assert "## asyncio: tree start, N = 30" in result.stdout
        assert "## asyncio: tree stop, N = 30" in result.stdout
        assert sorted(p.name for p in tmp_path.iterdir()) == ["asyncio_start.prof", "asyncio_stop.prof"]


class TestBenchSupervision:
    def test_tiny_run_prints_both_tables(self) -> None:
        """A tiny run prints the crash-loop and dynamic-children tables for each backend."""
        result = run_bench(
            "--restarts",
            "200",
            "--children",
            "50",
            "--backends",
            "asyncio,trio",
            script=ROOT / "benchmarks" / "bench_supervision.py",
        )

        assert result.returncode == 0, result.stderr
        out = result.stdout
        assert "## Crash loop: 200 restarts, zero backoff" in out
        assert "## Dynamic children: 50 started one by one, then stopped one by one" in out
        for backend in ("asyncio", "trio"):
            assert out.count(f"| {backend} |") == 2
