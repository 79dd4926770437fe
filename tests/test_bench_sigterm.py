"""Smoke test of ``benchmarks/bench_sigterm.py``: it runs and prints its tables (timings are never asserted)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "benchmarks" / "bench_sigterm.py"


def run_bench(*args: str) -> subprocess.CompletedProcess[str]:
    # -W error: a warning raised inside the benchmark fails the test, as in the suite.
    return subprocess.run(
        [sys.executable, "-W", "error", str(SCRIPT), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
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
