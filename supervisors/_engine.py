"""The run engine of a supervisor: its children's records, their events, and starting and stopping them in waves."""

from __future__ import annotations

import contextvars
import functools
import random
from collections import deque
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, final

import anyio
import anyio.abc
import attrs

from lifecycle import ComponentReport, ComponentSpec, ComponentStatus, Context, Priority, State
from lifecycle.lowlevel import ComponentInstance, Escalation, current_instance, safe_logger, status_of, stop_instances

from ._child import Child, Declaration, exit_key, waves_of, with_dependents
from ._errors import GaveUpError
from ._graph import Graph
from ._restart_timing import RestartWindow
from ._strategy import Restart

if TYPE_CHECKING:
    from ._supervisor import Supervisor

__all__ = ["Engine"]

_log = safe_logger("lifecycle.supervisors")

# Waves larger than this are logged with their size only.
_LOGGED_NAMES = 20

# How many dynamic children that failed and ended for good (and were forgotten)
# the supervisor's report keeps; the log has every one of them.
_DROPPED_REPORTS = 16


class Engine:
    """
    The state of one run of a supervisor: its children, the events they cause, and starting and stopping them in waves.

    :class:`~supervisors._dynamic.DynamicChildren` adds the children started
    and stopped while it runs, and :class:`~supervisors._restarts.Supervision`
    the restarts; a running supervisor holds a ``Supervision``.
    """

    __slots__ = (
        "changed",
        "children",
        "context",
        "ctx",
        "dropped",
        "ends",
        "exited",
        "gave_up",
        "graph",
        "lock",
        "next_order",
        "noticed",
        "owner",
        "random",
        "reshaped",
        "static",
        "stopping",
        "sup",
        "task_group",
        "wakeup",
        "watch_scope",
        "window",
    )

    def __init__(
        self,
        sup: Supervisor,
        ctx: Context,
        task_group: anyio.abc.TaskGroup,
        graph: Graph,
        declarations: Sequence[Declaration],
    ) -> None:
        self.sup = sup
        self.ctx = ctx
        self.task_group = task_group
        self.graph = graph
        # Registration order: registered children first, then dynamic ones as they come.
        self.children: dict[str, Child] = {}
        static = [Child(declaration, i, dynamic=False) for i, declaration in enumerate(declarations)]
        for i, child in enumerate(static):
            child.effective = graph.effective[i]
            child.deps = tuple(static[j] for j in graph.dependencies[i])
            if graph.dependents[i]:
                child.dependents = dict.fromkeys(static[j] for j in graph.dependents[i])
            self.children[child.name] = child
        self.static = static  # indexed like `graph`
        self.next_order = len(static)
        # Whether dynamic children changed the tree, so `graph`'s waves no longer cover it.
        self.reshaped = False
        self.window = RestartWindow(sup.intensity)
        # The ends counted in the window (most recent last): what GaveUpError reports.
        self.ends: deque[tuple[float, ComponentInstance]] = deque(maxlen=sup.intensity.max_restarts + 1)
        # Set when it gave up: the error it raises, and the end that was one too many.
        self.gave_up: tuple[GaveUpError, ComponentInstance] | None = None
        # Reports of dynamic children that failed and were forgotten (the most recent).
        self.dropped: deque[tuple[int, ComponentReport]] = deque(maxlen=_DROPPED_REPORTS)
        self.random = random.Random()  # noqa: S311 - jitter, not cryptography
        # Failed children handled before their task ended (see on_failure).
        self.noticed: set[ComponentInstance] = set()
        self.exited: list[ComponentInstance] = []
        self.wakeup = anyio.Event()
        # Woken on every readiness, exit and stop, for start_child() callers.
        self.changed: anyio.Event | None = None
        # Restarts and stop_child() change which instances run: one at a time.
        self.lock = anyio.Lock(fast_acquire=True)
        self.stopping = False
        self.watch_scope = anyio.CancelScope()
        # Created in the supervisor's own task: its instance, and a context in which
        # instances created for it have it as their parent.
        self.owner = current_instance()
        self.context = contextvars.copy_context()

    # -- events ------------------------------------------------------------------

    def _child_of(self, instance: ComponentInstance) -> Child | None:
        child = self.children.get(instance.spec.name)
        return child if child is not None and child.instance is instance else None

    def _notify(self) -> None:
        if self.changed is not None:
            self.changed.set()
            self.changed = None

    async def _changes(self) -> None:
        if self.changed is None:
            self.changed = anyio.Event()
        await self.changed.wait()

    def on_ready(self, instance: ComponentInstance) -> None:
        child = self._child_of(instance)
        if child is not None and child.pending:
            # Its start_child() caller gets this value whatever the child does next
            # (returns, fails, is restarted), as OTP's start_child returns {ok, Pid}.
            child.pending = False
            child.started = (instance.value,)
        self._notify()
        self.ctx.child_changed(instance.spec.name)

    def on_exit(self, instance: ComponentInstance) -> None:
        self._notify()
        self.ctx.child_changed(instance.spec.name)
        if self.stopping or instance in self.noticed:
            return
        child = self._child_of(instance)
        if child is not None and (child.pending or child.removing):
            return  # its start_child() or stop_child() caller handles it
        self.exited.append(instance)
        self.wakeup.set()

    def on_failure(self, instance: ComponentInstance) -> None:
        self.ctx.child_changed(instance.spec.name)  # called when any stop of the child begins
        # A child that failed while running begins its own stop (and a resource
        # holds its teardown): handle it now, not when its task ends.
        if not instance.failed or self.stopping:
            return
        child = self._child_of(instance)
        if child is not None and (child.pending or child.removing):
            return
        self.noticed.add(instance)
        self.exited.append(instance)
        self.wakeup.set()

    async def _next_event(self) -> None:
        await self.wakeup.wait()
        self.wakeup = anyio.Event()

    async def watch_stop(self) -> None:
        """Wake the supervisor's loops when its stop begins; end when the stop is done."""
        with self.watch_scope:
            await self.ctx.stopping.wait()
            self.wakeup.set()
            self._notify()

    # -- observation (lifecycle.abc.ChildStatuses) ---------------------------------------

    def statuses(self) -> list[ComponentStatus]:
        """The status of every registered child, in registration order."""
        return [self._status(child) for child in self.children.values()]

    def status(self, name: str) -> ComponentStatus | None:
        """The status of the child *name*, or ``None``."""
        child = self.children.get(name)
        return None if child is None else self._status(child)

    def _status(self, child: Child) -> ComponentStatus:
        instance = child.instance
        if instance is None:  # a dynamic child waiting for its dependencies
            deps = tuple(sorted({*child.spec.injected, *child.spec.depends_on}))
            return ComponentStatus(
                path=f"{self.ctx.path}/{child.name}",
                name=child.name,
                state=State.STARTING,
                restarts=child.restarts,
                priority=child.effective,
                depends_on=deps,
            )
        status = status_of(instance)
        if self._restarting(child, instance):
            return attrs.evolve(status, state=State.RESTARTING, ready=False, next_attempt=child.restart_at)
        return status

    def _restarting(self, child: Child, instance: ComponentInstance) -> bool:
        """Whether *child*'s run ended (or is being stopped) and this supervisor starts it again."""
        if child.gone or child.removing or self.stopping or self.ctx.escalation is not None:
            return False
        if child.retired:  # stopped by a restart, not replaced yet
            return True
        if not (instance.done or instance.failed) or instance.spec.main:
            return False
        # It ended or failed, and the supervisor has not handled it yet: its restart type says.
        return child.restart is Restart.PERMANENT or (child.restart is Restart.TRANSIENT and instance.failed)

    # -- starting ----------------------------------------------------------------------

    async def start(self, members: set[Child] | None = None) -> bool:
        """
        Start the children (or only *members*, for a restart) wave by wave.

        Returns ``False`` when the stop began, or when a child failed to start
        during the first start. During a restart a failure does not stop the
        others: children whose dependencies are not ready wait for the failed
        child's own restart, which includes them.
        """
        if members is None:
            waves = [[self.static[i] for i in wave] for wave in self.graph.start_waves]
        else:
            waves = waves_of([c for c in members if self._registered(c)], stop=False)
        for number, full_wave in enumerate(waves):
            if self.ctx.escalation is not None:
                return False
            # A dependency that already ended (or is stopping) is not up: its dependents
            # start when it restarts, with it, never against an ended component.
            wave = [c for c in full_wave if all(d.ready() for d in c.deps)]
            if not wave:
                continue
            if members is None:
                self._log_wave(number, [c.name for c in wave])
            if not await self._wave_up(self._start_wave(wave), first_start=members is None):
                return False
        return True

    def _start_wave(self, wave: list[Child]) -> list[ComponentInstance]:
        """Start a new instance of every child of *wave*; one wake-up once all of them are ready or ended."""
        pending = len(wave)

        def settled(_: ComponentInstance) -> None:
            nonlocal pending
            pending -= 1
            if not pending:  # one wake-up per wave, not one per child
                self.wakeup.set()

        def ended(instance: ComponentInstance) -> None:
            # A member that ended before it was ready is settled too: without this, a
            # restart wave where one fails to start would wait for the others forever.
            if not instance.ready:
                settled(instance)

        batch = [self._new_instance(c, settled) for c in wave]
        for instance in batch:
            instance.add_exit_callback(ended)
            instance.start_soon(self.task_group)
        return batch

    async def _wave_up(self, batch: list[ComponentInstance], *, first_start: bool) -> bool:
        """Wait until every child of *batch* is ready or ended; ``False`` on a stop or first-start failure."""
        while not all(i.ready or i.done for i in batch):
            await self._next_event()
            if self.ctx.escalation is not None:
                return False
            # A child that was ready before it failed is supervised once the start is
            # over; one that failed before it was ready fails the first start.
            failed = [i.path for i in self.exited if i.failed and not i.ready]
            if first_start and failed:
                _log.error("tree.start_failed", tree=self.ctx.path, failed=failed)
                return False
        return True

    def _log_wave(self, number: int, names: list[str]) -> None:
        shown = names if len(names) <= _LOGGED_NAMES else [*names[:_LOGGED_NAMES], "..."]
        _log.info("tree.wave_starting", tree=self.ctx.path, wave=number, size=len(names), components=shown)

    def _registered(self, child: Child) -> bool:
        return self.children.get(child.name) is child and not child.removing

    def _new_instance(
        self,
        child: Child,
        became_ready: Callable[[ComponentInstance], None] | None,
    ) -> ComponentInstance:
        spec = child.spec
        children = self.children
        values = {}
        for dep in spec.injected:
            instance = children[dep].instance
            assert instance is not None  # noqa: S101 - dependencies are ready first
            values[dep] = instance.value
        make = functools.partial(
            ComponentInstance,
            spec,
            policy=self.ctx.policy,
            path=f"{self.ctx.path}/{spec.name}",
            values=values,
            priority=child.effective,
            restarts=child.restarts,
            gate_teardown=True,
        )
        # An instance belongs to the component whose task creates it. start_child() may be
        # called from outside this supervisor (the host program, another component): then
        # create it in this supervisor's context, where the supervisor is its parent.
        instance = make() if current_instance() is self.owner else self.context.run(make)
        if became_ready is not None:
            instance.add_ready_callback(became_ready)
        instance.add_ready_callback(self.on_ready)
        instance.add_exit_callback(self.on_exit)
        instance.add_stop_callback(self.on_failure)
        child.keep_errors()
        child.instance = instance
        child.retired = False
        child.gone = False
        child.handled = False
        child.restart_at = None
        self.ctx.child_changed(child.name)
        return instance

    # -- stopping ----------------------------------------------------------------------

    def _dependents_of(self, child: Child) -> list[Child]:
        """Every registered child that depends on *child*, directly or not."""
        return list(with_dependents({child: None}))[1:]

    async def _stop_group(self, group: Sequence[Child]) -> None:
        """Stop the running instances of *group* in stop waves, with fresh deadlines."""
        running = [c for c in group if c.instance is not None and not c.instance.done]
        if not running:
            return
        escalation = Escalation.start(self.ctx.policy)
        for wave in waves_of(running, stop=True):
            batch = [c.instance for c in wave if c.instance is not None]
            await stop_instances(batch, escalation)

    async def stop_all(self, escalation: Escalation) -> None:
        """Stop every child wave by wave and hand their reports to the context."""
        self.stopping = True
        self.watch_scope.cancel()
        self._notify()
        for child in self.children.values():
            if child.retired and not child.gone:  # no longer restarting: stopped for good
                self.ctx.child_changed(child.name)
        async with self.lock:  # a stop_child() in progress finishes first
            if self.reshaped:
                waves = waves_of(list(self.children.values()), stop=True)
            else:
                waves = [[self.static[i] for i in wave] for wave in self.graph.stop_waves]
            for number, wave in enumerate(waves):
                batch = [c.instance for c in wave if c.instance is not None and not c.instance.done]
                if batch:
                    _log.debug("tree.wave_stopping", tree=self.ctx.path, wave=number, size=len(batch))
                    await stop_instances(batch, escalation)
        ended = [(exit_key(c), c.report()) for c in self.children.values() if c.instance is not None]
        # Dynamic children that failed and were forgotten stay in the report, in exit order.
        ended.extend(((False, order), report) for order, report in self.dropped)
        ended.sort(key=lambda pair: pair[0])
        self.ctx.report_children([report for _, report in ended])

    def release(self) -> None:
        """
        Let the stopped run free itself by reference counting, once every child has stopped.

        The context keeps what the children's final statuses are made of
        (what observers see after the stop) instead of this engine, whose
        children's runs refer back to the supervisor's, and the children
        forget their links to each other: without these cycles, the objects
        of a stopped tree need no garbage collection (a program exits sooner).
        """
        final: list[ComponentStatus | _Ended] = []
        for child in self.children.values():
            instance = child.instance
            if instance is None or self._restarting(child, instance):
                final.append(self._status(child))  # rare: taken now
            else:
                final.append(_frozen(instance))
            child.deps = ()
            child.dependents = None
        self.ctx.publish_children(_FinalStatuses(final))
        self.static = []

    def failures(self) -> list[BaseException]:
        """
        Return the errors to raise: none, unless the supervisor gave up or a child failed unhandled.

        When it gave up, its :class:`GaveUpError` (which holds the errors of the
        runs counted in the window) and the errors of every other child. When a
        child failed to start or while running and nothing handled it, every
        child's errors.
        """
        started = [
            c.instance
            for c in self.children.values()
            if c.instance is not None and not c.retired and not c.failure_handled()
        ]
        if self.gave_up is not None:
            error, last = self.gave_up
            errors: list[BaseException] = [error]
            for instance in started:
                if instance is not last:
                    errors.extend(instance.failures())
            return errors
        if not any(stage != "stop" for i in started for stage, _ in i.errors):
            return []
        errors = []
        for instance in started:
            errors.extend(instance.failures())
        return errors


