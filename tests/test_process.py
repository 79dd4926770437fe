"""ProcessComponent with real child processes: readiness, stop escalation, groups, output, failures."""

from __future__ import annotations

import math
import os
import re
import signal
import socket
import sys
import tempfile
import time
from collections.abc import MutableMapping, Sequence
from pathlib import Path
from typing import Any

import anyio
import pytest
from childprocs import (  # noqa: F401 - no_leftover_children is an autouse fixture
    PY,
    is_dead,
    new_children,
    no_leftover_children,
    open_beacon,
    our_children,
    script,
    wait_gone,
)
from structlog.testing import capture_logs

import lifecycle
from lifecycle import (
    ComponentError,
    ConfigurationError,
    Outcome,
    Phase,
    ProcessComponent,
    ProcessExitedError,
    ReadinessTimeoutError,
    ReadyOnLine,
    ReadyOnNotify,
    ReadyOnPort,
    ReadyOnSocket,
    ShutdownPolicy,
)
from lifecycle._processes._spawned import shortened_argv
from supervisors import Backoff, Supervisor

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="process groups and /proc are checked on Linux")

SHORT = ShutdownPolicy(graceful=0.2, forceful=0.2, terminate=0.2)
LONG = ShutdownPolicy(graceful=30, forceful=30, terminate=30)
NO_DELAY = Backoff(initial=0.0, maximum=0.0, jitter=False)

# Prints "ready" once its signal handlers are in place, then waits to be stopped.
WAITS = """
import time
print("ready", flush=True)
time.sleep(60)
"""
IGNORES_TERM = """
import signal, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
print("ready", flush=True)
time.sleep(60)
"""


def tree_of(child: ProcessComponent, policy: ShutdownPolicy = SHORT, **options: Any) -> Supervisor:
    sup = Supervisor("root", policy=policy, backoff=NO_DELAY)
    sup.add(child, name="child", **options)
    return sup


def events(logs: Sequence[MutableMapping[str, Any]], name: str) -> list[MutableMapping[str, Any]]:
    return [e for e in logs if e["event"] == name]


def signalled(logs: Sequence[MutableMapping[str, Any]]) -> list[tuple[str, str]]:
    return [(e["signal"], e["phase"]) for e in events(logs, "process.signalled")]


def only_cause(group: BaseExceptionGroup[BaseException]) -> BaseException:
    (error,) = group.exceptions
    assert isinstance(error, ComponentError)
    assert error.__cause__ is not None
    return error.__cause__


async def run_and_stop(sup: Supervisor) -> tuple[lifecycle.ShutdownReport, float, int]:
    """Start the tree, wait until it is ready, stop it; return the report, the stop's duration and the pid."""
    pids: list[int] = []

    @sup.component
    async def observer(ctx: lifecycle.Context, child: int) -> None:
        pids.append(child)
        ctx.ready()
        await anyio.sleep_forever()

    async with lifecycle.running(sup) as tree:
        await tree.ready()
        began = time.monotonic()
        report = await tree.shutdown()
    return report, time.monotonic() - began, pids[0]


def stopped_after(report: lifecycle.ShutdownReport, offset: float) -> bool:
    """
    Whether the child stopped *offset* seconds after the stop was requested, or later, on the loop's clock.

    Deadlines follow the loop's clock. A duration measured on another clock can fall short of them by
    that clock's resolution (uvloop's counts whole milliseconds), and a difference of two loop times by
    a rounding error; comparing loop times is exact.
    """
    stopped = report["child"].stopped_at
    return stopped is not None and stopped >= report.requested_at + offset


