"""Priorities, phases and shutdown budgets (ShutdownPolicy)."""

from __future__ import annotations

import math

import attrs
import pytest
from hypothesis import given, settings
from strategies import shutdown_policies

from lifecycle import ConfigurationError, Phase, Priority, ShutdownPolicy

GRACEFUL_VAR = "LIFECYCLE_GRACEFUL_TIMEOUT"
FORCEFUL_VAR = "LIFECYCLE_FORCEFUL_TIMEOUT"
TERMINATE_VAR = "LIFECYCLE_TERMINATE_TIMEOUT"
VARIABLES = {"graceful": GRACEFUL_VAR, "forceful": FORCEFUL_VAR, "terminate": TERMINATE_VAR}
FIELDS = ("graceful", "forceful", "terminate")


class TestPriority:
    def test_smaller_is_more_important(self) -> None:
        """Priorities order CRITICAL < HIGH < NORMAL < LOW < LOWEST."""
        assert sorted(Priority, reverse=True) == [
            Priority.LOWEST,
            Priority.LOW,
            Priority.NORMAL,
            Priority.HIGH,
            Priority.CRITICAL,
        ]

    def test_values_are_zero_to_four(self) -> None:
        """CRITICAL=0, HIGH=1, NORMAL=2, LOW=3, LOWEST=4."""
        assert {p.name: p.value for p in Priority} == {
            "CRITICAL": 0,
            "HIGH": 1,
            "NORMAL": 2,
            "LOW": 3,
            "LOWEST": 4,
        }

    def test_is_an_int_enum(self) -> None:
        """Priorities compare with plain ints, so min() gives the most important."""
        assert isinstance(Priority.NORMAL, int)
        assert min(Priority.LOW, Priority.HIGH) is Priority.HIGH


class TestPhase:
    def test_phases_escalate_in_order(self) -> None:
        """GRACEFUL < FORCEFUL < TERMINATE, and iteration follows that order."""
        assert list(Phase) == [Phase.GRACEFUL, Phase.FORCEFUL, Phase.TERMINATE]
        assert Phase.GRACEFUL < Phase.FORCEFUL < Phase.TERMINATE

    def test_phases_index_from_zero(self) -> None:
        """Phases are the ints 0, 1 and 2, usable as indices."""
        assert [int(p) for p in Phase] == [0, 1, 2]


class TestDefaults:
    def test_defaults_are_thirty_ten_five(self) -> None:
        """The default budgets are graceful=30, forceful=10, terminate=5 seconds."""
        policy = ShutdownPolicy()
        assert (policy.graceful, policy.forceful, policy.terminate) == (30.0, 10.0, 5.0)

    def test_total_is_the_sum_of_the_budgets(self) -> None:
        """total is graceful + forceful + terminate."""
        assert ShutdownPolicy().total == 45.0
        assert ShutdownPolicy(1, 2.5, 3).total == 6.5

    def test_is_frozen(self) -> None:
        """A policy is an immutable value."""
        policy = ShutdownPolicy()
        with pytest.raises(attrs.exceptions.FrozenInstanceError):
            policy.graceful = 1.0  # type: ignore[misc]

    def test_equal_budgets_are_equal_policies(self) -> None:
        """Policies compare and hash by value."""
        assert ShutdownPolicy(1, 2, 3) == ShutdownPolicy(1.0, 2.0, 3.0)
        assert hash(ShutdownPolicy(1, 2, 3)) == hash(ShutdownPolicy(1.0, 2.0, 3.0))


class TestOffset:
    def test_offsets_are_cumulative(self) -> None:
        """Each phase ends at the sum of its budget and those before it."""
        policy = ShutdownPolicy(graceful=30, forceful=10, terminate=5)
        assert policy.offset(Phase.GRACEFUL) == 30
        assert policy.offset(Phase.FORCEFUL) == 40
        assert policy.offset(Phase.TERMINATE) == 45

    def test_infinite_graceful_means_no_later_deadline(self) -> None:
        """With an infinite graceful budget every phase end is infinite."""
        policy = ShutdownPolicy(graceful=math.inf)
        assert [policy.offset(p) for p in Phase] == [math.inf] * 3
        assert policy.total == math.inf

    @settings(max_examples=200)
    @given(shutdown_policies())
    def test_offsets_never_decrease(self, policy: ShutdownPolicy) -> None:
        """Phase ends are non-decreasing, and TERMINATE ends at total."""
        ends = [policy.offset(p) for p in Phase]
        assert ends == sorted(ends)
        assert ends[-1] == policy.total


