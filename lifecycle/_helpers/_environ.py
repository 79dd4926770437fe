"""An environment variable set for the length of a block, always restored."""

from __future__ import annotations

import os
from types import TracebackType
from typing import final

from lifecycle._core._errors import UsageError
from lifecycle._core._validation import Option

__all__ = ["EnvironScope", "scoped_env"]

_UNSET = object()


_NAME = Option.text(forbidden="=\0", expected="a non-empty environment variable name without '='")


@final
class EnvironScope:
    """
    A ``with`` block that sets one environment variable and restores it on exit.

    Made by :func:`scoped_env`; see there. Usable once.

    Attributes:
        name: The variable.

        value: The value set inside the block (``None``: removed inside it).
    """

    __slots__ = ("_previous", "name", "value")

    def __init__(self, name: str, value: str | None) -> None:
        # Checked here: os.environ would fail later, far from the mistake.
        _NAME.check("name", name)
        Option(
            f"a string (or None to remove {name!r} inside the block)",
            lambda v: v is None or (isinstance(v, str) and "\0" not in v),
        ).check("value", value)
        self.name = name
        self.value = value
        self._previous: str | object | None = None

    def __enter__(self) -> EnvironScope:
        if self._previous is not None:
            msg = f"This scoped_env({self.name!r}) block was already entered; make a new one for each block."
            raise UsageError(msg)
        self._previous = os.environ.get(self.name, _UNSET)
        if self.value is None:
            os.environ.pop(self.name, None)
        else:
            os.environ[self.name] = self.value
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        previous = self._previous
        if isinstance(previous, str):
            os.environ[self.name] = previous
        else:
            os.environ.pop(self.name, None)


def scoped_env(name: str, value: str | None = "1") -> EnvironScope:
    """
    Set the environment variable *name* to *value* for the length of a ``with`` block.

    On leaving the block, however it is left (normally, by an error, by a
    cancellation, by ``KeyboardInterrupt``), the variable gets back the value
    it had on entering, or is removed if it had none. This replaces the
    ``os.environ.pop()`` calls a coordination flag otherwise needs on every
    exit path::

        with lifecycle.scoped_env("MIGRATION_RUNNING"):
            await migrate(db)

    A plain (not ``async``) context manager: entering and leaving are not
    checkpoints, so nothing can interrupt the restore. The environment is
    shared by the whole process: blocks that overlap in concurrent tasks
    without nesting restore in the order they leave, which is rarely what
    either task meant; keep a flag to one task at a time, or use a
    :class:`contextvars.ContextVar` for per-task state. The returned block is
    used once; entering it a second time raises :class:`~lifecycle.UsageError`.

    Args:
        name: The variable.

        value: Its value inside the block; ``None`` removes it inside the block.

    Raises:
        ConfigurationError: *name* or *value* cannot be an environment variable.
    """
    return EnvironScope(name, value)
