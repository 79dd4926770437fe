"""Turning the errors of components into the exceptions to raise: ComponentError and exception groups."""

from __future__ import annotations

from collections.abc import Iterable

from ._errors import ComponentError, Stage

__all__ = ["failure_group", "flatten_failures", "from_children", "path_of"]


def flatten_failures(errors: Iterable[tuple[str, Stage, BaseException]]) -> list[BaseException]:
    """
    Turn ``(path, stage, error)`` triples into the exceptions to raise.

    A plain exception becomes a :class:`~lifecycle.ComponentError`; a ``ComponentError`` or
    an exception group of them (from a nested tree) is passed on, flattened; a
    ``BaseException`` that is not an ``Exception`` (``KeyboardInterrupt``) keeps
    its type and gains a note naming the component.
    """
    out: list[BaseException] = []
    for path, stage, error in errors:
        if isinstance(error, ComponentError):
            out.append(error)
        elif isinstance(error, BaseExceptionGroup) and _all_component_errors(error):
            out.extend(_leaves(error))
        elif isinstance(error, Exception):
            out.append(ComponentError(path, stage, error))
        else:
            note = f"raised by component {path!r} ({stage})"
            if note not in getattr(error, "__notes__", ()):  # failures() may be asked more than once
                error.add_note(note)
            out.append(error)
    return out


def failure_group(message: str, errors: list[BaseException]) -> BaseExceptionGroup[BaseException]:
    """
    Group *errors* for raising: an ``ExceptionGroup`` when all are ``Exception``.

    ``KeyboardInterrupt`` and other ``BaseException`` errors make it a
    ``BaseExceptionGroup``, so they are never hidden inside an ``ExceptionGroup``.
    """
    if all(isinstance(e, Exception) for e in errors):
        return ExceptionGroup(message, errors)  # type: ignore[type-var]
    return BaseExceptionGroup(message, errors)


def from_children(error: BaseException) -> bool:
    """Whether *error* is a supervisor passing on its children's failures (already reported)."""
    return isinstance(error, ComponentError) or (isinstance(error, BaseExceptionGroup) and _all_component_errors(error))


def path_of(error: BaseException) -> str:
    """The path of the component that raised *error*, if it says."""
    return error.path if isinstance(error, ComponentError) else "?"


def _all_component_errors(group: BaseExceptionGroup[BaseException]) -> bool:
    return all(isinstance(e, ComponentError) for e in _leaves(group))


def _leaves(group: BaseExceptionGroup[BaseException]) -> list[BaseException]:
    out: list[BaseException] = []
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            out.extend(_leaves(exc))
        else:
            out.append(exc)
    return out
