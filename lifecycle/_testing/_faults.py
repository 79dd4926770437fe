"""Fault injection: make a named component fail at a chosen point without editing it."""

from __future__ import annotations

import enum
from collections.abc import AsyncIterator, Callable, Coroutine
from types import TracebackType
from typing import Any, final

import anyio
import attrs

from lifecycle._core import _instance_hooks as _hooks
from lifecycle._core._context import Context
from lifecycle._core._errors import LifecycleError, UsageError
from lifecycle._core._instance import ComponentInstance
from lifecycle._core._policy import Phase
from lifecycle._core._scope import UNTIL, shielded
from lifecycle._core._spec import ComponentSpec, Style
from lifecycle._core._validation import Option

__all__ = ["Fault", "InjectedError", "InjectedFault", "inject_fault"]


class Fault(enum.Enum):
    """Where an injected fault strikes a component (see :func:`inject_fault`)."""

    START = "start"
    """It raises instead of starting: a start failure (rolled back, or restarted by its supervisor)."""
    RUNNING = "running"
    """It raises *delay* seconds after it became ready, from a critical task: a runtime failure."""
    TEARDOWN = "teardown"
    """It raises once its own teardown has run: a failure while stopping."""
    HANG = "hang"
    """Its teardown hangs after its own code has run, until the phase *until* ends and cuts it off."""
    STUBBORN = "stubborn"
    """
    Its teardown ignores cancellation for *delay* seconds after its own code has run.

    Like a shield without a deadline or code that swallows cancellation: past the
    forceful deadline it is logged as stubborn.
    """


class InjectedError(LifecycleError):
    """
    The error an injected fault raises when it is not given one.

    Attributes:
        component: The component it was injected into (as given to :func:`inject_fault`).

        fault: Where it struck.
    """

    def __init__(self, component: str, fault: Fault) -> None:
        super().__init__(f"fault injected into {component!r} at {fault.value}")
        self.component = component
        self.fault = fault

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.component, self.fault))


@final
@attrs.define(eq=False)
class InjectedFault:
    """
    An active fault injection, returned by :func:`inject_fault`.

    A context manager: the fault strikes matching components created inside the
    ``with`` block (``__exit__`` removes it; :meth:`remove` does so early).

    Attributes:
        component: A component path (``root/db``), or a name matching that
            component in any tree.

        at: Where the fault strikes.

        error: What it raises (``START``, ``RUNNING``, ``TEARDOWN``), or ``None``
            for a fresh :class:`InjectedError`.

        delay: For ``RUNNING``: seconds after readiness; for ``STUBBORN``:
            seconds the teardown ignores cancellation.

        until: For ``HANG``: the phase whose end cuts the teardown off.

        times: How many starts of the component it strikes (``None``: all).

        triggered: How many starts it has struck so far.
    """

    component: str
    at: Fault
    error: BaseException | None = None
    delay: float = 0.0
    until: Phase = Phase.GRACEFUL
    times: int | None = 1
    triggered: int = 0

    def __enter__(self) -> InjectedFault:
        _hooks.install(self._observe)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.remove()

    def remove(self) -> None:
        """Stop injecting; components already struck keep their fault. Idempotent."""
        _hooks.uninstall(self._observe)

    def _matches(self, instance: ComponentInstance) -> bool:
        if "/" in self.component:
            return instance.path == self.component
        return instance.spec.name == self.component

    def _error(self) -> BaseException:
        return InjectedError(self.component, self.at) if self.error is None else self.error

    def _observe(self, instance: ComponentInstance) -> None:
        if not self._matches(instance) or (self.times is not None and self.triggered >= self.times):
            return
        self.triggered += 1
        if self.at is Fault.RUNNING:
            error, delay = self._error(), self.delay

            async def strike() -> None:
                await anyio.sleep(delay)
                raise error

            def ready(inst: ComponentInstance) -> None:
                inst._spawn(strike, (), name="injected fault", critical=True)

            instance.add_ready_callback(ready)
            return
        instance.spec = _wrap(instance.spec, self)

    async def _after_teardown(self) -> None:
        if self.at is Fault.TEARDOWN:
            raise self._error()
        if self.at is Fault.HANG:
            with shielded(self.until):
                await anyio.sleep_forever()
        else:
            with anyio.CancelScope(shield=True):
                await anyio.sleep(self.delay)


