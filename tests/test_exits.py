"""How run() ends: the exit code each kind of stop earns, and SystemExit/KeyboardInterrupt from components."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import anyio
import pytest
import structlog

import lifecycle
from lifecycle import ComponentError, ComponentReport, ExitCode, Outcome, ShutdownReport, StopReason
from lifecycle._host._exits import conclude
from lifecycle._host._program import execute
from supervisors import Supervisor

ROOT = Path(__file__).resolve().parent.parent
BACKENDS = ["asyncio", "trio"]


@pytest.fixture(autouse=True)
def _fresh_structlog() -> Iterator[None]:
    """run() configures structlog when nobody did; give each test a clean slate."""
    structlog.reset_defaults()
    yield
    structlog.reset_defaults()


def report_of(*children: ComponentReport, error: BaseException | None = None) -> ShutdownReport:
    failed = error is not None or any(c.outcome is Outcome.FAILED for c in children)
    root = ComponentReport(
        name="svc",
        path="svc",
        outcome=Outcome.FAILED if failed else Outcome.GRACEFUL,
        error=error,
        children=children,
    )
    return ShutdownReport(
        root="svc", reason=StopReason.SIGNAL, detail="", requested_at=0.0, finished_at=1.0, root_report=root
    )


def child(name: str, outcome: Outcome = Outcome.GRACEFUL, **fields: object) -> ComponentReport:
    return ComponentReport(name=name, path=f"svc/{name}", outcome=outcome, **fields)  # type: ignore[arg-type]


def group(*errors: BaseException) -> BaseExceptionGroup[BaseException]:
    return BaseExceptionGroup("tree 'svc' failed", [BaseExceptionGroup("supervisor 'svc' failed", list(errors))])


class TestConclude:
    def test_a_clean_stop_is_zero(self) -> None:
        """Nothing failed, nothing cut short: OK, and nothing to print."""
        ending = conclude(report_of(child("db")), None)
        assert ending.code == ExitCode.OK
        assert not ending.show_report

    def test_a_cut_off_stop_is_four_and_names_the_components(self) -> None:
        """No failure but a cleanup cut short: CUT_OFF, the report and a line naming what was cut."""
        ending = conclude(report_of(child("db", Outcome.FORCED, cut_off=True), child("api")), None)
        assert ending.code == ExitCode.CUT_OFF
        assert ending.show_report
        assert ending.lines == ("lifecycle: cleanup was cut short (svc/db): exit code 4",)

    def test_a_failure_is_one(self) -> None:
        """A failure in the report (a teardown error, a stubborn component) is FAILURE."""
        ending = conclude(report_of(child("db", Outcome.STUBBORN)), None)
        assert ending.code == ExitCode.FAILURE
        assert ending.show_report

    def test_a_raised_framework_failure_is_one_and_not_raised(self) -> None:
        """Raised ComponentErrors exit 1; a failure that is not the framework's own is raised as it is."""
        error = ComponentError("svc/db", "start", OSError("boom"))
        ending = conclude(None, BaseExceptionGroup("x", [error]))
        assert ending.code == ExitCode.FAILURE
        assert not ending.raise_group
        assert conclude(None, BaseExceptionGroup("x", [RuntimeError("bug")])).raise_group

    def test_a_components_own_base_exception_is_one_and_not_raised(self) -> None:
        """A component that raised a BaseException of its own (not an exit request): 1, no raw traceback."""

        class Stop(BaseException):
            pass

        ending = conclude(None, group(Stop()))
        assert ending.code == ExitCode.FAILURE
        assert not ending.raise_group

    @pytest.mark.parametrize(
        ("error", "code", "said"),
        [
            (SystemExit(5), 5, "SystemExit(5)"),
            (SystemExit(0), 0, "SystemExit(0)"),
            (SystemExit(), 0, "SystemExit()"),
            (SystemExit(True), 1, "SystemExit(True)"),
            (KeyboardInterrupt(), ExitCode.INTERRUPTED, "KeyboardInterrupt"),
        ],
    )
    def test_an_exit_request_gives_its_code(self, error: BaseException, code: int, said: str) -> None:
        """SystemExit(n) gives n (None: 0), KeyboardInterrupt 130; one line names the component."""
        report = report_of(child("job", Outcome.FAILED, error=error), error=group(error))
        ending = conclude(report, group(error))
        assert ending.code == code
        assert ending.lines == (f"lifecycle: component 'svc/job' raised {said}: exit code {code}",)
        assert not ending.raise_group

    def test_a_string_exit_is_printed_and_gives_one(self) -> None:
        """SystemExit('message'), as with sys.exit(): the message is printed, the code is 1."""
        error = SystemExit("config missing")
        ending = conclude(report_of(child("job", Outcome.FAILED, error=error), error=group(error)), group(error))
        assert ending.code == ExitCode.FAILURE
        assert ending.lines[0] == "config missing"

    def test_a_requested_zero_becomes_one_after_another_failure(self) -> None:
        """SystemExit(0) while another component failed: 1, so that 0 keeps meaning a clean stop."""
        error = SystemExit(0)
        report = report_of(
            child("job", Outcome.FAILED, error=error),
            child("db", Outcome.FAILED, error=OSError("flush")),
            error=group(error),
        )
        assert conclude(report, group(error)).code == ExitCode.FAILURE

    def test_a_requested_zero_becomes_four_after_a_cut(self) -> None:
        """SystemExit(0) with a cleanup cut short: 4."""
        error = SystemExit(0)
        report = report_of(
            child("job", Outcome.FAILED, error=error),
            child("db", Outcome.FORCED, cut_off=True),
            error=group(error),
        )
        assert conclude(report, group(error)).code == ExitCode.CUT_OFF

    def test_a_requested_code_stands_after_another_failure(self) -> None:
        """SystemExit(5) stays 5 whatever else happened: the component chose it."""
        error = SystemExit(5)
        report = report_of(child("job", Outcome.FAILED, error=error), child("db", Outcome.STUBBORN))
        assert conclude(report, group(error)).code == 5

    def test_without_a_report_the_component_is_not_named(self) -> None:
        """Raised without a report (the tree never existed): the code still stands."""
        ending = conclude(None, group(SystemExit(7)))
        assert ending.code == 7
        assert ending.lines == ("lifecycle: a component raised SystemExit(7): exit code 7",)


