from __future__ import annotations

import errno
import gc
import importlib.util
import io
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import ClassVar

import anyio
import anyio.lowlevel
import pytest
import structlog
from helpers import run_logged

import lifecycle
from lifecycle import ExitCode, StopReason
from lifecycle._host._logging_setup import LogOutput, configure_logging
from supervisors import Backoff, Intensity, Restart, Supervisor

NO_DELAY = Backoff(initial=0.0, maximum=0.0, jitter=False)


@pytest.fixture(autouse=True)
def _fresh_structlog() -> Iterator[None]:
    """run() configures structlog when nobody did; give each test a clean slate."""
    structlog.reset_defaults()
    yield
    structlog.reset_defaults()


def job_tree(*, fail: bool = False) -> Supervisor:
    sup = Supervisor("job")

    @sup.component(main=True)
    async def work() -> None:
        if fail:
            raise RuntimeError("disk full")

    return sup


class TestRun:
    @pytest.mark.parametrize("backend", ["asyncio", "trio"])
    def test_returns_the_report_of_a_clean_stop(self, backend: str) -> None:
        """run() returns the report when the tree stopped cleanly (a main job returned)."""
        report = lifecycle.run(job_tree(), backend=backend)  # type: ignore[arg-type]
        assert report.ok
        assert report.reason is StopReason.MAIN_EXITED

    @pytest.mark.parametrize("backend", ["asyncio", "trio"])
    def test_a_stopped_program_leaves_nothing_to_the_cyclic_collector(self, backend: str) -> None:
        """Once run() has returned, its tree, its host and its watchdog are freed by reference counting."""
        sup = Supervisor("job")

        @sup.component
        async def store() -> AsyncIterator[int]:
            yield 1

        @sup.component
        async def worker(ctx: lifecycle.Context, store: int) -> None:
            ctx.ready(store)
            await anyio.sleep_forever()

        @sup.component(main=True)
        async def work(worker: int) -> None:
            assert worker == 1

        gc.collect()
        gc.disable()
        try:
            report = lifecycle.run(sup, backend=backend)  # type: ignore[arg-type]
            gc.set_debug(gc.DEBUG_SAVEALL)
            gc.collect()
            ours = [o for o in gc.garbage if type(o).__module__.partition(".")[0] in {"lifecycle", "supervisors"}]
        finally:
            gc.set_debug(0)
            gc.garbage.clear()
            gc.enable()
        assert report.ok
        assert ours == []

    def test_uvloop_backend_option(self) -> None:
        """backend_options={'use_uvloop': True} runs on uvloop when it is installed."""
        pytest.importorskip("uvloop")
        assert lifecycle.run(job_tree(), backend_options={"use_uvloop": True}).ok

    def test_failure_prints_the_report_and_exits_one(self, capsys: pytest.CaptureFixture[str]) -> None:
        """A failing component makes run() print the report and exit with FAILURE."""
        with pytest.raises(SystemExit) as info:
            lifecycle.run(job_tree(fail=True))
        assert info.value.code == ExitCode.FAILURE
        assert "run: RuntimeError: disk full" in capsys.readouterr().err

    def test_teardown_failure_in_a_clean_stop_exits_one(self, capsys: pytest.CaptureFixture[str]) -> None:
        """A teardown error during a normal stop is not raised, but run() still exits 1."""
        sup = job_tree()

        @sup.component
        async def cache() -> object:
            yield
            raise OSError("flush")

        with pytest.raises(SystemExit) as info:
            lifecycle.run(sup)
        assert info.value.code == ExitCode.FAILURE
        assert "stop: OSError: flush" in capsys.readouterr().err

    @pytest.mark.parametrize(
        ("kwargs", "message"),
        [
            ({"backend": "curio"}, "`backend` must be 'asyncio' or 'trio'"),
            ({"policy": 5}, "`policy` must be a lifecycle.ShutdownPolicy"),
        ],
    )
    def test_usage_errors_exit_two(
        self,
        kwargs: dict[str, object],
        message: str,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        """Bad arguments are configuration errors: printed, exit code USAGE, nothing started."""
        with pytest.raises(SystemExit) as info:
            lifecycle.run(job_tree(), **kwargs)  # type: ignore[arg-type]
        assert info.value.code == ExitCode.USAGE
        assert message in capsys.readouterr().err

    def test_missing_uvloop_is_named(self, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
        """Asking for uvloop without it installed says which package is missing."""
        real = importlib.util.find_spec
        monkeypatch.setattr(importlib.util, "find_spec", lambda name: None if name == "uvloop" else real(name))
        with pytest.raises(SystemExit) as info:
            lifecycle.run(job_tree(), backend_options={"use_uvloop": True})
        assert info.value.code == ExitCode.USAGE
        assert "pip install uvloop" in capsys.readouterr().err


class TestLogging:
    def test_user_configuration_is_left_alone(self) -> None:
        """When structlog is configured already, run() does not touch it."""
        structlog.configure(processors=[structlog.processors.JSONRenderer()])
        assert configure_logging() is False

    @pytest.mark.parametrize(("fmt", "renderer"), [("json", "JSONRenderer"), ("console", "ConsoleRenderer")])
    def test_format_variable_picks_the_renderer(self, monkeypatch: pytest.MonkeyPatch, fmt: str, renderer: str) -> None:
        """LIFECYCLE_LOG_FORMAT chooses JSON lines or console output."""
        monkeypatch.setenv("LIFECYCLE_LOG_FORMAT", fmt)
        assert configure_logging() is True
        assert type(structlog.get_config()["processors"][-1]).__name__ == renderer

    @pytest.mark.parametrize(
        ("variable", "value", "message"),
        [
            ("LIFECYCLE_LOG_FORMAT", "xml", "LIFECYCLE_LOG_FORMAT='xml' is not valid"),
            ("LIFECYCLE_LOG_LEVEL", "chatty", "LIFECYCLE_LOG_LEVEL='chatty' is not a log level"),
        ],
    )
    def test_bad_variables_are_configuration_errors(
        self,
        monkeypatch: pytest.MonkeyPatch,
        variable: str,
        value: str,
        message: str,
    ) -> None:
        """A bad logging variable is a ConfigurationError naming it and its value."""
        monkeypatch.setenv(variable, value)
        with pytest.raises(lifecycle.ConfigurationError, match=message):
            configure_logging()

    def test_a_full_disk_drops_a_line_and_a_lost_reader_drops_them_all(self) -> None:
        """LogOutput: ENOSPC loses that line only; EPIPE loses every later one; neither raises."""

        class Flaky(io.StringIO):
            failures: ClassVar[list[int]] = []

            def write(self, text: str) -> int:
                if self.failures:
                    raise OSError(self.failures.pop(0), "no")
                return super().write(text)

        stream = Flaky()
        output = LogOutput(stream)
        Flaky.failures[:] = [errno.ENOSPC]
        output.write("lost\n")
        output.write("kept\n")
        assert not output.reader_gone
        Flaky.failures[:] = [errno.EPIPE]
        output.write("gone\n")
        output.flush()
        output.write("after\n")
        assert output.reader_gone
        assert stream.getvalue() == "kept\n"


class TestSupervisionOutcome:
    """Issue 16: the exit code says how the tree ended, not whether supervision had work to do."""

    @pytest.mark.parametrize("backend", ["asyncio", "trio"])
    def test_a_root_that_gives_up_exits_one(self, backend: str, capsys: pytest.CaptureFixture[str]) -> None:
        """A root whose PERMANENT child returns more often than its intensity allows fails: exit 1."""
        sup = Supervisor("svc", intensity=Intensity(max_restarts=2, within=3600), backoff=NO_DELAY)

        @sup.component
        async def child(ctx: lifecycle.Context) -> None:
            ctx.ready()
            await anyio.lowlevel.checkpoint()

        with pytest.raises(SystemExit) as info:
            lifecycle.run(sup, backend=backend)  # type: ignore[arg-type]
        assert info.value.code == ExitCode.FAILURE
        err = capsys.readouterr().err
        assert "run: ExceptionGroup: supervisor 'svc' gave up (1 sub-exception)" in err
        assert "supervisor 'svc' gave up after 'svc/child' returned: more than 2 restarts within 3600 s" in err

    @pytest.mark.parametrize("backend", ["asyncio", "trio"])
    def test_a_handled_failure_exits_zero(self, backend: str) -> None:
        """A TEMPORARY child's failure is in the report, but a clean stop still returns it (exit 0)."""
        sup = Supervisor("svc")

        @sup.component(restart=Restart.TEMPORARY)
        async def probe(ctx: lifecycle.Context) -> None:
            ctx.ready()
            raise RuntimeError("probe died")

        @sup.component(main=True)
        async def job(ctx: lifecycle.Context) -> None:
            ctx.ready()
            await anyio.wait_all_tasks_blocked()  # the probe has failed and been handled

        report = lifecycle.run(sup, backend=backend)  # type: ignore[arg-type]
        assert report.ok
        assert (report["probe"].handled, str(report["probe"].error)) == (True, "probe died")


CTRL_C_AFTER_HANDLED_FAILURE = """
import os, signal, sys
import anyio, lifecycle
from supervisors import Restart, Supervisor

tree = Supervisor("svc")

@tree.component(restart=Restart.TEMPORARY)
async def probe(ctx: lifecycle.Context) -> None:
    ctx.ready()
    raise RuntimeError("probe died")

@tree.component
async def api(ctx: lifecycle.Context) -> None:
    ctx.ready()
    await anyio.wait_all_tasks_blocked()
    os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C
    await anyio.sleep_forever()

report = lifecycle.run(tree, backend=sys.argv[1])
print(report.reason.value, report.ok, report["probe"].outcome.value, report["probe"].handled)
"""


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_ctrl_c_after_a_handled_failure_exits_zero(tmp_path: Path, backend: str) -> None:
    """Issue 16: a clean Ctrl-C after a TEMPORARY child failed exits 0; the failure is in the log and the report."""
    script = tmp_path / "handled.py"
    script.write_text(CTRL_C_AFTER_HANDLED_FAILURE)
    proc, events = run_logged(script, backend)
    assert proc.returncode == ExitCode.OK, proc.stderr
    assert proc.stdout.split() == ["signal", "True", "failed", "True"]
    (failed,) = [e for e in events if e["event"] == "component.failed"]
    assert failed["component"] == "svc/probe"


LOSES_ITS_READER = """
import sys
import anyio, lifecycle
from supervisors import Supervisor

tree = Supervisor("svc")

@tree.component
async def ticker(ctx: lifecycle.Context) -> None:
    ctx.ready()
    for i in range(200):  # far more than a pipe holds once nobody reads it
        ctx.log.warning("tick", i=i, padding="x" * 500)
        await anyio.sleep(0)
    await anyio.sleep_forever()

@tree.component(main=True)
async def main(ctx: lifecycle.Context, ticker: None) -> None:
    await anyio.sleep(0.5)

report = lifecycle.run(tree, backend=sys.argv[1])
print(report.ok, report["ticker"].restarts, flush=True)
"""


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_a_lost_log_reader_does_not_break_the_program(tmp_path: Path, backend: str) -> None:
    """
    `program 2>&1 | head -2`: once stderr's reader is gone, log lines are dropped, nothing fails.

    Before, every log call raised BrokenPipeError in the component that made it,
    which its supervisor restarted, forever.
    """
    script = tmp_path / "reader.py"
    script.write_text(LOSES_ITS_READER)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent), "LIFECYCLE_LOG_FORMAT": "json"}
    proc = subprocess.Popen(
        [sys.executable, str(script), backend], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert proc.stderr is not None
    proc.stderr.readline()
    proc.stderr.close()  # the reader is gone, as after `| head -1`
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == ExitCode.OK
    assert out.split() == ["True", "0"]


def test_infinite_budgets_disable_the_hard_exit() -> None:
    """With math.inf budgets, a signal-free stop still completes and the watchdog never fires."""
    report = lifecycle.run(
        job_tree(),
        policy=lifecycle.ShutdownPolicy(graceful=float("inf"), forceful=float("inf"), terminate=float("inf")),
    )
    assert report.ok


BLOCKING = """
import sys, time
import anyio, lifecycle
from supervisors import Backoff, Intensity, Restart, Supervisor

NO_DELAY = Backoff(initial=0.0, maximum=0.0, jitter=False)

tree = Supervisor("svc")

@tree.component(main=True)
async def job(ctx: lifecycle.Context) -> None:
    ctx.ready()
    await anyio.sleep(0.2)
    time.sleep(1.0)  # blocks the event loop
    await anyio.sleep(0.2)

backend, _, loop = sys.argv[1].partition("+")
lifecycle.run(tree, backend=backend, backend_options={"use_uvloop": True} if loop else None)
"""


class TestBlockedLoop:
    @pytest.mark.parametrize(
        "backend",
        [
            "asyncio",
            pytest.param(
                "asyncio+uvloop",
                marks=pytest.mark.skipif(importlib.util.find_spec("uvloop") is None, reason="uvloop is not installed"),
            ),
            "trio",
        ],
    )
    @pytest.mark.real_time
    def test_a_blocking_call_is_logged_with_its_stack(self, tmp_path: Path, backend: str) -> None:
        """A call that holds the loop past the threshold is logged with its stack, and its end too."""
        script = tmp_path / "blocking.py"
        script.write_text(BLOCKING)
        proc, events = run_logged(script, backend, LIFECYCLE_BLOCKED_LOOP_THRESHOLD="0.3")
        assert proc.returncode == ExitCode.OK, proc.stderr
        (blocked,) = [e for e in events if e["event"] == "loop.blocked"]
        (unblocked,) = [e for e in events if e["event"] == "loop.unblocked"]
        assert "time.sleep(1.0)" in blocked["stack"]
        assert blocked["component"] == "svc/job"
        assert "task" not in blocked
        assert blocked["threshold"] == 0.3
        assert 0.7 < unblocked["blocked_for"] < 5

    def test_bad_threshold_is_a_configuration_error(
        self,
        monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        """LIFECYCLE_BLOCKED_LOOP_THRESHOLD must be a non-negative number; otherwise run() exits 2."""
        monkeypatch.setenv("LIFECYCLE_BLOCKED_LOOP_THRESHOLD", "soon")
        with pytest.raises(SystemExit) as info:
            lifecycle.run(job_tree())
        assert info.value.code == ExitCode.USAGE
        assert "LIFECYCLE_BLOCKED_LOOP_THRESHOLD='soon' is not a valid threshold" in capsys.readouterr().err

    def test_zero_turns_the_watch_off(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """A threshold of 0 runs without the heartbeat."""
        monkeypatch.setenv("LIFECYCLE_BLOCKED_LOOP_THRESHOLD", "0")
        assert lifecycle.run(job_tree()).ok
