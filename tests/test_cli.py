from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import platform
import re
import signal
import subprocess
import sys
import textwrap
import time
import urllib.request
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from lifecycle import ExitCode, Priority, ShutdownPolicy
from lifecycle._host._cli import _policy, main
from lifecycle._host._cli_render import render_check, render_dot, render_mermaid, render_text
from supervisors import Supervisor
from supervisors._demo import build as build_demo

ROOT = Path(__file__).resolve().parent.parent
BACKENDS = ["asyncio", "trio"]


def lifecycle_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "lifecycle", *args]


def env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "LIFECYCLE_LOG_FORMAT": "json"}


@pytest.fixture
def app(tmp_path: Path) -> Path:
    """A directory with service modules, used as the working directory."""
    (tmp_path / "slowdrain.py").write_text(
        textwrap.dedent(
            """
            from collections.abc import AsyncIterator
            import anyio, lifecycle
            from supervisors import Supervisor

            tree = Supervisor("svc")

            @tree.component
            async def db(ctx: lifecycle.Context) -> AsyncIterator[None]:
                yield
                print("db closed", flush=True)

            @tree.component
            async def api(ctx: lifecycle.Context, db: None) -> None:
                ctx.ready()
                print("ready", flush=True)
                try:
                    await anyio.sleep_forever()
                finally:
                    with ctx.shielded():
                        print("draining", flush=True)
                        await anyio.sleep(60)
                    print("drain cut", flush=True)
            """,
        ),
    )
    (tmp_path / "stubborn.py").write_text(
        textwrap.dedent(
            """
            import time
            import anyio, lifecycle
            from lifecycle import ShutdownPolicy
            from supervisors import Supervisor

            tree = Supervisor("svc", policy=ShutdownPolicy(graceful=0.5, forceful=0.5, terminate=0.5))

            @tree.component
            async def blocker(ctx: lifecycle.Context) -> None:
                ctx.ready()
                print("ready", flush=True)
                try:
                    await anyio.sleep_forever()
                finally:
                    time.sleep(60)  # blocks the event loop: only a hard exit ends this
            """,
        ),
    )
    (tmp_path / "swallow.py").write_text(
        textwrap.dedent(
            """
            import anyio, lifecycle
            from lifecycle import ShutdownPolicy
            from supervisors import Supervisor

            tree = Supervisor("svc", policy=ShutdownPolicy(graceful=0.5, forceful=0.5, terminate=0.5))

            @tree.component
            async def blocker(ctx: lifecycle.Context) -> None:
                ctx.ready()
                print("ready", flush=True)
                while True:
                    try:
                        await anyio.sleep_forever()
                    except anyio.get_cancelled_exc_class():
                        with anyio.CancelScope(shield=True):  # swallows every cancellation
                            await anyio.sleep(0.05)
            """,
        ),
    )
    (tmp_path / "broken.py").write_text(
        textwrap.dedent(
            """
            import lifecycle
            from supervisors import Supervisor

            tree = Supervisor("svc")

            @tree.component
            async def db(ctx: lifecycle.Context) -> None:
                raise ConnectionRefusedError("db:5432")

            unknown = Supervisor("bad")

            @unknown.component(depends_on=("dbb",))
            async def api(ctx: lifecycle.Context) -> None:
                ctx.ready()

            def factory():
                return tree
            """,
        ),
    )
    return tmp_path