class TestConfiguration:
    def test_a_string_argv_is_refused_with_the_reason(self) -> None:
        """A shell-like string is a ConfigurationError saying argv is a list and no shell is used."""
        with pytest.raises(ConfigurationError, match=r"must be a list of arguments.*never through a shell"):
            ProcessComponent("redis-server --port 6380")

    @pytest.mark.parametrize(
        ("argv", "match"),
        [([], "non-empty list"), ([PY, 3], "only strings and paths"), (None, "non-empty list")],
    )
    def test_an_argv_that_is_not_a_list_of_strings_is_refused(self, argv: object, match: str) -> None:
        """An empty argv, or one holding something else than strings and paths, is a ConfigurationError."""
        with pytest.raises(ConfigurationError, match=match):
            ProcessComponent(argv)  # type: ignore[arg-type]

    @pytest.mark.parametrize(
        ("options", "match"),
        [
            ({"ready": 8080}, "`ready` must be None"),
            ({"ready_timeout": -1}, "`ready_timeout`"),
            ({"ready_timeout": True}, "`ready_timeout`"),
            ({"stop_signal": 12345}, "`stop_signal`"),
            ({"success_codes": ["0"]}, "`success_codes`"),
            ({"stdout_level": "loud"}, "`stdout_level`"),
            ({"stderr_level": None}, "`stderr_level`"),
        ],
    )
    def test_bad_options_are_refused(self, options: dict[str, object], match: str) -> None:
        """Every option is checked when the component is created."""
        with pytest.raises(ConfigurationError, match=match):
            ProcessComponent([PY], **options)  # type: ignore[arg-type]

    def test_its_name_defaults_to_the_program_file_name(self) -> None:
        """Registered without a name, the component is named after the program."""
        sup = Supervisor()
        sup.add(ProcessComponent([Path("/usr/bin/env"), "true"]))
        sup.add(ProcessComponent(["/bin/true"], name="other"))
        assert [spec.name for spec in sup.children] == ["env", "other"]
        assert repr(sup.children[0].target) == "<ProcessComponent 'env' argv=['/usr/bin/env', 'true']>"


