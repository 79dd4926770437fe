"""Cleanup that runs, shielded and bounded, when a block or a method fails or is cancelled."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Coroutine
from types import TracebackType
from typing import ParamSpec, TypeVar, TypeVarTuple, final

from lifecycle._core._policy import Phase
from lifecycle._core._report_error import report_error
from lifecycle._core._scope import TIMEOUT, UNTIL, ShieldedScope

__all__ = ["CleanupOnFailure", "cleanup_on_failure", "on_failure"]

P = ParamSpec("P")
T = TypeVar("T")
Ts = TypeVarTuple("Ts")

DEFAULT_CLEANUP_TIMEOUT = 10.0


@final
class CleanupOnFailure:
    """
    An ``async with`` block that runs a cleanup if the block raises or is cancelled.

    Made by :func:`cleanup_on_failure`; see there.
    """

    __slots__ = ("_args", "_fn", "_name", "_timeout", "_until")

    def __init__(
        self,
        fn: Callable[..., Awaitable[object]],
        args: tuple[object, ...],
        timeout: float | None,
        until: Phase,
    ) -> None:
        self._fn = fn
        self._args = args
        self._timeout = timeout
        self._until = until
        self._name = str(getattr(fn, "__qualname__", None) or repr(fn))
        # Refused where the mistake is made, not later, when a failure happens.
        UNTIL.check("until", until)
        TIMEOUT.check("timeout", timeout)

    async def __aenter__(self) -> CleanupOnFailure:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is None:
            return
        await _run_cleanup(self._name, self._fn, self._args, exc, self._timeout, self._until)


async def _run_cleanup(  # noqa: PLR0917 - private; every caller passes all six
    name: str,
    fn: Callable[..., Awaitable[object]],
    args: tuple[object, ...],
    original: BaseException,
    timeout: float | None,
    until: Phase,
) -> None:
    """Run *fn(*args)* shielded; report its failure on *original*, never instead of it."""
    scope = ShieldedScope(until, timeout)
    failure: BaseException | None = None
    # Being cut off raises a cancellation that the scope itself catches.
    with scope:
        try:
            await fn(*args)
        except Exception as exc:  # noqa: BLE001 - attached to the original error below
            failure = exc
    if scope.cancelled_caught:
        report_error(
            "cleanup.cut_off",
            None,
            cleanup=name,
            timeout=timeout,
            until=until.name,
            original=repr(original),
            level="warning",
        )
        original.add_note(f"cleanup {name!r} was cut off before it finished (timeout={timeout}, until={until.name})")
    elif failure is not None:
        report_error("cleanup.failed", failure, cleanup=name, original=repr(original))
        original.add_note(f"cleanup {name!r} failed too: {failure!r}")
        # Machine-readable too: the original error keeps the cleanup's error.
        original.__dict__.setdefault("cleanup_errors", []).append(failure)


def cleanup_on_failure(
    fn: Callable[[*Ts], Awaitable[object]],
    *args: *Ts,
    timeout: float | None = DEFAULT_CLEANUP_TIMEOUT,
    until: Phase = Phase.GRACEFUL,
) -> CleanupOnFailure:
    """
    Return an ``async with`` block that calls ``await fn(*args)`` if the block fails or is cancelled.

    The hand-made ``cancellation_safe`` done right::

        async with lifecycle.cleanup_on_failure(upload.abort):
            await upload.send(chunks)

    When the block ends normally nothing happens. When it raises anything,
    a cancellation or ``KeyboardInterrupt`` included, *fn* runs inside a
    :func:`lifecycle.shielded` scope, so the cancellation that is tearing the
    block down does not reach it, and then the original error or cancellation
    propagates, always, unchanged.

    The cleanup is bounded: it is cut off after *timeout* seconds, and inside
    a component also when the phase *until* of its stop ends (graceful by
    default), so a hung cleanup cannot hold a shutdown. If the cleanup raises
    or is cut off, that is logged (``cleanup.failed`` with its traceback,
    ``cleanup.cut_off``) and attached to the original error as a note (a
    failure also in its ``cleanup_errors`` attribute); it never replaces the
    original. A cleanup that raises a ``BaseException`` that is not an
    :exc:`Exception` (``KeyboardInterrupt``) propagates it, chained to the
    original.

    Entering the block is not a checkpoint; leaving it after a failure awaits
    the cleanup (a checkpoint if the cleanup is one), shielded as above.

    Args:
        fn: The async cleanup function.

        *args: Positional arguments for *fn*.

        timeout: Seconds after which the cleanup is cut off; ``None`` for no
            bound but the phase's (unbounded outside a component).

        until: The shutdown phase whose end cuts the cleanup off.

    Raises:
        ConfigurationError: *until* is not a :class:`Phase`, or *timeout* is negative.
    """
    return CleanupOnFailure(fn, args, timeout, until)


def on_failure(
    cleanup: Callable[P, Awaitable[object]],
    *,
    timeout: float | None = DEFAULT_CLEANUP_TIMEOUT,
    until: Phase = Phase.GRACEFUL,
) -> Callable[[Callable[P, Awaitable[T]]], Callable[P, Coroutine[object, object, T]]]:
    """
    Decorate an async function (or method) to run *cleanup* if it fails or is cancelled.

    *cleanup* is called with the same arguments as the decorated function
    (``self`` included for a method), exactly as :func:`cleanup_on_failure`
    runs it: shielded, bounded by *timeout* and the phase *until*, its own
    failure logged and attached to the original error, which always
    propagates::

        class Upload:
            async def abort(self, chunks: list[bytes]) -> None: ...

            @lifecycle.on_failure(abort, timeout=5)
            async def send(self, chunks: list[bytes]) -> None: ...

    The decorated function is a checkpoint exactly when the original is; when
    it is cancelled halfway, the cleanup runs shielded and the cancellation
    propagates.

    Args:
        cleanup: The async cleanup function, taking the decorated function's arguments.

        timeout: Seconds after which the cleanup is cut off; ``None`` for no
            bound but the phase's.

        until: The shutdown phase whose end cuts the cleanup off.

    Raises:
        ConfigurationError: *until* is not a :class:`Phase`, or *timeout* is negative.
    """
    UNTIL.check("until", until)
    TIMEOUT.check("timeout", timeout)
    name = str(getattr(cleanup, "__qualname__", None) or repr(cleanup))

    def decorate(fn: Callable[P, Awaitable[T]]) -> Callable[P, Coroutine[object, object, T]]:
        @functools.wraps(fn)
        async def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
            try:
                return await fn(*args, **kwargs)
            except BaseException as exc:
                await _run_cleanup(name, functools.partial(cleanup, *args, **kwargs), (), exc, timeout, until)
                raise

        return wrapper

    return decorate
