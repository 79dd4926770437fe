"""lifecycle.testing: running a tree in a test, injected faults, the recorder and order assertions."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest
from structlog.testing import capture_logs

import lifecycle
from lifecycle import ComponentError, Context, Outcome, Phase, ShutdownPolicy, State
from lifecycle.testing import (
    Fault,
    InjectedError,
    Recorder,
    assert_start_order,
    assert_stop_order,
    inject_fault,
    open_tree,
)
from supervisors import Backoff, Restart, Supervisor

NO_DELAY = Backoff(initial=0.0, maximum=0.0, jitter=False)


def shop() -> Supervisor:
    """db <- cache <- api, plus an unrelated worker; one component of each style."""
    sup = Supervisor("shop", backoff=NO_DELAY)

    @sup.component
    async def db() -> AsyncIterator[str]:
        yield "db"

    @sup.component
    async def cache(db: str) -> AsyncIterator[str]:
        yield f"cache({db})"

    @sup.component
    async def api(ctx: Context, cache: str) -> None:
        ctx.ready(cache)
        await anyio.sleep_forever()

    class Worker:
        async def run(self, ctx: Context) -> None:
            ctx.ready()
            await anyio.sleep_forever()

    sup.add(Worker(), name="worker")
    return sup


class TestOpenTree:
    async def test_runs_the_tree_until_the_block_ends(self) -> None:
        """open_tree() yields a ready tree and stops it when the block ends; the report is then on the handle."""
        async with open_tree(shop()) as tree:
            assert tree.state is State.RUNNING
        assert tree.report is not None
        assert tree.report.ok

    async def test_a_handled_failure_fails_the_check(self) -> None:
        """A TEMPORARY child's failure raises nothing but makes open_tree() fail the test."""
        sup = Supervisor("root")

        go = anyio.Event()

        @sup.component(restart=Restart.TEMPORARY)
        async def probe(ctx: Context) -> None:
            ctx.ready()
            await go.wait()
            raise RuntimeError("probe died")

        with pytest.raises(AssertionError, match="probe died"):
            async with open_tree(sup) as tree:
                go.set()
                await anyio.wait_all_tasks_blocked()
        assert tree.report is not None
        assert tree.report["probe"].outcome is Outcome.FAILED

    async def test_check_false_leaves_the_report_to_the_test(self) -> None:
        """With check=False a failed component is only reported."""
        sup = Supervisor("root")

        go = anyio.Event()

        @sup.component(restart=Restart.TEMPORARY)
        async def probe(ctx: Context) -> None:
            ctx.ready()
            await go.wait()
            raise RuntimeError("probe died")

        async with open_tree(sup, check=False) as tree:
            go.set()
            await anyio.wait_all_tasks_blocked()
        assert tree.report is not None
        assert tree.report["probe"].outcome is Outcome.FAILED
        assert tree.report["probe"].handled


