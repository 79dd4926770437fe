"""Supervisor: a component that starts, watches and stops its children in order."""

from __future__ import annotations

import contextvars
import functools
import random
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from typing import TypeVar, final, overload

import anyio
import anyio.abc
import attrs
import structlog

from lifecycle import (
    ComponentReport,
    ComponentSpec,
    ComponentStatus,
    ConfigurationError,
    Context,
    Outcome,
    Priority,
    ShutdownPolicy,
    State,
    StoppedError,
    UsageError,
)
from lifecycle.abc import ChildInfo, Tree, TreeInfo
from lifecycle.lowlevel import (
    ComponentInstance,
    Escalation,
    Option,
    current_instance,
    failure_group,
    status_of,
    stop_instances,
)

from ._errors import GaveUpError
from ._graph import Graph, _unknown_dependency_message, build_graph
from ._restart_timing import RestartWindow, backoff_delay
from ._strategy import AutoShutdown, Backoff, Intensity, Restart, Strategy

__all__ = ["Supervisor"]

_log = structlog.get_logger("supervisors")

F = TypeVar("F", bound=Callable[..., object])
T = TypeVar("T")

# Waves larger than this are logged with their size only.
_LOGGED_NAMES = 20

# How many errors of a child's earlier runs its report keeps (memory stays flat
# however often it restarts; ComponentReport.restarts counts every run).
_EARLIER_ERRORS = 16

# How many dynamic children that failed and ended for good (and were forgotten)
# the supervisor's report keeps; the log has every one of them.
_DROPPED_REPORTS = 16

_NAME = Option.text(forbidden="/")


def _check_option(value: object, kind: type, what: str, owner: str) -> None:
    Option.instance_of(kind, f"a {kind.__module__.split('.')[0]}.{kind.__name__}").check(what, value, owner=owner)


