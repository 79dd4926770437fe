"""asyncio: thread-safe and signal-safe scheduling, and components' tasks on asyncio's own."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import math
import sys
from collections.abc import Callable, Coroutine
from typing import Any, Self, final

import anyio.abc
from anyio._backends import _asyncio as _anyio_asyncio
from anyio._backends._asyncio import CancelScope as _AnyioScope

from ._cutoffs import Cutoffs
from ._interface import ErrorReporter, Primitives


def current_scheduler() -> Callable[[Callable[[], None]], None]:
    """Return a thread-safe ``call_soon`` for the running loop that ignores a closed loop."""
    loop = asyncio.get_running_loop()

    def schedule(callback: Callable[[], None]) -> None:
        # A closed loop raises RuntimeError: the tree has stopped already.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(callback)

    return schedule


@final
class _Waker:
    """
    A one-shot event for a single waiter, on one future.

    What :class:`asyncio.Event` does for one waiter, without its deque of
    waiters and the lock it takes to bind its loop: every component has one.
    """

    __slots__ = ("_future", "_set")

    def __init__(self) -> None:
        self._future: asyncio.Future[None] | None = None
        self._set = False

    def set(self) -> None:
        self._set = True
        future = self._future
        if future is not None and not future.done():
            future.set_result(None)

    async def wait(self) -> None:
        if self._set:
            return
        future = self._future
        if future is None or future.done():  # done: a cancelled earlier wait
            future = self._future = asyncio.get_running_loop().create_future()
        await future


# anyio recognises its own cancellations by this prefix of the CancelledError's message.
_STOP_REASON = "Cancelled via cancel scope of a component's stop"
# What _ComponentScope's delivery reads of anyio's scope and module (anyio 4); without it, anyio's own delivery runs.
_REDELIVER = hasattr(_anyio_asyncio, "_task_started") and all(
    hasattr(_AnyioScope, name)
    for name in ("_tasks", "_child_scopes", "_host_task", "_pending_uncancellations", "_cancel_handle", "_shield")
)


@final
class _Redelivery:
    """
    One loop callback that delivers the cancellation of every component scope that still needs it again.

    anyio delivers a scope's cancellation to its task, then schedules a
    callback to deliver it again on the next pass of the loop for as long as
    the task is inside the scope (a task may catch the cancellation and wait
    again). Stopping ten thousand workers scheduled ten thousand such
    callbacks, nearly all of which found the task gone; here the scopes of
    one tree share one callback per pass.
    """

    __slots__ = ("_handle", "_loop", "_scopes")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._scopes: list[_ComponentScope] = []
        self._handle: asyncio.Handle | None = None

    def add(self, scope: _ComponentScope) -> asyncio.Handle:
        """Deliver *scope*'s cancellation again on the loop's next pass; return the callback's handle."""
        self._scopes.append(scope)
        if self._handle is None:
            self._handle = self._loop.call_soon(self._run)
        return self._handle

    def _run(self) -> None:
        scopes, self._scopes = self._scopes, []
        self._handle = None
        for scope in scopes:
            scope._cancel_handle = None
            scope._deliver_cancellation(scope)


@final
class _ComponentScope(_AnyioScope):
    """
    anyio's asyncio cancel scope for a component's body, with a cheaper cancellation.

    anyio's ``cancel()`` writes the cancelling task's ``repr()`` into the
    cancellation's message, which formats its coroutine and where it is
    suspended: stopping ten thousand workers, that text cost about as much as
    the rest of their stop. This one gives every stop the same message (anyio
    still recognises it as its own), and delivers it again through the
    tree's shared :class:`_Redelivery` instead of a callback of its own.
    Otherwise it is anyio's scope, so it nests, shields and uncancels exactly
    as anyio's do.
    """

    __slots__ = ("_redelivery",)

    def __new__(cls, **_: object) -> Self:  # anyio's scope is made by its own __new__, by backend
        return object.__new__(cls)

    def __init__(
        self, *, deadline: float = math.inf, shield: bool = False, redelivery: _Redelivery | None = None
    ) -> None:
        super().__init__(deadline=deadline, shield=shield)
        self._redelivery = redelivery

    def cancel(self, reason: str | None = None) -> None:
        if self._cancel_called:
            return
        if reason is not None:
            super().cancel(reason)
            return
        if self._timeout_handle:
            self._timeout_handle.cancel()
            self._timeout_handle = None
        self._cancel_called = True
        self._cancel_reason = _STOP_REASON
        if self._host_task is not None:
            self._deliver_cancellation(self)

    def _deliver_cancellation(self, origin: _AnyioScope) -> bool:
        # anyio 4.16's delivery, but the retry goes through the shared redelivery.
        if origin is not self or self._redelivery is None:
            return super()._deliver_cancellation(origin)
        should_retry = False
        current = asyncio.current_task()
        for task in self._tasks:
            if task.done():
                continue
            should_retry = True
            if task._must_cancel:  # type: ignore[attr-defined] # asyncio's, as anyio reads it
                continue
            if task is not current and (task is self._host_task or _anyio_asyncio._task_started(task)):
                waiter = task._fut_waiter  # type: ignore[attr-defined] # asyncio's, as anyio reads it
                if not isinstance(waiter, asyncio.Future) or not waiter.done():
                    task.cancel(self._cancel_reason)
                    if task is self._host_task and self._pending_uncancellations is not None:
                        self._pending_uncancellations += 1
        for scope in self._child_scopes:
            if not scope._shield and not scope.cancel_called:
                should_retry = scope._deliver_cancellation(self) or should_retry
        self._cancel_handle = self._redelivery.add(self) if should_retry else None
        return should_retry