class TestInjectFault:
    @pytest.mark.parametrize("name", ["db", "cache", "api", "worker"])
    async def test_start_fault_rolls_the_tree_back(self, name: str) -> None:
        """Fault.START makes any style of component fail to start; the error names it."""
        with inject_fault(name, Fault.START) as fault, pytest.raises(ExceptionGroup) as info:
            async with open_tree(shop()):
                pytest.fail("the tree must not become ready")
        (error,) = info.value.exceptions
        assert isinstance(error, ComponentError)
        assert (error.path, error.stage) == (f"shop/{name}", "start")
        assert isinstance(error.__cause__, InjectedError)
        assert (error.__cause__.component, error.__cause__.fault) == (name, Fault.START)
        assert fault.triggered == 1

    @pytest.mark.virtual_time
    @pytest.mark.parametrize("name", ["db", "api", "worker"])
    async def test_running_fault_restarts_the_component_once(self, name: str) -> None:
        """Fault.RUNNING fails a started component after its delay; with times=1 its restart comes back healthy."""
        boom = RuntimeError("boom")
        with Recorder() as recorder, inject_fault(name, Fault.RUNNING, error=boom, delay=1):
            async with open_tree(shop()) as tree:
                await anyio.sleep(5)
        assert recorder.starts(name) == 2
        assert tree.report is not None
        assert tree.report[name].restarts == 1
        assert tree.report[name].earlier_errors == (boom,)
        recorder.assert_invariants()

    @pytest.mark.parametrize("name", ["db", "api", "worker"])
    async def test_teardown_fault_is_reported(self, name: str) -> None:
        """Fault.TEARDOWN raises after the component's own teardown; the stop reports it."""
        with inject_fault(f"shop/{name}", Fault.TEARDOWN):
            async with open_tree(shop(), check=False) as tree:
                pass
        assert tree.report is not None
        failed = tree.report[name]
        assert (failed.outcome, failed.stage) == (Outcome.FAILED, "stop")
        assert isinstance(failed.error, InjectedError)

    @pytest.mark.virtual_time
    @pytest.mark.parametrize(
        ("until", "outcome"), [(Phase.GRACEFUL, Outcome.FORCED), (Phase.FORCEFUL, Outcome.TERMINATED)]
    )
    async def test_hang_is_cut_off_when_its_phase_ends(self, until: Phase, outcome: Outcome) -> None:
        """Fault.HANG holds the stop until the chosen phase ends."""
        policy = ShutdownPolicy(graceful=3, forceful=2, terminate=1)
        with inject_fault("api", Fault.HANG, until=until):
            async with open_tree(shop(), policy=policy) as tree:
                pass
        assert tree.report is not None
        assert tree.report["api"].outcome is outcome
        assert tree.report["api"].stop_duration == policy.offset(until)

    @pytest.mark.virtual_time
    async def test_stubborn_is_logged_with_its_stack(self) -> None:
        """Fault.STUBBORN ignores cancellation; past FORCEFUL it is logged stubborn, and still waited for."""
        policy = ShutdownPolicy(graceful=1, forceful=1, terminate=1)
        with inject_fault("db", Fault.STUBBORN, delay=10), capture_logs() as logs:
            async with open_tree(shop(), policy=policy) as tree:
                pass
        assert tree.report is not None
        assert tree.report["db"].stop_duration == 10
        events = [(e["event"], e["component"]) for e in logs if e["event"].startswith("component.stubborn")]
        assert events == [("component.stubborn", "shop/db"), ("component.stubborn_past_terminate", "shop/db")]

    async def test_outside_the_block_nothing_is_injected(self) -> None:
        """Components created after the block ended run normally."""
        with inject_fault("db", Fault.START) as fault:
            pass
        async with open_tree(shop()):
            pass
        assert fault.triggered == 0

    def test_arguments_are_checked(self) -> None:
        """Bad arguments are configuration errors naming the parameter."""
        with pytest.raises(lifecycle.ConfigurationError, match="`at`"):
            inject_fault("db", "start")  # type: ignore[arg-type]
        with pytest.raises(lifecycle.ConfigurationError, match="`component`"):
            inject_fault("", Fault.START)
        with pytest.raises(lifecycle.ConfigurationError, match="`until`"):
            inject_fault("db", Fault.HANG, until="graceful")  # type: ignore[arg-type]
        with pytest.raises(lifecycle.ConfigurationError, match="`delay`"):
            inject_fault("db", Fault.RUNNING, delay=-1)
        with pytest.raises(lifecycle.ConfigurationError, match="`times`"):
            inject_fault("db", Fault.START, times=0)

    def test_injected_error_pickles(self) -> None:
        """InjectedError survives pickling (for reports sent across processes)."""
        import pickle  # noqa: PLC0415 - only this test needs it

        error = pickle.loads(pickle.dumps(InjectedError("db", Fault.TEARDOWN)))  # noqa: S301 - our own data
        assert (error.component, error.fault, str(error)) == (
            "db",
            Fault.TEARDOWN,
            "fault injected into 'db' at teardown",
        )


