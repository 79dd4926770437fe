"""The framework's own exceptions."""

from __future__ import annotations

from typing import Literal

Stage = Literal["start", "run", "stop"]


class LifecycleError(Exception):
    """
    Base class of every error that anyio-lifecycle raises itself.

    Errors raised by components keep their own type; they reach callers as the
    ``__cause__`` of a :class:`~lifecycle.ComponentError`.
    """


class ConfigurationError(LifecycleError, ValueError):
    """
    A mistake in how a tree, a component or a policy is declared.

    Raised before anything starts (at registration, validation or
    ``lifecycle check``), never wrapped in an exception group. The message names
    the offending thing and says what to do instead.

    Args:
        reason: What is wrong and what to do instead.

        path: The path of the tree the mistake is in (``"app/jobs"``), if any;
            the message then starts with ``In supervisor 'app/jobs':``.

        problems: For an error that reports several mistakes at once (in
            several nested trees), each of them.

    Attributes:
        reason: The message without the tree path.

        path: The path of the tree the mistake is in, or ``None``.

        problems: The separate mistakes this error reports, or ``()``.
    """

    def __init__(
        self,
        reason: str,
        *,
        path: str | None = None,
        problems: tuple[ConfigurationError, ...] = (),
    ) -> None:
        super().__init__(reason if path is None else f"In supervisor {path!r}: {reason}")
        self.reason = reason
        self.path = path
        self.problems = problems

    @classmethod
    def combine(cls, problems: list[ConfigurationError]) -> ConfigurationError:
        """Return the one error of *problems*, or one error that lists them all."""
        if len(problems) == 1:
            return problems[0]
        lines = "\n".join(f"  - {p}" for p in problems)
        return cls(f"{len(problems)} mistakes in the tree:\n{lines}", problems=tuple(problems))

    def __reduce__(self) -> tuple[object, ...]:
        return (_configuration_error, (self.reason, self.path, self.problems))


class UsageError(LifecycleError, RuntimeError):
    """
    The framework was used in a way structured concurrency does not allow.

    Examples: calling ``ctx.ready()`` twice, running the same tree twice at once,
    or calling a method of a :class:`RunningTree` after the tree has stopped.
    The message names the likely cause.
    """


class ComponentError(LifecycleError):
    """
    A component failed; its original exception is ``__cause__``.

    Args:
        path: The component's path in the tree (``"root/api"``).

        stage: ``"start"`` (before it was ready), ``"run"`` (while it was
            running) or ``"stop"`` (in its teardown).

        cause: The original exception, kept unchanged with its traceback.

    Attributes:
        path: The component's path in the tree.

        name: The component's own name (the last part of ``path``).

        stage: Where in its life it failed.
    """

    def __init__(self, path: str, stage: Literal["start", "run", "stop"], cause: BaseException) -> None:
        verb = {"start": "failed to start", "run": "failed", "stop": "failed while stopping"}
        message = f"component {path!r} {verb[stage]}: {type(cause).__name__}: {cause}"
        super().__init__(message)
        self.path = path
        self.name = path.rpartition("/")[2]
        self.stage: Literal["start", "run", "stop"] = stage
        self.__cause__ = cause

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.path, self.stage, self.__cause__))


class StoppedError(LifecycleError, RuntimeError):
    """
    The tree stopped before the awaited state was reached.

    Raised by :meth:`RunningTree.ready` when the tree stops (a request, a
    ``main`` component that finished) before it ever became ready.
    """


def _configuration_error(
    reason: str,
    path: str | None,
    problems: tuple[ConfigurationError, ...] = (),
) -> ConfigurationError:
    return ConfigurationError(reason, path=path, problems=problems)
