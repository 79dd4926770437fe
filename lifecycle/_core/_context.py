"""What a component sees of its own life: the Context passed as ``ctx``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, TypeVar, TypeVarTuple, final

import anyio
import structlog

from ._escalation import Escalation
from ._policy import Phase, ShutdownPolicy
from ._reload import ReloadHook, ReloadHooks
from ._report_error import report_error
from ._safe_logging import lifecycle_logger
from ._scope import ShieldedScope
from ._tasks import TaskHandle

if TYPE_CHECKING:
    from ._instance import ComponentInstance
    from ._observe import ChildStatuses, Subscription
    from ._report import ComponentReport

__all__ = ["Context"]

T = TypeVar("T")
Ts = TypeVarTuple("Ts")


@final
class Context:
    """
    A component's view of its own life, passed as the ``ctx`` parameter.

    Attributes:
        name: The component's name.

        path: Its path in the tree (``root/api``).
    """

    __slots__ = ("_instance", "_log", "_reload_hooks", "_stopping", "name", "path")

    def __init__(self, instance: ComponentInstance) -> None:
        self._instance = instance
        self.name = instance.spec.name
        self.path = instance.path
        self._stopping: anyio.Event | None = None
        self._log: structlog.typing.FilteringBoundLogger | None = None
        # What a reload of the tree calls (on_reload); made on first use.
        self._reload_hooks: ReloadHooks | None = None

    def ready(self, value: object = None) -> None:
        """
        Declare the component started, providing *value* to its dependents.

        Components that depend on this one start only after it is ready; they
        receive *value* in the parameter named after this component. Not a
        checkpoint. Calling it after the stop began is allowed and changes
        nothing for the stop.

        Args:
            value: What this component provides.

        Raises:
            UsageError: It was already called, or the component has ended.
        """
        self._instance._ready_called(value)

    @property
    def stopping(self) -> anyio.Event:
        """
        An event set when this component's stop begins.

        It is set just before the component is interrupted: a function's (or an
        object's ``run``) body is then cancelled, while a resource (an async
        generator) that has yielded is woken instead, not cancelled, and its
        teardown runs.
        """
        if self._stopping is None:
            self._stopping = anyio.Event()
            if self._instance.escalation is not None:
                self._stopping.set()
        return self._stopping

    @property
    def phase(self) -> Phase | None:
        """``None`` until this component's stop begins, then the phase in effect now."""
        escalation = self._instance.escalation
        return None if escalation is None else escalation.phase

    @property
    def escalation(self) -> Escalation | None:
        """
        The deadlines of this component's stop, once it has begun (low-level).

        A supervisor stops its children with these deadlines.
        """
        return self._instance.escalation

    @property
    def policy(self) -> ShutdownPolicy:
        """The budgets this component is stopped with (the tree's, restricted by its own)."""
        return self._instance.policy

    @property
    def log(self) -> structlog.typing.FilteringBoundLogger:
        """A structlog logger bound with ``component=<path>``."""
        if self._log is None:
            self._log = lifecycle_logger(component=self.path)
        return self._log

    def shielded(self, until: Phase = Phase.GRACEFUL, timeout: float | None = None) -> ShieldedScope:
        """
        Return a scope that protects work from this component's cancellation.

        The same as :func:`lifecycle.shielded`; a worker wraps the item it must
        finish in it, a server waits on :attr:`stopping` inside it to drain.

        Args:
            until: The phase whose end cuts the scope off.

            timeout: Seconds after entering at which the scope is cut off anyway.
        """
        return ShieldedScope(until, timeout)

    def on_reload(self, hook: ReloadHook) -> Subscription:
        """
        Call *hook()* each time the tree reloads, while this component runs.

        A reload (:meth:`RunningTree.reload() <lifecycle.RunningTree.reload>`,
        or SIGHUP under ``run(..., sighup="reload")``) calls the hooks of every
        running component, dependencies first, one at a time, in the task that
        asked for the reload, not in this component's task. *hook* may be a
        plain function or a coroutine function (its coroutine is awaited): it
        re-reads configuration and applies it, and should be quick. A hook that
        raises is logged (``reload.failed``) and reported in the
        :class:`~lifecycle.ReloadReport`; it never fails this component, and
        this component's later hooks are skipped for that reload.

        The hooks end with this run of the component (a restarted component
        registers its own again); cancel the returned subscription to remove
        one earlier. An object component's ``reload()`` method, if it has one,
        is a hook too, called before these. Not a checkpoint.

        .. versionadded:: 0.1.0
        """
        if self._reload_hooks is None:
            self._reload_hooks = ReloadHooks()
        return self._reload_hooks.add(hook)

    def spawn(
        self,
        fn: Callable[[*Ts], Awaitable[T]],
        *args: *Ts,
        name: str | None = None,
        critical: bool = True,
    ) -> TaskHandle[T]:
        """
        Start a background task owned by this component.

        The task starts at the next checkpoint. It runs until it returns, is
        cancelled through its handle, or the component's body ends (it is then
        cancelled, and waited for before a generator's teardown runs). Outer
        cancellation does not reach it. Shielded scopes inside it follow this
        component's phases. Not a checkpoint.

        Args:
            fn: The async function to run.

            *args: Positional arguments for *fn*.

            name: The task's name in logs and reports.

            critical: If ``True``, a failure of the task fails the component;
                if ``False``, it is logged with its traceback and recorded in the
                component's report.

        Raises:
            UsageError: The component has already ended.
        """
        return self._instance._spawn(fn, args, name=name, critical=critical)

    def request_stop(self, detail: str, *, failed: bool = False) -> None:
        """
        Begin this component's own stop now, as if its owner had stopped it.

        ``ctx.stopping`` is set, then the body is cancelled (a resource that has
        yielded is woken instead, and its teardown runs); the deadlines are this
        component's policy's, measured from now. A supervisor does this when its
        ``main`` child returns or when it gives up. Not a checkpoint; does nothing
        if the stop has already begun.

        Args:
            detail: Why, in a few words; a root's detail becomes the tree
                report's ``detail``.

            failed: Whether a failure is the reason; a root's stop is then
                reported with ``StopReason.FAILURE`` instead of ``MAIN_EXITED``.
        """
        self._instance._stop_self(detail, failed=failed)

    def report_children(self, reports: Sequence[ComponentReport]) -> None:
        """
        Attach the reports of the components this one supervises (low-level).

        They become ``children`` of this component's report and appear in the
        tree's :class:`ShutdownReport`.
        """
        self._instance._children_reports += tuple(reports)

    def report_containment(self, mechanism: str) -> None:
        """
        Record how this component's child processes are contained (low-level).

        It becomes :attr:`ComponentReport.containment
        <lifecycle.ComponentReport.containment>`. :class:`~lifecycle.ProcessComponent`
        calls it for each child it spawns (``"cgroup"``, ``"tree"`` or
        ``"process group"``). Not a checkpoint.

        .. versionadded:: 0.2
        """
        self._instance._containment = mechanism

    def publish_children(self, children: ChildStatuses) -> None:
        """
        Show this component's children to the observers of the tree (low-level).

        A supervisor calls it once it runs. :meth:`RunningTree.components()
        <lifecycle.RunningTree.components>` then lists what *children* says
        about them, in its order, with each live child's own children below it,
        and :meth:`child_changed` can announce their changes. Without it, only
        the live runs this component owns are listed. Not a checkpoint.

        .. versionadded:: 0.1.0
        """
        self._instance._published = children

    def child_changed(self, name: str) -> None:
        """
        Tell the tree's subscribers that the status of child *name* changed (low-level).

        The status is taken from what :meth:`publish_children` was given, at
        once, and passed to every subscriber of :meth:`RunningTree.subscribe_components()
        <lifecycle.RunningTree.subscribe_components>`. Cheap when nobody
        subscribed: nothing is computed. Not a checkpoint; never raises.

        .. versionadded:: 0.1.0
        """
        observers = self._instance._observers
        children = self._instance._published
        if children is None or observers is None or not observers.subscriptions:
            return
        try:
            status = children.status(name)
        except Exception as exc:  # noqa: BLE001 - observing must never break the supervisor
            report_error("tree.status_failed", exc, component=self.path, child=name)
            return
        if status is not None:
            observers.emit(status)

    def __repr__(self) -> str:
        return f"<Context {self.path!r} state={self._instance.state.value}>"
