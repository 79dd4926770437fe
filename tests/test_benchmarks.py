"""Smoke tests of the scripts in ``benchmarks/``: they run and print their tables (timings are never asserted)."""

from __future__ import annotations

import importlib
import importlib.util
import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

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


WORKLOADS = ROOT / "benchmarks" / "bench_workloads.py"
RUN_ALL = ROOT / "benchmarks" / "run_all.py"


def installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


class TestBenchWorkloads:
    def test_tiny_run_measures_every_installed_workload(self, tmp_path: Path) -> None:
        """A tiny run exits 0; every expressible, installed cell has its samples and memory, the rest say why."""
        out = tmp_path / "w.json"
        result = run_bench(
            "--sizes", "12,30", "--full-upto", "12", "--rounds", "2", "--large-rounds", "1", "--json", str(out),
            script=WORKLOADS,
        )  # fmt: skip

        assert result.returncode == 0, result.stderr
        cells = json.loads(out.read_text())["cells"]
        measured = {(c["n"], c["backend"], c["workload"], c["shape"]) for c in cells if c["status"] == "ok"}
        for backend in ("asyncio", "trio"):
            assert (12, backend, "anyio floor", "flat") in measured
            for shape in ("flat", "chain", "dag"):
                assert (12, backend, "lifecycle", shape) in measured
            # Above --full-upto only the floors and lifecycle's DAG run.
            assert (30, backend, "lifecycle", "dag") in measured
            assert (30, backend, "lifecycle", "flat") not in measured
            for kind in ("lifecycle worker", "lifecycle class"):
                assert {(12, backend, kind, shape) for shape in ("flat", "chain", "dag")} <= measured
                assert (30, backend, kind, "dag") in measured
        assert (12, "asyncio", "asyncio.TaskGroup", "flat") in measured
        assert (12, "trio", "trio nursery", "flat") in measured
        for cell in cells:
            if cell["status"] == "ok":
                rounds = 2 if cell["n"] == 12 else 1
                assert len(cell["samples"]) == rounds
                assert cell["memory"]["total"] > 0
            else:
                assert cell["status"] in {"backend", "n/a", "missing", "skipped"}, cell
                assert cell["reason"]

    def test_memory_upto_leaves_larger_sizes_timed_only(self, tmp_path: Path) -> None:
        """With --memory-upto, sizes above it are timed but get no memory run, and the header says so."""
        out = tmp_path / "w.json"
        result = run_bench(
            "--sizes", "8,16", "--rounds", "1", "--memory-upto", "8", "--json", str(out),
            "--backends", "asyncio", "--workloads", "anyio floor,lifecycle", "--shapes", "dag",
            script=WORKLOADS,
        )  # fmt: skip

        assert result.returncode == 0, result.stderr
        cells = [c for c in json.loads(out.read_text())["cells"] if c["status"] == "ok"]
        assert {(c["n"], c["memory"] is not None) for c in cells} == {(8, True), (16, False)}
        assert all(len(c["samples"]) == 1 for c in cells)
        assert "memory runs up to N = 8" in result.stdout

    def test_peers_are_measured_or_reported_missing(self, tmp_path: Path) -> None:
        """Each peer runs where installed, else says 'not installed'; unordered peers cannot express a chain."""
        out = tmp_path / "w.json"
        result = run_bench(
            "--sizes", "10", "--rounds", "1", "--no-memory", "--json", str(out), "--backends", "asyncio,trio",
            script=WORKLOADS,
        )  # fmt: skip

        assert result.returncode == 0, result.stderr
        cells = {(c["backend"], c["workload"], c["shape"]): c for c in json.loads(out.read_text())["cells"]}
        for backend, peer, module in (
            ("asyncio", "mode", "mode"),
            ("asyncio", "aiomisc", "aiomisc"),
            ("asyncio", "aiotools", "aiotools"),
            ("trio", "triotp", "triotp"),
        ):
            cell = cells[backend, peer, "flat"]
            if installed(module):
                assert cell["status"] == "ok", cell
                assert len(cell["samples"]) == 1
            else:
                assert cell["status"] == "missing"
                assert "not installed" in cell["reason"]
        for peer in ("aiomisc", "aiotools"):
            assert cells["asyncio", peer, "chain"]["reason"].startswith("cannot express: no ordering")
        assert cells["trio", "triotp", "dag"]["reason"].startswith("cannot express: no ordering")
        assert cells["trio", "mode", "flat"]["status"] == "backend"
        assert "| asyncio | aiomisc | chain | cannot express: no ordering" in result.stdout

    def test_unknown_workload_is_a_usage_error(self) -> None:
        """An unknown workload name exits with argparse's usage code 2 and names the choices."""
        result = run_bench("--workloads", "lifecycle,celery", script=WORKLOADS)

        assert result.returncode == 2
        assert "unknown workload(s) ['celery']" in result.stderr


INSTRUCTIONS = ROOT / "benchmarks" / "bench_instructions.py"


