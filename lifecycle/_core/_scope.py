"""Shielded cleanup scopes whose deadlines follow the shutdown phases."""

from __future__ import annotations

import math
from contextvars import ContextVar
from types import TracebackType
from typing import Protocol, final

import anyio

from ._policy import Phase
from ._validation import Option

__all__ = ["ScopeOwner", "ShieldedScope", "current_owner", "shielded"]


class ScopeOwner(Protocol):
    def _shield_deadline(self, until: Phase) -> float: ...
    def _add_shield(self, scope: ShieldedScope) -> None: ...
    def _discard_shield(self, scope: ShieldedScope) -> None: ...
    def _shield_cut_off(self, scope: ShieldedScope) -> None: ...


#: The checks of ``until`` and ``timeout``, shared by everything that cuts work off at a phase's end.
UNTIL = Option.instance_of(Phase, "a lifecycle.Phase (e.g. Phase.FORCEFUL)")
TIMEOUT = Option.seconds().or_none()

current_owner: ContextVar[ScopeOwner | None] = ContextVar("lifecycle_current_component", default=None)


@final
class ShieldedScope:
    """
    A cancel scope that outer cancellation cannot reach until a phase ends.

    Create it with :func:`lifecycle.shielded` or ``ctx.shielded()`` and use it
    with ``with`` or ``async with`` (entering and leaving are not checkpoints).

    Attributes:
        until: The phase whose end cuts the scope off.
    """

    __slots__ = ("_cancelled", "_owner", "_scope", "_timeout_at", "until")

    def __init__(self, until: Phase = Phase.GRACEFUL, timeout: float | None = None) -> None:
        UNTIL.check("until", until)
        TIMEOUT.check("timeout", timeout)
        self.until = until
        self._timeout_at = math.inf if timeout is None else timeout
        self._owner: ScopeOwner | None = None
        self._scope = anyio.CancelScope(shield=True)
        self._cancelled = False

    @property
    def deadline(self) -> float:
        """When the scope will be cut off, on the loop clock (``math.inf`` while not yet known)."""
        return self._scope.deadline

    @property
    def cancelled_caught(self) -> bool:
        """``True`` if the scope was cut off and the cancellation stopped at its edge."""
        return self._scope.cancelled_caught

    @property
    def cancel_called(self) -> bool:
        """``True`` if the scope was cut off (its deadline passed or it was cancelled)."""
        return self._scope.cancel_called

    def cancel(self) -> None:
        """Cut the scope off now (by hand: the stop does not count it as cut short)."""
        self._cancelled = True
        self._scope.cancel()

    def _update(self) -> None:
        owner = self._owner
        phase_end = math.inf if owner is None else owner._shield_deadline(self.until)
        self._scope.deadline = min(self._timeout_at, phase_end)

    def __enter__(self) -> ShieldedScope:
        if self._timeout_at != math.inf:
            self._timeout_at += anyio.current_time()
        self._owner = current_owner.get()
        self._update()
        self._scope.__enter__()
        if self._owner is not None:
            self._owner._add_shield(self)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        owner = self._owner
        if owner is None:
            return bool(self._scope.__exit__(exc_type, exc, tb))
        owner._discard_shield(self)
        try:
            return bool(self._scope.__exit__(exc_type, exc, tb))
        finally:
            # Cut off by its phase's end (a deadline or an escalation), not by its own
            # timeout or by hand: the component's cleanup was cut short.
            if (
                self._scope.cancel_called
                and not self._cancelled
                and owner._shield_deadline(self.until) <= self._timeout_at
            ):
                owner._shield_cut_off(self)

    async def __aenter__(self) -> ShieldedScope:
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        return self.__exit__(exc_type, exc, tb)


def shielded(until: Phase = Phase.GRACEFUL, timeout: float | None = None) -> ShieldedScope:
    """
    Return a scope that protects cleanup from cancellation until a phase ends.

    Inside a component (its body, its teardown, its spawned tasks), the scope is
    tied to that component's stop: before the stop begins it is a plain shield;
    once the stop begins it is cut off when *until* ends, that is at the graceful
    deadline for the default ``Phase.GRACEFUL`` and at the forceful deadline for
    ``Phase.FORCEFUL``. Outside any component it is a shield that only *timeout*
    cuts off. In both cases *timeout* (seconds from entering) cuts it off earlier.

    Being cut off means the code inside is cancelled at its next checkpoint and the
    cancellation stops at the scope's edge (``scope.cancelled_caught``), exactly
    like an expired :class:`anyio.CancelScope` deadline. Entering and leaving the
    scope are not checkpoints. This replaces ``CancelScope(shield=True)`` combined
    with ``move_on_after``::

        try:
            await serve()
        finally:
            async with lifecycle.shielded():
                await connection.aclose()

    Args:
        until: The phase whose end cuts the scope off.

        timeout: Seconds after entering at which the scope is cut off anyway.

    Raises:
        ConfigurationError: *until* is not a :class:`Phase`, or *timeout* is negative.
    """
    return ShieldedScope(until, timeout)
