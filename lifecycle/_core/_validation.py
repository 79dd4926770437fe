"""
Checking options: every option of both packages is checked with an :class:`Option`, where it is given.

An :class:`Option` is an attrs validator (``attrs.field(validator=Option.seconds())``)
that also checks a plain argument (``Option.seconds().check("timeout", timeout)``).
A bad value is a :class:`~lifecycle.ConfigurationError` that names the option
(and its owner, when there is one) and shows the value::

    `timeout` must be a non-negative number of seconds or None, got '1'.

never a ``TypeError`` from deep inside anyio, and never a value quietly taken
for another (``True`` is not one second). ``supervisors`` checks its options
with the same class, from :mod:`lifecycle.lowlevel`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection
from typing import Any, TypeVar, final

import attrs

from ._errors import ConfigurationError

__all__ = ["Option", "escape_unprintable", "is_seconds", "unprintable"]

T = TypeVar("T")


def is_seconds(value: object, *, finite: bool = False) -> bool:
    """
    Whether *value* is a number of seconds: an int or float, not a bool, not NaN, not negative.

    An ``int`` too large for a float (``10**400``) is not: it would overflow
    (``OverflowError``) or become infinity in the deadline arithmetic. ``math.inf``
    is a number of seconds (no deadline) unless *finite*.
    """
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    if isinstance(value, int):
        try:
            value = float(value)
        except OverflowError:
            return False
        if not math.isfinite(value):  # pragma: no cover - float() of an int raises instead
            return False
    if math.isnan(value) or value < 0:
        return False
    return not finite or math.isfinite(value)


def unprintable(text: str) -> str | None:
    """
    Return the first character of *text* that is not printable, or ``None``.

    Printable is :meth:`str.isprintable`: no control characters (newline, tab,
    NUL, escape), no line or paragraph separators, nothing unassigned; a plain
    space is printable. Names that users and logs show must pass, so a name can
    never forge a log line or move the cursor of a terminal.
    """
    for char in text:
        if not char.isprintable():
            return char
    return None


def escape_unprintable(text: str, *, keep: str = "") -> str:
    """
    Return *text* with every unprintable character but those in *keep* written as its Python escape.

    For text a user controls (names, error messages, log values) printed to
    a terminal or a line-oriented log: a newline cannot forge a line, an
    escape sequence cannot rewrite the screen. Printable text is returned as
    it is, at the cost of one :meth:`str.isprintable`.
    """
    if text.isprintable():
        return text
    return "".join(char if char.isprintable() or char in keep else repr(char)[1:-1] for char in text)


@final
@attrs.frozen
class Option:
    """
    A check of an option's value, with the words that describe a good one (low-level).

    Use it as an attrs validator (``attrs.field(validator=Option.seconds())``),
    or call :meth:`check` on an argument. Make one with the constructors below,
    or from a description and a test: ``Option("an odd number", lambda v: v % 2 == 1)``.

    Attributes:
        expected: What a good value is, as the error says it (``"a lifecycle.Phase"``).

        test: Whether a value is good; it must not raise.

    .. versionadded:: 0.1.0
    """

    expected: str
    test: Callable[[object], bool]

    def __call__(self, instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
        """Check *value* of the attrs field *attribute* (the attrs validator protocol)."""
        del instance
        self.check(attribute.name, value)

    def check(self, name: str, value: T, *, owner: str | None = None) -> T:
        """
        Return *value* if it is good for the option *name*.

        Args:
            name: The option's name, as the caller wrote it.

            value: The value given.

            owner: What the option belongs to, for the message (``"component 'db'"``).

        Raises:
            ConfigurationError: It is not; the message names the option, its
                owner and the value.
        """
        if not self.test(value):
            raise self.error(name, value, self.expected, owner=owner)
        return value

    def or_none(self) -> Option:
        """Return the same check with ``None`` allowed too."""
        test = self.test
        return Option(f"{self.expected} or None", lambda value: value is None or test(value))

    @staticmethod
    def error(
        name: str, value: object, expected: str, *, owner: str | None = None, hint: str | None = None
    ) -> ConfigurationError:
        """
        Return the error for the option *name* whose *value* is not *expected*.

        The message reads ```name` of owner must be expected, got value; hint.``
        (without ``of owner`` and ``; hint`` when they are not given).
        """
        where = f"`{name}`" if owner is None else f"`{name}` of {owner}"
        msg = f"{where} must be {expected}, got {value!r}" + (f"; {hint}." if hint else ".")
        return ConfigurationError(msg)

    @classmethod
    def seconds(cls, *, finite: bool = False, expected: str | None = None) -> Option:
        """
        Check a number of seconds: an ``int`` or ``float``, not a ``bool``, not NaN, not negative.

        Args:
            finite: Refuse ``math.inf`` too.

            expected: How the error describes a good value, if not the default.
        """
        if finite:
            return cls(expected or "a non-negative, finite number of seconds", lambda v: is_seconds(v, finite=True))
        return cls(expected or "a non-negative number of seconds", is_seconds)

    @classmethod
    def whole_number(cls, minimum: int = 0, maximum: int | None = None, *, expected: str | None = None) -> Option:
        """Check an ``int`` (not a ``bool``) from *minimum* to *maximum* (no upper bound if ``None``)."""

        def test(value: object) -> bool:
            if isinstance(value, bool) or not isinstance(value, int):
                return False
            return minimum <= value and (maximum is None or value <= maximum)

        if expected is None:
            bounds = f"from {minimum} to {maximum}" if maximum is not None else f"of at least {minimum}"
            expected = f"an integer {bounds}"
        return cls(expected, test)

    @classmethod
    def instance_of(cls, kind: type | tuple[type, ...], expected: str) -> Option:
        """Check an instance of *kind*, described as *expected* (``"a lifecycle.Phase"``)."""
        return cls(expected, lambda value: isinstance(value, kind))

    @classmethod
    def one_of(cls, values: Collection[object], *, expected: str | None = None) -> Option:
        """Check one of *values*: equal to one and of the same type (no ``1`` for ``True``)."""
        choices = tuple(values)
        if expected is None:
            *first, last = map(repr, choices)
            expected = f"{', '.join(first)} or {last}" if first else last
        return cls(expected, lambda value: any(type(value) is type(c) and value == c for c in choices))

    @classmethod
    def boolean(cls) -> Option:
        """Check ``True`` or ``False``."""
        return cls("True or False", lambda value: isinstance(value, bool))

    @classmethod
    def text(cls, *, forbidden: str = "", expected: str = "a non-empty string", printable: bool = False) -> Option:
        """
        Check a non-empty ``str`` without any of the characters in *forbidden*.

        Args:
            forbidden: Characters the text must not contain.

            expected: How the error describes a good value.

            printable: Refuse control and other unprintable characters too
                (``str.isprintable()``): for names shown in logs and output.
        """
        return cls(
            expected,
            lambda value: (
                isinstance(value, str)
                and bool(value)
                and not any(ch in value for ch in forbidden)
                and not (printable and unprintable(value) is not None)
            ),
        )

    @classmethod
    def name(cls, *, expected: str = "a non-empty string of printable characters without '/'") -> Option:
        """
        Check a name of a component or supervisor: printable text without ``/`` (the path separator).

        .. versionadded:: 0.1.0
        """
        return cls.text(forbidden="/", expected=expected, printable=True)

    @staticmethod
    def name_hint(value: object) -> str | None:
        """Say which character makes *value* a bad name, if one does (for :meth:`error`'s *hint*)."""
        if not isinstance(value, str):
            return None
        char = unprintable(value)
        if char is not None:
            return f"it contains the unprintable character {char!r} (U+{ord(char):04X}); names are shown in logs"
        if "/" in value:
            return "'/' separates the names of a path"
        return None
