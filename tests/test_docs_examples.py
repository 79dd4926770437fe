"""The documentation's example scripts run to completion and do what the pages say."""

from __future__ import annotations

import functools
import json
import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

import pytest

import lifecycle
import lifecycle.abc
import lifecycle.lowlevel
import supervisors
from lifecycle._host._cli import _parser

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
EXAMPLES = DOCS / "examples"
BACKENDS = ["asyncio", "trio"]

# Every script in docs/examples, each run by a test below.
TESTED = {
    "quickstart.py",
    "phases.py",
    "escalation.py",
    "rollback.py",
    "embed_asyncio.py",
    "embed_trio.py",
    "stubborn.py",
    "dynamic_children.py",
    "processes.py",
    "why_asyncio.py",
    "coordinators.py",
    "testing_faults.py",
    "asgi_app.py",
    "observing.py",
    "reloading.py",
}
# Every script of the tutorial, in docs/examples/tutorial.
TUTORIAL = {
    "step1_component.py",
    "step2_dependencies.py",
    "step3_stopping.py",
    "step4_supervision.py",
    "service.py",
    "step6_process.py",
}


@functools.cache
def run_example(name: str, *args: str) -> tuple[str, ...]:
    """Run docs/examples/<name> in a fresh interpreter (once) and return its stdout lines."""
    # The examples read the shutdown budgets from the environment; keep them at
    # their defaults whatever the environment of the test run says.
    env = {key: value for key, value in os.environ.items() if not key.startswith("LIFECYCLE_")}
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / name), *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        env=env,
        check=False,
    )
    assert result.returncode == 0, (
        f"{name} {' '.join(args)} exited with {result.returncode}\n"
        f"--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"
    )
    return tuple(result.stdout.splitlines())


def index_of(lines: Sequence[str], prefix: str) -> int:
    """Return the index of the first line that starts with *prefix*."""
    for number, line in enumerate(lines):
        if line.startswith(prefix):
            return number
    pytest.fail(f"no line starts with {prefix!r} in:\n" + "\n".join(lines))


def test_every_example_is_tested() -> None:
    """Every script in docs/examples is run by a test in this module."""
    assert {path.name for path in EXAMPLES.glob("*.py")} == TESTED


def test_the_tutorial_counts_its_steps_and_shows_whole_programs() -> None:
    """The tutorial says how many steps it has, and includes every script whole: imports and all."""
    text = (DOCS / "tutorial.rst").read_text(encoding="utf-8")
    steps = re.findall(r"^Step (\d+):", text, flags=re.MULTILINE)
    assert steps == [str(n) for n in range(1, len(steps) + 1)]
    words = {4: "four", 5: "five", 6: "six", 7: "seven", 8: "eight"}
    assert f"in {words[len(steps)]} steps" in " ".join(text.split())
    includes = re.findall(r"\.\. literalinclude:: (\S+)\n((?:   :.*\n)*)", text)
    assert len(includes) >= len(steps)
    for path, options in includes:
        assert re.findall(r":(\w[\w-]*):", options) == ["language"], f"{path} is not shown whole: {options!r}"
        assert "import" in (DOCS / path).read_text(encoding="utf-8")


def test_every_tutorial_step_is_tested() -> None:
    """Every script in docs/examples/tutorial is run by a test in this module."""
    assert {path.name for path in (EXAMPLES / "tutorial").glob("*.py")} == TUTORIAL


class TestWhy:
    def test_each_failure_happens_in_plain_asyncio(self) -> None:
        """The four failures docs/why.rst describes really happen, as the page shows them."""
        lines = run_example("why_asyncio.py")
        assert lines == (
            "cancelled cleanup: closed=False, CancelledError raised while handling a CancelledError",
            "random order: ['db closed', 'api answered its last request']",
            "swallowed cancellation: cancelled 50 ms ago, still running=True",
            "swallowed cancellation: still running=True",
            "never retrieved: the only trace is ['Task exception was never retrieved']",
        )


