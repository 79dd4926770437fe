"""The errors a supervisor raises itself."""

from __future__ import annotations

from lifecycle import ComponentError

__all__ = ["GaveUpError"]


class GaveUpError(ComponentError):
    """
    A supervisor gave up: its children needed more restarts than its intensity allows.

    Raised by the supervisor once it has stopped all of its children. It is a
    :class:`~lifecycle.ComponentError` of the supervisor itself (``path`` is the
    supervisor's path, ``stage`` is ``"run"``), so it travels up the tree like
    any failure of a component: the parent's strategy handles it, and a root
    that gives up makes :func:`lifecycle.running` raise it (in an exception
    group) and :func:`lifecycle.run` exit with 1. Its ``__cause__`` is the
    error of the child's run that was one too many, or ``None`` when that run
    returned normally (a ``PERMANENT`` child's normal exit counts as a restart,
    as in Erlang/OTP).

    Args:
        supervisor: The supervisor's path.

        child: The path of the child whose end exceeded the intensity.

        reason: Why, in words (``"more than 3 restarts within 5 s"``).

        errors: What the runs counted in the intensity window raised, oldest
            first, each a :class:`~lifecycle.ComponentError`.

        failed: Whether the last of those runs failed (rather than returned).

    Attributes:
        supervisor: The supervisor's path (also ``path``).

        child: The path of the child whose end exceeded the intensity.

        reason: Why, in words.

        errors: What the runs counted in the window raised, oldest first;
            empty when they all returned normally.

        failed: Whether the child's last run failed; if so, its error is
            the last of :attr:`errors` and the ``__cause__``.

    .. versionadded:: 0.1.0
    """

    def __init__(
        self,
        supervisor: str,
        child: str,
        reason: str,
        errors: tuple[BaseException, ...] = (),
        failed: bool = False,  # noqa: FBT002 - positional for pickling (__reduce__)
    ) -> None:
        how = "failed" if failed else "returned"
        message = f"supervisor {supervisor!r} gave up after {child!r} {how}: {reason}"
        if failed and errors:
            message += f"; last error: {errors[-1]}"
        # Not ComponentError.__init__: there may be no original error to wrap.
        Exception.__init__(self, message)
        self.path = supervisor
        self.name = supervisor.rpartition("/")[2]
        self.stage = "run"
        self.supervisor = supervisor
        self.child = child
        self.reason = reason
        self.errors = errors
        self.failed = failed
        self.__cause__ = errors[-1] if failed and errors else None

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.supervisor, self.child, self.reason, self.errors, self.failed))
