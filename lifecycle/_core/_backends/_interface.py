"""What the component engine needs from an event loop; each backend module provides it."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol, Self, final

import attrs

if TYPE_CHECKING:
    import anyio.abc

    from lifecycle._core._escalation import Escalation

__all__ = ["ErrorReporter", "Primitives", "Scheduler", "Scope", "Waker"]

Scheduler = Callable[[Callable[[], None]], None]


class Waker(Protocol):
    """A one-shot event for one waiter: ``set()`` wakes ``wait()``, which returns at once once set."""

    def set(self) -> None:
        """Wake the waiter (idempotent)."""

    async def wait(self) -> object:
        """Wait until set; cancellable by anyio cancel scopes."""


class Scope(Protocol):
    """
    The part of a cancel scope the engine uses: anyio's, or on Trio, Trio's own.

    A Trio cancel scope nests with anyio's (anyio's wraps one), so the engine
    can use it directly there and skip the wrapper.
    """

    deadline: float

    def __enter__(self) -> Self: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
        /,
    ) -> bool | None: ...

    def cancel(self) -> None:
        """Cancel the scope."""

    @property
    def cancel_called(self) -> bool:
        """Whether :meth:`cancel` was called (or the deadline passed)."""

    @property
    def cancelled_caught(self) -> bool:
        """Whether the scope caught its own cancellation."""


@final
@attrs.frozen
class Primitives:
    """
    The current loop's clock, one-shot event, cancel scope type, cancellation class and cut-offs.

    Resolved once per tree: anyio detects the backend again on every
    :class:`anyio.CancelScope`, :class:`anyio.Event` and
    :func:`anyio.get_cancelled_exc_class`, which a start of ten thousand
    components would otherwise pay for tens of thousands of times.
    """

    clock: Callable[[], float]
    event: Callable[[], Waker]
    shielded_scope: Callable[[], Scope]
    cancelled: type[BaseException]
    # Cut a teardown scope off when its escalation's GRACEFUL phase ends (following
    # its jumps), and forget it once left: on Trio its deadline, on asyncio one
    # timer per escalation instead of one per scope.
    follow: Callable[[Scope, Escalation], None]
    unfollow: Callable[[Scope, Escalation], None]
    # Run a component's task in an anyio task group on the loop's own task, without
    # anyio's per-task handle: spawn(task_group, coroutine, name).
    spawn: Callable[[anyio.abc.TaskGroup, Coroutine[Any, Any, None], str], None]


# lifecycle.report_error: called as report(event, error, **fields); never raises.
ErrorReporter = Callable[..., None]
