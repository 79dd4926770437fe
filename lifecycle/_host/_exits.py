"""How a program started with run() ends: exit codes, and the code a stop earns."""

from __future__ import annotations

import enum
import sys
from collections.abc import Iterator, Sequence
from typing import final

import attrs

from lifecycle._core._errors import LifecycleError
from lifecycle._core._report import ComponentReport, ShutdownReport
from lifecycle._core._states import Outcome
from lifecycle._core._validation import escape_unprintable

__all__ = ["Ending", "ExitCode", "conclude", "print_err"]


class ExitCode(enum.IntEnum):
    """
    The exit codes of a program started with :func:`run` (and ``lifecycle run``).

    =====  =================  ==================================================
    code   name               meaning
    =====  =================  ==================================================
    0      ``OK``             a clean stop: no failure, no cleanup cut short
                              (:attr:`ShutdownReport.clean`)
    1      ``FAILURE``        a failure nothing handled: a start that failed,
                              a root supervisor that gave up, a teardown
                              error, a stubborn component
    2      ``USAGE``          a usage or configuration error; nothing started
    3      ``TERMINATED``     hard exit: the terminate deadline passed with
                              something still running, or a third stop signal
                              came while the event loop was blocked
    4      ``CUT_OFF``        the stop completed without failures, but some
                              cleanup was cut short by a deadline or an
                              escalation (a second or third signal)
    130    ``INTERRUPTED``    a component raised :exc:`KeyboardInterrupt`
    *n*    (none)             a component raised ``SystemExit(n)``
    =====  =================  ==================================================

    A component that raises :exc:`SystemExit` or :exc:`KeyboardInterrupt`
    asks for the process to end: the tree stops in order, and the process
    exits with the code the exception carries (``SystemExit(None)`` is 0, a
    string is printed and gives 1, as with ``sys.exit()``), or 130 for
    :exc:`KeyboardInterrupt`, the code of a shell job stopped by Ctrl-C. A
    requested 0 only stands when the stop is otherwise clean: after another
    failure it becomes 1, after a cut-short cleanup 4, so 0 always means a
    clean stop.

    .. versionchanged:: 0.1.0
       Added ``CUT_OFF`` and ``INTERRUPTED``.
    """

    OK = 0
    FAILURE = 1
    USAGE = 2
    TERMINATED = 3
    CUT_OFF = 4
    INTERRUPTED = 130


def print_err(text: str) -> None:
    """
    Print the program's own output (reports, one-line verdicts) to stderr, flushed.

    Names and messages in it come from the user's declarations: anything
    unprintable but the line breaks is escaped, so a name cannot forge a line.
    """
    print(escape_unprintable(text, keep="\n"), file=sys.stderr, flush=True)  # noqa: T201 - the program's own output


@final
@attrs.frozen
class Ending:
    """
    How :func:`run` ends after a stop.

    Attributes:
        code: The exit code (``OK``: :func:`run` returns the report).

        show_report: Print the report to stderr.

        lines: Lines to print after the report.

        raise_group: Failures that are not the framework's own (a bug
            somewhere): raised as they are, traceback and all.
    """

    code: int
    show_report: bool = False
    lines: tuple[str, ...] = ()
    raise_group: bool = False


def _leaves(error: BaseException) -> Iterator[BaseException]:
    if isinstance(error, BaseExceptionGroup):
        for inner in error.exceptions:
            yield from _leaves(inner)
    else:
        yield error


def _is_exit(error: BaseException | None) -> bool:
    return isinstance(error, SystemExit | KeyboardInterrupt)


def _requested_code(error: BaseException) -> tuple[int, str | None]:
    """The exit code *error* (``SystemExit`` or ``KeyboardInterrupt``) asks for, and what to print."""
    if not isinstance(error, SystemExit):
        return ExitCode.INTERRUPTED, None
    code = error.code
    if code is None:
        return ExitCode.OK, None
    if isinstance(code, int):
        return int(code), None  # int(): SystemExit(True) is 1
    return ExitCode.FAILURE, str(code)  # like the interpreter: print it, exit 1


def _describe(error: BaseException) -> str:
    if isinstance(error, SystemExit):
        return f"SystemExit({error.code!r})" if error.code is not None else "SystemExit()"
    return type(error).__name__


def _exit_requests(report: ShutdownReport | None, failures: Sequence[BaseException]) -> list[tuple[str, BaseException]]:
    """``(path, error)`` of every component that raised ``SystemExit`` or ``KeyboardInterrupt``."""
    if report is not None:
        # A nested supervisor's error holds its children's: only a component's own errors count.
        found = [
            (c.path, e)
            for c in report.components
            if c.error is not None and not c.children
            for e in _leaves(c.error)
            if _is_exit(e)
        ]
        if found:
            return found
    return [("?", e) for failure in failures for e in _leaves(failure) if _is_exit(e)]


def _only_exits(component: ComponentReport) -> bool:
    """Whether *component* failed only by asking for the exit (itself, or children that did)."""
    error = component.error
    return error is not None and all(_is_exit(e) for e in _leaves(error))


def conclude(report: ShutdownReport | None, failed: BaseExceptionGroup[BaseException] | None) -> Ending:
    """
    Return how :func:`run` ends after *report*, with the failures *failed* raised by the tree.

    Pure: deciding only, nothing printed.
    """
    failures = () if failed is None else tuple(_leaves(failed))
    exits = _exit_requests(report, failures)
    others = [e for e in failures if not _is_exit(e)]
    if exits:
        path, error = exits[0]
        code, message = _requested_code(error)
        failed_too = bool(others) or (
            report is not None
            and any(
                c.outcome is Outcome.STUBBORN or (c.outcome is Outcome.FAILED and not _only_exits(c))
                for c in report.components
            )
        )
        if code == ExitCode.OK and failed_too:
            code = ExitCode.FAILURE
        elif code == ExitCode.OK and report is not None and report.cut_off:
            code = ExitCode.CUT_OFF
        who = "a component" if path == "?" else f"component {path!r}"
        lines = (*((message,) if message else ()), f"lifecycle: {who} raised {_describe(error)}: exit code {code}")
        return Ending(code=code, show_report=report is not None, lines=lines)
    if failed is not None:
        # Components' exceptions arrive as ComponentError, or, not being Exceptions,
        # with a note naming the component: anything else is a bug, raised as it is.
        bug = any(isinstance(e, Exception) and not isinstance(e, LifecycleError) for e in failures)
        return Ending(code=ExitCode.FAILURE, show_report=report is not None, raise_group=bug)
    if report is None:  # pragma: no cover - running() makes a report before it returns
        return Ending(code=ExitCode.FAILURE)
    if report.clean:
        return Ending(code=ExitCode.OK)
    if report.ok:
        cut = ", ".join(c.path for c in report.cut_off)
        return Ending(
            code=ExitCode.CUT_OFF,
            show_report=True,
            lines=(f"lifecycle: cleanup was cut short ({cut}): exit code {int(ExitCode.CUT_OFF)}",),
        )
    return Ending(code=ExitCode.FAILURE, show_report=True)
