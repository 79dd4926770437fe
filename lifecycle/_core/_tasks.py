"""Background tasks owned by a component: ctx.spawn() and TaskHandle."""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar, final

import anyio

from ._errors import StoppedError, UsageError
from ._scope import current_owner

if TYPE_CHECKING:
    from ._context import Context

__all__ = ["TaskHandle"]

T = TypeVar("T")


class _TaskOwner(Protocol):
    @property
    def ctx(self) -> Context: ...

    def _task_failed(self, handle: TaskHandle[object], error: BaseException) -> None: ...
    def _task_exited(self, handle: TaskHandle[object]) -> None: ...


@final
class TaskHandle(Generic[T]):
    """
    A background task started with ``ctx.spawn()``; it ends with its component.

    Attributes:
        name: The task's name (the function's qualified name unless given).

        critical: Whether its failure fails the component.
    """

    __slots__ = (
        "_cancel_requested",
        "_cancelled",
        "_coro",
        "_done",
        "_error",
        "_event",
        "_scope",
        "_value",
        "critical",
        "name",
    )

    def __init__(self, name: str, critical: bool) -> None:
        self.name = name
        self.critical = critical
        self._done = False
        self._value: T | None = None
        self._error: BaseException | None = None
        self._scope: anyio.CancelScope | None = None
        self._cancel_requested = False
        self._cancelled = False
        self._event: anyio.Event | None = None
        # The task's coroutine, for a stop that watches whether its tasks still move.
        self._coro: Coroutine[Any, Any, None] | None = None

    @property
    def done(self) -> bool:
        """``True`` once the task has ended (returned, raised or was cancelled)."""
        return self._done

    @property
    def cancelled(self) -> bool:
        """
        ``True`` if the task ended because it was cancelled.

        A task that returned (or raised) although it was asked to stop, for
        instance because the work was in a shielded scope, is not cancelled.
        """
        return self._cancelled

    def cancel(self) -> None:
        """
        Cancel the task; it ends at its next checkpoint.

        Shielded scopes inside it keep running until their phase ends. Not a
        checkpoint; does not wait for the task to end (use :meth:`wait`). Does
        nothing once the task has ended: its result stays available.
        """
        if self._done:
            return
        self._cancel_requested = True
        if self._scope is not None:
            self._scope.cancel()

    async def wait(self, timeout: float | None = None) -> None:
        """
        Wait until the task ends, for at most *timeout* seconds.

        Giving up does not cancel the task: it keeps running, owned by its
        component (this is what a hand-made ``shielded_wait_for`` tries to do,
        without orphaning anything). This is a checkpoint; if the caller is
        cancelled while waiting, only the waiting stops and the cancellation
        propagates. Nothing is shielded.

        Args:
            timeout: Seconds to wait; ``None`` waits as long as it takes.

        Raises:
            TimeoutError: The task was still running after *timeout* seconds.
        """
        if self._done:
            await anyio.lowlevel.checkpoint()
            return
        if self._event is None:
            self._event = anyio.Event()
        with anyio.fail_after(math.inf if timeout is None else timeout):
            await self._event.wait()

    async def result(self) -> T:
        """
        Wait for the task to end and return its value.

        This is a checkpoint; if the caller is cancelled while waiting, the
        cancellation propagates and the task keeps running. Nothing is
        shielded. The error of a failed task is raised to every caller of
        ``result()``; it was reported when the task failed, so nothing is lost
        if nobody calls it (there is no "exception was never retrieved").

        Raises:
            BaseException: Whatever the task raised, unchanged.

            StoppedError: The task was cancelled before it returned.
        """
        await self.wait()
        if self._error is not None:
            raise self._error
        if self._cancelled:
            msg = f"Task {self.name!r} was cancelled before it returned a value."
            raise StoppedError(msg)
        return self._value  # type: ignore[return-value]

    async def _main(self, owner: _TaskOwner, fn: Callable[..., Awaitable[T]], args: tuple[object, ...]) -> None:
        current_owner.set(owner)  # type: ignore[arg-type]
        cancelled = anyio.get_cancelled_exc_class()
        # Shielded: only the owning component (or handle.cancel()) cancels its tasks,
        # so the owner decides when they end relative to its own teardown.
        with anyio.CancelScope(shield=True) as scope:
            self._scope = scope
            if self._cancel_requested:
                scope.cancel()
            try:
                self._value = await fn(*args)
            except cancelled:
                if scope.cancel_called:
                    raise
                self._fail(owner, UsageError(f"Task {self.name!r} raised a cancellation nobody requested."))
            except BaseException as exc:  # noqa: BLE001 - recorded and reported by the owner
                self._fail(owner, exc)
        self._cancelled = scope.cancelled_caught
        self._done = True
        if self._event is not None:
            self._event.set()
        owner._task_exited(self)  # type: ignore[arg-type]

    def _fail(self, owner: _TaskOwner, error: BaseException) -> None:
        self._error = error
        owner._task_failed(self, error)  # type: ignore[arg-type]

    def __repr__(self) -> str:
        state = "done" if self._done else "running"
        return f"<TaskHandle {self.name!r} {state}>"