class TestRecorder:
    async def test_records_every_transition_in_order(self) -> None:
        """The recorder sees STARTING, RUNNING, STOPPING and STOPPED of every component, root included."""
        with Recorder() as recorder:
            async with open_tree(shop()):
                pass
        assert recorder.order(State.STOPPED)[-1] == "shop"
        assert [t.state for t in recorder.transitions if t.path == "shop/db"] == [
            State.STARTING,
            State.RUNNING,
            State.STOPPING,
            State.STOPPED,
        ]
        assert recorder.transitions[0].name == "shop"
        recorder.assert_start_order("db", "cache", "api")
        recorder.assert_stop_order("api", "cache", "db")
        recorder.assert_invariants()
        assert recorder.alive() == []
        assert "components" in repr(recorder)

    async def test_order_assertions_fail_with_the_transitions(self) -> None:
        """A wrong expected order raises AssertionError listing what happened."""
        with Recorder() as recorder:
            async with open_tree(shop()):
                pass
        with pytest.raises(AssertionError, match="Recorded transitions"):
            recorder.assert_start_order("api", "db")
        with pytest.raises(AssertionError, match="had not ended"):
            recorder.assert_stop_order({"db", "worker"}, "api")
        with pytest.raises(AssertionError, match="No component 'nope'"):
            recorder.assert_stop_order("nope")

    def test_broken_guarantees_are_listed(self) -> None:
        """assert_invariants() names an instance that never ended and two instances alive at once."""
        recorder = Recorder()
        recorder.transitions.extend([])
        # Fabricated lives: a restart that began before the first instance ended.
        from lifecycle._testing._recorder import _Life  # noqa: PLC0415 - white-box: no real tree breaks these rules

        recorder._lives = [_Life("r/a", 1, (), start=0), _Life("r/a", 2, (), start=1, end=2, ends=1)]
        recorder._seen = {"r/a": 2}
        with pytest.raises(AssertionError) as info:
            recorder.assert_invariants()
        assert "r/a #1 ended 0 times" in str(info.value)
        assert "r/a #2 started while #1 was still alive" in str(info.value)

    def test_ambiguous_names_need_a_path(self) -> None:
        """A name that two recorded components share must be given as a path."""
        recorder = Recorder()
        recorder._seen = {"a/x": 1, "b/x": 1}
        with pytest.raises(AssertionError, match="use the path"):
            recorder.starts("x")


class TestReportOrder:
    async def test_start_and_stop_order_from_the_report(self) -> None:
        """The report's times and order show dependencies first at start and last at stop."""
        async with open_tree(shop()) as tree:
            pass
        report = tree.report
        assert report is not None
        assert_start_order(report, "db", "cache", "api")
        assert_stop_order(report, {"api", "worker"}, "cache", "db")
        with pytest.raises(AssertionError, match="had not stopped"):
            assert_stop_order(report, "db", "api")
        with pytest.raises(AssertionError, match="No component"):
            assert_start_order(report, "nope", "db")

    @pytest.mark.virtual_time
    async def test_start_order_fails_when_a_component_was_ready_later(self) -> None:
        """A component that became ready after another began to start is out of order."""
        sup = Supervisor("root")

        @sup.component
        async def slow(ctx: Context) -> None:
            await anyio.sleep(1)
            ctx.ready()
            await anyio.sleep_forever()

        @sup.component
        async def fast(ctx: Context) -> None:
            ctx.ready()
            await anyio.sleep_forever()

        async with open_tree(sup) as tree:
            pass
        assert tree.report is not None
        with pytest.raises(AssertionError, match="was not ready before"):
            assert_start_order(tree.report, "slow", "fast")


PLUGIN_TEST = """
import anyio
import pytest
import trio

from lifecycle import Context, State
from lifecycle.testing import Fault, open_tree
from supervisors import Supervisor

pytest_plugins = ["lifecycle.pytest_plugin"]


def tree():
    sup = Supervisor("root")

    @sup.component
    async def db(ctx: Context) -> None:
        ctx.ready()
        await anyio.sleep_forever()

    return sup


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request):
    return request.param


@pytest.mark.anyio
async def test_anyio(lifecycle_recorder, lifecycle_faults):
    lifecycle_faults("db", Fault.TEARDOWN)
    async with open_tree(tree(), check=False) as handle:
        pass
    assert handle.report["db"].stage == "stop"
    lifecycle_recorder.assert_invariants()


@pytest.mark.trio
async def test_pytest_trio(lifecycle_recorder):
    async with open_tree(tree()):
        pass
    assert lifecycle_recorder.order(State.STOPPED) == ["root/db", "root"]
"""


