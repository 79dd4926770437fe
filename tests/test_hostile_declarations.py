"""Hostile declarations: names that could forge output, wrong-typed options, overflowing budgets, fuzzing."""

from __future__ import annotations

import io
import math
from typing import Any

import pytest
import structlog
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import lifecycle
from lifecycle import ConfigurationError, Priority, ShutdownPolicy
from lifecycle._core._settings import GRACEFUL_TIMEOUT
from lifecycle._core._validation import escape_unprintable
from lifecycle._host._logging_setup import escape_controls
from supervisors import Backoff, Intensity, Restart, Strategy, Supervisor


async def job(ctx: lifecycle.Context) -> None:
    """A component body, never run here."""
    ctx.ready()


class TestNames:
    @pytest.mark.parametrize("bad", ["db\nlifecycle: forged", "nul\0byte", "esc\x1b[2J", "tab\there", "line\u2028sep"])
    def test_unprintable_component_name_is_refused_naming_the_character(self, bad: str) -> None:
        """A component name with a control or separator character is a ConfigurationError naming that character."""
        sup = Supervisor(name="app")
        with pytest.raises(ConfigurationError) as excinfo:
            sup.add(job, name=bad)
        char = next(c for c in bad if not c.isprintable())
        assert repr(char) in str(excinfo.value)
        assert "\n" not in str(excinfo.value)

    def test_unprintable_dependency_name_is_refused(self) -> None:
        """A depends_on entry with a newline is refused like a name."""
        with pytest.raises(ConfigurationError, match="unprintable"):
            Supervisor(name="app").add(job, name="api", depends_on=("db\n",))

    @pytest.mark.parametrize("bad", ["app\n", "a\0", "x\x7f"])
    def test_unprintable_supervisor_name_is_refused(self, bad: str) -> None:
        """A supervisor name with an unprintable character is a ConfigurationError."""
        with pytest.raises(ConfigurationError, match="unprintable"):
            Supervisor(name=bad)

    @pytest.mark.parametrize("good", ["db", "api v2", "café", "数据库", "a-b.c:d"])
    def test_printable_names_are_accepted(self, good: str) -> None:
        """Spaces, punctuation and any printable Unicode are fine."""
        Supervisor(name="app").add(job, name=good)


class TestEscaping:
    def test_escape_keeps_printable_text_as_is(self) -> None:
        """Printable text comes back unchanged."""
        text = "app/db: ready"
        assert escape_unprintable(text) is text

    def test_escape_writes_control_characters_as_escapes(self) -> None:
        """Newline, NUL and escape become visible escapes; kept characters stay."""
        assert escape_unprintable("a\nb\0c\x1b") == "a\\nb\\x00c\\x1b"
        assert escape_unprintable("a\nb\0", keep="\n") == "a\nb\\x00"

    def test_console_processor_escapes_event_keys_and_values(self) -> None:
        """The console renderer's escaping processor makes a forged line harmless; tracebacks stay multi-line."""
        out = escape_controls(
            None, "info", {"event": "x\nfake.event", "reason": "a\x1b[31m", "k\n": 1, "exception": "Traceback\n  ..."}
        )
        assert out == {"event": "x\\nfake.event", "reason": "a\\x1b[31m", "k\\n": 1, "exception": "Traceback\n  ..."}

    def test_console_log_line_cannot_be_forged(self) -> None:
        """Through the console renderer, a value with a newline stays on one line."""
        stream = io.StringIO()
        structlog.configure(
            processors=[escape_controls, structlog.dev.ConsoleRenderer(colors=False)],
            logger_factory=structlog.PrintLoggerFactory(stream),
        )
        try:
            structlog.get_logger().info("job.done", detail="ok\n2026-01-01 [error] forged")
        finally:
            structlog.reset_defaults()
        assert stream.getvalue().count("\n") == 1

    def test_cli_error_line_is_escaped(self, capsys: pytest.CaptureFixture[str]) -> None:
        """The CLI's error line shows control characters escaped."""
        from lifecycle._host._cli import _error  # noqa: PLC0415 - the one private helper under test

        _error("bad\nlifecycle: error: forged")
        assert capsys.readouterr().err == "lifecycle: error: bad\\nlifecycle: error: forged\n"


