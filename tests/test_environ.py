from __future__ import annotations

import os
from collections.abc import Callable, Generator

import anyio
import pytest

import lifecycle
from lifecycle import ConfigurationError

FLAG = "LIFECYCLE_TEST_SCOPED_FLAG"


@pytest.fixture(autouse=True)
def _no_flag(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(FLAG, raising=False)


def leave_normally() -> None:
    with lifecycle.scoped_env(FLAG, "on"):
        assert os.environ[FLAG] == "on"


def leave_by_error() -> None:
    with pytest.raises(ValueError, match="boom"), lifecycle.scoped_env(FLAG, "on"):
        raise ValueError("boom")


def leave_by_keyboard_interrupt() -> None:
    with pytest.raises(KeyboardInterrupt), lifecycle.scoped_env(FLAG, "on"):
        raise KeyboardInterrupt


def leave_by_return() -> None:
    def inner() -> str:
        with lifecycle.scoped_env(FLAG, "on"):
            return os.environ[FLAG]

    assert inner() == "on"


def leave_by_break() -> None:
    for _ in range(3):
        with lifecycle.scoped_env(FLAG, "on"):
            break


def leave_by_generator_close() -> None:
    def gen() -> Generator[str, None, None]:
        with lifecycle.scoped_env(FLAG, "on"):
            yield os.environ[FLAG]
            yield "never"  # pragma: no cover - closed before

    it = gen()
    assert next(it) == "on"
    it.close()


SYNC_EXITS: list[Callable[[], None]] = [
    leave_normally,
    leave_by_error,
    leave_by_keyboard_interrupt,
    leave_by_return,
    leave_by_break,
    leave_by_generator_close,
]


class TestScopedEnv:
    @pytest.mark.parametrize("leave", SYNC_EXITS, ids=lambda f: f.__name__)
    def test_absent_variable_is_removed_again(self, leave: Callable[[], None]) -> None:
        """A variable that did not exist is removed on every way out of the block."""
        leave()
        assert FLAG not in os.environ

    @pytest.mark.parametrize("leave", SYNC_EXITS, ids=lambda f: f.__name__)
    def test_previous_value_is_restored(self, leave: Callable[[], None], monkeypatch: pytest.MonkeyPatch) -> None:
        """A variable that existed gets its previous value back on every way out, never deleted."""
        monkeypatch.setenv(FLAG, "before")
        leave()
        assert os.environ[FLAG] == "before"

    async def test_restored_on_cancellation(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """A block cancelled while awaiting restores the previous value."""
        monkeypatch.setenv(FLAG, "before")
        inside: list[str] = []
        with anyio.CancelScope() as scope:

            async def cancel_soon() -> None:
                await anyio.wait_all_tasks_blocked()
                scope.cancel()

            async with anyio.create_task_group() as tasks:
                tasks.start_soon(cancel_soon)
                with lifecycle.scoped_env(FLAG, "migrating"):
                    inside.append(os.environ[FLAG])
                    await anyio.sleep_forever()
        assert scope.cancelled_caught
        assert inside == ["migrating"]
        assert os.environ[FLAG] == "before"

    def test_none_removes_the_variable_inside(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """value=None removes the variable inside the block and restores it after."""
        monkeypatch.setenv(FLAG, "before")
        with lifecycle.scoped_env(FLAG, None):
            assert FLAG not in os.environ
        assert os.environ[FLAG] == "before"

    def test_default_value_is_one(self) -> None:
        """Without a value, the flag is set to "1"."""
        with lifecycle.scoped_env(FLAG) as scope:
            assert os.environ[FLAG] == "1"
        assert (scope.name, scope.value) == (FLAG, "1")

    def test_nested_blocks_restore_in_order(self) -> None:
        """Nested blocks on the same variable restore each outer value in turn."""
        with lifecycle.scoped_env(FLAG, "outer"):
            with lifecycle.scoped_env(FLAG, "inner"):
                assert os.environ[FLAG] == "inner"
            assert os.environ[FLAG] == "outer"
        assert FLAG not in os.environ

    @pytest.mark.parametrize(
        ("name", "value"),
        [("", "1"), ("A=B", "1"), (FLAG, 1), (FLAG, "a\0b"), (3, "1")],
    )
    def test_bad_name_or_value_is_refused(self, name: object, value: object) -> None:
        """Names and values that cannot be environment variables are refused before anything changes."""
        with pytest.raises(ConfigurationError, match="must be"):
            lifecycle.scoped_env(name, value)  # type: ignore[arg-type]

    def test_entering_twice_is_an_error(self) -> None:
        """A block object is used once; entering it again says to make a new one."""
        scope = lifecycle.scoped_env(FLAG)
        with scope:
            pass
        with pytest.raises(lifecycle.UsageError, match="already entered"), scope:
            pass  # pragma: no cover
        assert FLAG not in os.environ
