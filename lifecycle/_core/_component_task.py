"""
A component's task, from its start to its end.

:func:`run_component` is the body of the task that
:meth:`ComponentInstance.start_soon() <lifecycle.lowlevel.ComponentInstance.start_soon>`
starts: it calls the component (a function, an object's ``run`` or an async
generator) inside a shielded scope that only its owner cancels, waits for a
started resource to be *woken* by its stop (a generator is never cancelled
once it has yielded), runs the teardown after ``yield`` in that same scope,
now cut off when GRACEFUL ends, ends the component's background tasks, and
finally tells the instance that its task has ended.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import TYPE_CHECKING

import anyio

from ._errors import UsageError
from ._policy import Phase
from ._scope import ShieldedScope, current_owner
from ._spec import Style

if TYPE_CHECKING:
    from ._backends import Scope
    from ._instance import ComponentInstance

__all__ = ["run_component"]


async def run_component(instance: ComponentInstance) -> None:
    current_owner.set(instance)
    instance.started_at = instance._prim.clock()
    instance._log.debug("component.starting", component=instance.path)
    agen: AsyncGenerator[object, None] | None = None
    try:
        # Shielded: outer cancellation never reaches a component; its owner stops it.
        with instance._prim.shielded_scope() as body:
            instance._body = body
            if instance.escalation is not None:
                body.cancel()
            await _run_body(instance, body)
            agen = instance._agen
            gated = instance._gate_teardown and not instance._gate_open
            if agen is not None and not body.cancel_called and instance._errors and gated:
                # Failed while running: hold the teardown until the owner has
                # stopped the dependents (it releases the gate when it stops us).
                instance._gate = instance._prim.event()
                await instance._gate.wait()
            if agen is not None and not body.cancel_called:
                # A started resource is woken by its stop, not cancelled: its
                # teardown runs in this same shielded scope, which is now cut
                # off when GRACEFUL ends (and follows escalations).
                if instance._tasks:
                    await _end_tasks(instance)
                _follow_teardown(instance, body)
                await _teardown(instance, agen, body)
        _teardown_left(instance, body)
        if instance._tasks:  # only then: a coroutine per call adds up over thousands of components
            await _end_tasks(instance)
        if instance._agen is not None:  # a generator whose body was cancelled
            await _teardown_after_cancel(instance, instance._agen)
        if agen is not None and getattr(agen, "ag_frame", True) is not None:  # None: finished
            await _finalize(instance, agen)
    except BaseException as exc:  # noqa: BLE001 - never leave the owner waiting on a dead task
        instance._record(exc, "stop")
    finally:
        _unfollow_teardown(instance)  # if an error nobody expected skipped it
        instance._finish()


async def _run_body(instance: ComponentInstance, body: Scope) -> None:
    spec = instance.spec
    values = instance.values
    kwargs = {name: values[name] for name in spec.injected} if spec.injected else {}
    if spec.wants_ctx:
        kwargs["ctx"] = instance.ctx
    cancelled = instance._prim.cancelled
    try:
        if spec.style is Style.GENERATOR:
            await _run_generator(instance, spec.call(**kwargs))
        else:
            await _run_function(instance, spec.call, kwargs)
    except cancelled:
        if body.cancel_called:
            raise
        instance._record(UsageError(f"Component {instance.path!r} raised a cancellation that nobody requested."))
    except BaseException as exc:  # noqa: BLE001 - recorded, reported with its name, raised by the owner
        instance._record(exc)


async def _run_generator(instance: ComponentInstance, agen: AsyncGenerator[object, None]) -> None:
    instance._agen = agen
    try:
        value = await agen.__anext__()
    except StopAsyncIteration:
        instance._agen = None
        msg = (
            f"Async generator component {instance.path!r} returned without yielding; "
            "it must yield exactly once, the value it provides."
        )
        raise UsageError(msg) from None
    instance._ready_called(value, by_yield=True)
    # A resource has no body to interrupt: its stop sets this event (cheaper
    # than a cancellation), and its teardown runs next.
    instance._wake = instance._prim.event()
    if instance.escalation is None:
        await instance._wake.wait()


async def _run_function(
    instance: ComponentInstance, call: Callable[..., Awaitable[object]], kwargs: dict[str, object]
) -> None:
    if not instance.spec.wants_ctx:
        instance._ready_called(None)
    await call(**kwargs)
    if not instance._is_ready and instance.escalation is None:
        if not instance.spec.main:
            msg = (
                f"Component {instance.path!r} returned before calling ctx.ready(); call "
                "ctx.ready() once it has started, or register it with main=True if it "
                "is a job that finishes."
            )
            raise UsageError(msg)
        instance._ready_called(None)


async def _teardown(
    instance: ComponentInstance, agen: AsyncGenerator[object, None], scope: Scope | ShieldedScope
) -> None:
    """Run a generator's code after ``yield``, inside the shielded *scope*."""
    instance._agen = None  # no reference kept: the loop's asyncgen hooks can forget it
    cancelled = instance._prim.cancelled
    try:
        await agen.__anext__()
    except StopAsyncIteration:
        pass
    except cancelled:
        if not scope.cancel_called:
            instance._record(UsageError(f"Teardown of {instance.path!r} raised a cancellation nobody requested."))
        raise
    except BaseException as exc:  # noqa: BLE001 - recorded, reported with its name
        instance._record(exc, "stop")
    else:
        msg = f"Async generator component {instance.path!r} yielded more than once; it must yield exactly once."
        instance._record(UsageError(msg), "stop")


