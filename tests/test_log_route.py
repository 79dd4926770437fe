"""Logging that fits the host: structlog as configured, else the standard library's logging (issue 21)."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator, MutableMapping
from pathlib import Path
from typing import Any

import anyio
import pytest
import structlog
from structlog.testing import capture_logs

import lifecycle
from lifecycle._core._log_route import render_for_stdlib, stdlib_logger
from lifecycle._core._safe_logging import current_guarded
from lifecycle.lowlevel import safe_logger
from supervisors import Supervisor

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def unconfigured() -> Iterator[None]:
    """structlog as a host that never configured it leaves it; the previous configuration afterwards."""
    was_configured = structlog.is_configured()
    saved = structlog.get_config()
    structlog.reset_defaults()
    try:
        yield
    finally:
        structlog.reset_defaults()
        if was_configured:
            structlog.configure(**saved)


class ListHandler(logging.Handler):
    """Keeps the records it is given."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def lifecycle_records() -> Iterator[tuple[logging.Logger, ListHandler]]:
    """A handler on the ``lifecycle`` logger; its level and handlers are put back afterwards."""
    logger = logging.getLogger("lifecycle")
    level = logger.level
    handler = ListHandler()
    logger.addHandler(handler)
    try:
        yield logger, handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


class Rendered:
    """A value that counts how often it is turned into text."""

    def __init__(self) -> None:
        self.count = 0

    def __repr__(self) -> str:
        self.count += 1
        return "rendered"


def small_tree(size: int = 3) -> Supervisor:
    sup = Supervisor("app")

    async def leaf(ctx: lifecycle.Context) -> None:
        ctx.ready()
        await anyio.sleep_forever()

    for number in range(size):
        sup.add(leaf, name=f"c{number}")
    return sup


async def start_and_stop(size: int = 3) -> None:
    async with lifecycle.running(small_tree(size)) as tree:
        await tree.ready()