def _declare(
    obj: object,
    name: str | None,
    depends_on: Sequence[str],
    priority: Priority,
    restart: Restart,
    *,
    main: bool,
    policy: ShutdownPolicy | None,
) -> ComponentSpec:
    """The spec of a child given to ``add()`` or ``start_child()``, its options checked."""
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
    return spec


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

        auto_shutdown: When it stops by itself because its ``main`` children
            returned (Erlang/OTP's ``auto_shutdown``): when any of them did
            (the default), when all of them did, or never (``main=True``
            children are then refused).

    Raises:
        ConfigurationError: An option has the wrong type or value.

    .. versionchanged:: 0.1.0
       Added *auto_shutdown*.
    """

    __slots__ = (
        "_active",
        "_graph",
        "_index",
        "_restarts",
        "_running",
        "_specs",
        "auto_shutdown",
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
        auto_shutdown: AutoShutdown = AutoShutdown.ANY_SIGNIFICANT,
    ) -> None:
        if not _NAME.test(name):
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
        _check_option(auto_shutdown, AutoShutdown, "auto_shutdown", owner)
        self.name = name
        self.strategy = strategy
        self.intensity = intensity
        self.backoff = backoff
        self.policy = policy
        self.auto_shutdown = auto_shutdown
        self._specs: list[ComponentSpec] = []
        self._index: dict[str, int] = {}
        self._restarts: list[Restart] = []
        self._graph: Graph | None = None
        self._running = False
        self._active: _Run | None = None

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
        spec = self._declare(obj, name, depends_on, priority, restart, main=main, policy=policy)
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
                    run = self._active = _Run(self, ctx, task_group, graph)
                    ctx.publish_children(run)
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
            self._active = None
            # Raised outside the task group (which would wrap it), and even when this
            # supervisor is being cancelled: a child that failed to start or while
            # running must not be lost in the stop.
            if failures:
                gave_up = any(isinstance(e, GaveUpError) and e.supervisor == ctx.path for e in failures)
                msg = f"supervisor {ctx.path!r} {'gave up' if gave_up else 'failed'}"
                raise failure_group(msg, failures)

    # -- dynamic children ------------------------------------------------------------

    async def start_child(
        self,
        obj: object,
        *,
        name: str | None = None,
        depends_on: Sequence[str] = (),
        priority: Priority = Priority.NORMAL,
        restart: Restart = Restart.PERMANENT,
        main: bool = False,
        policy: ShutdownPolicy | None = None,
    ) -> object:
        """
        Start a child while the supervisor runs, and return the value it provides.

        The child is registered at once (its name is taken from then on), starts
        as soon as every component it depends on is ready, and is supervised from
        then on like the children registered with :meth:`add`: its restart type
        and the supervisor's strategy apply, it counts as registered after every
        existing child (for ``REST_FOR_ONE``), and it stops in order with the tree.
        A dynamic child belongs to this run only; the next run of the supervisor
        starts without it. It is forgotten once it ends for good (a ``TEMPORARY``
        child that ended, a ``TRANSIENT`` one that returned), which frees its name.

        A checkpoint; it returns once the child is ready. If the child fails to
        start, it is removed and its error raised. If the caller is cancelled
        before the child is ready, the child is stopped through the phases
        (shielded, bounded by the supervisor's budgets) and removed, then the
        cancellation propagates, as with :meth:`trio.Nursery.start`.

        Safe while the tree starts: the child waits for its dependencies, even if
        they are still starting. Once the supervisor's stop has begun, nothing new
        starts: :class:`~lifecycle.StoppedError` is raised.

        Args:
            obj: The component, as for :meth:`add`.

            name: Its name; defaults to the function's ``__name__`` or the
                object's ``name``.

            depends_on: Further dependencies whose values are not injected.

            priority: How important it is; it raises its dependencies' effective
                priority as a registered child's would.

            restart: When it is restarted after it ends.

            main: Whether its return stops the tree (see :meth:`add`).

            policy: Its own shutdown budgets; they only make deadlines earlier.

        Returns:
            What the child provided when it became ready.

        Raises:
            ConfigurationError: *obj* is not a component, an option is invalid,
                the name is taken, or a dependency is unknown.

            UsageError: The supervisor is not running.

            StoppedError: The supervisor's stop began, or a dependency stopped
                for good, before the child was ready.

            lifecycle.ComponentError: The child failed to start.
        """
        run = self._require_run("start_child", name or getattr(obj, "__name__", obj))
        spec = self._declare(obj, name, depends_on, priority, restart, main=main, policy=policy)
        spec.validate_tree()
        return await run.start_child(spec, restart)

    async def stop_child(self, name: str) -> ComponentReport:
        """
        Stop the child *name* and everything that depends on it, and forget them.

        Its transitive dependents stop first, in stop-wave order, then the child,
        through the phases with the supervisor's budgets measured from now; none
        of them is restarted, and all of them are removed from this run, so
        their names are free again (as Erlang/OTP's ``terminate_child`` followed
        by ``delete_child``). Works for registered and dynamic children alike.
        Each stopped child is logged (``supervisor.child_stopped``); only the
        named child's report is returned, and the removed children do not
        appear in the supervisor's final report.

        A checkpoint. The stop is shielded: cancelling the caller does not
        abandon it halfway. If a restart is in progress, the stop waits for it.
        If the supervisor's own stop has begun, the child is stopped in its
        wave and this waits for that stop instead.

        Returns:
            The child's report.

        Raises:
            KeyError: No child has that name.

            UsageError: The supervisor is not running, or the caller is the
                child or one of its dependents (it would wait for its own stop;
                return from it instead).
        """
        run = self._require_run("stop_child", name)
        return await run.stop_child(name)

    def _declare(
        self,
        obj: object,
        name: str | None,
        depends_on: Sequence[str],
        priority: Priority,
        restart: Restart,
        *,
        main: bool,
        policy: ShutdownPolicy | None,
    ) -> ComponentSpec:
        spec = _declare(obj, name, depends_on, priority, restart, main=main, policy=policy)
        if spec.main and self.auto_shutdown is AutoShutdown.NEVER:
            msg = (
                f"Supervisor {self.name!r} has `auto_shutdown=AutoShutdown.NEVER`, so its child {spec.name!r} "
                "cannot be `main=True` (as in Erlang/OTP, significant children need auto_shutdown "
                "any_significant or all_significant); drop `main=True` or choose another `auto_shutdown`."
            )
            raise ConfigurationError(msg)
        return spec

    def _require_run(self, method: str, child: object) -> _Run:
        if self._active is None:
            msg = (
                f"Supervisor {self.name!r} is not running, so `{method}()` cannot act on {child!r}; "
                "call it while the supervisor runs, or register children with `add()` before it starts."
            )
            raise UsageError(msg)
        return self._active

    def __repr__(self) -> str:
        return f"<Supervisor {self.name!r} with {len(self._specs)} children>"


@final
class _Child:
    """One child of a running supervisor: its declaration, its links and its current instance."""

    __slots__ = (
        "attempts",
        "counts",
        "dependents",
        "deps",
        "dynamic",
        "earlier",
        "effective",
        "gone",
        "handled",
        "instance",
        "order",
        "pending",
        "removing",
        "restart",
        "restart_at",
        "restarts",
        "retired",
        "spec",
        "started",
    )

    def __init__(self, spec: ComponentSpec, restart: Restart, order: int, *, dynamic: bool) -> None:
        self.spec = spec
        self.restart = restart
        # Registration order: "the rest" of REST_FOR_ONE are the children after this one.
        self.order = order
        self.dynamic = dynamic
        self.deps: tuple[_Child, ...] = ()
        self.dependents: dict[_Child, None] | None = None
        # How many direct dependents have each effective priority (dynamic trees only):
        # a child's effective priority is then found without walking its dependents.
        self.counts: list[int] | None = None
        self.effective = spec.priority
        self.instance: ComponentInstance | None = None
        # Its instance was stopped by a restart and has not been replaced (yet).
        self.retired = False
        self.restarts = 0
        self.attempts = 0
        # What its earlier runs raised (reported with its last run, never lost).
        self.earlier: tuple[BaseException, ...] = ()
        # Started with start_child() and not ready yet: its caller handles its start.
        self.pending = dynamic
        # What it provided when start_child() saw it ready (boxed: None is a value).
        self.started: tuple[object] | None = None
        # Being stopped by stop_child(); its exits are not supervision events.
        self.removing = False
        # Its run ended and nothing in this run of the supervisor starts it again: it
        # ended for good, it depended on a child that did, or it was a TEMPORARY
        # member of a restart group. Until a new instance replaces it (a restart of
        # ONE_FOR_ALL or REST_FOR_ONE starts TRANSIENT and `main` children again).
        self.gone = False
        # Its current run's failure was handled by supervision (restarted, or a
        # TEMPORARY child's end): reported, but not a failure of the stop.
        self.handled = False
        # When its restart is due (loop time), while it waits for it.
        self.restart_at: float | None = None

    @property
    def name(self) -> str:
        return self.spec.name

    def ready(self) -> bool:
        """Whether it is up: ready, and neither stopping nor ended (dependents may start)."""
        instance = self.instance
        return (
            instance is not None
            and not self.retired
            and instance.ready
            and instance.escalation is None
            and not instance.done
        )

    def ended_for_good(self) -> bool:
        """Whether it ended and nothing will start it again."""
        instance = self.instance
        if instance is None or not instance.done or self.retired:
            return False
        return self.restart is Restart.TEMPORARY or (self.restart is Restart.TRANSIENT and not instance.failed)

    def failure_handled(self) -> bool:
        """
        Whether supervision handled its current run's failure, so that it does not fail the stop.

        It did when it restarts the child, and always for a ``TEMPORARY`` child
        (not ``main``) that failed while running: that child is never restarted
        by design, even when the supervisor's stop began before it saw the end.
        """
        instance = self.instance
        if instance is None or not instance.failed:
            return False
        if self.handled:
            return True
        return self.restart is Restart.TEMPORARY and not self.spec.main and instance.errors[0][0] == "run"

    def keep_errors(self) -> None:
        """Keep what its current run raised, before a new run replaces it."""
        if self.instance is None:
            return
        errors: list[BaseException] = []
        for report in self.instance.report().walk():
            if report.error is not None:
                errors.append(report.error)
            errors.extend(report.task_errors)
        if errors:
            self.earlier = (*self.earlier, *errors)[-_EARLIER_ERRORS:]

    def report(self) -> ComponentReport:
        if self.instance is not None:
            report = self.instance.report()
            if self.earlier:
                earlier = (*self.earlier, *report.earlier_errors)[-_EARLIER_ERRORS:]
                report = attrs.evolve(report, earlier_errors=earlier)
            if report.outcome is Outcome.FAILED and self.failure_handled():
                report = attrs.evolve(report, handled=True)
            return report
        # Registered with start_child() and stopped before its dependencies were ready.
        return ComponentReport(
            name=self.name,
            path=self.name,
            outcome=Outcome.GRACEFUL,
            priority=self.effective,
            restarts=self.restarts,
        )


@final
class _Run:
    """The state of one run of a supervisor."""

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

    def __init__(self, sup: Supervisor, ctx: Context, task_group: anyio.abc.TaskGroup, graph: Graph) -> None:
        self.sup = sup
        self.ctx = ctx
        self.task_group = task_group
        self.graph = graph
        # Registration order: registered children first, then dynamic ones as they come.
        self.children: dict[str, _Child] = {}
        static = [
            _Child(spec, restart, i, dynamic=False)
            for i, (spec, restart) in enumerate(zip(sup.children, sup._restarts, strict=True))  # noqa: SLF001
        ]
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
        self.lock = anyio.Lock()
        self.stopping = False
        self.watch_scope = anyio.CancelScope()
        # Created in the supervisor's own task: its instance, and a context in which
        # instances created for it have it as their parent.
        self.owner = current_instance()
        self.context = contextvars.copy_context()

    # -- events ------------------------------------------------------------------

    def _child_of(self, instance: ComponentInstance) -> _Child | None:
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

    def _status(self, child: _Child) -> ComponentStatus:
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

    def _restarting(self, child: _Child, instance: ComponentInstance) -> bool:
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

    async def start(self, members: set[_Child] | None = None) -> bool:
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
            waves = _waves([c for c in members if self._registered(c)], stop=False)
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

    def _start_wave(self, wave: list[_Child]) -> list[ComponentInstance]:
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

    def _registered(self, child: _Child) -> bool:
        return self.children.get(child.name) is child and not child.removing

    def _new_instance(
        self,
        child: _Child,
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

    # -- dynamic children ----------------------------------------------------------

    def _check_open(self, what: str) -> None:
        if self.stopping or self.ctx.escalation is not None:
            msg = f"Supervisor {self.ctx.path!r} is stopping; {what}."
            raise StoppedError(msg)

    def _register(self, spec: ComponentSpec, restart: Restart) -> _Child:
        self._check_open(f"child {spec.name!r} was not started")
        if spec.name in self.children:
            msg = (
                f"Supervisor {self.ctx.path!r} already has a child named {spec.name!r}; pass a different `name=`, "
                "or stop the existing child first with `stop_child()`."
            )
            raise ConfigurationError(msg)
        missing = [dep for dep in spec.depends_on if dep not in self.children]
        if missing:  # the names are listed only then: a start stays O(its dependencies)
            names = list(self.children)
            unknown = [_unknown_dependency_message(spec.name, dep, names) for dep in missing]
            raise ConfigurationError(unknown[0] if len(unknown) == 1 else "\n".join(unknown))
        deps = tuple(dict.fromkeys(self.children[dep] for dep in spec.depends_on))
        gone = [dep.name for dep in deps if dep.removing or dep.ended_for_good()]
        if gone:
            msg = (
                f"Child {spec.name!r} depends on {gone[0]!r}, which has ended and will not be restarted; "
                f"start {gone[0]!r} again first."
            )
            raise StoppedError(msg)
        child = _Child(spec, restart, self.next_order, dynamic=True)
        self.next_order += 1
        child.deps = deps
        for dep in deps:
            self._counts(dep)[child.effective] += 1
            if dep.dependents is None:
                dep.dependents = {}
            dep.dependents[child] = None
        self.children[spec.name] = child
        self.reshaped = True
        self._refresh_priorities(deps)
        return child

    @staticmethod
    def _counts(child: _Child) -> list[int]:
        """How many direct dependents *child* has at each effective priority (counted on first use)."""
        if child.counts is None:
            child.counts = [0] * len(Priority)
            for dependent in child.dependents or ():
                child.counts[dependent.effective] += 1
        return child.counts

    def _refresh_priorities(self, start: Iterable[_Child]) -> None:
        """Recompute the effective priority of *start* and, where it changed, of their dependencies."""
        todo = list(start)
        while todo:
            child = todo.pop()
            effective = child.spec.priority
            if child.dependents:
                counts = self._counts(child)
                effective = min(effective, next(Priority(p) for p, n in enumerate(counts) if n))
            if effective == child.effective:
                continue
            for dep in child.deps:
                counts = self._counts(dep)
                counts[child.effective] -= 1
                counts[effective] += 1
            child.effective = effective
            if child.instance is not None:
                child.instance.priority = effective
            todo.extend(child.deps)

    async def start_child(self, spec: ComponentSpec, restart: Restart) -> object:
        child = self._register(spec, restart)
        try:
            return await self._wait_started(child)
        except BaseException as exc:
            # Once ready, the child stays (a cancelled caller only misses its value).
            if child.started is None and self._registered(child) and not self.stopping:
                cancelled = isinstance(exc, anyio.get_cancelled_exc_class())
                why = "start_child() was cancelled" if cancelled else "it failed to start"
                with anyio.CancelScope(shield=True):
                    await self._remove(child, why=why)
            raise

    async def _wait_started(self, child: _Child) -> object:
        while True:
            if child.started is not None:
                return child.started[0]
            if not self._registered(child):
                msg = f"Child {child.name!r} of {self.ctx.path!r} was stopped before it was ready."
                raise StoppedError(msg)
            self._check_open(f"child {child.name!r} was stopped before it was ready")
            instance = child.instance
            if instance is None:
                gone = [dep.name for dep in child.deps if dep.ended_for_good() or not self._registered(dep)]
                if gone:
                    msg = (
                        f"Child {child.name!r} of {self.ctx.path!r} was not started: {gone[0]!r}, which it "
                        "depends on, ended and will not be restarted."
                    )
                    raise StoppedError(msg)
                if all(dep.ready() for dep in child.deps):
                    self._new_instance(child, None).start_soon(self.task_group)
            elif not child.retired and instance.done:  # it ended before it was ready
                errors = instance.failures()
                if errors:
                    raise errors[0] if len(errors) == 1 else failure_group(f"{instance.path!r} failed", errors)
                msg = f"Child {instance.path!r} returned before it was ready."
                raise StoppedError(msg)
            await self._changes()

    async def stop_child(self, name: str) -> ComponentReport:
        child = self.children.get(name)
        if child is None:
            msg = f"Supervisor {self.ctx.path!r} has no child named {name!r}."
            raise KeyError(msg)
        if self.stopping or self.ctx.escalation is not None or child.removing:
            # Stopped in its wave by the supervisor's stop (or by another stop_child()).
            if child.instance is not None:
                await child.instance.wait()
            return child.report()
        async with self.lock:
            if not self._registered(child):  # removed while we waited for the lock
                return child.report()
            if self.stopping:
                if child.instance is not None:
                    await child.instance.wait()
                return child.report()
            with anyio.CancelScope(shield=True):
                await self._remove(child, why="stop_child()", locked=True)
        return child.report()

    async def _remove(self, child: _Child, *, why: str, locked: bool = False) -> None:
        """Stop *child* and its transitive dependents in order, and forget them."""
        if not locked:
            async with self.lock:
                if self._registered(child) and not self.stopping:
                    await self._remove(child, why=why, locked=True)
            return
        group = self._dependents_of(child)
        group.append(child)
        owner = current_instance()
        while owner is not None:
            for member in group:
                if member.instance is owner:
                    msg = (
                        f"Component {owner.path!r} called `stop_child({child.name!r})`, which stops "
                        f"{owner.path!r} itself and would wait for its own stop; return from it instead."
                    )
                    raise UsageError(msg)
            owner = owner.parent
        for member in group:
            member.removing = True
        await self._stop_group(group)
        for member in group:
            self._forget(member)
            report = member.report()
            _log.info(
                "supervisor.child_stopped",
                tree=self.ctx.path,
                child=report.path,
                outcome=report.outcome.value,
                reason=why,
            )

    def _dependents_of(self, child: _Child) -> list[_Child]:
        """Every registered child that depends on *child*, directly or not."""
        return list(_with_dependents({child: None}))[1:]

    async def _stop_group(self, group: Sequence[_Child]) -> None:
        """Stop the running instances of *group* in stop waves, with fresh deadlines."""
        running = [c for c in group if c.instance is not None and not c.instance.done]
        if not running:
            return
        escalation = Escalation.start(self.ctx.policy)
        for wave in _waves(running, stop=True):
            batch = [c.instance for c in wave if c.instance is not None]
            await stop_instances(batch, escalation)

    def _drop(self, child: _Child) -> None:
        """Forget a dynamic child that ended for good, keeping its report if it failed."""
        instance = child.instance
        if instance is not None and instance.failed and instance.exit_order is not None:
            self.dropped.append((instance.exit_order, child.report()))
        self._forget(child)

    def _forget(self, child: _Child) -> None:
        if self.children.get(child.name) is not child:
            return
        del self.children[child.name]
        self.reshaped = True
        for dep in child.deps:
            if dep.dependents is not None and child in dep.dependents:
                self._counts(dep)[child.effective] -= 1
                del dep.dependents[child]
        self._refresh_priorities(child.deps)
        if child.instance is not None:
            self.noticed.discard(child.instance)
        self._notify()

    # -- supervising -------------------------------------------------------------------

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
                child = self._child_of(instance)
                if child is None or child.retired or child.removing:  # retired by a restart, or removed
                    continue
                if not await self._child_ended(child, instance):
                    return

    async def _child_ended(self, child: _Child, instance: ComponentInstance) -> bool:
        """Apply the restart type and strategy to a child that ended; ``False`` ends supervision."""
        failed = instance.failed
        if instance.spec.main:
            if failed:
                return self._fail(instance, "its main child failed")
            return await self._main_returned(child, instance)
        restart = child.restart
        if restart is Restart.TEMPORARY or (restart is Restart.TRANSIENT and not failed):
            return await self._ended_for_good(child, instance)
        # As in Erlang/OTP, every restart counts, a PERMANENT child's normal exit too.
        now = anyio.current_time()
        self.ends.append((now, instance))
        if not self.window.allow(now):
            return self._give_up(instance, now)
        await self._restart(child, instance)
        return self.ctx.escalation is None

    async def _main_returned(self, child: _Child, instance: ComponentInstance) -> bool:
        """A ``main`` child returned: stop the supervisor, unless it waits for every ``main`` child."""
        if self.sup.auto_shutdown is AutoShutdown.ALL_SIGNIFICANT:
            child.gone = True
            if self._main_left():
                return await self._ended_for_good(child, instance)
            detail = f"{instance.path!r}, the last main child, returned"
        else:
            detail = f"{instance.path!r} (main) returned"
        _log.info("tree.main_exited", tree=self.ctx.path, child=instance.path)
        self.ctx.request_stop(detail)
        return False

    def _main_left(self) -> bool:
        """Whether a ``main`` child may still run (ALL_SIGNIFICANT waits for all of them)."""
        return any(c.spec.main and not c.gone and not c.removing for c in self.children.values())

    async def _ended_for_good(self, child: _Child, instance: ComponentInstance) -> bool:
        """A child ended and is not restarted: stop what depends on it, then let its teardown run."""
        if instance.failed:
            _log.warning("supervisor.child_ended", tree=self.ctx.path, child=instance.path, restart=child.restart.value)
        else:
            _log.info("component.finished", component=instance.path)
        child.gone = True
        child.handled = instance.failed
        self.ctx.child_changed(child.name)
        dependents = [c for c in self._dependents_of(child) if c.instance is not None and not c.instance.done]
        if dependents:
            # They hold its value and it will not come back: they stop too, in order,
            # before its (held) teardown runs.
            _log.warning(
                "supervisor.dependents_stopping",
                tree=self.ctx.path,
                child=instance.path,
                dependents=sorted(c.name for c in dependents),
            )
            async with self.lock:
                for dependent in dependents:
                    dependent.retired = True
                    dependent.gone = True
                await self._stop_group(dependents)
        instance.release_teardown()
        if child.dynamic:
            self._drop(child)
            for dependent in dependents:
                if dependent.dynamic:
                    self._drop(dependent)
        main = [c for c in dependents if c.spec.main]
        if main and (self.sup.auto_shutdown is AutoShutdown.ANY_SIGNIFICANT or not self._main_left()):
            self.ctx.request_stop(f"{main[0].name!r} (main) stopped: {child.name!r}, which it depends on, ended")
            return False
        return self.ctx.escalation is None

    def _fail(self, instance: ComponentInstance, reason: str) -> bool:
        """Stop the supervisor because of a failure nothing handles (a ``main`` child's)."""
        _log.error("supervisor.giving_up", tree=self.ctx.path, child=instance.path, reason=reason)
        self.ctx.request_stop(f"{instance.path!r} failed ({reason})", failed=True)
        return False

    def _give_up(self, instance: ComponentInstance, now: float) -> bool:
        """The intensity was exceeded: stop every child and fail with a GaveUpError."""
        intensity = self.sup.intensity
        reason = f"more than {intensity.max_restarts} restarts within {intensity.within:g} s"
        errors = tuple(e for at, ended in self.ends if now - at < intensity.within for e in ended.failures())
        error = GaveUpError(self.ctx.path, instance.path, reason, errors, instance.failed)
        self.gave_up = (error, instance)
        how = "failed" if instance.failed else "returned"
        _log.error("supervisor.giving_up", tree=self.ctx.path, child=instance.path, reason=reason, ended=how)
        self.ctx.request_stop(f"{instance.path!r} {how} ({reason})", failed=True)
        return False

    def _restart_group(self, child: _Child) -> list[_Child]:
        """The children a restart of *child* restarts: the strategy's, plus their dependents."""
        strategy = self.sup.strategy
        if strategy is Strategy.ONE_FOR_ALL:
            group = dict.fromkeys(self.children.values())
        elif strategy is Strategy.REST_FOR_ONE:
            group = dict.fromkeys(c for c in self.children.values() if c.order >= child.order)
        else:
            group = {child: None}
        return list(_with_dependents(group))  # dependents hold the old value: they restart too

    async def _restart(self, child: _Child, failed: ComponentInstance) -> None:
        group = self._restart_group(child)
        async with self.lock:
            # Retire the group first, so its members' exits are not taken for new events.
            running: set[_Child] = set()
            for member in group:
                if member.instance is not None and not member.retired:
                    member.retired = True
                    if not member.instance.done:
                        running.add(member)
            await self._stop_group([c for c in group if c in running])
        members = self._members(child, group)
        delay = self._schedule(child, failed, group, members)
        await self._sleep(delay)
        if self.ctx.escalation is not None:
            return
        async with self.lock:
            members = {c for c in members if self._registered(c)}
            for member in members:
                if member.instance is not None:
                    member.restarts += 1
            await self.start(members)
            for member in members:
                if member.retired and member.restart_at is not None:
                    # Not started: it waits for a dependency's own restart.
                    member.restart_at = None
                    self.ctx.child_changed(member.name)

    def _schedule(self, child: _Child, failed: ComponentInstance, group: list[_Child], members: set[_Child]) -> float:
        """Compute the backoff of a restart, mark its members as due then, and log it; return the delay."""
        child.handled = failed.failed  # a failure the restart handles: not the stop's failure
        delay = self._backoff(child, failed)
        due = anyio.current_time() + delay
        for member in members:
            member.restart_at = due
        for member in group:
            self.ctx.child_changed(member.name)
        error = failed.report().error
        _log.warning(
            "supervisor.restarting",
            tree=self.ctx.path,
            child=failed.path,
            reason="failed" if failed.failed else "exited",
            error=None if error is None else f"{type(error).__name__}: {error}",
            attempt=child.attempts,
            delay=round(delay, 6),
            restarting=sorted(c.name for c in members),
        )
        return delay

    def _members(self, child: _Child, group: list[_Child]) -> set[_Child]:
        """
        The members of a restart group that start again; the others are gone for good.

        As in Erlang/OTP (``supervisor.erl``: ``terminate_children/2``, then
        ``start_children/2``), every member but a ``TEMPORARY`` one starts again,
        a ``TRANSIENT`` child that had already returned included; a dynamic child
        not ready yet still waits for its first start.
        """
        members = {
            c
            for c in group
            if c is child
            or c.pending
            or c.instance is None  # never started: this is its first start
            or c.restart is not Restart.TEMPORARY
        }
        for member in group:
            if member not in members:
                member.gone = True
                if member.dynamic:
                    self._drop(member)
        return members

    async def _sleep(self, delay: float) -> None:
        """Wait *delay* seconds, or until the supervisor's stop begins."""
        if delay > 0:  # no cancel scope for a zero backoff: a crash loop stays cheap
            with anyio.move_on_after(delay):
                while self.ctx.escalation is None:
                    await self._next_event()

    def _backoff(self, child: _Child, failed: ComponentInstance) -> float:
        """The delay before restarting *child*, counting its attempts."""
        attempt = child.attempts
        up = failed.ready_at, failed.stopped_at
        if up[0] is not None and up[1] is not None and up[1] - up[0] >= self.sup.intensity.within:
            attempt = 0  # it stayed up long enough: start the backoff over
        child.attempts = attempt + 1
        return backoff_delay(self.sup.backoff, attempt, self.random.random)

    # -- stopping ----------------------------------------------------------------------

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
                waves = _waves(list(self.children.values()), stop=True)
            else:
                waves = [[self.static[i] for i in wave] for wave in self.graph.stop_waves]
            for number, wave in enumerate(waves):
                batch = [c.instance for c in wave if c.instance is not None and not c.instance.done]
                if batch:
                    _log.debug("tree.wave_stopping", tree=self.ctx.path, wave=number, size=len(batch))
                    await stop_instances(batch, escalation)
        ended = [(_exit_key(c), c.report()) for c in self.children.values() if c.instance is not None]
        # Dynamic children that failed and were forgotten stay in the report, in exit order.
        ended.extend(((False, order), report) for order, report in self.dropped)
        ended.sort(key=lambda pair: pair[0])
        self.ctx.report_children([report for _, report in ended])

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


def _with_dependents(group: dict[_Child, None]) -> dict[_Child, None]:
    """*group* (in order) followed by every child that depends on one of its members, directly or not."""
    todo = list(group)
    while todo:
        for dependent in todo.pop().dependents or ():
            if dependent not in group:
                group[dependent] = None
                todo.append(dependent)
    return group


def _waves(children: Sequence[_Child], *, stop: bool) -> list[list[_Child]]:
    """Group *children* in stop (or start) waves by their dependencies among themselves."""
    if len(children) < 2:  # noqa: PLR2004 - one child (a crash loop's restart) needs no graph
        return [list(children)] if children else []
    inside = {c.name for c in children}
    graph = build_graph(
        [c.name for c in children],
        [[d.name for d in c.deps if d.name in inside] for c in children],
        [c.effective for c in children],
    )
    waves = graph.stop_waves if stop else graph.start_waves
    return [[children[i] for i in wave] for wave in waves]


def _exit_key(child: _Child) -> tuple[bool, int]:
    assert child.instance is not None  # noqa: S101 - only children that ran are reported
    order = child.instance.exit_order
    return (order is None, 0 if order is None else order)
