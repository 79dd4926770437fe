"""Supervisor: declaring a tree of children, and running it (the engine is in _engine, _dynamic and _restarts)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar, Unpack, final, overload

import anyio
import anyio.abc

from lifecycle import ComponentReport, ComponentSpec, ConfigurationError, Context, ShutdownPolicy, UsageError
from lifecycle.abc import ChildInfo, Tree, TreeInfo
from lifecycle.lowlevel import Option, failure_group

from ._child import ChildOptions, Declaration
from ._errors import GaveUpError
from ._graph import Graph, build_graph
from ._restarts import Supervision
from ._strategy import AutoShutdown, Backoff, Intensity, Restart, Strategy

__all__ = ["Supervisor"]

F = TypeVar("F", bound=Callable[..., object])
T = TypeVar("T")

_NAME = Option.name()


def _check_option(value: object, kind: type, what: str, owner: str) -> None:
    Option.instance_of(kind, f"a {kind.__module__.split('.')[0]}.{kind.__name__}").check(what, value, owner=owner)


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
        "_declarations",
        "_graph",
        "_index",
        "_running",
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
            hint = Option.name_hint(name)
            msg = f"Supervisor name {name!r} is invalid: use {_NAME.expected}" + (f" ({hint})." if hint else ".")
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
        self._declarations: list[Declaration] = []
        self._index: dict[str, int] = {}
        self._graph: Graph | None = None
        self._running = False
        self._active: Supervision | None = None

    # -- declaring children ------------------------------------------------------

    @overload
    def component(self, fn: F, /) -> F: ...

    @overload
    def component(self, /, **options: Unpack[ChildOptions]) -> Callable[[F], F]: ...

    def component(self, fn: F | None = None, /, **options: Unpack[ChildOptions]) -> F | Callable[[F], F]:
        """
        Register a function or async generator function as a child; a decorator.

        Usable bare (``@sup.component``) or with options
        (``@sup.component(priority=Priority.HIGH)``): those of :meth:`add`, listed
        in :class:`ChildOptions`. Returns the function unchanged, so it stays
        callable and testable on its own.

        Raises:
            ConfigurationError: The function is not a component, an option is
                invalid, or the name is taken.
        """

        def register(target: F) -> F:
            self.add(target, **options)
            return target

        return register if fn is None else register(fn)

    def add(self, obj: T, /, **options: Unpack[ChildOptions]) -> T:
        """
        Register *obj* as a child and return it unchanged.

        *obj* is an async function, an async generator function, an object with
        ``async def run(self, ctx)`` (another supervisor, for instance), or a
        :class:`~lifecycle.ComponentSpec`. Parameters named after other children are
        dependencies; unknown names and cycles are reported when the tree is
        validated, before anything starts.

        Args:
            obj: The component.

            **options: Its options, each a keyword (all optional): *name*,
                *depends_on*, *priority*, *restart*, *main* and *policy*; see
                :class:`ChildOptions` for what each means and its default.

        Raises:
            ConfigurationError: *obj* is not a component, an option is invalid,
                or the name is already taken.

            UsageError: The supervisor is running.

        .. versionchanged:: 0.1.0
           The options are typed by :class:`ChildOptions`.
        """
        if self._running:
            msg = (
                f"Supervisor {self.name!r} is running; register children before it starts "
                f"(adding {options.get('name') or getattr(obj, '__name__', obj)!r})."
            )
            raise UsageError(msg)
        declaration = self._declare(obj, options, "add")
        name = declaration.spec.name
        if name in self._index:
            msg = f"Supervisor {self.name!r} already has a component named {name!r}; pass a different `name=`."
            raise ConfigurationError(msg)
        self._index[name] = len(self._declarations)
        self._declarations.append(declaration)
        self._graph = None
        return obj

    @property
    def children(self) -> tuple[ComponentSpec, ...]:
        """The registered children, in registration order."""
        return tuple(d.spec for d in self._declarations)

    def restart_of(self, name: str) -> Restart:
        """Return the restart type the child *name* was registered with."""
        if name in self._index:
            return self._declarations[self._index[name]].restart
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
            specs = [d.spec for d in self._declarations]
            self._graph = build_graph(
                [s.name for s in specs], [s.depends_on for s in specs], [s.priority for s in specs]
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
        for i, (spec, restart) in enumerate((d.spec, d.restart) for d in self._declarations):
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
        for spec in self.children:
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
                    run = self._active = Supervision(self, ctx, task_group, graph, self._declarations)
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
                        run.release()
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
        /,
        **options: Unpack[ChildOptions],
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

            **options: Its options, as for :meth:`add` (:class:`ChildOptions`);
                its *priority* raises its dependencies' effective priority as a
                registered child's would.

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
        run = self._require_run("start_child", options.get("name") or getattr(obj, "__name__", obj))
        declaration = self._declare(obj, options, "start_child")
        declaration.spec.validate_tree()
        return await run.start_child(declaration)

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

    def _declare(self, obj: object, options: ChildOptions, method: str) -> Declaration:
        return Declaration.of(obj, options, method=method, supervisor=self.name, auto_shutdown=self.auto_shutdown)

    def _require_run(self, method: str, child: object) -> Supervision:
        if self._active is None:
            msg = (
                f"Supervisor {self.name!r} is not running, so `{method}()` cannot act on {child!r}; "
                "call it while the supervisor runs, or register children with `add()` before it starts."
            )
            raise UsageError(msg)
        return self._active

    def __repr__(self) -> str:
        return f"<Supervisor {self.name!r} with {len(self._declarations)} children>"