# What spawn() uses of anyio's asyncio task group (anyio 4); without any of it, anyio's start_soon is used.
_NATIVE = all(hasattr(_anyio_asyncio, name) for name in ("_task_states", "TaskState", "TaskGroup")) and all(
    hasattr(_anyio_asyncio.TaskGroup(), name) for name in ("_tasks", "_exceptions", "_on_completed_fut")
)


def spawn(task_group: anyio.abc.TaskGroup, coro: Coroutine[Any, Any, None], name: str) -> None:
    """
    Run *coro* in a task of *task_group*, as ``start_soon`` would, on a bare asyncio task.

    anyio's ``start_soon`` wraps every task in a handle with a cancel scope, an
    event and a wrapper coroutine of its own, which a component does not use:
    its own shielded scope is the one its owner cancels. This registers the
    task with the group and its cancel scope exactly as anyio does (so the
    group waits for it, and cancellation reaches it as it would reach any
    task of the group), and leaves the rest out. A loop with a task factory
    of its own (an eager one, say) gets anyio's ``start_soon``.
    """
    loop = asyncio.get_running_loop()
    if not _NATIVE or not isinstance(task_group, _anyio_asyncio.TaskGroup) or loop.get_task_factory() is not None:
        task_group.start_soon(lambda: coro, name=name)  # pragma: no cover - another anyio, or a task factory
        return
    scope = task_group.cancel_scope
    task = loop.create_task(coro, name=name)
    _anyio_asyncio._task_states[task] = _anyio_asyncio.TaskState(id(scope._host_task), scope)
    scope._tasks.add(task)
    task_group._tasks.add(task)
    if sys.version_info >= (3, 14) and scope._host_task is not None:  # pragma: no cover - newer Pythons
        asyncio.future_add_to_awaited_by(task, scope._host_task)  # type: ignore[attr-defined,unused-ignore]
    task.add_done_callback(functools.partial(_task_done, task_group))


def _task_done(task_group: _anyio_asyncio.TaskGroup, task: asyncio.Task[None]) -> None:
    """What anyio's task group does when one of its tasks ends (anyio 4.16, ``TaskGroup._spawn``)."""
    scope = task_group.cancel_scope
    if sys.version_info >= (3, 14) and scope._host_task is not None:  # pragma: no cover - newer Pythons
        asyncio.future_discard_from_awaited_by(task, scope._host_task)  # type: ignore[attr-defined,unused-ignore]
    state = _anyio_asyncio._task_states.pop(task)
    if state.cancel_scope is not None:
        state.cancel_scope._tasks.discard(task)
    task_group._tasks.discard(task)
    waiter = task_group._on_completed_fut
    if waiter is not None and not task_group._tasks and not waiter.done():
        waiter.set_result(None)
    try:
        error = task.exception()
    except asyncio.CancelledError as exc:  # pragma: no cover - a component's task never lets one out
        error = exc
    if error is not None:  # pragma: no cover - a component's task records its errors instead
        if not isinstance(error, asyncio.CancelledError):
            task_group._exceptions.append(error)
        if not scope._effectively_cancelled:
            scope.cancel()


def current_primitives() -> Primitives:
    """Return the loop's ``time``, a one-shot event, anyio's asyncio scope, ``CancelledError`` and shared deadlines."""
    loop = asyncio.get_running_loop()
    cutoffs = Cutoffs(loop)
    redelivery = _Redelivery(loop) if _REDELIVER else None
    return Primitives(
        clock=loop.time,
        event=_Waker,
        shielded_scope=functools.partial(_ComponentScope, shield=True, redelivery=redelivery),
        cancelled=asyncio.CancelledError,
        follow=cutoffs.follow,
        unfollow=cutoffs.unfollow,
        spawn=spawn,
    )


def install_exception_handler(report: ErrorReporter) -> Callable[[], None]:
    """Make *report* the running loop's exception handler; return a function restoring the previous one."""
    loop = asyncio.get_running_loop()
    previous = loop.get_exception_handler()

    def handle(_: asyncio.AbstractEventLoop, context: dict[str, object]) -> None:
        error = context.get("exception")
        fields = {key: repr(value) for key, value in context.items() if key not in {"exception", "message"}}
        report(
            "loop.exception",
            error if isinstance(error, BaseException) else None,
            message=str(context.get("message", "")),
            **fields,
        )

    loop.set_exception_handler(handle)
    return lambda: loop.set_exception_handler(previous)
