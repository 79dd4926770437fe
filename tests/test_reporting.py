from __future__ import annotations

import io
from collections.abc import Iterator, MutableMapping

import anyio
import pytest
import structlog
from structlog.testing import capture_logs

import lifecycle
from supervisors import Supervisor


@pytest.fixture(autouse=True)
def _fresh_structlog() -> Iterator[None]:
    structlog.reset_defaults()
    yield
    structlog.reset_defaults()


def failing_processor(
    logger: object, method: str, event_dict: MutableMapping[str, object]
) -> MutableMapping[str, object]:
    raise RuntimeError("processor broke")


def configure(*processors: structlog.typing.Processor) -> io.StringIO:
    out = io.StringIO()
    structlog.configure(
        processors=[*processors, structlog.processors.KeyValueRenderer()],
        logger_factory=structlog.PrintLoggerFactory(out),
    )
    return out


def raise_and_catch(error: BaseException) -> BaseException:
    try:
        raise error  # noqa: TRY301 - the test wants the object with a traceback
    except BaseException as exc:  # noqa: BLE001 - the test wants the raised object with its traceback
        return exc


class TestReportError:
    def test_logs_the_event_with_its_error(self) -> None:
        """A working pipeline logs the event with exc_info and the fields."""
        error = ValueError("bad")
        with capture_logs() as logs:
            lifecycle.report_error("thing.failed", error, component="root/api")
        assert logs == [{"event": "thing.failed", "exc_info": error, "component": "root/api", "log_level": "error"}]

    def test_failing_processor_falls_back_to_stderr_once(self, capsys: pytest.CaptureFixture[str]) -> None:
        """When a processor raises, the event and its traceback are written to stderr once; nothing is raised."""
        out = configure(failing_processor)
        lifecycle.report_error("thing.failed", raise_and_catch(ValueError("the original")), component="root/api")
        err = capsys.readouterr().err
        assert err.count("lifecycle: logging failed with RuntimeError('processor broke')") == 1
        assert "event=thing.failed" in err
        assert "component='root/api'" in err
        assert "ValueError: the original" in err
        assert "Traceback" in err
        assert out.getvalue() == ""

    def test_failing_renderer_falls_back_too(self, capsys: pytest.CaptureFixture[str]) -> None:
        """A renderer that cannot render a field is handled like a failing processor."""

        class Unrenderable:
            def __repr__(self) -> str:
                raise TypeError("no repr")

        configure()
        lifecycle.report_error("thing.failed", None, payload=Unrenderable())
        err = capsys.readouterr().err
        assert err.count("lifecycle: logging failed with TypeError('no repr')") == 1
        assert "Unrenderable object (repr failed)>" in err

    def test_reporting_from_inside_the_pipeline_never_loops(self, capsys: pytest.CaptureFixture[str]) -> None:
        """A processor that reports an error for every event it sees causes one stderr write, not a loop."""
        seen: list[str] = []

        def reporting_processor(
            logger: object, method: str, event_dict: MutableMapping[str, object]
        ) -> MutableMapping[str, object]:
            seen.append(str(event_dict["event"]))
            lifecycle.report_error("processor.saw", None, of=event_dict["event"])
            return event_dict

        out = configure(reporting_processor)
        lifecycle.report_error("thing.failed", ValueError("x"))
        assert seen == ["thing.failed"]
        err = capsys.readouterr().err
        assert err.count("an error was reported while logging another one") == 1
        assert "event=processor.saw" in err
        assert "event='thing.failed'" in out.getvalue()

    def test_a_failing_stderr_is_ignored(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """With a failing pipeline and a stderr that cannot be written, reporting still returns quietly."""

        class BrokenPipe(io.StringIO):
            def write(self, text: str) -> int:
                raise BrokenPipeError(text[:10])

        configure(failing_processor)
        monkeypatch.setattr("sys.stderr", BrokenPipe())
        lifecycle.report_error("thing.failed", ValueError("x"))

    def test_a_closed_stderr_falls_back_to_the_original(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """When sys.stderr was closed, the fallback goes to the process's original stderr."""
        configure(failing_processor)
        closed = io.StringIO()
        closed.close()
        original = io.StringIO()
        monkeypatch.setattr("sys.stderr", closed)
        monkeypatch.setattr("sys.__stderr__", original)
        lifecycle.report_error("thing.failed", ValueError("x"))
        assert "event=thing.failed" in original.getvalue()

    def test_an_unformattable_error_still_gives_one_line(
        self, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """If even the traceback cannot be formatted, one line still names the event."""

        def cannot_format(error: BaseException) -> list[str]:
            raise MemoryError  # what formatting a huge traceback can run into

        configure(failing_processor)
        monkeypatch.setattr("traceback.format_exception", cannot_format)
        lifecycle.report_error("thing.failed", ValueError("x"))
        assert capsys.readouterr().err == (
            "lifecycle: logging failed with RuntimeError('processor broke'); event=thing.failed "
            "(it could not be formatted)\n"
        )

    def test_component_failure_with_a_broken_pipeline_still_stops_the_tree(
        self, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """The framework's own failure reports survive a processor broken for errors: stderr gets them."""

        def breaks_on_errors(
            logger: object, method: str, event_dict: MutableMapping[str, object]
        ) -> MutableMapping[str, object]:
            if "exc_info" in event_dict:
                raise RuntimeError("cannot format tracebacks")
            return event_dict

        configure(breaks_on_errors)
        sup = Supervisor()

        @sup.component(main=True)  # its failure fails the tree at once, without restarts
        async def api() -> None:
            raise ConnectionRefusedError("db down")

        async def main() -> None:
            with pytest.RaisesGroup(lifecycle.ComponentError):
                async with lifecycle.running(sup) as tree:
                    await tree.ready()

        anyio.run(main)
        err = capsys.readouterr().err
        assert "event=component.failed" in err
        assert "ConnectionRefusedError: db down" in err


def failing_on_ordinary_events(
    logger: object, method: str, event_dict: MutableMapping[str, object]
) -> MutableMapping[str, object]:
    if method in {"debug", "info"}:
        msg = "processor broke on an ordinary event"
        raise RuntimeError(msg)
    return event_dict


class TestBrokenPipelineOnOrdinaryEvents:
    async def test_tree_starts_serves_and_stops(self, capsys: pytest.CaptureFixture[str]) -> None:
        """A processor that raises on info and debug events breaks nothing: the tree starts and stops cleanly."""
        configure(failing_on_ordinary_events)
        sup = Supervisor(name="app")
        started = anyio.Event()

        @sup.component
        async def worker(ctx: lifecycle.Context) -> None:
            ctx.log.info("worker.started")
            ctx.ready()
            started.set()
            await anyio.sleep_forever()

        async with lifecycle.running(sup) as tree:
            await tree.ready()
            await started.wait()
            report = await tree.shutdown()
        assert report.ok
        err = capsys.readouterr().err
        assert err.count("a structlog processor raised") == 1
        assert "RuntimeError: processor broke on an ordinary event" in err

    async def test_error_events_still_reach_stderr(self, capsys: pytest.CaptureFixture[str]) -> None:
        """After the first failure, error events that the broken pipeline drops are still written as plain text."""
        configure(failing_processor)
        sup = Supervisor(name="app")

        @sup.component
        async def crashing(ctx: lifecycle.Context) -> None:
            ctx.ready()
            msg = "boom"
            raise ValueError(msg)

        with pytest.RaisesGroup(lifecycle.ComponentError, allow_unwrapped=True, flatten_subgroups=True):
            async with lifecycle.running(sup, policy=lifecycle.ShutdownPolicy(graceful=1, forceful=1, terminate=1)):
                await anyio.sleep_forever()
        err = capsys.readouterr().err
        assert "ValueError: boom" in err
