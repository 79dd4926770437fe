"""The LIFECYCLE_* settings: one table, read in one place, documented once, printed by `lifecycle check`."""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

import pytest

from lifecycle import ConfigurationError, ShutdownPolicy
from lifecycle._core._settings import (
    GRACE_PERIOD,
    LOG_FORMAT,
    LOG_LEVEL,
    SETTINGS,
    STARTUP_PROGRESS_INTERVAL,
    Setting,
    effective,
)
from lifecycle._host._cli import main

ROOT = Path(__file__).resolve().parent.parent


class TestReading:
    def test_unset_or_blank_takes_the_default(self) -> None:
        """A variable that is unset, empty or only blanks takes its default."""
        for environ in ({}, {"LIFECYCLE_STARTUP_PROGRESS_INTERVAL": ""}, {"LIFECYCLE_STARTUP_PROGRESS_INTERVAL": " "}):
            assert STARTUP_PROGRESS_INTERVAL.read(environ) == 5.0
        assert GRACE_PERIOD.read({}) is None

    def test_values_are_parsed(self) -> None:
        """Seconds, a log format and a log level are read from their text."""
        assert GRACE_PERIOD.read({"LIFECYCLE_GRACE_PERIOD": " 45 "}) == 45.0
        assert LOG_FORMAT.read({"LIFECYCLE_LOG_FORMAT": "JSON"}) == "json"
        assert LOG_LEVEL.read({"LIFECYCLE_LOG_LEVEL": "debug"}) == logging.DEBUG

    @pytest.mark.parametrize("setting", SETTINGS, ids=lambda s: s.variable)
    def test_a_bad_value_is_a_configuration_error_naming_the_variable(self, setting: Setting[Any]) -> None:
        """Every variable refuses a value that does not parse, naming itself and the value."""
        variable = setting.variable
        with pytest.raises(ConfigurationError) as excinfo:
            setting.read({variable: "-5s"})
        assert f"{variable}='-5s'" in str(excinfo.value)

    def test_the_policy_defaults_are_the_settings_defaults(self) -> None:
        """ShutdownPolicy() and ShutdownPolicy.from_env({}) agree."""
        assert ShutdownPolicy.from_env({}) == ShutdownPolicy()

    def test_effective_marks_what_the_environment_sets(self) -> None:
        """effective() shows each value and whether the environment set it."""
        rows = {variable: (value, is_set) for variable, value, is_set in effective({"LIFECYCLE_LOG_LEVEL": "ERROR"})}
        assert rows["LIFECYCLE_LOG_LEVEL"] == ("error", True)
        assert rows["LIFECYCLE_GRACEFUL_TIMEOUT"] == ("30", False)
        assert list(rows) == [s.variable for s in SETTINGS]


class TestOneTable:
    def test_the_package_reads_no_variable_outside_the_settings_module(self) -> None:
        """No other module of either package names a LIFECYCLE_* variable in code (docstrings aside)."""
        found = []
        for path in [*ROOT.glob("lifecycle/**/*.py"), *ROOT.glob("supervisors/**/*.py")]:
            if path.name == "_settings.py":
                continue
            for number, line in enumerate(path.read_text().splitlines(), 1):
                if re.search(r"""["']LIFECYCLE_[A-Z_]+["']""", line):
                    found.append(f"{path.relative_to(ROOT)}:{number}")
        assert found == []

    def test_the_docs_table_lists_every_setting_once(self) -> None:
        """docs/running.rst's table of environment variables has one row per setting, in order."""
        page = (ROOT / "docs" / "running.rst").read_text(encoding="utf-8")
        table = page.split(".. _settings:", 1)[1].split(".. _logging:", 1)[0]
        rows = re.findall(r"^   \* - ``(LIFECYCLE_[A-Z_]+)``\n     - (.+)$", table, re.MULTILINE)
        assert rows == [(s.variable, s.show(s.default)) for s in SETTINGS]


def test_check_prints_the_settings_in_effect(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`lifecycle check` ends with every setting, marking the defaults."""
    monkeypatch.setenv("LIFECYCLE_GRACE_PERIOD", "60")
    assert main(["check", "examples.wrap_entrypoint:tree"]) == 0
    settings = capsys.readouterr().out.split("Settings (LIFECYCLE_* environment variables):\n", 1)[1]
    assert "  LIFECYCLE_GRACE_PERIOD               60\n" in settings
    assert "  LIFECYCLE_LOG_LEVEL                  info (default)\n" in settings


def test_check_refuses_a_bad_setting(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """A variable that does not parse makes `lifecycle check` exit 2, naming it."""
    monkeypatch.setenv("LIFECYCLE_BLOCKED_LOOP_THRESHOLD", "soon")
    assert main(["check", "examples.wrap_entrypoint:tree"]) == 2
    assert "LIFECYCLE_BLOCKED_LOOP_THRESHOLD='soon'" in capsys.readouterr().err