class TestBenchInstructions:
    def test_without_valgrind_it_says_so_and_exits_zero(self, tmp_path: Path) -> None:
        """Without valgrind on the path, the script prints one line saying so, writes its JSON and exits 0."""
        out = tmp_path / "i.json"
        result = subprocess.run(
            [sys.executable, "-W", "error", str(INSTRUCTIONS), "--json", str(out)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
            env={"PATH": str(tmp_path)},
        )

        assert result.returncode == 0, result.stderr
        assert "valgrind is not installed: instruction counts skipped" in result.stdout
        assert json.loads(out.read_text())["rows"] == []

    def test_unknown_kind_is_a_usage_error(self) -> None:
        """An unknown kind of component exits with argparse's usage code 2 and names the choices."""
        result = run_bench("--kinds", "generator,thread", script=INSTRUCTIONS)

        assert result.returncode == 2
        assert "unknown kind(s) ['thread']" in result.stderr


class TestRunAll:
    def test_quick_run_writes_every_fragment_and_chart(self, tmp_path: Path) -> None:
        """``run_all.py --quick`` exits 0, writes the fragments the docs include and two SVG charts with data."""
        out, static = tmp_path / "generated", tmp_path / "static"
        result = run_bench("--quick", "--out", str(out), "--static", str(static), script=RUN_ALL)

        assert result.returncode == 0, result.stdout + result.stderr
        names = sorted(p.name for p in out.iterdir())
        assert names == [
            "instructions.md",
            "machine.md",
            "sigterm.md",
            "sizes.md",
            "supervision.md",
            "targets.md",
            "workloads.md",
        ]
        targets = (out / "targets.md").read_text()
        for target in (
            "| random DAG start / anyio floor | asyncio |",
            "| random DAG stop / anyio floor | trio |",
            "| memory per DAG component / bare anyio task | asyncio |",
        ):
            assert target in targets
        assert "| start / anyio floor, worst kind and shape (" in targets
        assert "| stop_child / floor (50 children) | trio |" in targets
        assert "| memory per dynamic child / bare task | asyncio |" in targets
        assert "SIGTERM to exit, lifecycle / aiomisc" in targets or not installed("aiomisc")
        instructions = (out / "instructions.md").read_text()
        assert "| asyncio | anyio floor | flat |" in instructions or "valgrind is not installed" in instructions
        assert "**`--quick`: tiny sizes" in (out / "machine.md").read_text()
        assert "**N = 20**" in (out / "workloads.md").read_text()
        assert "Crash loop: 200 restarts" in (out / "supervision.md").read_text()
        # Fragments are included under a section of the page: no headings of their own.
        assert not any(line.startswith("#") for p in out.iterdir() for line in p.read_text().splitlines())
        for chart in ("benchmarks_time.svg", "benchmarks_memory.svg"):
            svg = ET.parse(static / chart).getroot()  # noqa: S314 - the file this run just wrote
            lines = svg.findall("{http://www.w3.org/2000/svg}polyline")
            assert len(lines) == 6  # lifecycle DAG and the floor, on three backends
            assert all(len(line.get("points", "").split()) == 2 for line in lines)  # one point per N

    def test_unknown_part_is_a_usage_error(self, tmp_path: Path) -> None:
        """An unknown part exits with argparse's usage code 2 before anything runs."""
        result = run_bench("--parts", "workloads,bogus", "--out", str(tmp_path), script=RUN_ALL)

        assert result.returncode == 2
        assert "unknown part(s)" in result.stderr
        assert not any(tmp_path.iterdir())

    def test_triotp_directory_is_used_only_where_it_holds_triotp(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Without triotp on Python < 3.13, the private directory is used once it holds triotp; no install unasked."""
        monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
        run_all = importlib.import_module("run_all")  # a script, importable only from its directory

        peers = tmp_path / "peers"
        monkeypatch.setattr(run_all, "PEERS", peers)
        if sys.version_info >= (3, 13) or installed("triotp"):
            assert run_all.triotp_path(install=False) is None
            return
        assert run_all.triotp_path(install=False) is None
        assert not peers.exists()
        (peers / "triotp").mkdir(parents=True)
        assert run_all.triotp_path(install=False) == peers


class TestBenchProcesses:
    def test_tiny_run_prints_the_ratio_table(self) -> None:
        """A tiny run exits 0 and prints raw and lifecycle timings with their ratio for each metric."""
        result = run_bench("--n", "3", "--rounds", "1", script=ROOT / "benchmarks" / "bench_processes.py")

        assert result.returncode == 0, result.stderr
        out = result.stdout
        assert "| backend | metric | raw anyio | lifecycle | lifecycle/raw |" in out
        assert "containment: " in out
        for metric in ("spawn to ready, one (ms)", "stop to reaped, one (ms)", "3 stopping together (ms)"):
            assert f"| asyncio | {metric} |" in out
            assert f"| trio | {metric} |" in out
