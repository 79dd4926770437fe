"""Supervision options: Strategy, Restart, Intensity, Backoff."""

from __future__ import annotations

import math

import attrs
import pytest

from lifecycle import ConfigurationError, Context
from supervisors import AutoShutdown, Backoff, Intensity, Restart, Strategy, Supervisor

BAD_NUMBERS: list[object] = [-1, -0.5, math.nan, -math.inf, "1", None, True, False]


async def idle(ctx: Context) -> None:
    ctx.ready()


class TestStrategy:
    def test_members_keep_otp_names(self) -> None:
        """The strategies are ONE_FOR_ONE, ONE_FOR_ALL and REST_FOR_ONE."""
        assert [s.name for s in Strategy] == ["ONE_FOR_ONE", "ONE_FOR_ALL", "REST_FOR_ONE"]

    def test_supervisor_defaults_to_one_for_one(self) -> None:
        """A supervisor without a strategy uses ONE_FOR_ONE."""
        assert Supervisor().strategy is Strategy.ONE_FOR_ONE

    @pytest.mark.parametrize("value", ["one_for_one", None, 0])
    def test_supervisor_rejects_a_non_strategy(self, value: object) -> None:
        """A strategy that is not a Strategy member is a ConfigurationError naming `strategy`."""
        with pytest.raises(ConfigurationError, match=r"`strategy`"):
            Supervisor(strategy=value)  # type: ignore[arg-type]


class TestRestart:
    def test_members_keep_otp_names(self) -> None:
        """The restart types are PERMANENT, TRANSIENT and TEMPORARY."""
        assert [r.name for r in Restart] == ["PERMANENT", "TRANSIENT", "TEMPORARY"]

    def test_children_default_to_permanent(self) -> None:
        """A child registered without `restart` is PERMANENT."""
        sup = Supervisor()
        sup.add(idle, name="a")
        assert sup.restart_of("a") is Restart.PERMANENT

    def test_child_keeps_its_restart_type(self) -> None:
        """The restart type given at registration is recorded for the child."""
        sup = Supervisor()
        sup.add(idle, name="a", restart=Restart.TEMPORARY)
        assert sup.restart_of("a") is Restart.TEMPORARY

    @pytest.mark.parametrize("value", ["permanent", None, True])
    def test_rejects_a_non_restart(self, value: object) -> None:
        """A restart that is not a Restart member is a ConfigurationError naming `restart` and the child."""
        sup = Supervisor()
        with pytest.raises(ConfigurationError, match=r"`restart` of component 'a'"):
            sup.add(idle, name="a", restart=value)  # type: ignore[arg-type]


class TestAutoShutdown:
    def test_members_keep_otp_names(self) -> None:
        """The choices are OTP's never, any_significant and all_significant."""
        assert [a.value for a in AutoShutdown] == ["never", "any_significant", "all_significant"]

    def test_supervisor_defaults_to_any_significant(self) -> None:
        """A supervisor without `auto_shutdown` stops when any `main` child returns."""
        assert Supervisor().auto_shutdown is AutoShutdown.ANY_SIGNIFICANT

    @pytest.mark.parametrize("value", ["never", None, True])
    def test_supervisor_rejects_a_non_auto_shutdown(self, value: object) -> None:
        """An auto_shutdown that is not an AutoShutdown member is a ConfigurationError naming it."""
        with pytest.raises(ConfigurationError, match=r"`auto_shutdown` of supervisor 'root' must be a supervisors"):
            Supervisor(auto_shutdown=value)  # type: ignore[arg-type]

    def test_never_refuses_main_children(self) -> None:
        """With NEVER, a `main=True` child is a ConfigurationError at once (OTP's bad_combination)."""
        sup = Supervisor(auto_shutdown=AutoShutdown.NEVER)
        sup.add(idle, name="a")
        with pytest.raises(ConfigurationError, match=r"`auto_shutdown=AutoShutdown.NEVER`, so its child 'b'"):
            sup.add(idle, name="b", main=True)
        assert [c.name for c in sup.children] == ["a"]