@pytest.mark.parametrize("backend", BACKENDS)
class TestTutorial:
    def test_step1_starts_and_stops_one_component(self, backend: str) -> None:
        """The db opens, the tree runs, the db closes and its stop was graceful."""
        lines = run_example("tutorial/step1_component.py", backend)
        assert lines == ("db: open", "tree: RUNNING", "db: closed", "db: graceful")

    def test_step2_starts_dependencies_first_and_stops_them_last(self, backend: str) -> None:
        """db starts before api, which receives db's value; the job's return stops api, then db."""
        lines = run_example("tutorial/step2_dependencies.py", backend)
        assert lines == (
            "start waves: [['db'], ['api'], ['job']]",
            "stop waves: [['job'], ['api'], ['db']]",
            "db: open",
            "api: serving 2 products",
            "job: selling an apple through http://127.0.0.1:8080",
            "api: stopped",
            "db: closed",
            "stopped: main exited ('shop/job' (main) returned)",
        )

    def test_step3_finishes_the_order_in_progress(self, backend: str) -> None:
        """The order being shipped when the stop begins is finished; the next ones are not started."""
        lines = run_example("tutorial/step3_stopping.py", backend)
        assert lines[:3] == ("worker: shipping order-1", "worker: shipped order-1", "db: closed with 1 orders shipped")
        rows = [line.split()[:3] for line in lines if line.startswith("  shop")]
        assert rows == [
            ["shop/job", "NORMAL", "finished"],
            ["shop/worker", "NORMAL", "graceful"],
            ["shop/orders", "NORMAL", "graceful"],
            ["shop/db", "CRITICAL", "graceful"],
            ["shop", "NORMAL", "graceful"],
        ]

    def test_step4_restarts_the_failed_feed(self, backend: str) -> None:
        """The feed fails once, is restarted, and the report counts one restart."""
        lines = run_example("tutorial/step4_supervision.py", backend)
        assert index_of(lines, "feed: connected (connection 1)") < index_of(lines, "feed: connected (connection 2)")
        assert any("supervisor.restarting" in line for line in lines)
        (feed,) = (line.split() for line in lines if line.startswith("  shop/feed"))
        assert feed[:3] == ["shop/feed", "NORMAL", "graceful"]
        assert feed[-1] == "1"

    def test_service_runs_under_lifecycle_run_and_draws_its_timeline(self, backend: str, tmp_path: Path) -> None:
        """`lifecycle run service:tree --timeline` serves, stops in waves on SIGINT, exits 0 and writes the SVG."""
        env = {key: value for key, value in os.environ.items() if not key.startswith("LIFECYCLE_")}
        env |= {"PYTHONPATH": str(ROOT), "LIFECYCLE_LOG_FORMAT": "json"}
        out = tmp_path / "timeline.svg"
        args = ["run", "service:tree", "--backend", backend, "--timeline", str(out)]
        with subprocess.Popen(
            [sys.executable, "-m", "lifecycle", *args],
            cwd=EXAMPLES / "tutorial",
            env=env,
            stderr=subprocess.PIPE,
            text=True,
        ) as proc:
            assert proc.stderr is not None
            for line in proc.stderr:
                if '"tree.ready"' in line:
                    break
            proc.send_signal(signal.SIGINT)
            err = proc.stderr.read()
        assert proc.returncode == 0, err
        rows = [line.split()[0] for line in err.splitlines() if line.startswith("  shop")]
        # worker and api stop in the same wave, so their rows come in either order.
        assert rows[:1] + sorted(rows[1:3]) + rows[3:] == [
            "shop/feed",
            "shop/api",
            "shop/worker",
            "shop/orders",
            "shop/cache",
            "shop/db",
            "shop",
        ]
        assert "Shutdown of 'shop': signal (SIGINT received)" in err
        svg = out.read_text(encoding="utf-8")
        assert svg.startswith("<svg")
        assert 'data-path="shop/db"' in svg

    def test_step6_supervises_a_child_process_and_leaves_nothing_behind(self, backend: str) -> None:
        """The image server starts once listening, stops after its dependent on SIGINT, and its process is gone."""
        env = {key: value for key, value in os.environ.items() if not key.startswith("LIFECYCLE_")}
        env |= {"PYTHONPATH": str(ROOT), "LIFECYCLE_LOG_FORMAT": "json"}
        seen: list[dict[str, object]] = []
        with subprocess.Popen(
            [sys.executable, "-m", "lifecycle", "run", "step6_process:tree", "--backend", backend],
            cwd=EXAMPLES / "tutorial",
            env=env,
            stderr=subprocess.PIPE,
            text=True,
        ) as proc:
            assert proc.stderr is not None
            for line in proc.stderr:
                if line.startswith("{"):
                    seen.append(json.loads(line))
                if '"tree.ready"' in line:
                    break
            proc.send_signal(signal.SIGINT)
            err = proc.stderr.read()
        assert proc.returncode == 0, err
        (started,) = [e for e in seen if e["event"] == "process.started"]
        (ready,) = [e for e in seen if e["event"] == "gallery.ready"]
        assert ready["images_pid"] == started["pid"]
        rows = [line.split()[0] for line in err.splitlines() if line.startswith("  shop")]
        assert rows.index("shop/gallery") < rows.index("shop/images") < rows.index("shop/db")
        pid = started["pid"]
        assert isinstance(pid, int)
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_tutorial_page_shows_what_lifecycle_check_prints() -> None:
    """The waves docs/tutorial.rst shows are what `lifecycle check service:tree` prints today."""
    result = subprocess.run(
        [sys.executable, "-m", "lifecycle", "check", "service:tree"],
        cwd=EXAMPLES / "tutorial",
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    page = (DOCS / "tutorial.rst").read_text(encoding="utf-8")
    shown = "\n".join(f"   {line}".rstrip() for line in result.stdout.splitlines())
    assert shown in page


@pytest.mark.parametrize("backend", BACKENDS)
class TestQuickstart:
    def test_starts_in_waves(self, backend: str) -> None:
        """The tree starts db, then api, then heartbeat and job together."""
        lines = run_example("quickstart.py", backend)
        assert lines[0] == "start waves: [['db'], ['api'], ['heartbeat', 'job']]"
        assert index_of(lines, "db: open") < index_of(lines, "api: serving 2 products")
        assert index_of(lines, "api: serving") < index_of(lines, "job: selling an apple")

    def test_main_job_returning_stops_the_tree_in_order(self, backend: str) -> None:
        """When the main job returns, db is torn down last and the report is clean."""
        lines = run_example("quickstart.py", backend)
        assert index_of(lines, "job: selling") < index_of(lines, "db: closed")
        assert index_of(lines, "Shutdown of 'shop': main exited") > index_of(lines, "db: closed")
        rows = [line.split()[:4] for line in lines if line.startswith("  shop")]
        assert rows[:4] == [
            ["shop/job", "NORMAL", "finished", "-"],
            ["shop/heartbeat", "NORMAL", "graceful", "GRACEFUL"],
            ["shop/api", "NORMAL", "graceful", "GRACEFUL"],
            ["shop/db", "CRITICAL", "graceful", "GRACEFUL"],
        ]
        assert rows[4][0] == "shop"
        assert rows[4][2] != "failed"


@pytest.mark.parametrize("backend", BACKENDS)
class TestPhases:
    def test_outcomes_follow_the_global_deadlines(self, backend: str) -> None:
        """The worker stops gracefully; the cache is cut off; the late wal stop is forced."""
        lines = run_example("phases.py", backend)
        assert lines[0] == "stop waves: [['worker', 'cache'], ['wal']]"
        assert [line.split() for line in lines[-4:]] == [
            ["pipeline/worker", "graceful", "GRACEFUL"],
            ["pipeline/cache", "forced", "FORCEFUL"],
            ["pipeline/wal", "forced", "FORCEFUL"],
            ["pipeline", "forced", "FORCEFUL"],
        ]

    def test_graceful_scope_is_cut_off_and_forceful_scope_finishes(self, backend: str) -> None:
        """The cache snapshot never completes; the wal flush completes after it."""
        lines = run_example("phases.py", backend)
        assert not any("snapshot written" in line for line in lines)
        assert any("component.teardown_cut_off" in line for line in lines)
        assert index_of(lines, "cache: writing a snapshot") < index_of(lines, "wal: flushed batches [")


@pytest.mark.parametrize("backend", BACKENDS)
class TestEscalation:
    """Issue 15, problem 1: the third Ctrl-C cuts every scope at once, whatever its siblings did."""

    @staticmethod
    def at(lines: Sequence[str], prefix: str) -> float:
        """The time (seconds after the request) printed on the line that starts with *prefix*."""
        match = re.search(r"\+([0-9.]+)s", lines[index_of(lines, prefix)])
        assert match is not None
        return float(match.group(1))

    def test_each_escalation_cuts_its_scopes_at_once(self, backend: str) -> None:
        """The worker's batch is cut at the first escalation, the wal's flush at the second, 3.5 s early."""
        lines = run_example("escalation.py", backend)
        assert self.at(lines, "worker: batch cut off") == pytest.approx(0.5, abs=0.2)
        assert self.at(lines, "wal: flush cut off") == pytest.approx(1.0, abs=0.2)
        assert index_of(lines, "wal: flush cut off") < index_of(lines, "db: closing sockets")

    def test_a_teardown_that_begins_in_terminate_runs_to_its_first_checkpoint(self, backend: str) -> None:
        """db's synchronous close runs, its awaited goodbye is cut off at once."""
        lines = run_example("escalation.py", backend)
        assert not any("said goodbye" in line for line in lines)
        assert self.at(lines, "db: teardown ended") == pytest.approx(1.0, abs=0.2)

    def test_the_report_says_what_was_cut_and_why_each_phase_began(self, backend: str) -> None:
        """Phase changes with their reasons, each component's outcome, and a stop that was not clean."""
        lines = run_example("escalation.py", backend)
        assert [line.split(" at ")[0] + line.rpartition(" ")[2] for line in lines if " began at " in line] == [
            "GRACEFUL began(request)",
            "FORCEFUL began(request)",
            "TERMINATE began(request)",
        ]
        assert [line.split() for line in lines[-5:]] == [
            ["app/worker", "forced", "cut", "off:", "True"],
            ["app/wal", "terminated", "cut", "off:", "True"],
            ["app/db", "terminated", "cut", "off:", "True"],
            ["app", "terminated", "cut", "off:", "False"],
            ["clean:", "False"],
        ]


@pytest.mark.parametrize("backend", BACKENDS)
class TestDynamicChildren:
    def test_children_start_with_their_dependency_and_stop_in_order(self, backend: str) -> None:
        """Each session receives the database; the stopped one closes first; the database closes last."""
        lines = run_example("dynamic_children.py", backend)
        assert lines[0] == "db: open"
        assert "started session-acme: acme@postgresql://localhost/hub" in lines
        assert index_of(lines, "session-globex: closed") < index_of(lines, "stopped session-globex: graceful")
        assert index_of(lines, "stopped session-globex") < index_of(lines, "session-acme: closed")
        assert lines[-2] == "db: closed"
        order = lines[-1].split(", ")
        assert order[0] == "tenants"
        assert sorted(order[1:3]) == ["session-acme", "session-initech"]
        assert order[3:] == ["db", "hub"]


@pytest.mark.parametrize("backend", BACKENDS)
class TestAsgiApp:
    def test_the_tree_lives_with_the_lifespan(self, backend: str) -> None:
        """The store opens before the request and closes after the restocker, once the server shuts down."""
        lines = [line for line in run_example("asgi_app.py", backend) if not line[:1].isdigit()]
        assert lines == [
            "store: open",
            "GET /stock: {'apples': 3, 'same': True}",
            "restocker: stopped, 3 apples in store",
            "store: closed",
            "server: shut down",
        ]


@pytest.mark.parametrize("backend", BACKENDS)
class TestRollback:
    def test_start_failure_is_raised_with_the_component_name(self, backend: str) -> None:
        """running() raises the api's start failure as a ComponentError naming it."""
        lines = run_example("rollback.py", backend)
        index_of(lines, 'shop/api failed at start: OSError("[Errno 98] Address already in use')
        assert not any(line.startswith("never printed") for line in lines)

    def test_started_components_are_stopped_in_reverse_order(self, backend: str) -> None:
        """The cache is torn down before the db, and both stop gracefully."""
        lines = run_example("rollback.py", backend)
        assert index_of(lines, "api: starting") < index_of(lines, "cache: dropped")
        assert index_of(lines, "cache: dropped") < index_of(lines, "db: closed")
        assert [line.split() for line in lines[-4:]] == [
            ["shop/api", "failed"],
            ["shop/cache", "graceful"],
            ["shop/db", "graceful"],
            ["shop", "failed"],
        ]


class TestEmbedAsyncio:
    def test_request_from_a_worker_thread_stops_the_tree(self) -> None:
        """request_shutdown() from a thread stops the tree; the server drains before the store closes."""
        lines = run_example("embed_asyncio.py", "thread")
        assert index_of(lines, "host: tree is running") < index_of(lines, "thread: job done")
        assert index_of(lines, "server: drained") < index_of(lines, "store: closed with")
        assert lines[-1] == "host: tree stopped (request), ok=True"

    @pytest.mark.skipif(sys.platform == "win32", reason="asyncio signal handlers need a POSIX loop")
    def test_sigterm_routed_by_the_host_stops_the_tree(self) -> None:
        """A SIGTERM routed to request_shutdown() by the host stops the tree in order."""
        lines = run_example("embed_asyncio.py", "signal")
        assert not any(line.startswith("thread:") for line in lines)
        assert index_of(lines, "server: drained") < index_of(lines, "store: closed with")
        assert lines[-1] == "host: tree stopped (request), ok=True"


class TestEmbedTrio:
    def test_shutdown_and_cancellation_both_stop_the_tree(self) -> None:
        """The tree stops via shutdown() and again when the block is cancelled."""
        lines = run_example("embed_trio.py")
        events = [line for line in lines if not line.startswith("events: closed after")]
        assert events == [
            "host: tree is running",
            "host: shutdown() returned: request, ok=True",
            "host: tree is running",
            "host: block left by cancellation: the program stopped the tree: its running() block was cancelled",
        ]
        closed = [line for line in lines if re.fullmatch(r"events: closed after \d+ events", line)]
        assert len(closed) == 2


class TestTestingFaults:
    @pytest.mark.parametrize("backend", BACKENDS)
    def test_prints_the_stop_order_the_start_failure_and_success(self, backend: str) -> None:
        """testing.rst: the stop order, the injected start failure naming the cache, then success."""
        lines = [line for line in run_example("testing_faults.py", backend) if not line[:1].isdigit()]
        mine = [line for line in lines if line.startswith(("stop order:", "start failed:", "all tests"))]
        assert mine == [
            "stop order: shop/api -> shop/cache -> shop/db -> shop",
            "start failed: component 'shop/cache' failed to start: InjectedError: fault injected into 'cache' at start",
            "all tests passed",
        ]


@functools.cache
def stop_stubborn(backend: str, *, block: bool) -> tuple[int, tuple[dict[str, object], ...], str]:
    """
    Run docs/examples/stubborn.py (once) and stop it with signals, as running.rst describes.

    Each signal is sent after the event that answers the previous one has been
    logged. Returns the exit code, the JSON log events and the rest of stderr.
    """
    env = {key: value for key, value in os.environ.items() if not key.startswith("LIFECYCLE_")}
    env["LIFECYCLE_LOG_LEVEL"] = "debug"  # component.stopping says when the exporter's stop began
    args = [sys.executable, str(EXAMPLES / "stubborn.py"), backend, *(["block"] if block else [])]
    events: list[dict[str, object]] = []
    text: list[str] = []
    with subprocess.Popen(args, cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True) as proc:
        assert proc.stderr is not None
        lines = iter(proc.stderr)
        # Generous bound: the example exits by itself 4 s after the first signal.
        timer = threading.Timer(60, proc.kill)
        timer.start()

        def until(event: str, **fields: object) -> None:
            for line in lines:
                if not line.startswith("{"):
                    text.append(line)
                    continue
                events.append(json.loads(line))
                if events[-1]["event"] == event and fields.items() <= events[-1].items():
                    return
            pytest.fail(f"{event!r} {fields} was never logged; stderr:\n{''.join(text)}")

        try:
            until("tree.ready")
            proc.send_signal(signal.SIGINT)
            if not block:
                until("component.stopping", component="app/exporter")
                proc.send_signal(signal.SIGUSR1)
                until("tree.dump")
                proc.send_signal(signal.SIGINT)
                until("tree.phase", phase="FORCEFUL")
                proc.send_signal(signal.SIGINT)
                until("component.stubborn")
                proc.send_signal(signal.SIGTERM)
                until("signal.ignored")
            until("loop.stack")
            text.extend(lines)
            proc.wait()
        finally:
            timer.cancel()
    return proc.returncode, tuple(events), "".join(text)


def logged(events: Sequence[dict[str, object]], name: str) -> list[dict[str, object]]:
    """Return the events called *name*, in order."""
    return [event for event in events if event["event"] == name]


@pytest.mark.skipif(not hasattr(signal, "SIGUSR1"), reason="POSIX signals")
@pytest.mark.parametrize("backend", BACKENDS)
class TestStubborn:
    def test_each_signal_escalates_one_phase(self, backend: str) -> None:
        """SIGINT, SIGINT, SIGINT: GRACEFUL, FORCEFUL, TERMINATE; a fourth signal is ignored."""
        _, events, _ = stop_stubborn(backend, block=False)
        assert [e["phase"] for e in logged(events, "signal.received")] == ["GRACEFUL", "FORCEFUL", "TERMINATE"]
        assert [e["phase"] for e in logged(events, "tree.phase")] == ["GRACEFUL", "FORCEFUL", "TERMINATE"]
        assert [e["signal"] for e in logged(events, "signal.ignored")] == ["SIGTERM"]

    def test_sigusr1_dumps_states_and_deadlines_during_the_stop(self, backend: str) -> None:
        """The dump shows the exporter stopping with its remaining deadlines, and db still running."""
        _, events, _ = stop_stubborn(backend, block=False)
        (dump,) = logged(events, "tree.dump")
        components = {c["component"]: c for c in dump["components"]}  # type: ignore[attr-defined]
        assert {path: c["state"] for path, c in components.items()} == {
            "app": "stopping",
            "app/db": "running",
            "app/exporter": "stopping",
        }
        assert set(components["app/exporter"]["remaining"]) == {"GRACEFUL", "FORCEFUL", "TERMINATE"}
        assert components["app/db"]["remaining"] is None

    def test_terminate_deadline_ends_the_process_with_code_3(self, backend: str) -> None:
        """The watchdog names the stubborn exporter and the db it kept from stopping, prints the report, exits 3."""
        code, events, text = stop_stubborn(backend, block=False)
        assert code == lifecycle.ExitCode.TERMINATED, text
        (terminated,) = logged(events, "tree.terminated")
        assert terminated["stubborn"] == ["app/exporter"]
        assert terminated["never_stopped"] == ["app/db"]
        assert "in exporter" in str(logged(events, "component.stubborn")[-1]["stack"])
        assert "Shutdown of 'app': signal (SIGINT received)" in text
        assert re.search(r"app/exporter +NORMAL +stubborn +TERMINATE", text)

    def test_a_blocked_loop_is_shown_by_its_stack(self, backend: str) -> None:
        """With `block`, one signal is enough: at the deadline, loop.stack shows the blocking call."""
        code, events, text = stop_stubborn(backend, block=True)
        assert code == lifecycle.ExitCode.TERMINATED, text
        assert logged(events, "tree.terminated")[0]["stubborn"] == ["app/exporter"]
        assert "time.sleep(3600)" in str(logged(events, "loop.stack")[0]["stack"])
        assert logged(events, "loop.stack")[0]["level"] == "critical"

    def test_an_idle_loops_stack_is_only_a_debug_detail(self, backend: str) -> None:
        """A loop that was not blocked at the hard exit shows only its select(): loop.stack is logged at debug."""
        _, events, _ = stop_stubborn(backend, block=False)
        (stack,) = logged(events, "loop.stack")
        assert (stack["level"], stack["loop_blocked"]) == ("debug", False)


def containing(lines: Sequence[str], text: str) -> int:
    """Return the index of the first line that contains *text*."""
    for number, line in enumerate(lines):
        if text in line:
            return number
    pytest.fail(f"no line contains {text!r} in:\n" + "\n".join(lines))


@pytest.mark.parametrize("backend", BACKENDS)
class TestProcesses:
    def test_check_runs_once_web_is_ready_and_both_commands_work(self, backend: str) -> None:
        """check starts once web's port accepts; the fetch returns the page; the hanging command is killed."""
        lines = run_example("processes.py", backend)
        assert index_of(lines, "check: web is ready (pid ") > containing(lines, "line='Serving HTTP on 127.0.0.1")
        index_of(lines, "check: fetched 'hello from the child' (exit code 0)")
        timed_out = lines[index_of(lines, "check: CommandTimeoutError: ")]
        assert timed_out.endswith("did not finish within 0.5 s; its process group was killed.")

    def test_requests_are_logged_at_info_and_web_stops_gracefully(self, backend: str) -> None:
        """The child's request log (stderr) is logged at info; web gets SIGTERM and stops gracefully."""
        lines = run_example("processes.py", backend)
        request = lines[index_of(lines, "check: fetched") - 1]
        assert "[info     ] process.output" in request
        assert "GET /hello.txt" in request
        assert "stream=stderr" in request
        assert "signal=SIGTERM" in lines[containing(lines, "process.signalled")]
        assert [line.split()[:4] for line in lines[-3:]] == [
            ["site/check", "NORMAL", "finished", "-"],
            ["site/web", "NORMAL", "graceful", "GRACEFUL"],
            ["site", "NORMAL", "graceful", "GRACEFUL"],
        ]


@pytest.mark.parametrize("backend", BACKENDS)
class TestObserving:
    def test_a_probe_of_your_own_sees_the_restart_the_stop_and_the_report(self, backend: str) -> None:
        """observing.py's ChangeLog, on the public observation API, sees every change in order."""
        lines = run_example("observing.py", backend)
        crash = lines.index("app/worker: restarting after ConnectionError")
        assert lines.index("app/worker: running") < crash < len(lines) - 1 - lines[::-1].index("app/worker: running")
        assert "tree ready: 5 components" in lines
        # The root stops itself (its main child returned): the phase is recorded by the
        # tree's own task, which may run after the first component began to stop.
        assert lines.index("tree ready: 5 components") < lines.index("phase GRACEFUL (request)")
        assert lines.index("app/worker: stopped") < lines.index("app/db: stopping")
        assert lines[-1] == "stopped: main exited, clean=True, 5 components"


@pytest.mark.parametrize("backend", BACKENDS)
class TestReloading:
    def test_sighup_reloads_in_place_and_a_bad_file_keeps_the_old_settings(self, backend: str) -> None:
        """reloading.py: SIGHUP reloads settings, then greeter; a file that does not parse fails only settings."""
        lines = [
            line
            for line in run_example("reloading.py", backend)
            if line.startswith(("greeter:", "reload:", "stopped:"))
        ]
        assert lines == [
            "greeter: saying 'hello'",
            "reload: began",
            "greeter: now saying 'bonjour'",
            "reload: ok=True reloaded=['greeter/settings', 'greeter/greeter']",
            "reload: began",
            "greeter: now saying 'bonjour'",
            "reload: ok=False reloaded=['greeter/greeter']",
            "reload: failed in ['greeter/settings']; the old settings stay",
            "stopped: ok=True",
        ]


def test_the_reload_unit_file_runs_the_example_with_sighup_as_reload() -> None:
    """reloading.service is a Type=notify-reload unit whose ExecStart the `lifecycle` command accepts."""
    unit = (EXAMPLES / "reloading.service").read_text(encoding="utf-8")
    settings = dict(line.split("=", 1) for line in unit.splitlines() if "=" in line and not line.startswith("#"))
    assert settings["Type"] == "notify-reload"
    assert settings["ReloadSignal"] == "SIGHUP"
    executable, *args = settings["ExecStart"].split()
    assert executable.endswith("/lifecycle")
    parsed = _parser().parse_args(args)
    assert (parsed.command, parsed.target, parsed.sighup) == ("run", "reloading:tree", "reload")


@pytest.mark.parametrize("backend", BACKENDS)
class TestCoordinators:
    def test_each_helper_does_what_the_migration_page_says(self, backend: str) -> None:
        """gather, call_with_timeout, SingleFlight, on_failure, scoped_env and process.wait() behave as shown."""
        lines = run_example("coordinators.py", backend)
        assert lines[:8] == (
            "gather: apple=0.5 pear=0.75 EUR=1.1",
            "call_with_timeout: picks=[]",
            "single flight: ['token-1', 'token-1', 'token-1'] after 1 fetch",
            "upload 7: aborted on the server",
            "on_failure: upload 7: connection reset propagated",
            "scoped_env: inside SHOP_MIGRATING=1",
            "scoped_env: after SHOP_MIGRATING=None",
            "child process: exit code 0",
        )

    def test_failed_background_task_is_in_the_report(self, backend: str) -> None:
        """The non-critical refresh failure does not fail its component and is recorded in the report."""
        lines = run_example("coordinators.py", backend)
        assert lines[-1] == (
            "report: rates is graceful, background failures: (ConnectionError('rates service answered 503'),)"
        )


def documented_names() -> set[str]:
    """Return the fully qualified names that docs/api.rst documents with autodoc."""
    directive = re.compile(r"\.\. (currentmodule|automodule|autoclass|autoexception|autofunction|autodata)::\s+(\S+)")
    module = ""
    names: set[str] = set()
    for line in (DOCS / "api.rst").read_text(encoding="utf-8").splitlines():
        match = directive.match(line)
        if match is None:
            continue
        kind, target = match.groups()
        if kind in {"currentmodule", "automodule"}:
            module = target
        else:
            names.add(f"{module}.{target}")
    return names


@pytest.mark.parametrize(
    "module",
    [lifecycle, lifecycle.abc, lifecycle.lowlevel, supervisors],
    ids=lambda module: module.__name__,
)
def test_api_page_documents_every_public_name(module: ModuleType) -> None:
    """docs/api.rst has an autodoc entry for every name in the module's __all__."""
    documented = documented_names()
    missing = [name for name in module.__all__ if f"{module.__name__}.{name}" not in documented]
    assert missing == []