def start(cwd: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        lifecycle_cmd(*args),
        cwd=cwd,
        env=env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for_line(stream: object, pattern: str) -> str:
    assert stream is not None
    for line in stream:  # type: ignore[attr-defined]
        if re.search(pattern, line):
            return str(line)
    pytest.fail(f"{pattern!r} never appeared")


class TestDemo:
    @pytest.mark.parametrize("options", [["--backend", "asyncio"], ["--backend", "trio"], ["--uvloop"]])
    def test_demo_serves_http_and_stops_in_order(self, tmp_path: Path, options: list[str]) -> None:
        """`lifecycle demo` serves its HTTP API, then stops in order and prints the report (exit 0)."""
        if options == ["--uvloop"]:
            pytest.importorskip("uvloop")
        with start(tmp_path, "demo", "--for", "3", *options) as proc:
            line = wait_for_line(proc.stderr, r"api\.listening")
            url = json.loads(line)["url"]
            with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - a local URL
                assert "jobs_done" in json.loads(response.read())
            post = urllib.request.Request(f"{url}jobs", method="POST")  # noqa: S310 - a local URL
            with urllib.request.urlopen(post, timeout=10) as response:  # noqa: S310 - a local URL
                assert response.status == 202
            _, err = proc.communicate(timeout=30)
        assert proc.returncode == ExitCode.OK, err
        rows = [line.split()[0] for line in err.splitlines() if line.startswith("  demo")]
        assert rows == [
            "demo/timer",
            "demo/sidecar",
            "demo/ticker",
            "demo/api",
            "demo/workers",
            "demo/cache",
            "demo/store",
            "demo",
        ]
        assert "main exited ('demo/timer' (main) returned)" in err

    @pytest.mark.parametrize("backend", BACKENDS)
    def test_slow_demo_shows_each_phase_and_each_ctrl_c_moves_it_on(self, tmp_path: Path, backend: str) -> None:
        """
        `lifecycle demo --slow`: cleanups bound to GRACEFUL and FORCEFUL, a child that only SIGKILL ends.

        The first SIGINT starts the stop (the workers drain until GRACEFUL
        ends), the second forces it (the drain is cut, the store flushes until
        FORCEFUL ends), the third terminates it (the flush is cut and the child
        killed): exit 4, some cleanup was cut short.
        """
        with start(tmp_path, "demo", "--slow", "--backend", backend) as proc:
            events: list[dict[str, object]] = []

            def until(event: str, **fields: object) -> None:
                assert proc.stderr is not None
                for line in proc.stderr:
                    if line.startswith("{"):
                        events.append(json.loads(line))
                        if events[-1]["event"] == event and fields.items() <= events[-1].items():
                            return
                pytest.fail(f"{event!r} {fields} never appeared; events: {[e['event'] for e in events]}")

            until("tree.ready")
            proc.send_signal(signal.SIGINT)
            until("cleanup.started", component="demo/workers", until="GRACEFUL")
            proc.send_signal(signal.SIGINT)
            until("cleanup.started", component="demo/store", until="FORCEFUL")
            proc.send_signal(signal.SIGINT)
            _, err = proc.communicate(timeout=60)
        events += [json.loads(line) for line in err.splitlines() if line.startswith("{")]
        assert proc.returncode == ExitCode.CUT_OFF, err
        phases = [(e["phase"], e["reason"]) for e in events if e["event"] == "tree.phase"]
        assert phases == [("GRACEFUL", "signal"), ("FORCEFUL", "signal"), ("TERMINATE", "signal")]
        cut = [(e["component"], e["what"]) for e in events if e["event"] == "cleanup.cut_off"]
        assert cut == [("demo/workers", "finishing the queued jobs"), ("demo/store", "flushing the write-ahead log")]
        killed = [e for e in events if e["event"] == "process.signalled" and e["signal"] == "SIGKILL"]
        assert [e["phase"] for e in killed] == ["TERMINATE"]
        assert "Shutdown of 'demo': signal (SIGINT received)" in err

    def test_slow_demo_has_budgets_of_four_seconds(self) -> None:
        """The slow demo's budgets are short enough to wait for: 4 seconds per phase."""
        tree = build_demo(None, slow=True)
        assert tree.policy == ShutdownPolicy(graceful=4.0, forceful=4.0, terminate=4.0)


class TestRunWithSignals:
    @pytest.mark.parametrize("backend", BACKENDS)
    def test_sigterm_stops_in_order_and_exits_zero(self, backend: str) -> None:
        """SIGTERM stops the tree in order; the process exits 0 with the report on stderr."""
        with start(ROOT, "run", "examples.wrap_entrypoint:tree", "--backend", backend) as proc:
            wait_for_line(proc.stderr, r"tree\.ready")
            proc.send_signal(signal.SIGTERM)
            _, err = proc.communicate(timeout=30)
        assert proc.returncode == ExitCode.OK, err
        assert err.index('"db.closed"') > err.index('"signal.received"')
        assert "signal (SIGTERM received)" in err
        assert "Traceback" not in err

    @pytest.mark.real_time
    @pytest.mark.parametrize("backend", BACKENDS)
    def test_second_sigint_cuts_a_slow_graceful_drain(self, app: Path, backend: str) -> None:
        """SIGINT starts a graceful stop; a second SIGINT cuts the 60 s drain short at once (exit 4: cut off)."""
        with start(app, "run", "slowdrain:tree", "--backend", backend) as proc:
            wait_for_line(proc.stdout, "ready")
            proc.send_signal(signal.SIGINT)
            wait_for_line(proc.stdout, "draining")
            began = time.monotonic()
            proc.send_signal(signal.SIGINT)
            out, err = proc.communicate(timeout=30)
        assert time.monotonic() - began < 10
        # The drain was cut short: the stop is complete but not clean.
        assert proc.returncode == ExitCode.CUT_OFF, err
        assert "lifecycle: cleanup was cut short (svc/api): exit code 4" in err
        assert out.splitlines() == ["drain cut", "db closed"]
        assert "press" not in err or "again" in err
        assert re.search(r"svc/api +NORMAL +forced +FORCEFUL", err)

    @pytest.mark.parametrize("backend", BACKENDS)
    @pytest.mark.parametrize(
        ("module", "culprit"),
        [("stubborn", "time.sleep(60)"), ("swallow", "await anyio.sleep(0.05)")],
        ids=["blocks-the-loop", "swallows-cancellation"],
    )
    @pytest.mark.real_time
    def test_stubborn_component_ends_in_a_hard_exit_with_its_stack(
        self,
        app: Path,
        backend: str,
        module: str,
        culprit: str,
    ) -> None:
        """A component that blocks the loop or swallows cancellation: exit 3 at the deadline, with its stack."""
        with start(app, "run", f"{module}:tree", "--backend", backend) as proc:
            wait_for_line(proc.stdout, "ready")
            began = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            _, err = proc.communicate(timeout=30)
        assert proc.returncode == ExitCode.TERMINATED, err
        assert 1.0 <= time.monotonic() - began < 15
        assert '"tree.terminated"' in err
        assert culprit in err
        assert re.search(r"svc/blocker +NORMAL +stubborn", err)

    @pytest.mark.skipif(not hasattr(signal, "SIGUSR1"), reason="SIGUSR1 is POSIX-only")
    @pytest.mark.parametrize("backend", BACKENDS)
    def test_sigusr1_dumps_the_tree_without_stopping_it(self, backend: str) -> None:
        """SIGUSR1 logs every component with its state and stack; the tree keeps running."""
        with start(ROOT, "run", "examples.wrap_entrypoint:tree", "--backend", backend) as proc:
            wait_for_line(proc.stderr, r"tree\.ready")
            proc.send_signal(signal.SIGUSR1)
            dump = json.loads(wait_for_line(proc.stderr, r"tree\.dump"))
            proc.send_signal(signal.SIGTERM)
            _, err = proc.communicate(timeout=30)
        assert proc.returncode == ExitCode.OK, err
        states = {c["component"]: c["state"] for c in dump["components"]}
        assert states == {"app": "running", "app/db": "running", "app/api": "running"}
        api = next(c for c in dump["components"] if c["component"] == "app/api")
        assert "in api" in api["stack"]


class TestExitCodes:
    def test_start_failure_exits_one_with_the_report(self, app: Path, tmp_path: Path) -> None:
        """A component that fails to start: exit 1, the report on stderr and in --report-json."""
        proc = subprocess.run(
            lifecycle_cmd("run", "broken:factory", "--report-json", str(tmp_path / "r.json")),
            cwd=app,
            env=env(),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert proc.returncode == ExitCode.FAILURE
        assert re.search(r"svc/db +NORMAL +failed .*start: ConnectionRefusedError: db:5432", proc.stderr)
        data = json.loads((tmp_path / "r.json").read_text())
        assert data["components"][0]["error"]["type"] == "ConnectionRefusedError"

    def test_configuration_error_exits_two(self, app: Path) -> None:
        """An unknown dependency is reported with a suggestion and exit code 2; nothing runs."""
        proc = subprocess.run(
            lifecycle_cmd("run", "broken:unknown"),
            cwd=app,
            env=env(),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert proc.returncode == ExitCode.USAGE
        assert "In supervisor 'bad': Component 'api' depends on 'dbb'" in proc.stderr


class TestCommandsInProcess:
    def test_version_prints_the_installed_version(self, capsys: pytest.CaptureFixture[str]) -> None:
        """`lifecycle --version` prints the installed distribution's version and Python's, and exits 0."""
        with pytest.raises(SystemExit) as exc:
            main(["--version"])
        assert exc.value.code == 0
        out = capsys.readouterr().out
        assert out.startswith(f"lifecycle {importlib.metadata.version('anyio-lifecycle')} (Python ")
        assert platform.python_version() in out

    def test_check_prints_waves(self, capsys: pytest.CaptureFixture[str]) -> None:
        """`lifecycle check` prints the start and stop waves and exits 0."""
        assert main(["check", "examples.wrap_entrypoint:tree"]) == ExitCode.OK
        out = capsys.readouterr().out
        assert "Start waves" in out
        assert "1. api" in out.split("Stop waves")[1]

    def test_check_of_a_single_component(self, capsys: pytest.CaptureFixture[str]) -> None:
        """A single component (not a tree) is valid too."""
        assert main(["check", "examples.wrap_entrypoint:db"]) == ExitCode.OK
        assert "a single component, valid" in capsys.readouterr().out

    def test_graph_of_a_single_component_is_an_error(self, capsys: pytest.CaptureFixture[str]) -> None:
        """There is no graph to draw for a single component: exit 2."""
        assert main(["graph", "examples.wrap_entrypoint:db"]) == ExitCode.USAGE
        assert "not a tree" in capsys.readouterr().err

    @pytest.mark.parametrize(
        ("target", "message"),
        [
            ("nothing", "expected MODULE:ATTRIBUTE"),
            ("no_such_module_xyz:tree", "no module named 'no_such_module_xyz': looked in the current directory"),
            ("examples.wrap_entrypoint:tre", "has no attribute 'tre'; did you mean 'tree'?"),
            ("examples.wrap_entrypoint:tree.nope", "has no attribute 'nope'"),
        ],
    )
    def test_bad_targets_say_what_was_not_found(
        self,
        target: str,
        message: str,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        """A bad MODULE:ATTRIBUTE is a one-line error with exit code 2."""
        assert main(["check", target]) == ExitCode.USAGE
        assert message in capsys.readouterr().err

    def test_factory_needing_arguments_is_an_error(self, capsys: pytest.CaptureFixture[str]) -> None:
        """A callable target that is not a component must take no arguments."""
        assert main(["check", "os.path:join"]) == ExitCode.USAGE
        assert "calling it without arguments failed" in capsys.readouterr().err

    def test_import_error_inside_the_module_shows_its_traceback(
        self,
        tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        """An exception raised while importing the user's module is shown with its traceback."""
        (tmp_path / "crashing_mod.py").write_text("raise RuntimeError('config missing')\n")
        monkeypatch.chdir(tmp_path)
        monkeypatch.syspath_prepend(str(tmp_path))
        assert main(["check", "crashing_mod:tree"]) == ExitCode.USAGE
        err = capsys.readouterr().err
        assert "RuntimeError: config missing" in err
        assert "importing 'crashing_mod' failed" in err

    def test_report_json(self, app: Path, tmp_path: Path) -> None:
        """--report-json writes the report as JSON."""
        (app / "quick.py").write_text(
            "from supervisors import Supervisor\n"
            "tree = Supervisor('q')\n"
            "@tree.component(main=True)\n"
            "async def job() -> None:\n"
            "    pass\n",
        )
        out = tmp_path / "report.json"
        proc = subprocess.run(
            lifecycle_cmd("run", "quick:tree", "--report-json", str(out), "--graceful", "1"),
            cwd=app,
            env=env(),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert proc.returncode == ExitCode.OK, proc.stderr
        data = json.loads(out.read_text())
        assert data["reason"] == "main exited"
        assert [c["path"] for c in data["components"]] == ["q/job", "q"]


def timeline_rows(path: Path) -> list[tuple[str | None, str | None]]:
    """Return the (path, outcome) of each row of the timeline SVG at *path*."""
    svg = ET.parse(path).getroot()  # noqa: S314 - written by the command under test
    rows = svg.findall(".//{http://www.w3.org/2000/svg}g[@class='row']")
    return [(row.get("data-path"), row.get("data-outcome")) for row in rows]


class TestTimeline:
    def test_demo_draws_its_timeline(self, tmp_path: Path) -> None:
        """`lifecycle demo --timeline PATH` writes the SVG timeline of the demo's stop, one row per component."""
        out = tmp_path / "demo.svg"
        proc = subprocess.run(
            lifecycle_cmd("demo", "--for", "0.5", "--timeline", str(out)),
            cwd=tmp_path,
            env=env(),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert proc.returncode == ExitCode.OK, proc.stderr
        paths = [path for path, _ in timeline_rows(out)]
        assert paths[:3] == ["demo", "demo/timer", "demo/sidecar"]  # main first, then LOWEST
        assert paths[3:] == ["demo/ticker", "demo/api", "demo/workers", "demo/cache", "demo/store"]

    def test_run_draws_the_timeline_after_a_failure_too(self, app: Path, tmp_path: Path) -> None:
        """`lifecycle run --timeline PATH` writes the timeline when the tree fails to start (exit 1)."""
        out = tmp_path / "failed.svg"
        proc = subprocess.run(
            lifecycle_cmd("run", "broken:factory", "--timeline", str(out)),
            cwd=app,
            env=env(),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert proc.returncode == ExitCode.FAILURE, proc.stderr
        assert ("svc/db", "failed") in timeline_rows(out)


def nested() -> Supervisor:
    root = Supervisor("app")

    async def db() -> None: ...

    async def api(db: None) -> None: ...

    async def server() -> None: ...

    root.add(db, priority=Priority.LOW)
    web = Supervisor("web")
    web.add(server)
    root.add(api, depends_on=("db",), priority=Priority.CRITICAL)
    root.add(web, depends_on=("db",))
    return root


class TestRenderers:
    def test_text_shows_dependencies_below_dependents(self) -> None:
        """The text graph puts each component above what it depends on and marks inherited priority."""
        text = render_text(nested().describe_tree())
        assert text.splitlines() == [
            "app",
            "├── api [CRITICAL]",
            "│   └── db [LOW, stops as CRITICAL]",
            "└── web [NORMAL]",
            "    ├── db [LOW, stops as CRITICAL]",
            "    └── contains:",
            "        └── server [NORMAL]",
        ]

    def test_check_explains_priority_inheritance(self) -> None:
        """check names who a raised priority comes from, and covers nested trees."""
        text = render_check(nested().describe_tree())
        assert "db: declared LOW, stops as CRITICAL (needed by api)" in text
        assert "Tree 'app/web': 1 components, valid." in text

    def test_mermaid_and_dot_draw_edges_and_clusters(self) -> None:
        """Mermaid and dot draw an edge per dependency and a cluster per nested tree."""
        info = nested().describe_tree()
        mermaid = render_mermaid(info)
        dot = render_dot(info)
        assert mermaid.startswith("flowchart TD")
        assert "subgraph n2" in mermaid
        assert "n1 --> n0" in mermaid
        assert "subgraph cluster_n2" in dot
        assert "n1 -> n0;" in dot


def test_budget_flags_override_only_their_phase_of_the_root_policy() -> None:
    """--terminate replaces the terminate budget of the root's own policy and keeps the others."""
    sup = Supervisor("svc", policy=ShutdownPolicy(graceful=1, forceful=1, terminate=1))
    args = argparse.Namespace(graceful=None, forceful=None, terminate=2.0)
    assert _policy(sup, args) == ShutdownPolicy(graceful=1, forceful=1, terminate=2.0)
    assert _policy(sup, argparse.Namespace(graceful=None, forceful=None, terminate=None)) is None
