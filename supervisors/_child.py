"""
One child of a supervisor: how it is declared, and its record while the supervisor runs.

The options of a child are written out once, in :class:`ChildOptions`: the
keywords of :meth:`Supervisor.add() <supervisors.Supervisor.add>`,
:meth:`~supervisors.Supervisor.component` and
:meth:`~supervisors.Supervisor.start_child`. :meth:`Declaration.of` applies
their defaults and checks them, once, into a :class:`Declaration` (the spec and
the restart type); a running supervisor keeps a :class:`Child` per declaration.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final, TypedDict, final

import attrs

from lifecycle import ComponentReport, ComponentSpec, ConfigurationError, Outcome, Priority, ShutdownPolicy
from lifecycle.lowlevel import ComponentInstance, Option

from ._graph import build_graph
from ._strategy import AutoShutdown, Restart

__all__ = ["Child", "ChildOptions", "Declaration", "exit_key", "waves_of", "with_dependents"]

# How many errors of a child's earlier runs its report keeps (memory stays flat
# however often it restarts; ComponentReport.restarts counts every run).
_EARLIER_ERRORS = 16


@final
class ChildOptions(TypedDict, total=False):
    """
    The options of a child: the keywords of ``add()``, ``component()`` and ``start_child()``.

    Every key is optional; the default is used for a key that is not given.

    Attributes:
        name: Its name; defaults to the function's ``__name__`` or the
            object's ``name``.

        depends_on: Further dependencies whose values are not injected
            (default ``()``).

        priority: How important it is; lower priorities stop first (default
            :attr:`Priority.NORMAL <lifecycle.Priority.NORMAL>`).

        restart: When it is restarted after it ends (default
            :attr:`Restart.PERMANENT <supervisors.Restart.PERMANENT>`).

        main: Whether it is the program's job: when it returns, the tree stops
            in order; when it raises, the tree stops and fails (default ``False``).

        policy: Its own shutdown budgets; they only make deadlines earlier
            (default ``None``).

    .. versionadded:: 0.1.0
    """

    name: str | None
    depends_on: Sequence[str]
    priority: Priority
    restart: Restart
    main: bool
    policy: ShutdownPolicy | None


_OPTIONS: Final = ChildOptions.__optional_keys__ | ChildOptions.__required_keys__
_RESTART = Option.instance_of(Restart, "a supervisors.Restart")


@final
@attrs.frozen
class Declaration:
    """
    A child as it is declared: what it runs (its spec, with its name and options) and its restart type.

    Attributes:
        spec: The component, its name, dependencies, priority, ``main`` and policy.

        restart: When it is restarted after it ends.
    """

    spec: ComponentSpec
    restart: Restart

    @classmethod
    def of(
        cls, obj: object, options: ChildOptions, *, method: str, supervisor: str, auto_shutdown: AutoShutdown
    ) -> Declaration:
        """
        Declare *obj* with *options*, given to *method* of the supervisor *supervisor*.

        Raises:
            TypeError: An option is unknown, as for any keyword argument.

            ConfigurationError: *obj* is not a component or an option is invalid.
        """
        unknown = sorted(set(options) - _OPTIONS)
        if unknown:
            msg = f"{method}() got an unexpected keyword argument {unknown[0]!r}"
            raise TypeError(msg)
        restart = options.get("restart", Restart.PERMANENT)
        if isinstance(obj, ComponentSpec):
            spec = obj
        else:
            spec = ComponentSpec.from_target(
                obj,
                name=options.get("name"),
                depends_on=options.get("depends_on", ()),
                priority=options.get("priority", Priority.NORMAL),
                main=options.get("main", False),
                policy=options.get("policy"),
            )
        _RESTART.check("restart", restart, owner=f"component {spec.name!r}")
        if spec.main and auto_shutdown is AutoShutdown.NEVER:
            msg = (
                f"Supervisor {supervisor!r} has `auto_shutdown=AutoShutdown.NEVER`, so its child {spec.name!r} "
                "cannot be `main=True` (as in Erlang/OTP, significant children need auto_shutdown "
                "any_significant or all_significant); drop `main=True` or choose another `auto_shutdown`."
            )
            raise ConfigurationError(msg)
        return cls(spec, restart)


@final
class Child:
    """One child of a running supervisor: its declaration, its links and its current instance."""

    __slots__ = (
        "attempts",
        "counts",
        "declaration",
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
        "restart_at",
        "restarts",
        "retired",
        "started",
    )

    def __init__(self, declaration: Declaration, order: int, *, dynamic: bool) -> None:
        self.declaration = declaration
        # Registration order: "the rest" of REST_FOR_ONE are the children after this one.
        self.order = order
        self.dynamic = dynamic
        self.deps: tuple[Child, ...] = ()
        self.dependents: dict[Child, None] | None = None
        # How many direct dependents have each effective priority (dynamic trees only):
        # a child's effective priority is then found without walking its dependents.
        self.counts: list[int] | None = None
        self.effective = declaration.spec.priority
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
    def spec(self) -> ComponentSpec:
        """What it runs."""
        return self.declaration.spec

    @property
    def restart(self) -> Restart:
        """When it is restarted after it ends."""
        return self.declaration.restart

    @property
    def name(self) -> str:
        """Its name."""
        return self.declaration.spec.name

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
        """Its report: its current run's, with the errors of its earlier runs."""
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


def with_dependents(group: dict[Child, None]) -> dict[Child, None]:
    """*group* (in order) followed by every child that depends on one of its members, directly or not."""
    todo = list(group)
    while todo:
        for dependent in todo.pop().dependents or ():
            if dependent not in group:
                group[dependent] = None
                todo.append(dependent)
    return group


def waves_of(children: Sequence[Child], *, stop: bool) -> list[list[Child]]:
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


def exit_key(child: Child) -> tuple[bool, int]:
    """Sorts the reports of children in the order their tasks ended (children that never ended last)."""
    assert child.instance is not None  # noqa: S101 - only children that ran are reported
    order = child.instance.exit_order
    return (order is None, 0 if order is None else order)