async def _teardown_after_cancel(instance: ComponentInstance, agen: AsyncGenerator[object, None]) -> None:
    """Run the teardown of a generator whose body was cancelled, in a scope of its own cut off when GRACEFUL ends."""
    scope = ShieldedScope(Phase.GRACEFUL)
    with scope:
        await _teardown(instance, agen, scope)
    if scope.cancelled_caught:
        _teardown_cut_off(instance)
    await _end_tasks(instance)


def _teardown_left(instance: ComponentInstance, body: Scope) -> None:
    """Once the body's scope is left: a teardown that ran in it no longer follows the stop; was it cut off?"""
    if instance._teardown_scope is not None:
        _unfollow_teardown(instance)
        if body.cancelled_caught:
            _teardown_cut_off(instance)


def _teardown_cut_off(instance: ComponentInstance) -> None:
    instance._cut_off = True
    phase = instance.escalation.phase.name if instance.escalation is not None else None
    instance._log.warning("component.teardown_cut_off", component=instance.path, phase=phase)


async def _finalize(instance: ComponentInstance, agen: AsyncGenerator[object, None]) -> None:
    """Close a generator that is still suspended; anything it awaits now is cancelled."""
    if getattr(agen, "ag_frame", True) is None:  # finished: nothing to finalize
        return
    cancelled = anyio.get_cancelled_exc_class()
    with anyio.CancelScope(shield=True) as closing:
        closing.cancel()
        try:
            await agen.aclose()
        except cancelled:
            pass
        except Exception as exc:  # noqa: BLE001 - recorded, reported with its name
            instance._record(exc, "stop")


async def _end_tasks(instance: ComponentInstance) -> None:
    if not instance._tasks:
        return
    with anyio.CancelScope(shield=True):
        instance._tasks_idle = anyio.Event()
        for handle in list(instance._tasks or ()):
            handle.cancel()
        await instance._tasks_idle.wait()


def _follow_teardown(instance: ComponentInstance, scope: Scope) -> None:
    if instance.escalation is not None:  # set by the stop that woke the resource
        instance._teardown_scope = scope
        instance._prim.follow(scope, instance.escalation)


def _unfollow_teardown(instance: ComponentInstance) -> None:
    if instance._teardown_scope is not None and instance.escalation is not None:
        instance._prim.unfollow(instance._teardown_scope, instance.escalation)
    instance._teardown_scope = None