def test_pytest_plugin_works_with_anyio_and_pytest_trio(tmp_path: Path) -> None:
    """The fixtures work in anyio tests on both backends and in pytest-trio tests."""
    (tmp_path / "test_user.py").write_text(textwrap.dedent(PLUGIN_TEST))
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:asyncio", "-W", "error", "."],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 passed" in result.stdout


def test_importing_testing_imports_neither_pytest_nor_supervisors() -> None:
    """lifecycle.testing stays usable outside pytest and below supervisors."""
    code = "import sys, lifecycle.testing; print(sorted({'pytest', 'supervisors'} & set(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert result.stdout.strip() == "[]"


VIRTUAL_TIME_TEST = """
import anyio
import pytest

pytestmark = pytest.mark.anyio


@pytest.mark.virtual_time
async def test_marked(anyio_backend_name):
    assert anyio_backend_name == "trio"
    start = anyio.current_time()
    await anyio.sleep(3600)
    assert anyio.current_time() - start == 3600


@pytest.mark.virtual_time
@pytest.mark.parametrize("hours", [1, 2])
async def test_each_gets_a_fresh_clock(hours):
    assert anyio.current_time() == 0
    await anyio.sleep(3600 * hours)


async def test_by_fixture(lifecycle_virtual_clock):
    lifecycle_virtual_clock.jump(5)
    assert anyio.current_time() == 5


async def test_not_virtual(anyio_backend_name):
    pass
"""


class TestVirtualTime:
    @pytest.fixture
    def project(self, tmp_path: Path) -> Path:
        (tmp_path / "conftest.py").write_text('pytest_plugins = ["lifecycle.pytest_plugin"]\n')
        (tmp_path / "test_virtual.py").write_text(textwrap.dedent(VIRTUAL_TIME_TEST))
        return tmp_path

    def pytest(self, project: Path, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:asyncio", "-W", "error", *args],
            cwd=project,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    def test_virtual_time_tests_are_generated_for_trio_only(self, project: Path) -> None:
        """A `virtual_time` test, or one requesting `lifecycle_virtual_clock`, exists only as its trio variant."""
        result = self.pytest(project, "--collect-only", "-q")
        ids = sorted(line for line in result.stdout.splitlines() if "::" in line)
        assert ids == [
            "test_virtual.py::test_by_fixture[trio]",
            "test_virtual.py::test_each_gets_a_fresh_clock[trio-1]",
            "test_virtual.py::test_each_gets_a_fresh_clock[trio-2]",
            "test_virtual.py::test_marked[trio]",
            "test_virtual.py::test_not_virtual[asyncio]",
            "test_virtual.py::test_not_virtual[trio]",
        ], result.stdout + result.stderr

    def test_virtual_time_runs_on_a_fresh_autojump_mock_clock(self, project: Path) -> None:
        """Every generated test runs on its own MockClock(autojump_threshold=0): an hour passes at once, exactly."""
        result = self.pytest(project, "-q", "-ra")
        assert result.returncode == 0, result.stdout + result.stderr
        assert "6 passed" in result.stdout
        assert "skipped" not in result.stdout.lower()

    def test_the_clock_fixture_refuses_a_test_without_a_mock_clock(self, project: Path) -> None:
        """`lifecycle_virtual_clock` in a test that pins its own real-clock backend says what to change."""
        (project / "test_pinned.py").write_text(
            textwrap.dedent(
                """
                import pytest

                @pytest.mark.anyio
                @pytest.mark.parametrize("anyio_backend", ["trio"])
                async def test_pinned(lifecycle_virtual_clock):
                    pass
                """
            )
        )
        result = self.pytest(project, "-q", "test_pinned.py")
        assert result.returncode == 1
        assert "`lifecycle_virtual_clock` needs the test to run on trio's MockClock" in result.stdout