# What status_of() reads of a run that has ended: path, spec, state, ready, restarts, priority, errors.
_Ended = tuple[str, ComponentSpec, State, bool, int, Priority, tuple[tuple[object, BaseException], ...]]


def _frozen(instance: ComponentInstance) -> _Ended:
    """What :func:`~lifecycle.lowlevel.status_of` reads of an ended run, without the run."""
    return (
        instance.path,
        instance.spec,
        instance.state,
        instance.ready,
        instance.restarts,
        instance.priority,
        instance.errors,
    )


def _thawed(entry: ComponentStatus | _Ended) -> ComponentStatus:
    if isinstance(entry, ComponentStatus):
        return entry
    path, spec, state, ready, restarts, priority, errors = entry
    return ComponentStatus(
        path=path,
        name=spec.name,
        state=state,
        ready=ready,
        restarts=restarts,
        priority=priority,
        depends_on=tuple(sorted({*spec.injected, *spec.depends_on})),
        error=errors[-1][1] if errors else None,
    )


@final
class _FinalStatuses:
    """The statuses of a stopped run's children, made on demand from what they were when it ended."""

    __slots__ = ("_entries",)

    def __init__(self, entries: list[ComponentStatus | _Ended]) -> None:
        self._entries = entries

    def statuses(self) -> list[ComponentStatus]:
        """Every child's status, in registration order."""
        return [_thawed(entry) for entry in self._entries]

    def status(self, name: str) -> ComponentStatus | None:
        """The status of the child *name*, or ``None``."""
        return next((s for s in self.statuses() if s.name == name), None)
