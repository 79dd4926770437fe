"""Option checking: one kind of error for every bad option, naming the option and the value."""

from __future__ import annotations

import math
from collections.abc import Callable

import anyio
import attrs
import pytest

import lifecycle
from lifecycle import ConfigurationError, Phase
from lifecycle.lowlevel import Option
from lifecycle.testing import Fault, inject_fault
from supervisors import Backoff, Intensity, Supervisor


async def _noop() -> None:
    """A cleanup that does nothing."""


async def _answer() -> int:
    return 42


def _running(policy: object) -> None:
    async def main() -> None:
        async with lifecycle.running(Supervisor(), policy=policy):  # type: ignore[arg-type]
            pass

    anyio.run(main)


# (what is called, the option's name, the bad value)
BAD_OPTIONS: list[tuple[Callable[[object], object], str, object]] = [
    (lambda v: lifecycle.shielded(timeout=v), "timeout", "1"),  # type: ignore[arg-type]
    (lambda v: lifecycle.shielded(timeout=v), "timeout", True),  # type: ignore[arg-type]
    (lambda v: lifecycle.shielded(until=v), "until", 1),  # type: ignore[arg-type]
    (lambda v: lifecycle.cleanup_on_failure(_noop, timeout=v), "timeout", "1"),  # type: ignore[arg-type]
    (lambda v: lifecycle.on_failure(_noop, timeout=v), "timeout", True),  # type: ignore[arg-type]
    (lambda v: anyio.run(lambda: lifecycle.call_with_timeout(v, _answer)), "timeout", math.nan),  # type: ignore[call-overload]
    (lambda v: lifecycle.ShutdownPolicy(graceful=v), "graceful", "30"),  # type: ignore[arg-type]
    (lambda v: lifecycle.HealthServer(port=v), "port", "8081"),  # type: ignore[arg-type]
    (lambda v: lifecycle.HealthServer(host=v), "host", ""),  # type: ignore[arg-type]
    (lambda v: lifecycle.HealthServer(request_timeout=v), "request_timeout", math.inf),  # type: ignore[arg-type]
    (lambda v: lifecycle.StateFile("state.json", interval=v), "interval", True),  # type: ignore[arg-type]
    (lifecycle.ReadyOnPort, "port", True),  # type: ignore[list-item]
    (lambda v: lifecycle.ReadyOnLine("x", stream=v), "stream", "stdin"),  # type: ignore[arg-type]
    (lambda v: lifecycle.ProcessComponent(["true"], ready_timeout=v), "ready_timeout", "5"),  # type: ignore[arg-type]
    (lambda v: lifecycle.ProcessComponent(["true"], stdout_level=v), "stdout_level", "loud"),  # type: ignore[arg-type]
    (lambda v: lifecycle.scoped_env("A", v), "value", 1),  # type: ignore[arg-type]
    (lambda v: inject_fault("db", Fault.START, delay=v), "delay", "1"),  # type: ignore[arg-type]
    (lambda v: inject_fault("db", Fault.START, times=v), "times", 0),  # type: ignore[arg-type]
    (lambda v: Backoff(jitter=v), "jitter", 1),  # type: ignore[arg-type]
    (lambda v: Backoff(initial=v), "initial", "0.1"),  # type: ignore[arg-type]
    (lambda v: Intensity(max_restarts=v), "max_restarts", 1.5),  # type: ignore[arg-type]
    (lambda v: Supervisor(strategy=v), "strategy", "one_for_one"),  # type: ignore[arg-type]
    (lambda v: Supervisor().add(_noop, priority=v), "priority", "high"),  # type: ignore[arg-type]
    (lambda v: Supervisor().add(_noop, main=v), "main", 1),  # type: ignore[arg-type]
    (_running, "policy", 30),
]


class TestEveryOption:
    @pytest.mark.parametrize(
        ("call", "name", "value"), BAD_OPTIONS, ids=[f"{name}={value!r}" for _, name, value in BAD_OPTIONS]
    )
    def test_a_bad_value_is_a_configuration_error_naming_the_option_and_the_value(
        self, call: Callable[[object], object], name: str, value: object
    ) -> None:
        """Whatever the option and whatever is wrong with the value, the error is the same kind, and says both."""
        with pytest.raises(ConfigurationError) as excinfo:
            call(value)
        assert f"`{name}`" in str(excinfo.value)
        assert repr(value) in str(excinfo.value)


class TestOption:
    def test_check_returns_a_good_value(self) -> None:
        """check() hands a good value back unchanged."""
        assert Option.seconds().check("timeout", 1.5) == 1.5

    def test_the_message_names_the_owner_and_gives_the_hint(self) -> None:
        """The owner follows the option's name; the hint ends the sentence."""
        error = Option.error("depends_on", "db", "a sequence of names", owner="component 'api'", hint="write ('db',)")
        assert str(error) == "`depends_on` of component 'api' must be a sequence of names, got 'db'; write ('db',)."

    @pytest.mark.parametrize("value", [True, "1", math.nan, -1, None, 1j])
    def test_seconds_refuse_what_is_not_a_number_of_seconds(self, value: object) -> None:
        """A bool, a string, NaN, a negative number, None and a complex number are not seconds."""
        assert not Option.seconds().test(value)

    def test_finite_seconds_refuse_infinity(self) -> None:
        """math.inf is a number of seconds, but not a finite one."""
        assert Option.seconds().test(math.inf)
        assert not Option.seconds(finite=True).test(math.inf)

    def test_or_none_allows_none_and_says_so(self) -> None:
        """or_none() lets None through and adds it to the description."""
        option = Option.seconds().or_none()
        assert option.test(None)
        assert option.expected == "a non-negative number of seconds or None"

    def test_one_of_compares_types_too(self) -> None:
        """one_of() refuses 1 for True and True for 1."""
        assert not Option.one_of((True, False)).test(1)
        assert not Option.one_of((0, 1)).test(True)
        assert Option.one_of(("asyncio", "trio")).expected == "'asyncio' or 'trio'"

    def test_whole_numbers_have_bounds(self) -> None:
        """whole_number() checks its bounds and refuses bools and floats."""
        option = Option.whole_number(1, 3)
        assert [option.test(v) for v in (0, 1, 3, 4, True, 2.0)] == [False, True, True, False, False, False]
        assert option.expected == "an integer from 1 to 3"
        assert Option.whole_number(2).expected == "an integer of at least 2"

    def test_an_option_is_an_attrs_validator(self) -> None:
        """An Option validates an attrs field, naming the field."""

        @attrs.frozen
        class Limits:
            until: Phase = attrs.field(validator=Option.instance_of(Phase, "a lifecycle.Phase"))

        with pytest.raises(ConfigurationError, match=r"`until` must be a lifecycle\.Phase, got 'graceful'\."):
            Limits("graceful")  # type: ignore[arg-type]


def test_an_unknown_child_option_is_a_type_error() -> None:
    """A misspelt option of add() is refused like any unexpected keyword argument."""
    with pytest.raises(TypeError, match=r"add\(\) got an unexpected keyword argument 'nmae'"):
        Supervisor().add(_noop, nmae="db")  # type: ignore[call-arg]