class TestIntensity:
    def test_defaults(self) -> None:
        """Intensity() allows 3 restarts within 5 seconds."""
        assert (Intensity().max_restarts, Intensity().within) == (3, 5.0)

    def test_supervisor_default(self) -> None:
        """A supervisor without an intensity uses Intensity()."""
        assert Supervisor().intensity == Intensity()

    @pytest.mark.parametrize("value", [0, 1, 1000])
    def test_accepts_whole_numbers(self, value: int) -> None:
        """Zero and positive ints are valid restart counts."""
        assert Intensity(max_restarts=value).max_restarts == value

    @pytest.mark.parametrize("value", [-1, 1.5, 3.0, "3", None, True])
    def test_rejects_bad_max_restarts(self, value: object) -> None:
        """A negative, fractional, non-int or bool count is a ConfigurationError naming `max_restarts`."""
        with pytest.raises(ConfigurationError) as excinfo:
            Intensity(max_restarts=value)  # type: ignore[arg-type]
        assert "`max_restarts`" in str(excinfo.value)
        assert repr(value) in str(excinfo.value)

    @pytest.mark.parametrize("value", [0, 0.5, 60, math.inf])
    def test_accepts_non_negative_windows(self, value: float) -> None:
        """Zero, positive and infinite windows are valid."""
        assert Intensity(within=value).within == value

    @pytest.mark.parametrize("value", BAD_NUMBERS)
    def test_rejects_bad_within(self, value: object) -> None:
        """A negative, NaN, non-number or bool window is a ConfigurationError naming `within`."""
        with pytest.raises(ConfigurationError, match=r"`within`"):
            Intensity(within=value)  # type: ignore[arg-type]

    def test_supervisor_rejects_a_non_intensity(self) -> None:
        """A supervisor's `intensity` must be an Intensity."""
        with pytest.raises(ConfigurationError, match=r"`intensity`"):
            Supervisor(intensity=(3, 5.0))  # type: ignore[arg-type]

    def test_is_a_frozen_value(self) -> None:
        """Intensities are immutable and compare by value."""
        assert Intensity(2, 1.0) == Intensity(max_restarts=2, within=1.0)
        with pytest.raises(attrs.exceptions.FrozenInstanceError):
            Intensity().within = 1.0  # type: ignore[misc]


class TestBackoff:
    def test_defaults(self) -> None:
        """Backoff() starts at 0.1s, doubles, caps at 30s, with full jitter."""
        backoff = Backoff()
        assert (backoff.initial, backoff.maximum, backoff.multiplier, backoff.jitter) == (0.1, 30.0, 2.0, True)

    def test_supervisor_default(self) -> None:
        """A supervisor without a backoff uses Backoff()."""
        assert Supervisor().backoff == Backoff()

    def test_accepts_constant_delays(self) -> None:
        """multiplier=1 with maximum == initial is a constant delay."""
        backoff = Backoff(initial=2, maximum=2, multiplier=1, jitter=False)
        assert (backoff.initial, backoff.maximum, backoff.multiplier) == (2, 2, 1)

    def test_accepts_no_delay(self) -> None:
        """Zero initial and maximum delays are valid (restart at once)."""
        assert Backoff(initial=0, maximum=0).maximum == 0

    def test_accepts_an_infinite_cap(self) -> None:
        """math.inf as maximum means no cap."""
        assert Backoff(maximum=math.inf).maximum == math.inf

    @pytest.mark.parametrize("field", ["initial", "maximum", "multiplier"])
    @pytest.mark.parametrize("value", BAD_NUMBERS)
    def test_rejects_bad_numbers(self, field: str, value: object) -> None:
        """A negative, NaN, non-number or bool field is a ConfigurationError naming the field."""
        with pytest.raises(ConfigurationError, match=rf"`{field}`"):
            Backoff(**{field: value})  # type: ignore[arg-type]

    @pytest.mark.parametrize("value", [0, 0.5, 0.999])
    def test_rejects_shrinking_multiplier(self, value: float) -> None:
        """A multiplier below 1 is a ConfigurationError naming `multiplier` and the value."""
        with pytest.raises(ConfigurationError, match=rf"`multiplier` must be at least 1, got {value!r}"):
            Backoff(multiplier=value)

    def test_rejects_maximum_below_initial(self) -> None:
        """A cap smaller than the first delay is a ConfigurationError naming `maximum` and `initial`."""
        with pytest.raises(ConfigurationError) as excinfo:
            Backoff(initial=5, maximum=1)
        assert "`maximum`" in str(excinfo.value)
        assert "`initial`" in str(excinfo.value)

    def test_errors_are_value_errors(self) -> None:
        """A bad backoff can be caught as ValueError."""
        with pytest.raises(ValueError, match="initial"):
            Backoff(initial=-1)

    def test_rejects_non_bool_jitter(self) -> None:
        """A jitter that is not True or False is a ConfigurationError naming `jitter`."""
        with pytest.raises(ConfigurationError, match=r"`jitter`"):
            Backoff(jitter="no")  # type: ignore[arg-type]

    def test_supervisor_rejects_a_non_backoff(self) -> None:
        """A supervisor's `backoff` must be a Backoff."""
        with pytest.raises(ConfigurationError, match=r"`backoff`"):
            Supervisor(backoff=0.1)  # type: ignore[arg-type]