def _wrap(spec: ComponentSpec, fault: InjectedFault) -> ComponentSpec:
    call = spec.call
    if spec.style is Style.GENERATOR:
        return attrs.evolve(spec, call=_generator(call, fault))
    return attrs.evolve(spec, call=_function(call, spec.wants_ctx, fault), wants_ctx=True)


def _generator(call: Callable[..., Any], fault: InjectedFault) -> Callable[..., AsyncIterator[object]]:
    async def faulty(**kwargs: object) -> AsyncIterator[object]:
        if fault.at is Fault.START:
            raise fault._error()
        agen = call(**kwargs)
        try:
            value = await agen.__anext__()
        except StopAsyncIteration:
            return  # the framework reports a generator that never yielded
        try:
            yield value
        except BaseException:  # closed or cancelled before its teardown: close the original too
            await agen.aclose()
            raise
        try:
            await agen.__anext__()
        except StopAsyncIteration:
            pass
        else:
            await agen.aclose()
            msg = f"Async generator component {fault.component!r} yielded more than once; it must yield exactly once."
            raise UsageError(msg)
        await fault._after_teardown()

    return faulty


def _function(
    call: Callable[..., Any], wants_ctx: bool, fault: InjectedFault
) -> Callable[..., Coroutine[Any, Any, None]]:
    async def faulty(ctx: Context, **kwargs: object) -> None:
        if fault.at is Fault.START:
            raise fault._error()
        if wants_ctx:
            kwargs["ctx"] = ctx
        else:  # the framework declares such a component ready before calling it
            ctx.ready()
        try:
            await call(**kwargs)
        finally:
            if ctx.phase is not None:  # its stop has begun: this was its teardown
                await fault._after_teardown()

    return faulty


def inject_fault(
    component: str,
    at: Fault,
    *,
    error: BaseException | None = None,
    delay: float = 0.0,
    until: Phase = Phase.GRACEFUL,
    times: int | None = 1,
) -> InjectedFault:
    """
    Make a component fail at a chosen point of its life, without editing its code.

    Use the result as a context manager around the code that runs the tree (or
    use the ``lifecycle_faults`` fixture of :mod:`lifecycle.pytest_plugin`). Every
    component instance created inside the block whose path is *component* (or,
    when *component* has no ``/``, whose name is *component*) is struck, up to
    *times* starts: with the default ``times=1`` a restarted component comes back
    healthy. It works for every way of writing a component and in nested trees,
    on every backend. Enter it before the tree starts.

    ``Fault.START`` raises instead of running the component's code;
    ``Fault.RUNNING`` raises *delay* seconds after the component became ready,
    from a critical background task; ``Fault.TEARDOWN``, ``Fault.HANG`` and
    ``Fault.STUBBORN`` act once the component's own teardown (the code after
    ``yield``, or the ``finally`` of a function cancelled by its stop) has run.

    Args:
        component: The component's path or name.

        at: Where the fault strikes.

        error: The exception to raise (the same object each time); by default a
            fresh :class:`InjectedError`.

        delay: Seconds after readiness for ``Fault.RUNNING``; seconds of
            ignored cancellation for ``Fault.STUBBORN``.

        until: For ``Fault.HANG``, the phase whose end cuts the hang off:
            ``Phase.GRACEFUL`` (its stop ends FORCED), ``Phase.FORCEFUL``
            (TERMINATED) or ``Phase.TERMINATE``.

        times: How many starts to strike, or ``None`` for every start.

    Raises:
        ConfigurationError: An argument is invalid.
    """
    Option.instance_of(Fault, "a lifecycle.testing.Fault (e.g. Fault.START)").check("at", at)
    Option.text(expected="a component's name or path").check("component", component)
    UNTIL.check("until", until)
    Option.seconds().check("delay", delay)
    Option.whole_number(1, expected="a positive number of starts").or_none().check("times", times)
    return InjectedFault(component, at, error=error, delay=delay, until=until, times=times)