@pytest.mark.real_time
class TestStop:
    async def test_child_that_exits_on_sigterm_stops_gracefully(self) -> None:
        """GRACEFUL sends SIGTERM to the group; a child that exits on it stops gracefully and is reaped."""
        sup = tree_of(ProcessComponent(script(WAITS), ready=ReadyOnLine("ready")), policy=LONG)
        with capture_logs() as logs:
            report, took, pid = await run_and_stop(sup)
        assert took < 10
        assert signalled(logs) == [("SIGTERM", "GRACEFUL")]
        (exited,) = events(logs, "process.exited")
        assert (exited["pid"], exited["returncode"], exited["status"]) == (pid, -15, "was killed by SIGTERM")
        assert (report["child"].outcome, report["child"].error) == (Outcome.GRACEFUL, None)
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)

    async def test_child_ignoring_sigterm_is_killed_when_terminate_begins(self) -> None:
        """SIGTERM ignored: nothing more at FORCEFUL (it was the stop signal), SIGKILL when TERMINATE begins."""
        sup = tree_of(ProcessComponent(script(IGNORES_TERM), ready=ReadyOnLine("ready")))
        with capture_logs() as logs:
            report, took, pid = await run_and_stop(sup)
        # TERMINATE begins 0.4 s after the request; generous upper bound for a loaded machine.
        assert took < 5
        assert stopped_after(report, SHORT.offset(Phase.FORCEFUL))
        assert signalled(logs) == [("SIGTERM", "GRACEFUL"), ("SIGKILL", "TERMINATE")]
        assert events(logs, "process.exited")[0]["status"] == "was killed by SIGKILL"
        assert (report["child"].outcome, report["child"].phase) == (Outcome.TERMINATED, Phase.TERMINATE)
        assert is_dead(pid)

    async def test_each_phase_sends_its_signal(self) -> None:
        """stop_signal=SIGINT ignored, SIGTERM ignored: SIGINT, then SIGTERM at FORCEFUL, then SIGKILL."""
        code = """
            import signal, time
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            print("ready", flush=True)
            time.sleep(60)
        """
        child = ProcessComponent(script(code), ready=ReadyOnLine("ready"), stop_signal=signal.SIGINT)
        with capture_logs() as logs:
            report, took, _ = await run_and_stop(tree_of(child))
        assert took < 5
        assert stopped_after(report, SHORT.offset(Phase.FORCEFUL))
        assert signalled(logs) == [("SIGINT", "GRACEFUL"), ("SIGTERM", "FORCEFUL"), ("SIGKILL", "TERMINATE")]
        assert report["child"].outcome is Outcome.TERMINATED

    async def test_child_that_exits_on_the_forceful_sigterm_is_forced(self) -> None:
        """A child that ignores its stop signal but exits on SIGTERM stops in FORCEFUL."""
        code = """
            import signal, time
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            print("ready", flush=True)
            time.sleep(60)
        """
        child = ProcessComponent(script(code), ready=ReadyOnLine("ready"), stop_signal=signal.SIGINT)
        with capture_logs() as logs:
            report, took, _ = await run_and_stop(tree_of(child))
        assert took < 5
        assert stopped_after(report, SHORT.offset(Phase.GRACEFUL))
        assert signalled(logs) == [("SIGINT", "GRACEFUL"), ("SIGTERM", "FORCEFUL")]
        assert (report["child"].outcome, report["child"].error) == (Outcome.FORCED, None)

    async def test_escalation_sends_the_later_signal_at_once(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """With a 30 s graceful budget, escalating to TERMINATE kills the SIGTERM-ignoring child at once."""
        code = """
            import signal, time
            signal.signal(signal.SIGTERM, lambda *_: beacon("got SIGTERM"))
            beacon("ready")
            time.sleep(60)
        """
        async with open_beacon(monkeypatch) as beacon:
            sup = tree_of(ProcessComponent(script(code)), policy=LONG)
            with capture_logs() as logs:
                async with lifecycle.running(sup) as tree:
                    await tree.ready()
                    assert await beacon.receive() == "ready"
                    began = time.monotonic()
                    tree.request_shutdown()
                    assert await beacon.receive() == "got SIGTERM"
                    tree.escalate(Phase.FORCEFUL)  # SIGTERM was the stop signal: nothing new
                    tree.escalate(Phase.TERMINATE)
                    report = await tree.wait()
        assert time.monotonic() - began < 10
        assert signalled(logs) == [("SIGTERM", "GRACEFUL"), ("SIGKILL", "TERMINATE")]
        assert report["child"].outcome is Outcome.TERMINATED

    async def test_the_stop_signal_reaches_the_whole_group(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """GRACEFUL signals every process of the child's group, grandchildren included."""
        grandchild = """
            import signal, sys, time
            def stop(*_):
                beacon("grandchild got SIGTERM")
                sys.exit(0)
            signal.signal(signal.SIGTERM, stop)
            beacon("grandchild ready")
            time.sleep(60)
        """
        code = f"""
            import subprocess, time
            subprocess.Popen({script(grandchild)!r})
            time.sleep(60)
        """
        async with open_beacon(monkeypatch) as beacon:
            sup = tree_of(ProcessComponent(script(code)), policy=LONG)
            async with lifecycle.running(sup) as tree:
                await tree.ready()
                assert await beacon.receive() == "grandchild ready"
                report = await tree.shutdown()
                assert await beacon.receive() == "grandchild got SIGTERM"
        assert report["child"].outcome is Outcome.GRACEFUL

    async def test_stop_during_start_stops_the_child(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """A stop requested while the child is not ready yet stops (and reaps) it."""
        code = """
            import os
            beacon(os.getpid())
            import time
            time.sleep(60)
        """
        async with open_beacon(monkeypatch) as beacon:
            sup = tree_of(ProcessComponent(script(code), ready=ReadyOnLine("never"), ready_timeout=60), policy=LONG)
            with capture_logs() as logs:
                async with lifecycle.running(sup) as tree:
                    pid = int(await beacon.receive())
                    report = await tree.shutdown()
        assert signalled(logs) == [("SIGTERM", "GRACEFUL")]
        assert report["child"].error is None
        assert events(logs, "process.ready") == []
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


# A grandchild that ignores SIGTERM; the child reports both pids, exits on its
# first run when told to (EXIT), and otherwise waits to be stopped.
GRANDCHILD = """
import signal, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
print("ignoring SIGTERM", flush=True)
time.sleep(60)
"""
SPAWNS_GRANDCHILD = f"""
import os, pathlib, subprocess, sys, time
grandchild = subprocess.Popen({script(GRANDCHILD)!r}, stdout=subprocess.PIPE)
grandchild.stdout.readline()
beacon(f"{{os.getpid()}} {{grandchild.pid}}")
print("ready", flush=True)
EXIT
time.sleep(60)
"""


class TestNoOrphans:
    @pytest.mark.real_time
    async def test_grandchild_ignoring_sigterm_is_killed_at_terminate(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """The stop lasts until the whole group has exited: a grandchild ignoring SIGTERM gets SIGKILL."""
        async with open_beacon(monkeypatch) as beacon:
            child = ProcessComponent(script(SPAWNS_GRANDCHILD.replace("EXIT", "")), ready=ReadyOnLine("ready"))
            sup = tree_of(child)
            with capture_logs() as logs:
                async with lifecycle.running(sup) as tree:
                    await tree.ready()
                    pid, grandchild = map(int, (await beacon.receive()).split())
                    began = time.monotonic()
                    report = await tree.shutdown()
                    took = time.monotonic() - began
                # Right after the stop: the child is reaped, the grandchild dead.
                with pytest.raises(ProcessLookupError):
                    os.kill(pid, 0)
                assert is_dead(grandchild)
                assert new_children() == {}
        # The child exited on SIGTERM at once; its grandchild held the stop until TERMINATE.
        assert took < 5
        assert stopped_after(report, SHORT.offset(Phase.FORCEFUL))
        assert signalled(logs) == [("SIGTERM", "GRACEFUL"), ("SIGKILL", "TERMINATE")]
        assert events(logs, "process.exited")[0]["status"] == "was killed by SIGTERM"
        assert report["child"].outcome is Outcome.TERMINATED
        # Reaping an orphan is init's job; some container inits take seconds.
        wait_gone(grandchild)

    async def test_grandchild_is_killed_when_the_child_crashes(
        self,
        monkeypatch: pytest.MonkeyPatch,
        tmp_path: Path,
    ) -> None:
        """When the child exits on its own while running, its group is swept before it is restarted."""
        marker = tmp_path / "crashed"
        code = SPAWNS_GRANDCHILD.replace(
            "EXIT",
            f"if not pathlib.Path({str(marker)!r}).exists(): pathlib.Path({str(marker)!r}).touch(); sys.exit(4)",
        )
        async with open_beacon(monkeypatch) as beacon:
            sup = tree_of(ProcessComponent(script(code), ready=ReadyOnLine("ready")))
            with capture_logs() as logs:
                async with lifecycle.running(sup) as tree:
                    pid, grandchild = map(int, (await beacon.receive()).split())
                    # The restarted child reports in: the first one's group was swept before.
                    second_pid, second_grandchild = map(int, (await beacon.receive()).split())
                    assert is_dead(grandchild)
                    report = await tree.shutdown()
        assert [e["pids"] for e in events(logs, "process.group_killed")] == [[grandchild]]
        (restarting,) = events(logs, "supervisor.restarting")
        assert f"(pid {pid}) exited with code 4 while running" in restarting["error"]
        assert report["child"].restarts == 1
        assert is_dead(second_grandchild)
        assert second_pid != pid


class TestReadiness:
    async def test_ready_at_once_provides_the_pid(self) -> None:
        """Without `ready`, the component is ready when spawned and provides the child's pid."""
        report, _, pid = await run_and_stop(tree_of(ProcessComponent(script(WAITS))))
        assert pid > 0
        assert report["child"].ready_at is not None

    async def test_ready_when_the_port_accepts_connections(self) -> None:
        """ReadyOnPort: ready once the port accepts a connection, not before."""
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        code = f"""
            import socket, time
            print("binding", flush=True)
            server = socket.create_server(("127.0.0.1", {port}))
            time.sleep(60)
        """
        sup = tree_of(ProcessComponent(script(code), ready=ReadyOnPort(port)))
        async with lifecycle.running(sup) as tree:
            await tree.ready()
            stream = await anyio.connect_tcp("127.0.0.1", port)
            await stream.aclose()
            await tree.shutdown()

    async def test_ready_when_the_unix_socket_accepts_connections(self) -> None:
        """ReadyOnSocket: ready once the unix socket accepts a connection."""
        with tempfile.TemporaryDirectory(prefix="lc-") as folder:
            path = str(Path(folder) / "s.sock")
            code = f"""
                import socket, time
                server = socket.socket(socket.AF_UNIX)
                server.bind({path!r})
                server.listen()
                time.sleep(60)
            """
            sup = tree_of(ProcessComponent(script(code), ready=ReadyOnSocket(path)))
            async with lifecycle.running(sup) as tree:
                await tree.ready()
                stream = await anyio.connect_unix(path)
                await stream.aclose()
                await tree.shutdown()

    async def test_ready_when_a_line_matches(self) -> None:
        """ReadyOnLine: earlier lines do not make it ready; the matching line does."""
        code = """
            import sys, time
            print("warming up", flush=True)
            print("listening on port 1234", file=sys.stderr, flush=True)
            time.sleep(60)
        """
        sup = tree_of(ProcessComponent(script(code), ready=ReadyOnLine(r"listening on port \d+")))
        with capture_logs() as logs:
            await run_and_stop(sup)
        names = [(e["event"], e.get("line")) for e in logs if e["event"] in {"process.output", "process.ready"}]
        assert names.index(("process.ready", None)) > names.index(("process.output", "listening on port 1234"))

    @pytest.mark.real_time
    async def test_line_on_the_other_stream_does_not_count(self) -> None:
        """ReadyOnLine(stream='stderr') ignores stdout; the start times out."""
        child = ProcessComponent(script(WAITS), ready=ReadyOnLine("ready", stream="stderr"), ready_timeout=0.3)
        with pytest.RaisesGroup(pytest.RaisesExc(ComponentError)) as caught:
            async with lifecycle.running(tree_of(child)) as tree:
                await tree.ready()
        assert isinstance(only_cause(caught.value), ReadinessTimeoutError)

    async def test_ready_when_the_child_notifies(self) -> None:
        """ReadyOnNotify: the child's READY=1 on its own NOTIFY_SOCKET makes it ready; STATUS is logged."""
        code = """
            import os, socket, time
            print("before", flush=True)
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
                s.sendto(b"STATUS=loading", os.environ["NOTIFY_SOCKET"])
                s.sendto(b"READY=1\\nSTATUS=serving", os.environ["NOTIFY_SOCKET"])
            time.sleep(60)
        """
        sup = tree_of(ProcessComponent(script(code), ready=ReadyOnNotify()))
        with capture_logs() as logs:
            await run_and_stop(sup)
        assert [e["status"] for e in events(logs, "process.status")] == ["loading", "serving"]
        order = [e["event"] for e in logs if e["event"] in {"process.status", "process.ready"}]
        assert order == ["process.status", "process.status", "process.ready"]

    async def test_own_notify_socket_is_not_inherited(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Without ReadyOnNotify, the child sees none of systemd's per-service variables; env= is passed as is."""
        for name in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES"):
            monkeypatch.setenv(name, "1")
        code = """
            import os, time
            names = ("WATCHDOG_USEC", "WATCHDOG_PID", "LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES")
            assert not any(name in os.environ for name in names), os.environ
            print(os.environ.get("NOTIFY_SOCKET"), os.environ.get("EXTRA"), flush=True)
            print("ready", flush=True)
            time.sleep(60)
        """
        inherit = ProcessComponent(script(code), ready=ReadyOnLine("ready"))
        given = ProcessComponent(
            script(code),
            ready=ReadyOnLine("ready"),
            env={"NOTIFY_SOCKET": "mine", "EXTRA": "1", "TEST_BEACON": ""},
            name="given",
        )
        sup = tree_of(inherit)
        sup.add(given)
        with capture_logs() as logs:
            await run_and_stop(sup)
        lines = {e["component"]: e["line"] for e in events(logs, "process.output") if e["line"] != "ready"}
        assert lines == {"root/child": "None None", "root/given": "mine 1"}

    @pytest.mark.real_time
    async def test_readiness_timeout_is_a_start_failure(self) -> None:
        """Not ready in time: ReadinessTimeoutError with the last output; the child is stopped and reaped."""
        code = """
            import os, time
            print("pid", os.getpid(), flush=True)
            print("still loading", flush=True)
            time.sleep(60)
        """
        child = ProcessComponent(script(code), ready=ReadyOnLine("ready"), ready_timeout=0.5)
        with capture_logs() as logs, pytest.RaisesGroup(pytest.RaisesExc(ComponentError)) as caught:
            async with lifecycle.running(tree_of(child)) as tree:
                await tree.ready()
        error = only_cause(caught.value)
        assert isinstance(error, ReadinessTimeoutError)
        assert isinstance(error, TimeoutError)
        assert error.timeout == 0.5
        assert error.last_lines[-1] == "still loading"
        assert "was not ready within 0.5 s (waiting for ReadyOnLine(" in str(error)
        assert signalled(logs) == [("SIGTERM", "GRACEFUL")]
        pid = int(error.last_lines[0].split()[1])
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)

    async def test_exit_before_ready_is_a_start_failure(self) -> None:
        """A child that exits before it is ready: the error has its exit code and last lines; no signal is sent."""
        code = """
            import sys
            print("config loaded", flush=True)
            print("error: no such table", file=sys.stderr, flush=True)
            sys.exit(3)
        """
        child = ProcessComponent(script(code), ready=ReadyOnPort(1))
        with (
            capture_logs() as logs,
            pytest.RaisesGroup(pytest.RaisesExc(ComponentError, match="failed to start")) as caught,
        ):
            async with lifecycle.running(tree_of(child)) as tree:
                await tree.ready()
        assert signalled(logs) == []  # it had exited: nothing to signal
        error = only_cause(caught.value)
        assert isinstance(error, ProcessExitedError)
        assert (error.exit_code, error.returncode, error.signal, error.ready) == (3, 3, None, False)
        assert sorted(error.last_lines) == ["config loaded", "error: no such table"]
        assert re.match(r"process 'python[\d.]*' \(pid \d+\) exited with code 3 before it was ready", str(error))

    async def test_killed_before_ready_names_the_signal(self) -> None:
        """A child killed by a signal before it is ready: the error names the signal."""
        code = """
            import os, signal
            os.kill(os.getpid(), signal.SIGKILL)
        """
        child = ProcessComponent(script(code), ready=ReadyOnNotify())
        with pytest.RaisesGroup(pytest.RaisesExc(ComponentError)) as caught:
            async with lifecycle.running(tree_of(child)) as tree:
                await tree.ready()
        error = only_cause(caught.value)
        assert isinstance(error, ProcessExitedError)
        assert (error.exit_code, error.signal) == (None, signal.SIGKILL)
        assert "was killed by SIGKILL before it was ready; it wrote no output" in str(error)

    async def test_program_that_does_not_exist_is_a_start_failure(self) -> None:
        """An argv whose program is not found fails the start with the OSError."""
        child = ProcessComponent(["/nonexistent/program"])
        with pytest.RaisesGroup(pytest.RaisesExc(ComponentError)) as caught:
            async with lifecycle.running(tree_of(child)) as tree:
                await tree.ready()
        assert isinstance(only_cause(caught.value), FileNotFoundError)


class TestRuntimeExit:
    async def test_crash_while_running_is_restarted_by_the_supervisor(self, tmp_path: Path) -> None:
        """A child that exits while running fails; the supervisor restarts it and its dependents get the new pid."""
        code = f"""
            import pathlib, sys, time
            runs = pathlib.Path({str(tmp_path / "runs")!r})
            runs.write_text(runs.read_text() + "x" if runs.exists() else "x")
            print("ready", flush=True)
            if len(runs.read_text()) == 1:
                print("crashing", file=sys.stderr, flush=True)
                sys.exit(7)
            time.sleep(60)
        """
        sup = tree_of(ProcessComponent(script(code), ready=ReadyOnLine("ready")))
        pids: list[int] = []
        second = anyio.Event()

        @sup.component
        async def user(ctx: lifecycle.Context, child: int) -> None:
            pids.append(child)
            if len(pids) == 2:
                second.set()
            ctx.ready()
            await anyio.sleep_forever()

        with capture_logs() as logs:
            async with lifecycle.running(sup) as tree:
                await second.wait()
                report = await tree.shutdown()
        assert pids[0] != pids[1]
        (restarting,) = events(logs, "supervisor.restarting")
        assert (restarting["child"], restarting["reason"]) == ("root/child", "failed")
        assert restarting["error"].startswith("ProcessExitedError: process 'python")
        assert "exited with code 7 while running" in restarting["error"]
        assert report["child"].restarts == 1
        assert report.ok

    async def test_exit_in_success_codes_finishes_a_main_job(self) -> None:
        """With success_codes=(0,), a main child exiting 0 ends the tree normally."""
        child = ProcessComponent(script("print('done')"), success_codes=(0,))
        async with lifecycle.running(tree_of(child, main=True)) as tree:
            report = await tree.wait()
        assert report.reason is lifecycle.StopReason.MAIN_EXITED
        assert (report["child"].outcome, report["child"].error) == (Outcome.FINISHED, None)

    async def test_exit_zero_is_still_a_failure_by_default(self) -> None:
        """An exit nobody asked for fails the component even with code 0, unless success_codes says otherwise."""
        child = ProcessComponent(script("print('bye')"))
        with pytest.RaisesGroup(pytest.RaisesExc(ComponentError, match="exited with code 0 while running")):
            async with lifecycle.running(tree_of(child, main=True)) as tree:
                await tree.wait()


class TestOutput:
    async def test_lines_are_logged_by_stream_with_the_component(self) -> None:
        """stdout lines are info events, stderr lines warnings, bound with the component path and pid."""
        code = """
            import sys
            sys.stdout.write("one\\r\\ntwo\\n")
            sys.stderr.write("oops\\n")
            sys.stdout.write("no newline at the end")
        """
        child = ProcessComponent(script(code), success_codes=(0,))
        with capture_logs() as logs:
            async with lifecycle.running(tree_of(child, main=True)) as tree:
                await tree.wait()
        out = [(e["stream"], e["log_level"], e["line"], e["component"]) for e in events(logs, "process.output")]
        stdout = [line for line in out if line[0] == "stdout"]
        assert stdout == [
            ("stdout", "info", "one", "root/child"),
            ("stdout", "info", "two", "root/child"),
            ("stdout", "info", "no newline at the end", "root/child"),
        ]
        assert [line for line in out if line[0] == "stderr"] == [("stderr", "warning", "oops", "root/child")]
        (started,) = events(logs, "process.started")
        assert {e["pid"] for e in events(logs, "process.output")} == {started["pid"]}

    async def test_levels_and_passthrough(self, capsys: pytest.CaptureFixture[str]) -> None:
        """stdout_level/stderr_level choose the levels; passthrough also writes the lines to our streams."""
        code = """
            import sys
            print("to out")
            print("to err", file=sys.stderr)
        """
        child = ProcessComponent(
            script(code),
            success_codes=(0,),
            passthrough=True,
            stdout_level="debug",
            stderr_level="info",
        )
        with capture_logs() as logs:
            async with lifecycle.running(tree_of(child, main=True)) as tree:
                await tree.wait()
        levels = {e["line"]: e["log_level"] for e in events(logs, "process.output")}
        assert levels == {"to out": "debug", "to err": "info"}
        captured = capsys.readouterr()
        assert (captured.out, captured.err) == ("to out\n", "to err\n")

    async def test_a_full_pipe_never_blocks_the_child(self) -> None:
        """A child writing 2 MiB without newlines is drained while it runs; long lines are logged in pieces."""
        code = """
            import sys, time
            sys.stdout.write("x" * (2 * 1024 * 1024) + "\\n")
            sys.stdout.flush()
            print("written", file=sys.stderr, flush=True)
            time.sleep(60)
        """
        child = ProcessComponent(script(code), ready=ReadyOnLine("written", stream="stderr"), ready_timeout=60)
        with capture_logs() as logs:
            await run_and_stop(tree_of(child))
        pieces = [e["line"] for e in events(logs, "process.output") if e["stream"] == "stdout"]
        assert sum(map(len, pieces)) == 2 * 1024 * 1024
        assert max(map(len, pieces)) == 65536


class TestStartedEvent:
    async def test_a_long_inline_script_is_cut_in_process_started(self) -> None:
        """`process.started` cuts each argument over 80 characters to 60, saying how many more there were."""
        code = "import sys\n" + "\n".join(f"x{n} = {n}  # filler" for n in range(30)) + "\nprint('done')\n"
        child = ProcessComponent([sys.executable, "-c", code], success_codes=(0,))
        with capture_logs() as logs:
            async with lifecycle.running(tree_of(child, main=True)) as tree:
                await tree.wait()
        (started,) = events(logs, "process.started")
        assert started["argv"] == [sys.executable, "-c", f"{code[:60]}...[+{len(code) - 60} characters]"]

    def test_short_arguments_are_kept_whole(self) -> None:
        """Arguments up to 80 characters are logged as they are."""
        argv = ["sleep", "60", "x" * 80]
        assert shortened_argv(argv) == argv


class TestProcessErrors:
    def test_messages_and_attributes(self) -> None:
        """The errors say what happened, with the exit code or signal name and the last lines."""
        error = ProcessExitedError(["/usr/bin/db", "-x"], 12, -9, ready=True, last_lines=["a", "b"])
        assert str(error) == "process 'db' (pid 12) was killed by SIGKILL while running; its last output:\n  | a\n  | b"
        assert (error.argv, error.signal, error.exit_code) == (("/usr/bin/db", "-x"), signal.SIGKILL, None)
        assert "killed by signal 99" in str(ProcessExitedError(["db"], 1, -99, ready=False))
        timeout = ReadinessTimeoutError(["db"], 12, math.inf, ReadyOnPort(80))
        assert str(timeout) == (
            "process 'db' (pid 12) was not ready within inf s "
            "(waiting for ReadyOnPort(port=80, host='127.0.0.1')); it wrote no output"
        )

    def test_errors_pickle(self) -> None:
        """Both errors survive pickling (for process pools and reports)."""
        import pickle  # noqa: PLC0415 - only this test

        exited = ProcessExitedError(["db"], 12, 3, ready=False, last_lines=["x"])
        copy = pickle.loads(pickle.dumps(exited))  # noqa: S301 - our own data
        assert (str(copy), copy.ready, copy.last_lines) == (str(exited), False, ("x",))
        timeout = ReadinessTimeoutError(["db"], 12, 1.0, ReadyOnNotify(), ["y"])
        assert str(pickle.loads(pickle.dumps(timeout))) == str(timeout)  # noqa: S301 - our own data
