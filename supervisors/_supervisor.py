"""Supervisor: a component that starts, watches and stops its children in order."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from typing import TypeVar, final, overload

import anyio
import anyio.abc
import attrs
import structlog

from lifecycle import (
    ComponentReport,
    ComponentSpec,
    ConfigurationError,
    Context,
    Priority,
    ShutdownPolicy,
    UsageError,
)
from lifecycle.abc import ChildInfo, Tree, TreeInfo
from lifecycle.lowlevel import ComponentInstance, Escalation, failure_group, stop_instances

from ._graph import Graph, build_graph
from ._restart import RestartWindow, backoff_delay
from ._strategy import Backoff, Intensity, Restart, Strategy

__all__ = ["Supervisor"]

_log = structlog.get_logger("supervisors")

F = TypeVar("F", bound=Callable[..., object])
T = TypeVar("T")

# Waves larger than this are logged with their size only.
_LOGGED_NAMES = 20

# How many errors of a child's earlier runs its report keeps (memory stays flat
# however often it restarts; ComponentReport.restarts counts every run).
_EARLIER_ERRORS = 16


def _check_option(value: object, kind: type, what: str, owner: str) -> None:
    if not isinstance(value, kind):
        msg = f"`{what}` of {owner} must be a {kind.__module__.split('.')[0]}.{kind.__name__}, got {value!r}."
        raise ConfigurationError(msg)


@final
class Supervisor:
    """
    A component that owns other components and runs them in order.

    It starts its children in dependency order, watches them, and stops them in
    priority and dependency order.

    A supervisor is itself a component (``async def run(self, ctx)``), so trees
    nest: ``parent.add(child_supervisor)``. When it is ready it provides itself to
    its dependents.

    Args:
        name: The supervisor's name, and its default name in a parent tree.

        strategy: Which children restart when one fails.

        intensity: How many restarts it tolerates before giving up.

        backoff: The delay before each restart.

        policy: Its own shutdown budgets; for a root they are the tree's unless
            ``running()`` or ``run()`` is given one. Defaults to
            :meth:`~lifecycle.ShutdownPolicy.from_env` at the root.

    Raises:
        ConfigurationError: An option has the wrong type or value.
    """

    __slots__ = (
        "_graph",
        "_index",
        "_restarts",
        "_running",
        "_specs",
        "backoff",
        "intensity",
        "name",
        "policy",
        "strategy",
    )

    def __init__(
        self,
        name: str = "root",
        *,
        strategy: Strategy = Strategy.ONE_FOR_ONE,
        intensity: Intensity | None = None,
        backoff: Backoff | None = None,
        policy: ShutdownPolicy | None = None,
    ) -> None:
        raw_name: object = name  # callers without a type checker may pass anything
        if not isinstance(raw_name, str) or not raw_name or "/" in raw_name:
            msg = f"Supervisor name {name!r} is invalid: use a non-empty string without '/'."
            raise ConfigurationError(msg)
        owner = f"supervisor {name!r}"
        _check_option(strategy, Strategy, "strategy", owner)
        intensity = Intensity() if intensity is None else intensity
        backoff = Backoff() if backoff is None else backoff
        _check_option(intensity, Intensity, "intensity", owner)
        _check_option(backoff, Backoff, "backoff", owner)
        if policy is not None:
            _check_option(policy, ShutdownPolicy, "policy", owner)
        self.name = name
        self.strategy = strategy
        self.intensity = intensity
        self.backoff = backoff
        self.policy = policy
        self._specs: list[ComponentSpec] = []
        self._index: dict[str, int] = {}
        self._restarts: list[Restart] = []
        self._graph: Graph | None = None
        self._running = False

    # -- declaring children ------------------------------------------------------

    @overload
    def component(self, fn: F, /) -> F: ...

    @overload
    def component(
        self,
        /,
        *,
        name: str | None = None,
        depends_on: Sequence[str] = (),
        priority: Priority = Priority.NORMAL,
        restart: Restart = Restart.PERMANENT,
        main: bool = False,
        policy: ShutdownPolicy | None = None,
    ) -> Callable[[F], F]: ...

    def component(
        self,
        fn: F | None = None,
        /,
        *,
        name: str | None = None,
        depends_on: Sequence[str] = (),
        priority: Priority = Priority.NORMAL,
        restart: Restart = Restart.PERMANENT,
        main: bool = False,
        policy: ShutdownPolicy | None = None,
    ) -> F | Callable[[F], F]:
        """
        Register a function or async generator function as a child; a decorator.

        Usable bare (``@sup.component``) or with options. Returns the function
        unchanged, so it stays callable and testable on its own. The options are
        those of :meth:`add`.

        Raises:
            ConfigurationError: The function is not a component, an option is
                invalid, or the name is taken.
        """

        def register(target: F) -> F:
            self.add(
                target,
                name=name,
                depends_on=depends_on,
                priority=priority,
                restart=restart,
                main=main,
                policy=policy,
            )
            return target

        return register if fn is None else register(fn)

    def add(
        self,
        obj: T,
        *,
        name: str | None = None,
        depends_on: Sequence[str] = (),
        priority: Priority = Priority.NORMAL,
        restart: Restart = Restart.PERMANENT,
        main: bool = False,
        policy: ShutdownPolicy | None = None,
    ) -> T:
        """
        Register *obj* as a child and return it unchanged.

        *obj* is an async function, an async generator function, an object with
        ``async def run(self, ctx)`` (another supervisor, for instance), or a
        :class:`~lifecycle.ComponentSpec`. Parameters named after other children are
        dependencies; unknown names and cycles are reported when the tree is
        validated, before anything starts.

        Args:
            obj: The component.

            name: Its name; defaults to the function's ``__name__`` or the
                object's ``name``.

            depends_on: Further dependencies whose values are not injected.

            priority: How important it is; lower priorities stop first.

            restart: When it is restarted after it ends.

            main: Whether it is the program's job: when it returns, the tree
                stops in order; when it raises, the tree stops and fails.

            policy: Its own shutdown budgets; they only make deadlines earlier.

        Raises:
            ConfigurationError: *obj* is not a component, an option is invalid,
                or the name is already taken.

            UsageError: The supervisor is running.
        """
        if self._running:
            msg = (
                f"Supervisor {self.name!r} is running; register children before it starts "
                f"(adding {name or getattr(obj, '__name__', obj)!r})."
            )
            raise UsageError(msg)
        spec: ComponentSpec
        if isinstance(obj, ComponentSpec):
            spec = obj
        else:
            spec = ComponentSpec.from_target(
                obj,
                name=name,
                depends_on=depends_on,
                priority=priority,
                main=main,
                policy=policy,
            )
        _check_option(restart, Restart, "restart", f"component {spec.name!r}")
        if spec.name in self._index:
            msg = f"Supervisor {self.name!r} already has a component named {spec.name!r}; pass a different `name=`."
            raise ConfigurationError(msg)
        self._index[spec.name] = len(self._specs)
        self._specs.append(spec)
        self._restarts.append(restart)
        self._graph = None
        return obj

    @property
    def children(self) -> tuple[ComponentSpec, ...]:
        """The registered children, in registration order."""
        return tuple(self._specs)

    def restart_of(self, name: str) -> Restart:
        """Return the restart type the child *name* was registered with."""
        if name in self._index:
            return self._restarts[self._index[name]]
        msg = f"Supervisor {self.name!r} has no child named {name!r}."
        raise KeyError(msg)

    def graph(self) -> Graph:
        """
        Validate the children's dependencies and return the graph with its waves.

        Raises:
            ConfigurationError: A dependency is unknown or the dependencies form
                a cycle.
        """
        if self._graph is None:
            self._graph = build_graph(
                [s.name for s in self._specs],
                [s.depends_on for s in self._specs],
                [s.priority for s in self._specs],
            )
        return self._graph

    def describe_tree(self) -> TreeInfo:
        """
        Validate this tree and describe it, nested trees included.

        Raises:
            ConfigurationError: Something is declared wrongly.
        """
        self.validate_tree()
        graph = self.graph()
        children = []
        for i, (spec, restart) in enumerate(zip(self._specs, self._restarts, strict=True)):
            nested = spec.target.describe_tree() if isinstance(spec.target, Tree) else None
            children.append(
                ChildInfo(
                    name=spec.name,
                    priority=spec.priority,
                    effective=graph.effective[i],
                    depends_on=spec.depends_on,
                    main=spec.main,
                    restart=restart.value,
                    tree=nested,
                ),
            )
        return TreeInfo(
            name=self.name,
            children=tuple(children),
            start_waves=tuple(tuple(w) for w in graph.named_waves(stop=False)),
            stop_waves=tuple(tuple(w) for w in graph.named_waves(stop=True)),
        )

    def validate_tree(self) -> None:
        """
        Validate this supervisor and every nested tree.

        Raises:
            ConfigurationError: Something is declared wrongly; the message names
                it, and its ``path`` is the path of the tree it is in
                (``app/jobs``). Mistakes in several trees are reported together,
                each in ``problems``.
        """
        problems: list[ConfigurationError] = []
        try:
            self.graph()
        except ConfigurationError as exc:
            problems.append(ConfigurationError(exc.reason, path=self.name))
        for spec in self._specs:
            try:
                spec.validate_tree()
            except ConfigurationError as exc:
                for problem in exc.problems or (exc,):
                    path = self.name if problem.path is None else f"{self.name}/{problem.path}"
                    problems.append(ConfigurationError(problem.reason, path=path))
        if problems:  # all of them, so one `lifecycle check` shows every mistake
            raise ConfigurationError.combine(problems) from None

    # -- running -------------------------------------------------------------------

    async def run(self, ctx: Context) -> None:
        """
        Start the children in waves, supervise them, and stop them in waves.

        Becomes ready (providing itself) once every child is ready. When its stop
        begins, or a ``main`` child returns, or a child fails, it stops every
        child wave by wave with the stop's deadlines; this stop is shielded from
        outer cancellation. Children that fail to start are rolled back the same
        way and raised.

        Raises:
            ExceptionGroup: Children failed and the supervisor gave up: a group of
                :class:`~lifecycle.ComponentError`, one per failure, teardown failures of the
                rollback included.

            UsageError: The supervisor is already running.
        """
        graph = self.graph()
        if self._running:
            msg = (
                f"Supervisor {self.name!r} is already running; a supervisor runs once at a "
                "time (create another Supervisor for a second tree)."
            )
            raise UsageError(msg)
        self._running = True
        failures: list[BaseException] = []
        try:
            # Shielded: this supervisor learns of its stop through ctx.stopping and
            # stops its children itself, in order. Leaving its children's task group
            # inside its cancelled body would also make anyio re-deliver that
            # cancellation across all of them whenever one of them ends.
            with anyio.CancelScope(shield=True):
                async with anyio.create_task_group() as task_group:
                    run = _Run(self, ctx, task_group, graph)
                    task_group.start_soon(run.watch_stop, name=f"lifecycle:{ctx.path}:stop-watch")
                    try:
                        if await run.start():
                            ctx.ready(self)
                            await run.supervise()
                    finally:
                        # Also after an error of this supervisor's own: its children are
                        # shielded, so nothing but this stops them.
                        if ctx.escalation is None:  # a child failed to start
                            ctx.request_stop("a child failed to start", failed=True)
                        assert ctx.escalation is not None  # noqa: S101 - set by request_stop
                        await run.stop_all(ctx.escalation)
                        failures = run.failures()
        finally:
            self._running = False
            # Raised outside the task group (which would wrap it), and even when this
            # supervisor is being cancelled: a child that failed to start or while
            # running must not be lost in the stop.
            if failures:
                msg = f"supervisor {ctx.path!r} failed"
                raise failure_group(msg, failures)

    def __repr__(self) -> str:
        return f"<Supervisor {self.name!r} with {len(self._specs)} children>"


@final
class _Run:
    """The state of one run of a supervisor."""

    __slots__ = (
        "attempts",
        "ctx",
        "earlier",
        "exited",
        "graph",
        "handled",
        "index",
        "instances",
        "noticed",
        "previous",
        "random",
        "restarts",
        "stopping",
        "sup",
        "task_group",
        "types",
        "wakeup",
        "watch_scope",
        "window",
    )

    def __init__(self, sup: Supervisor, ctx: Context, task_group: anyio.abc.TaskGroup, graph: Graph) -> None:
        self.sup = sup
        self.ctx = ctx
        self.task_group = task_group
        self.graph = graph
        count = len(graph.names)
        self.index = {name: i for i, name in enumerate(graph.names)}
        self.instances: list[ComponentInstance | None] = [None] * count
        self.restarts = [0] * count
        self.types = [sup.restart_of(name) for name in graph.names]
        self.attempts = [0] * count
        self.window = RestartWindow(sup.intensity)
        self.random = random.Random()  # noqa: S311 - jitter, not cryptography
        # Failures supervision handled (TEMPORARY children): reported, not raised.
        self.handled: set[ComponentInstance] = set()
        # Failed children handled before their task ended (see on_failure).
        self.noticed: set[ComponentInstance] = set()
        self.exited: list[ComponentInstance] = []
        # What the runs of each child before its last restart raised (reported, never lost).
        self.earlier: list[tuple[BaseException, ...]] = [()] * count
        # The last run of each child that was stopped to be restarted (or for good):
        # reported if no new run replaces it, its errors kept when one does.
        self.previous: list[ComponentInstance | None] = [None] * count
        self.wakeup = anyio.Event()
        self.stopping = False
        self.watch_scope = anyio.CancelScope()

    def on_exit(self, instance: ComponentInstance) -> None:
        if not self.stopping and instance not in self.noticed:
            self.exited.append(instance)
            self.wakeup.set()

    def on_failure(self, instance: ComponentInstance) -> None:
        # A child that failed while running begins its own stop (and a resource
        # holds its teardown): handle it now, not when its task ends.
        if instance.failed and not self.stopping:
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

    async def start(self, members: set[int] | None = None) -> bool:
        """
        Start the children (or only *members*, for a restart) wave by wave.

        Returns ``False`` when the stop began, or when a child failed to start
        during the first start. During a restart a failure does not stop the
        others: children whose dependencies are not ready wait for the failed
        child's own restart, which includes them.
        """
        ctx = self.ctx
        specs = self.sup.children
        for number, full_wave in enumerate(self.graph.start_waves):
            if ctx.escalation is not None:
                return False
            wave = self._startable(full_wave, members)
            if not wave:
                continue
            if members is None:
                self._log_wave(number, [specs[i].name for i in wave])
            pending = len(wave)

            def became_ready(_: ComponentInstance) -> None:
                nonlocal pending
                pending -= 1
                if not pending:  # one wake-up per wave, not one per child
                    self.wakeup.set()

            batch = [self._new_instance(i, became_ready) for i in wave]
            for instance in batch:
                instance.start_soon(self.task_group)
            if not await self._wave_up(batch, first_start=members is None):
                return False
        return True

    async def _wave_up(self, batch: list[ComponentInstance], *, first_start: bool) -> bool:
        """Wait until every child of *batch* is ready or ended; ``False`` on a stop or first-start failure."""
        while not all(i.ready or i.done for i in batch):
            await self._next_event()
            if self.ctx.escalation is not None:
                return False
            if first_start and any(i.failed for i in self.exited):
                _log.error("tree.start_failed", tree=self.ctx.path, failed=[i.path for i in self.exited if i.failed])
                return False
        return True

    def _log_wave(self, number: int, names: list[str]) -> None:
        shown = names if len(names) <= _LOGGED_NAMES else [*names[:_LOGGED_NAMES], "..."]
        _log.info("tree.wave_starting", tree=self.ctx.path, wave=number, size=len(names), components=shown)

    def _startable(self, wave: tuple[int, ...], members: set[int] | None) -> list[int]:
        """The children of *wave* to start: all of them, or the *members* whose dependencies are ready."""
        deps = self.graph.dependencies
        if members is None:
            # A dependency that already returned on its own is not up: its dependents
            # start when it restarts (and with it), never against an ended component.
            return [i for i in wave if all(self._ready(d) for d in deps[i])]
        return [i for i in wave if i in members and all(self._ready(d) for d in deps[i])]

    def _new_instance(self, i: int, became_ready: Callable[[ComponentInstance], None]) -> ComponentInstance:
        spec = self.sup.children[i]
        instance = ComponentInstance(
            spec,
            policy=self.ctx.policy,
            path=f"{self.ctx.path}/{spec.name}",
            values={dep: self._value_of(dep) for dep in spec.injected},
            priority=self.graph.effective[i],
            restarts=self.restarts[i],
            gate_teardown=True,
        )
        instance.add_ready_callback(became_ready)
        instance.add_exit_callback(self.on_exit)
        instance.add_stop_callback(self.on_failure)
        self.instances[i] = instance
        previous = self.previous[i]
        if previous is not None:
            self.previous[i] = None
            self._keep_errors(i, previous)
        return instance

    def _ready(self, i: int) -> bool:
        """Whether child *i* is up: ready, and neither stopping nor ended (dependents may start)."""
        instance = self.instances[i]
        return instance is not None and instance.ready and instance.escalation is None and not instance.done

    def _value_of(self, name: str) -> object:
        instance = self.instances[self.index[name]]
        assert instance is not None  # noqa: S101 - dependencies start in earlier waves
        return instance.value

    async def supervise(self) -> None:
        """Handle children that end; return when the supervisor gives up, a ``main`` child returns, or it stops."""
        while True:
            while not self.exited:
                if self.ctx.escalation is not None:
                    return
                await self._next_event()
            exited, self.exited = self.exited, []
            for instance in exited:
                self.noticed.discard(instance)
                i = self.index[instance.spec.name]
                if self.instances[i] is not instance:  # already retired by a restart
                    continue
                if not await self._child_ended(i, instance):
                    return

    async def _child_ended(self, i: int, instance: ComponentInstance) -> bool:
        """Apply the restart type and strategy to a child that ended; ``False`` ends supervision."""
        failed = instance.failed
        if instance.spec.main:
            if failed:
                return self._give_up(instance, "its main child failed")
            _log.info("tree.main_exited", tree=self.ctx.path, child=instance.path)
            self.ctx.request_stop(f"{instance.path!r} (main) returned")
            return False
        restart = self.types[i]
        if restart is Restart.TEMPORARY or (restart is Restart.TRANSIENT and not failed):
            # It ends for good: what depends on it cannot run without it. They stop
            # first, in order, for good too; then its (held) teardown may run.
            await self._stop_dependents(i)
            instance.release_teardown()
            if failed:
                self.handled.add(instance)
                _log.warning("supervisor.child_ended", tree=self.ctx.path, child=instance.path, restart=restart.value)
            else:
                _log.info("component.finished", component=instance.path)
            return True
        if not self.window.allow(anyio.current_time()):
            intensity = self.sup.intensity
            reason = f"more than {intensity.max_restarts} restarts within {intensity.within:g} s"
            return self._give_up(instance, reason)
        await self._restart(i, instance)
        return self.ctx.escalation is None

    def _give_up(self, instance: ComponentInstance, reason: str) -> bool:
        _log.error("supervisor.giving_up", tree=self.ctx.path, child=instance.path, reason=reason)
        self.ctx.request_stop(f"{instance.path!r} failed ({reason})", failed=True)
        return False

    def _dependents(self, i: int) -> set[int]:
        """The transitive dependents of child *i*."""
        found: set[int] = set()
        todo = [i]
        while todo:
            for dependent in self.graph.dependents[todo.pop()]:
                if dependent not in found:
                    found.add(dependent)
                    todo.append(dependent)
        return found

    async def _stop_dependents(self, i: int) -> None:
        """Stop the dependents of child *i* for good, wave by wave; they are reported as they ended."""
        retired: dict[int, ComponentInstance] = {}
        for j in self._dependents(i):
            old = self.instances[j]
            if old is not None:
                retired[j] = self.previous[j] = old
                self.instances[j] = None
        if not retired:
            return
        _log.warning(
            "supervisor.stopping_dependents",
            tree=self.ctx.path,
            child=f"{self.ctx.path}/{self.graph.names[i]}",
            stopping=sorted(self.graph.names[j] for j in retired),
        )
        escalation = Escalation.start(self.ctx.policy)
        for wave in self.graph.stop_waves:
            batch = [retired[j] for j in wave if j in retired and not retired[j].done]
            if batch:
                await stop_instances(batch, escalation)

    def _restart_group(self, i: int) -> set[int]:
        """The children a restart of child *i* restarts: the strategy's, plus their dependents."""
        count = len(self.instances)
        strategy = self.sup.strategy
        if strategy is Strategy.ONE_FOR_ALL:
            group = set(range(count))
        elif strategy is Strategy.REST_FOR_ONE:
            group = set(range(i, count))
        else:
            group = {i}
        todo = list(group)
        while todo:  # dependents hold the old value: they restart too
            for dependent in self.graph.dependents[todo.pop()]:
                if dependent not in group:
                    group.add(dependent)
                    todo.append(dependent)
        return group

    def _members(self, i: int, group: set[int], retired: dict[int, ComponentInstance], running: set[int]) -> set[int]:
        """The children of a restart's *group* that start again."""
        # As in Erlang/OTP: a TEMPORARY child is never restarted, a TRANSIENT one
        # only if it was still running (this restart stopped it), a PERMANENT one always.
        types = self.types
        return {
            j
            for j in group
            if j == i
            or types[j] is Restart.PERMANENT
            or (types[j] is Restart.TRANSIENT and j in running)
            or (j not in retired and self.previous[j] is None)  # never started yet: its first start
        }

    async def _restart(self, i: int, failed: ComponentInstance) -> None:
        group = self._restart_group(i)
        # Retire the group first, so its members' exits are not taken for new events.
        retired: dict[int, ComponentInstance] = {}
        for j in group:
            old = self.instances[j]
            if old is not None:
                retired[j] = old
                self.instances[j] = None
        running = {j for j, old in retired.items() if not old.done}
        escalation = Escalation.start(self.ctx.policy)
        for wave in self.graph.stop_waves:
            batch = [retired[j] for j in wave if j in running]
            if batch:
                await stop_instances(batch, escalation)
        members = self._members(i, group, retired, running)
        for j, old in retired.items():
            self.previous[j] = old
        attempt = self.attempts[i]
        up = failed.ready_at, failed.stopped_at
        if up[0] is not None and up[1] is not None and up[1] - up[0] >= self.sup.intensity.within:
            attempt = 0  # it stayed up long enough: start the backoff over
        delay = backoff_delay(self.sup.backoff, attempt, self.random.random)
        self.attempts[i] = attempt + 1
        error = failed.report().error
        _log.warning(
            "supervisor.restarting",
            tree=self.ctx.path,
            child=failed.path,
            reason="failed" if failed.failed else "exited",
            error=None if error is None else f"{type(error).__name__}: {error}",
            attempt=attempt + 1,
            delay=round(delay, 6),
            restarting=sorted(self.graph.names[j] for j in members),
        )
        with anyio.move_on_after(delay):
            while self.ctx.escalation is None:
                await self._next_event()
        if self.ctx.escalation is not None:
            return
        self._count_restarts(members, retired)
        await self.start(members)

    def _count_restarts(self, members: set[int], retired: dict[int, ComponentInstance]) -> None:
        for j in members:
            if j in retired or self.previous[j] is not None:  # not a first start
                self.restarts[j] += 1

    def _keep_errors(self, j: int, old: ComponentInstance) -> None:
        """Keep what a run of child *j* raised, for the report of its next run."""
        errors: list[BaseException] = []
        for report in old.report().walk():
            if report.error is not None:
                errors.append(report.error)
            errors.extend(report.task_errors)
        if errors:
            self.earlier[j] = (*self.earlier[j], *errors)[-_EARLIER_ERRORS:]

    def _report(self, instance: ComponentInstance) -> ComponentReport:
        report = instance.report()
        earlier = self.earlier[self.index[instance.spec.name]]
        if earlier:
            report = attrs.evolve(report, earlier_errors=(*earlier, *report.earlier_errors)[-_EARLIER_ERRORS:])
        return report

    async def stop_all(self, escalation: Escalation) -> None:
        """Stop every child wave by wave and hand their reports to the context."""
        self.stopping = True
        self.watch_scope.cancel()
        for number, wave in enumerate(self.graph.stop_waves):
            batch = [i for i in (self.instances[n] for n in wave) if i is not None and not i.done]
            if batch:
                _log.debug("tree.wave_stopping", tree=self.ctx.path, wave=number, size=len(batch))
                await stop_instances(batch, escalation)
        last = [i if i is not None else p for i, p in zip(self.instances, self.previous, strict=True)]
        ended = sorted((i for i in last if i is not None), key=_exit_key)
        self.ctx.report_children([self._report(i) for i in ended])

    def failures(self) -> list[BaseException]:
        """Return every child's errors if one failed (unhandled) to start or while running, else nothing."""
        started = [i for i in self.instances if i is not None and i not in self.handled]
        if not any(stage != "stop" for i in started for stage, _ in i.errors):
            return []
        errors: list[BaseException] = []
        for instance in started:
            errors.extend(instance.failures())
        return errors


def _exit_key(instance: ComponentInstance) -> tuple[bool, int]:
    order = instance.exit_order
    return (order is None, 0 if order is None else order)