class TestOptions:
    @pytest.mark.parametrize("bad", [True, False, 2.0, 1.5, -1, 5, "HIGH", None])
    def test_priority_must_be_a_member_or_a_plain_int(self, bad: object) -> None:
        """Booleans, floats, out-of-range ints and names are not priorities."""
        with pytest.raises(ConfigurationError, match="priority"):
            Supervisor(name="app").add(job, name="x", priority=bad)  # type: ignore[arg-type]

    @pytest.mark.parametrize(
        ("value", "member"), [(Priority.HIGH, Priority.HIGH), (0, Priority.CRITICAL), (4, Priority.LOWEST)]
    )
    def test_priority_members_and_plain_ints_are_accepted(self, value: object, member: Priority) -> None:
        """A Priority member or a plain int from 0 to 4 is accepted, as that member."""
        spec = lifecycle.ComponentSpec.from_target(job, name="x", priority=value)  # type: ignore[arg-type]
        assert spec.priority is member

    @pytest.mark.parametrize(
        "bad",
        [10**400, -(10**400), math.nan, -1, -0.5, "1", True],
        ids=["1e400", "-1e400", "nan", "-1", "-0.5", "str", "bool"],
    )
    @pytest.mark.parametrize("field", ["graceful", "forceful", "terminate"])
    def test_budget_overflow_nan_negative_are_configuration_errors(self, field: str, bad: object) -> None:
        """No OverflowError: a budget too large for a float, NaN or negative is a ConfigurationError."""
        with pytest.raises(ConfigurationError, match=field):
            ShutdownPolicy(**{field: bad})  # type: ignore[arg-type]

    def test_explicit_infinity_stays_valid(self) -> None:
        """math.inf from code still means no deadline."""
        assert ShutdownPolicy(graceful=math.inf).total == math.inf

    @pytest.mark.parametrize(
        "raw", ["1e309", "-1e309", "9" * 400, "nan", "-inf"], ids=["1e309", "-1e309", "9x400", "nan", "-inf"]
    )
    def test_environment_values_that_overflow_are_refused(self, raw: str) -> None:
        """LIFECYCLE_GRACEFUL_TIMEOUT=1e309 is a ConfigurationError naming the variable and the value, not infinity."""
        with pytest.raises(ConfigurationError) as excinfo:
            GRACEFUL_TIMEOUT.read({"LIFECYCLE_GRACEFUL_TIMEOUT": raw})
        assert f"LIFECYCLE_GRACEFUL_TIMEOUT={raw!r}" in str(excinfo.value)

    @pytest.mark.parametrize("raw", ["inf", "Infinity", "+inf"])
    def test_environment_may_say_inf_in_words(self, raw: str) -> None:
        """Only the words inf and infinity mean no deadline."""
        assert GRACEFUL_TIMEOUT.read({"LIFECYCLE_GRACEFUL_TIMEOUT": raw}) == math.inf

    def test_from_env_refuses_overflow(self) -> None:
        """ShutdownPolicy.from_env() refuses 1e309 with the variable's name."""
        with pytest.raises(ConfigurationError, match="LIFECYCLE_FORCEFUL_TIMEOUT='1e309'"):
            ShutdownPolicy.from_env({"LIFECYCLE_FORCEFUL_TIMEOUT": "1e309"})


# -- fuzzing ---------------------------------------------------------------------------------------

anything: st.SearchStrategy[Any] = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**500), max_value=10**500),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=6),
    st.binary(max_size=4),
    st.sampled_from(list(Priority) + list(Restart) + list(Strategy)),
    st.tuples(st.text(max_size=3)),
    st.lists(st.integers(), max_size=2),
    st.builds(object),
)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(
    sup_name=st.one_of(st.text(max_size=6), anything),
    children=st.lists(
        st.fixed_dictionaries(
            {},
            optional={
                "name": st.one_of(st.text(max_size=6), anything),
                "depends_on": st.one_of(st.lists(st.text(max_size=4), max_size=3).map(tuple), anything),
                "priority": anything,
                "restart": anything,
                "main": anything,
                "policy": st.one_of(anything, st.builds(ShutdownPolicy)),
            },
        ),
        max_size=4,
    ),
)
def test_fuzzed_declarations_end_in_success_or_configuration_error(
    sup_name: object, children: list[dict[str, Any]]
) -> None:
    """Random specs and random, wrongly typed values: success or ConfigurationError, never another exception."""
    try:
        sup = Supervisor(name=sup_name)  # type: ignore[arg-type]
        for options in children:
            sup.add(job, **options)
        sup.validate_tree()
    except ConfigurationError:
        pass


@settings(max_examples=300, deadline=None)
@given(
    kind=st.sampled_from(["policy", "intensity", "backoff", "env"]),
    values=st.lists(st.one_of(anything, st.text(max_size=8)), min_size=1, max_size=4),
)
def test_fuzzed_options_end_in_success_or_configuration_error(kind: str, values: list[Any]) -> None:
    """Policies, intensities, backoffs and settings from random values: success or ConfigurationError only."""
    try:
        if kind == "policy":
            ShutdownPolicy(*values[:3])
        elif kind == "intensity":
            Intensity(*values[:2])
        elif kind == "backoff":
            Backoff(*values[:4])
        else:
            ShutdownPolicy.from_env({"LIFECYCLE_GRACEFUL_TIMEOUT": str(values[0])})
    except ConfigurationError:
        pass
