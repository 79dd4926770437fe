"""Smoke test of ``benchmarks/bench_sigterm.py``: it runs and prints its tables (timings are never asserted)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "benchmarks" / "bench_sigterm.py"


def run_bench(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    # -W error: a warning raised inside the benchmark fails the test, as in the suite.
    return subprocess.run(
        [sys.executable, "-W", "error", str(SCRIPT), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env=env,
    )


class TestBenchSigterm:
    def test_tiny_run_prints_the_tables(self) -> None:
        """A tiny run exits 0, every child exits 0 on SIGTERM, and both tables name every program."""
        result = run_bench("--n", "20", "--rounds", "1", "--warmup", "0")

        assert result.returncode == 0, result.stdout + result.stderr
        out = result.stdout
        assert "N = 20 tasks / components / services" in out
        assert "| backend | program | SIGTERM to exit | min to max |" in out
        assert "| backend | lifecycle/bare | min to max | lifecycle/aiomisc | min to max | target met |" in out
        assert "| asyncio | bare | " in out
        assert "| asyncio | lifecycle | " in out
        assert "failed" not in out
        if importlib.util.find_spec("aiomisc") is None:
            assert "| asyncio | aiomisc | aiomisc not installed |" in out
        else:
            assert "| asyncio | aiomisc | " in out
            assert "aiomisc not installed" not in out
        if importlib.util.find_spec("trio") is not None:
            assert "| trio | lifecycle | " in out
            assert "| trio | aiomisc | n/a (aiomisc is asyncio-only) |" in out

    def test_profiled_run_reports_the_collections_after_the_loop(self, tmp_path: Path) -> None:
        """BENCH_SIGTERM_PROFILE keeps a profile per child and adds the table of the collections after the loop."""
        env = {**os.environ, "BENCH_SIGTERM_PROFILE": str(tmp_path)}
        result = run_bench("--n", "20", "--rounds", "1", "--warmup", "0", env=env)

        assert result.returncode == 0, result.stdout + result.stderr
        out = result.stdout
        assert "**profiling**" in out
        table = out.split("## Garbage collection after the loop (profiled run; medians)", 1)[1]
        rows = [line.split("|") for line in table.splitlines() if line.startswith("| asyncio |")]
        assert [row[2].strip() for row in rows][:2] == ["bare", "lifecycle"]
        for row in rows:
            freed, first, second, live = (float(cell) for cell in row[3:7])
            assert freed >= 0
            assert first >= 0
            assert second >= 0
            assert live > 0
        assert (tmp_path / "lifecycle-asyncio-1.prof").stat().st_size > 0