def run_script(tmp_path: Path, code: str, *args: str) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "app.py"
    script.write_text(textwrap.dedent(code))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "LIFECYCLE_LOG_FORMAT": "json"}
    return subprocess.run(
        [sys.executable, str(script), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


RAISING = """
import sys
import anyio, lifecycle
from supervisors import Supervisor

backend, what, main = sys.argv[1], sys.argv[2], sys.argv[3] == "main"
tree = Supervisor("svc")

@tree.component
async def db():
    yield "db"
    print("db closed", flush=True)

@tree.component(main=main)
async def job(ctx: lifecycle.Context, db: str) -> None:
    ctx.ready()
    await anyio.sleep(0)
    raise eval(what)

lifecycle.run(tree, backend=backend)
"""


class TestExitRequests:
    @pytest.mark.parametrize("backend", BACKENDS)
    @pytest.mark.parametrize(
        ("what", "code"),
        [("SystemExit(0)", 0), ("SystemExit(5)", 5), ("KeyboardInterrupt()", 130)],
    )
    def test_a_component_ends_the_program_with_its_code(
        self, tmp_path: Path, backend: str, what: str, code: int
    ) -> None:
        """SystemExit(n) / KeyboardInterrupt from a component: ordered stop, exit n / 130, no group traceback."""
        proc = run_script(tmp_path, RAISING, backend, what, "main")
        assert proc.returncode == code, proc.stderr
        assert proc.stdout == "db closed\n"
        expected = f"SystemExit({code})" if what.startswith("SystemExit") else "KeyboardInterrupt"
        assert f"lifecycle: component 'svc/job' raised {expected}: exit code {code}" in proc.stderr
        assert "Exception Group Traceback" not in proc.stderr
        assert "Traceback (most recent call last)" not in proc.stderr

    def test_a_permanent_child_ends_the_program_without_a_restart(self, tmp_path: Path) -> None:
        """A PERMANENT child that raises SystemExit(5): no restart; the tree stops in order and the process exits 5."""
        proc = run_script(tmp_path, RAISING, "asyncio", "SystemExit(5)", "permanent")
        assert proc.returncode == 5, proc.stderr
        assert proc.stdout == "db closed\n"
        assert "supervisor.restarting" not in proc.stderr
        assert "lifecycle: component 'svc/job' raised SystemExit(5): exit code 5" in proc.stderr


def cut_tree() -> Supervisor:
    sup = Supervisor("job", policy=lifecycle.ShutdownPolicy(graceful=0.2, forceful=5, terminate=5))

    @sup.component
    async def cache(ctx: lifecycle.Context) -> AsyncIterator[None]:
        yield
        with ctx.shielded():
            await anyio.sleep(30)  # a flush cut off at the graceful deadline

    @sup.component(main=True)
    async def work(cache: None) -> None:
        pass

    return sup


class TestRunEndings:
    def test_a_configuration_error_inside_the_loop_exits_two(
        self,
        monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        """A bad variable read once the loop runs (the startup progress interval) is still exit 2, one line."""
        monkeypatch.setenv("LIFECYCLE_STARTUP_PROGRESS_INTERVAL", "often")
        with pytest.raises(SystemExit) as info:
            lifecycle.run(cut_tree())
        assert info.value.code == ExitCode.USAGE
        assert "lifecycle: configuration error: " in capsys.readouterr().err

    def test_without_signal_handling_ctrl_c_is_a_keyboard_interrupt(self) -> None:
        """
        run(signals=False) leaves SIGINT to asyncio: KeyboardInterrupt after the ordered stop, report handed over.

        (Trio raises a KeyboardInterrupt wherever the signal lands, in a component's task too.)
        """
        sup = Supervisor("job")
        stopped: list[str] = []

        @sup.component
        async def api(ctx: lifecycle.Context) -> None:
            ctx.ready()
            os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C
            try:
                await anyio.sleep_forever()
            finally:
                stopped.append("api")

        reports: list[ShutdownReport] = []
        # Python's own Ctrl-C, whatever this process inherited (a background job ignores SIGINT).
        inherited = signal.signal(signal.SIGINT, signal.default_int_handler)
        try:
            with pytest.raises(KeyboardInterrupt):
                execute(sup, signals=False, on_report=reports.append)
        finally:
            signal.signal(signal.SIGINT, inherited)
        assert stopped == ["api"]
        assert [r.root for r in reports] == ["job"]


class TestCutOff:
    def test_a_stop_cut_short_by_a_deadline_exits_four(self, capsys: pytest.CaptureFixture[str]) -> None:
        """A teardown cut off at the graceful deadline: exit 4, the report printed with the line naming it."""
        with pytest.raises(SystemExit) as info:
            lifecycle.run(cut_tree())
        assert info.value.code == ExitCode.CUT_OFF
        err = capsys.readouterr().err
        assert "Shutdown of 'job': main exited" in err
        assert "lifecycle: cleanup was cut short (job/cache): exit code 4" in err

    def test_a_clean_stop_exits_zero(self) -> None:
        """Without the slow flush the same tree stops cleanly: run() returns the clean report."""
        sup = Supervisor("job")

        @sup.component
        async def cache() -> AsyncIterator[None]:
            yield

        @sup.component(main=True)
        async def work(cache: None) -> None:
            pass

        report = lifecycle.run(sup)
        assert report.clean
        assert report.reason is StopReason.MAIN_EXITED