def run_script(source: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Run *source* in a fresh interpreter, with the project importable and no logging variables set."""
    environ = {key: value for key, value in os.environ.items() if not key.startswith("LIFECYCLE_LOG")}
    environ.update(PYTHONPATH=str(ROOT), **env)
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(source), *args],
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


EMBEDDED = """
    import logging, sys
    import anyio
    import lifecycle
    from supervisors import Supervisor

    backend, configure = sys.argv[1], sys.argv[2]
    if configure == "info":
        logging.basicConfig(level=logging.INFO)
    sup = Supervisor("app")

    async def leaf(ctx):
        ctx.ready()
        await anyio.sleep_forever()

    for number in range(1000):
        sup.add(leaf, name=f"c{number}")

    async def main():
        async with lifecycle.running(sup) as tree:
            await tree.ready()

    anyio.run(main, backend=backend)
"""


@pytest.mark.real_time
class TestEmbeddedInAFreshProcess:
    @pytest.mark.parametrize("backend", ["asyncio", "trio"])
    def test_nothing_configured_prints_nothing(self, backend: str) -> None:
        """An embedded 1,000-component tree that starts and stops, with no logging configured, prints nothing."""
        proc = run_script(EMBEDDED, backend, "none")
        assert proc.returncode == 0, proc.stderr
        assert (proc.stdout, proc.stderr) == ("", "")

    @pytest.mark.parametrize("backend", ["asyncio", "trio"])
    def test_basic_config_shows_the_tree_level_events(self, backend: str) -> None:
        """With logging.basicConfig(level=INFO), tree-level events arrive as stdlib records; component ones do not."""
        proc = run_script(EMBEDDED, backend, "info")
        assert proc.returncode == 0, proc.stderr
        lines = proc.stderr.splitlines()
        assert "INFO:lifecycle:tree.ready tree=app" in lines
        assert any(line.startswith("INFO:lifecycle:tree.stopped tree=app ") for line in lines)
        assert not any("component." in line for line in lines)
        assert proc.stdout == ""


HYPERCORN = """
    import sys
    import anyio
    import lifecycle
    from hypercorn.config import Config
    from supervisors import Supervisor

    backend = sys.argv[1]
    up = anyio.Event()
    sup = Supervisor("app")

    async def leaf(ctx):
        ctx.ready()
        await anyio.sleep_forever()

    async def last(ctx):
        ctx.ready()
        up.set()
        await anyio.sleep_forever()

    for number in range(4):
        sup.add(leaf, name=f"c{number}")
    sup.add(last, depends_on=[f"c{number}" for number in range(4)])

    async def inner(scope, receive, send):
        raise RuntimeError("no lifespan here")

    config = Config()
    config.bind = ["127.0.0.1:0"]
    app = lifecycle.LifespanMiddleware(inner, sup)
    if backend == "trio":
        import trio
        from hypercorn.trio import serve
        trio.run(lambda: serve(app, config, shutdown_trigger=up.wait))
    else:
        import asyncio
        from hypercorn.asyncio import serve
        asyncio.run(serve(app, config, shutdown_trigger=up.wait))
    print("served", file=sys.stderr)
"""


@pytest.mark.real_time
class TestUnderHypercorn:
    @pytest.mark.parametrize("backend", ["asyncio", "trio"])
    def test_the_server_log_has_no_framework_lines(self, backend: str) -> None:
        """A tree in the ASGI lifespan under Hypercorn, nothing configured: Hypercorn's own lines only."""
        proc = run_script(HYPERCORN, backend)
        assert proc.returncode == 0, proc.stderr
        lines = (proc.stdout + proc.stderr).splitlines()
        assert "served" in lines
        assert any("Running on" in line for line in lines)
        framework = [line for line in lines if "tree." in line or "component." in line or "lifespan." in line]
        assert framework == []


@pytest.mark.usefixtures("unconfigured")
class TestStdlibRoute:
    async def test_tree_events_are_info_records_of_lifecycle_loggers(
        self, lifecycle_records: tuple[logging.Logger, ListHandler]
    ) -> None:
        """Unconfigured, the tree-level events are INFO records of ``lifecycle`` loggers, component ones DEBUG."""
        logger, handler = lifecycle_records
        logger.setLevel(logging.DEBUG)
        await start_and_stop()
        seen = {(r.getMessage().split(" ", 1)[0], r.levelno) for r in handler.records}
        assert {("tree.ready", logging.INFO), ("tree.stopped", logging.INFO)} <= seen
        assert {("component.starting", logging.DEBUG), ("component.stopped", logging.DEBUG)} <= seen
        assert all(r.name == "lifecycle" or r.name.startswith("lifecycle.") for r in handler.records)

    async def test_nothing_below_warning_by_default(
        self, lifecycle_records: tuple[logging.Logger, ListHandler]
    ) -> None:
        """With Python's default levels (WARNING), a clean start and stop hands no record to any handler."""
        _, handler = lifecycle_records
        await start_and_stop()
        assert handler.records == []

    def test_a_filtered_debug_event_runs_no_processor(
        self, lifecycle_records: tuple[logging.Logger, ListHandler]
    ) -> None:
        """A debug event below the stdlib logger's level is never rendered; once enabled it is, once."""
        logger, handler = lifecycle_records
        value = Rendered()
        log = safe_logger("lifecycle")
        log.debug("filtered.out", value=value)
        assert (value.count, handler.records) == (0, [])
        logger.setLevel(logging.DEBUG)
        log.debug("let.through", value=value)
        assert value.count == 1
        assert [r.getMessage() for r in handler.records] == ["let.through value=rendered"]

    def test_a_level_set_later_applies_to_a_bound_logger(
        self, lifecycle_records: tuple[logging.Logger, ListHandler]
    ) -> None:
        """The level is the stdlib logger's at each event, not at binding: a host may configure logging later."""
        logger, handler = lifecycle_records
        log = lifecycle.lowlevel.safe_logger("lifecycle").bind(component="app/db")
        log.info("before")
        logger.setLevel(logging.INFO)
        log.info("after")
        assert [r.getMessage() for r in handler.records] == ["after component=app/db"]

    def test_an_exception_reaches_the_record(self, lifecycle_records: tuple[logging.Logger, ListHandler]) -> None:
        """``exc_info`` goes to the record, so the host's formatter prints the traceback."""
        _, handler = lifecycle_records
        error = ValueError("bad")
        safe_logger("lifecycle").error("it.failed", exc_info=error)
        [record] = handler.records
        assert record.exc_info is not None
        assert record.exc_info[1] is error

    async def test_capture_logs_entered_while_the_tree_runs(
        self, lifecycle_records: tuple[logging.Logger, ListHandler]
    ) -> None:
        """A tree started with structlog unconfigured follows ``capture_logs()`` entered later, as structlog's do."""
        logger, handler = lifecycle_records
        logger.setLevel(logging.DEBUG)
        async with lifecycle.running(small_tree()) as tree:
            await tree.ready()
            started = len(handler.records)
            with capture_logs() as logs:
                await tree.shutdown()
        events = {entry["event"] for entry in logs}
        assert {"tree.stopping", "component.stopped", "tree.stopped"} <= events
        assert next(e for e in logs if e["event"] == "component.stopped")["component"].startswith("app/")
        assert started > 0
        assert len(handler.records) == started

    async def test_capture_logs_still_captures(self) -> None:
        """structlog's ``capture_logs()`` configures structlog, so the events reach it from an unconfigured start."""
        with capture_logs() as logs:
            await start_and_stop()
        events = {entry["event"] for entry in logs}
        assert {"tree.ready", "component.starting", "tree.stopped"} <= events


@pytest.mark.usefixtures("unconfigured")
class TestStdlibBoundLogger:
    def test_every_level_method_writes_its_level(self, lifecycle_records: tuple[logging.Logger, ListHandler]) -> None:
        """Each method, its alias and ``log()`` with a number write a record at their level."""
        logger, handler = lifecycle_records
        logger.setLevel(logging.DEBUG)
        log = stdlib_logger("lifecycle")
        log.debug("d")
        log.info("i")
        log.msg("m")
        log.warning("w")
        log.warn("w2")  # noqa: G010 - the alias is part of the logger's interface
        log.error("e")
        log.err("e2")
        log.critical("c")
        log.fatal("f")
        log.log(logging.WARNING, "l")
        log.log(25, "between")
        assert [(r.getMessage(), r.levelno) for r in handler.records] == [
            ("d", logging.DEBUG),
            ("i", logging.INFO),
            ("m", logging.INFO),
            ("w", logging.WARNING),
            ("w2", logging.WARNING),
            ("e", logging.ERROR),
            ("e2", logging.ERROR),
            ("c", logging.CRITICAL),
            ("f", logging.CRITICAL),
            ("l", logging.WARNING),
            ("between", logging.INFO),
        ]

    def test_log_with_a_filtered_number_builds_nothing(
        self, lifecycle_records: tuple[logging.Logger, ListHandler]
    ) -> None:
        """``log()`` checks the numeric level first, like the methods do."""
        _, handler = lifecycle_records
        value = Rendered()
        log = stdlib_logger("lifecycle")
        log.log(logging.INFO, "filtered", value=value)
        assert (value.count, handler.records) == (0, [])
        assert log.is_enabled_for(logging.WARNING)
        assert not log.is_enabled_for(logging.INFO)
        assert log.get_effective_level() == logging.WARNING

    def test_positional_arguments_are_interpolated(self, lifecycle_records: tuple[logging.Logger, ListHandler]) -> None:
        """As with structlog's own loggers, ``log.warning("a %s", x)`` interpolates."""
        _, handler = lifecycle_records
        stdlib_logger("lifecycle").warning("port %d taken", 8081)
        assert [r.getMessage() for r in handler.records] == ["port 8081 taken"]

    def test_exception_logs_the_exception_being_handled(
        self, lifecycle_records: tuple[logging.Logger, ListHandler]
    ) -> None:
        """``exception()`` is an ERROR with the exception being handled."""
        _, handler = lifecycle_records
        empty: dict[str, int] = {}
        try:
            empty["k"]
        except KeyError:
            stdlib_logger("lifecycle").exception("lookup.failed")
        [record] = handler.records
        assert record.levelno == logging.ERROR
        assert record.exc_info is not None
        assert record.exc_info[0] is KeyError

    def test_stack_info_reaches_the_record(self, lifecycle_records: tuple[logging.Logger, ListHandler]) -> None:
        """``stack_info=True`` asks the stdlib record for the stack."""
        _, handler = lifecycle_records
        stdlib_logger("lifecycle").warning("where.am.i", stack_info=True)
        [record] = handler.records
        assert record.stack_info is not None

    def test_log_follows_a_later_configuration(self) -> None:
        """``log()`` on a logger bound unconfigured goes to structlog once it is configured."""
        log = stdlib_logger("lifecycle").bind(component="app/db")
        with capture_logs() as logs:
            log.log(logging.INFO, "numbered")
        assert logs == [{"event": "numbered", "component": "app/db", "log_level": "info"}]

    async def test_the_async_methods_log_at_once(self, lifecycle_records: tuple[logging.Logger, ListHandler]) -> None:
        """The ``a*`` methods log synchronously, on every backend (no thread)."""
        logger, handler = lifecycle_records
        logger.setLevel(logging.DEBUG)
        log = stdlib_logger("lifecycle")
        await log.adebug("d")
        await log.ainfo("i")
        await log.awarning("w")
        await log.aerror("e")
        await log.acritical("c")
        await log.alog(logging.INFO, "l")
        try:
            int("v")
        except ValueError:
            await log.aexception("x")
        assert [r.getMessage() for r in handler.records] == ["d", "i", "w", "e", "c", "l", "x"]
        assert handler.records[-1].exc_info is not None

    def test_a_broken_value_does_not_raise(
        self, lifecycle_records: tuple[logging.Logger, ListHandler], capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A value whose repr raises is the guarded chain's business: the call returns, an error is reported."""
        _, handler = lifecycle_records

        class Broken:
            def __repr__(self) -> str:
                raise RuntimeError("no repr")

        safe_logger("lifecycle").error("broken.value", value=Broken())
        assert handler.records == []
        assert "broken.value" in capsys.readouterr().err


class TestRenderForStdlib:
    def test_the_message_is_the_event_then_its_context(self) -> None:
        """The record's message is the event name, then ``key=value``, quoted where needed."""
        args, kwargs = render_for_stdlib(None, "info", {"event": "tree.ready", "tree": "app", "why": "a b", "n": 3})
        assert args == ('tree.ready tree=app why="a b" n=3',)
        assert kwargs == {}

    def test_unprintable_characters_cannot_forge_a_line(self) -> None:
        """A newline or an escape sequence in a value is escaped: one event, one line."""
        args, _ = render_for_stdlib(None, "info", {"event": "x\n", "name": "a\nERROR:forged\x1b[2J"})
        [message] = args
        assert isinstance(message, str)
        assert "\n" not in message
        assert "\x1b" not in message


@pytest.mark.usefixtures("unconfigured")
class TestConfiguredStructlog:
    async def test_a_host_configuration_is_used_as_is(
        self, lifecycle_records: tuple[logging.Logger, ListHandler]
    ) -> None:
        """When the host configured structlog, the events go through its processors, not to the stdlib."""
        logger, handler = lifecycle_records
        logger.setLevel(logging.DEBUG)
        seen: list[str] = []

        def keep(_: object, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
            seen.append(str(event_dict["event"]))
            raise structlog.DropEvent

        structlog.configure(processors=[keep], wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG))
        await start_and_stop()
        assert {"tree.ready", "component.starting", "tree.stopped"} <= set(seen)
        assert handler.records == []

    async def test_a_filtered_debug_event_never_calls_the_processors(self) -> None:
        """With a filtering wrapper at INFO, the per-component debug events never reach a processor."""
        methods: list[str] = []

        def keep(_: object, method: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
            methods.append(method)
            raise structlog.DropEvent

        structlog.configure(processors=[keep], wrapper_class=structlog.make_filtering_bound_logger(logging.INFO))
        await start_and_stop()
        assert "info" in methods
        assert "debug" not in methods

    def test_a_module_logger_is_built_once_per_configuration(self) -> None:
        """safe_logger() reuses its bound logger until structlog's configuration changes, and follows capture_logs()."""
        seen: list[str] = []

        def keep(_: object, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
            seen.append(str(event_dict["event"]))
            raise structlog.DropEvent

        structlog.configure(processors=[keep], wrapper_class=structlog.make_filtering_bound_logger(logging.INFO))
        assert current_guarded("lifecycle.x") is current_guarded("lifecycle.x")
        log = safe_logger("lifecycle.x")
        log.debug("filtered")
        log.info("first")
        with capture_logs() as captured:  # changes the processor list in place
            log.info("captured")
        log.info("after")
        structlog.configure(processors=[keep], wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG))
        log.debug("debug now")
        assert seen == ["first", "after", "debug now"]
        assert [e["event"] for e in captured] == ["captured"]


RUN = """
    import logging
    import lifecycle

    async def app(ctx):
        ctx.ready()
        logging.getLogger("x").warning("from %s", "the standard library")

    lifecycle.run(app)
"""


@pytest.mark.real_time
class TestRunRendersStdlibRecords:
    def test_a_stdlib_warning_is_one_of_the_json_lines(self) -> None:
        """Under run(), a ``logging`` warning comes out as a JSON line beside the framework's events."""
        proc = run_script(RUN, LIFECYCLE_LOG_FORMAT="json")
        assert proc.returncode == 0, proc.stderr
        events = [json.loads(line) for line in proc.stderr.splitlines()]
        by_name = {event["event"]: event for event in events}
        assert {"tree.ready", "tree.stopped"} <= set(by_name)
        warning = by_name["from the standard library"]
        assert (warning["level"], warning["logger"]) == ("warning", "x")
        assert set(warning) >= {"timestamp"}
        assert by_name["tree.ready"]["timestamp"][:4] == warning["timestamp"][:4]

    def test_the_console_format_applies_to_stdlib_records_too(self) -> None:
        """With ``LIFECYCLE_LOG_FORMAT=console``, the record is a console line like the framework's events."""
        proc = run_script(RUN, LIFECYCLE_LOG_FORMAT="console")
        assert proc.returncode == 0, proc.stderr
        [line] = [line for line in proc.stderr.splitlines() if "from the standard library" in line]
        assert "warning" in line
        assert not line.startswith("WARNING:")