class TestValidation:
    @pytest.mark.parametrize("field", FIELDS)
    @pytest.mark.parametrize("value", [0, 0.0, 2.5, 7, math.inf])
    def test_accepts_non_negative_numbers_and_inf(self, field: str, value: float) -> None:
        """Zero, positive ints and floats, and math.inf are valid budgets."""
        policy = ShutdownPolicy(**{field: value})
        assert getattr(policy, field) == value

    @pytest.mark.parametrize("field", FIELDS)
    @pytest.mark.parametrize("value", [-1, -0.001, -math.inf])
    def test_rejects_negative_budget(self, field: str, value: float) -> None:
        """A negative budget is a ConfigurationError naming the field in backticks and the value."""
        with pytest.raises(ConfigurationError) as excinfo:
            ShutdownPolicy(**{field: value})
        assert f"`{field}`" in str(excinfo.value)
        assert repr(value) in str(excinfo.value)

    @pytest.mark.parametrize("field", FIELDS)
    def test_rejects_nan(self, field: str) -> None:
        """NaN is not a budget."""
        with pytest.raises(ConfigurationError, match=rf"`{field}`.*nan"):
            ShutdownPolicy(**{field: math.nan})

    @pytest.mark.parametrize("field", FIELDS)
    @pytest.mark.parametrize("value", ["30", None, [1], 1j])
    def test_rejects_non_numbers(self, field: str, value: object) -> None:
        """A string, None, a list or a complex number is a ConfigurationError."""
        with pytest.raises(ConfigurationError, match=rf"`{field}` must be a number of seconds"):
            ShutdownPolicy(**{field: value})  # type: ignore[arg-type]

    @pytest.mark.parametrize("field", FIELDS)
    @pytest.mark.parametrize("value", [True, False])
    def test_rejects_bool(self, field: str, value: bool) -> None:
        """A bool is not a number of seconds, even though it is an int."""
        with pytest.raises(ConfigurationError, match=rf"`{field}`.*{value}"):
            ShutdownPolicy(**{field: value})

    def test_error_is_a_value_error(self) -> None:
        """A bad budget can be caught as ValueError."""
        with pytest.raises(ValueError, match="graceful"):
            ShutdownPolicy(graceful=-1)


class TestFromEnv:
    def test_empty_environment_gives_defaults(self) -> None:
        """No variables set gives the default policy."""
        assert ShutdownPolicy.from_env({}) == ShutdownPolicy()

    @pytest.mark.parametrize("field", FIELDS)
    def test_each_variable_sets_its_budget(self, field: str) -> None:
        """Each LIFECYCLE_*_TIMEOUT variable sets its own budget and leaves the others at default."""
        policy = ShutdownPolicy.from_env({VARIABLES[field]: "2.5"})
        assert policy == attrs.evolve(ShutdownPolicy(), **{field: 2.5})

    def test_all_variables_together(self) -> None:
        """All three variables apply at once."""
        env = {GRACEFUL_VAR: "1", FORCEFUL_VAR: "2", TERMINATE_VAR: "3"}
        assert ShutdownPolicy.from_env(env) == ShutdownPolicy(1, 2, 3)

    @pytest.mark.parametrize("raw", ["", "   ", "\t"])
    @pytest.mark.parametrize("field", FIELDS)
    def test_empty_value_keeps_the_default(self, field: str, raw: str) -> None:
        """An empty (or blank) variable is treated as unset."""
        assert ShutdownPolicy.from_env({VARIABLES[field]: raw}) == ShutdownPolicy()

    def test_surrounding_whitespace_is_ignored(self) -> None:
        """A value padded with whitespace is read as the number inside."""
        assert ShutdownPolicy.from_env({GRACEFUL_VAR: " 12 \n"}).graceful == 12.0

    @pytest.mark.parametrize("raw", ["inf", "Infinity"])
    def test_infinity_is_allowed(self, raw: str) -> None:
        """ "inf" means no deadline for that phase."""
        assert ShutdownPolicy.from_env({FORCEFUL_VAR: raw}).forceful == math.inf

    def test_zero_is_allowed(self) -> None:
        """A zero budget skips the phase."""
        assert ShutdownPolicy.from_env({GRACEFUL_VAR: "0"}).graceful == 0.0

    @pytest.mark.parametrize("raw", ["-1", "-0.5", "abc", "nan", "NaN", "30s", "-inf"])
    @pytest.mark.parametrize("field", FIELDS)
    def test_bad_value_names_variable_and_value(self, field: str, raw: str) -> None:
        """A negative, NaN or non-numeric value is a ConfigurationError naming the variable and the value."""
        variable = VARIABLES[field]
        with pytest.raises(ConfigurationError) as excinfo:
            ShutdownPolicy.from_env({variable: raw})
        message = str(excinfo.value)
        assert variable in message
        assert repr(raw) in message

    def test_bad_value_is_never_ignored_when_others_are_good(self) -> None:
        """One bad variable fails the whole policy, even when the others are valid."""
        env = {GRACEFUL_VAR: "10", FORCEFUL_VAR: "10", TERMINATE_VAR: "soon"}
        with pytest.raises(ConfigurationError, match=TERMINATE_VAR):
            ShutdownPolicy.from_env(env)

    def test_unrelated_variables_are_ignored(self) -> None:
        """Only the three LIFECYCLE_*_TIMEOUT variables are read."""
        env = {"LIFECYCLE_TIMEOUT": "abc", "GRACEFUL_TIMEOUT": "-1"}
        assert ShutdownPolicy.from_env(env) == ShutdownPolicy()

    def test_reads_os_environ_by_default(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Without a mapping, from_env() reads the process environment."""
        monkeypatch.setenv(GRACEFUL_VAR, "3")
        monkeypatch.delenv(FORCEFUL_VAR, raising=False)
        monkeypatch.delenv(TERMINATE_VAR, raising=False)
        assert ShutdownPolicy.from_env() == ShutdownPolicy(graceful=3)

    def test_bad_os_environ_value_is_an_error(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """A bad value in the process environment is reported, not silently ignored."""
        monkeypatch.setenv(FORCEFUL_VAR, "ten")
        with pytest.raises(ConfigurationError, match=rf"{FORCEFUL_VAR}='ten'"):
            ShutdownPolicy.from_env()
