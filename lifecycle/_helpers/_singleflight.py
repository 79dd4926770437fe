"""One call in flight at a time: later callers join it, or are turned away."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar, TypeVarTuple, final

import anyio
import anyio.lowlevel

__all__ = ["SingleFlight"]

T = TypeVar("T")
Ts = TypeVarTuple("Ts")


@final
class _Flight(Generic[T]):
    """One call under way: its outcome, once it has one."""

    __slots__ = ("done", "error", "interrupted", "value")

    def __init__(self) -> None:
        self.done = anyio.Event()
        self.value: T | None = None
        self.error: BaseException | None = None
        # The owner was cancelled before the call ended: there is no outcome to share.
        self.interrupted = False


@final
class SingleFlight(Generic[T]):
    """
    A guard that lets one call run at a time and shares its outcome.

    The hand-made "focus manager" or non-reentrant circuit breaker, without
    background tasks: a refresh that many request handlers need, a reconnect
    that every failing call triggers, a periodic job that must not overlap
    itself::

        refresh = lifecycle.SingleFlight[Token]()
        compact = lifecycle.SingleFlight[None]()

        async def token() -> Token:
            return await refresh.run(fetch_token, session)   # callers join one fetch

        async def tick() -> None:
            try:
                await compact.run_nowait(compact_tables)      # skipped while one runs
            except anyio.WouldBlock:
                log.info("compaction.skipped")

    The call runs in the task of the caller that started it, its *owner*; the
    others wait for it. What happens on cancellation:

    - A waiting caller that is cancelled stops waiting; the call goes on for
      the owner and the other waiters.
    - When the owner is cancelled, the call is cancelled with it (it runs in
      the owner's task; nothing outlives it). Each waiter then starts over:
      the first one to wake becomes the owner of a new call, and the rest
      join that one. So *fn* may run again, as it would if those callers had
      come a moment later. Keep it idempotent, as anything shared this way
      must be.

    Errors are shared as values are: every caller of the flight gets the same
    exception object raised (tracebacks then grow with each raise, since it is
    one object). The guard is not reentrant: a call that runs the same guard
    again from inside its own flight waits for itself forever.

    Usable from any task of one event loop; not thread-safe.
    """

    __slots__ = ("_flight",)

    def __init__(self) -> None:
        self._flight: _Flight[T] | None = None

    @property
    def busy(self) -> bool:
        """``True`` while a call is in flight."""
        return self._flight is not None

    async def run(self, fn: Callable[[*Ts], Awaitable[T]], *args: *Ts) -> T:
        """
        Call ``await fn(*args)``, or, if a call is in flight, wait for it and share its outcome.

        A joining caller's *fn* and *args* are not used: it gets the in-flight
        call's value or error. A checkpoint. If this caller is cancelled
        halfway, the cancellation propagates; as a waiter it only stops
        waiting, as the owner it cancels the call and the waiters start over
        (see the class). Nothing is shielded.

        Returns:
            What the shared call returned.

        Raises:
            BaseException: Whatever the shared call raised.
        """
        while True:
            flight = self._flight
            if flight is None:
                return await self._own(fn, args)
            await flight.done.wait()
            if flight.interrupted:
                continue  # its owner was cancelled: start over
            if flight.error is not None:
                raise flight.error
            return flight.value  # type: ignore[return-value]

    async def run_nowait(self, fn: Callable[[*Ts], Awaitable[T]], *args: *Ts) -> T:
        """
        Call ``await fn(*args)``, unless a call is in flight: then raise :exc:`anyio.WouldBlock` at once.

        The skip is immediate (``*_nowait``); the call itself, when this caller
        owns it, is awaited like any other. A checkpoint either way (an
        outer cancellation already pending is raised before deciding).
        If cancelled halfway, the call is cancelled and the cancellation
        propagates; callers joining it through :meth:`run` start over.
        Nothing is shielded.

        Returns:
            What *fn* returned.

        Raises:
            anyio.WouldBlock: A call was in flight; *fn* was not called.

            BaseException: Whatever *fn* raised.
        """
        await anyio.lowlevel.checkpoint_if_cancelled()
        if self._flight is not None:
            msg = "a call is already in flight"
            raise anyio.WouldBlock(msg)
        return await self._own(fn, args)

    async def _own(self, fn: Callable[[*Ts], Awaitable[T]], args: tuple[*Ts]) -> T:
        flight: _Flight[T] = _Flight()
        self._flight = flight
        cancelled = anyio.get_cancelled_exc_class()
        try:
            flight.value = value = await fn(*args)
        except cancelled:
            flight.interrupted = True
            raise
        except BaseException as exc:
            flight.error = exc
            raise
        else:
            return value
        finally:
            self._flight = None
            flight.done.set()

    def __repr__(self) -> str:
        return f"<SingleFlight {'busy' if self.busy else 'idle'}>"
