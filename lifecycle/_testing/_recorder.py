"""A recorder of every component's state changes, and the invariants they must keep."""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from types import TracebackType
from typing import final

import attrs

from lifecycle._core import _instance_hooks as _hooks
from lifecycle._core._instance import ComponentInstance
from lifecycle._core._states import State

__all__ = ["Recorder", "Transition"]


@final
@attrs.frozen
class Transition:
    """
    One component instance entering a state, as a :class:`Recorder` saw it.

    Attributes:
        path: The component's path in the tree (``root/db``).

        state: The state it entered: ``STARTING`` when its instance was created
            to start, ``RUNNING`` when it became ready, ``STOPPING`` when its stop
            began, then ``STOPPED`` or ``FAILED`` when its task (and every task
            it spawned) had ended.

        instance: Which start of that path it is: 1 for the first, 2 after the
            first restart, and so on.

        at: When, on the event loop's clock.

        failed: Whether the instance had failed by then.

        self_stopped: For ``STOPPING``: whether the component began its own stop
            (it failed, or called ``ctx.request_stop()``) rather than its owner.
    """

    path: str
    state: State
    instance: int
    at: float
    failed: bool = False
    self_stopped: bool = False

    @property
    def name(self) -> str:
        """The component's own name (the last part of :attr:`path`)."""
        return self.path.rpartition("/")[2]


@attrs.define(eq=False)
class _Life:
    """What the recorder knows about one instance."""

    path: str
    number: int
    dependencies: tuple[str, ...]
    start: int
    ready: int | None = None
    stopping: int | None = None
    self_stopped: bool = False
    end: int | None = None
    ends: int = 0


def _parent(path: str) -> str:
    return path.rpartition("/")[0]


@final
class Recorder:
    """
    Records the state changes of every component instance while it is active.

    Use it as a context manager around the code that runs the tree (or use the
    ``lifecycle_recorder`` fixture of :mod:`lifecycle.pytest_plugin`). It sees
    every component created while it is active, in every tree of the process,
    nested trees and restarts included, whatever the event loop; it needs no
    change to the components and no logging configuration. Enter it before the
    tree starts: components created earlier are not seen.

    Its assertion methods raise :class:`AssertionError` with a readable account
    of what happened, so they work in any test framework. A component is named
    by its path (``root/db``) or, when that is unique among the recorded
    components, by its name (``db``).
    """

    __slots__ = ("_lives", "_seen", "transitions")

    def __init__(self) -> None:
        self.transitions: list[Transition] = []
        """Every recorded transition, in the order it happened."""
        self._lives: list[_Life] = []
        self._seen: dict[str, int] = {}

    # -- recording ---------------------------------------------------------------

    def __enter__(self) -> Recorder:
        _hooks.install(self._observe)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        _hooks.uninstall(self._observe)

    def _observe(self, instance: ComponentInstance) -> None:
        path = instance.path
        number = self._seen[path] = self._seen.get(path, 0) + 1
        parent = _parent(path)
        deps = tuple(f"{parent}/{d}" if parent else d for d in instance.spec.depends_on)
        life = _Life(path, number, deps, start=len(self.transitions))
        self._lives.append(life)
        self._add(instance, life, State.STARTING)

        def ready(_: ComponentInstance) -> None:
            life.ready = len(self.transitions)
            self._add(instance, life, State.RUNNING)

        def stopping(_: ComponentInstance) -> None:
            life.stopping = len(self.transitions)
            life.self_stopped = instance.failed or instance.stop_detail is not None
            self._add(instance, life, State.STOPPING, self_stopped=life.self_stopped)

        def ended(_: ComponentInstance) -> None:
            life.ends += 1
            life.end = len(self.transitions)
            self._add(instance, life, State.FAILED if instance.failed else State.STOPPED)

        instance.add_ready_callback(ready)
        instance.add_stop_callback(stopping)
        instance.add_exit_callback(ended)

    def _add(self, instance: ComponentInstance, life: _Life, state: State, *, self_stopped: bool = False) -> None:
        self.transitions.append(
            Transition(
                path=life.path,
                state=state,
                instance=life.number,
                at=instance._prim.clock(),
                failed=instance.failed,
                self_stopped=self_stopped,
            )
        )

    # -- reading -------------------------------------------------------------------

    def paths(self) -> list[str]:
        """Return every recorded component path, in the order each first started."""
        return list(self._seen)

    def order(self, state: State) -> list[str]:
        """Return the paths that entered *state*, in order (a restarted component appears again)."""
        return [t.path for t in self.transitions if t.state is state]

    def starts(self, component: str) -> int:
        """Return how many times *component* was started (1 + its restarts)."""
        return self._seen.get(self._resolve(component), 0)

    def alive(self) -> list[str]:
        """Return the paths of the instances that have started and not yet ended, in start order."""
        return [life.path for life in self._lives if life.end is None]

    # -- assertions ------------------------------------------------------------------

    def assert_start_order(self, *groups: str | Iterable[str]) -> None:
        """
        Assert that the first start of each group came after the previous group was ready.

        Each argument is a component or a collection of components started in
        any order among themselves (a wave): every component of one group must
        have become ready before any component of the next group began to start.

        Raises:
            AssertionError: The order was different; the message shows it.
        """
        resolved = [self._group(g) for g in groups]
        for before, after in itertools.pairwise(resolved):
            for a in before:
                first = self._first(a)
                for b in after:
                    if first.ready is None or first.ready > self._first(b).start:
                        msg = f"{a!r} was not ready before {b!r} began to start.\n{self._account()}"
                        raise AssertionError(msg)

    def assert_stop_order(self, *groups: str | Iterable[str]) -> None:
        """
        Assert that the last stop of each group ended before the next group's began.

        Each argument is a component or a collection of components stopped in
        any order among themselves: every component of one group must have ended
        before any component of the next group began to stop (a component that
        ended on its own counts as stopping when it ended).

        Raises:
            AssertionError: The order was different; the message shows it.
        """
        resolved = [self._group(g) for g in groups]
        for before, after in itertools.pairwise(resolved):
            for a in before:
                last = self._last(a)
                for b in after:
                    other = self._last(b)
                    began = other.stopping if other.stopping is not None else other.end
                    if last.end is None or began is None or last.end > began:
                        msg = f"{a!r} had not ended before {b!r} began to stop.\n{self._account()}"
                        raise AssertionError(msg)

    def assert_invariants(self) -> None:
        """
        Assert the guarantees of the lifecycle for everything recorded so far.

        Call it once the trees have stopped. It checks that:

        - every instance that started ended exactly once;
        - no two instances of one component were ever alive at the same time;
        - no instance started before each of its dependencies was ready and not
          stopping;
        - no component's stop was begun by its owner while an instance of a
          component that depends on it was still alive (a component that
          failed or stopped itself is exempt: nothing can outlive its own error).

        Raises:
            AssertionError: A guarantee was broken; the message lists every
                violation and the recorded transitions.
        """
        by_path: dict[str, list[_Life]] = {}
        for life in self._lives:
            by_path.setdefault(life.path, []).append(life)
        problems = [
            f"{life.path} #{life.number} ended {life.ends} times (expected once)"
            for life in self._lives
            if life.ends != 1
        ]
        for lives in by_path.values():
            problems.extend(
                f"{newer.path} #{newer.number} started while #{older.number} was still alive"
                for older, newer in itertools.pairwise(lives)
                if older.end is None or older.end > newer.start
            )
        for life in self._lives:
            for dep in life.dependencies:
                problem = self._dependency_problem(life, dep, self._current(by_path.get(dep, []), life.start))
                if problem is not None:
                    problems.append(problem)
        if problems:
            listed = "\n".join(f"  - {p}" for p in problems)
            msg = f"{len(problems)} lifecycle guarantees broken:\n{listed}\n{self._account()}"
            raise AssertionError(msg)

    # -- internals ---------------------------------------------------------------------

    def _dependency_problem(self, life: _Life, dep: str, current: _Life | None) -> str | None:
        """What, if anything, was wrong between *life* and the instance of *dep* it ran against."""
        who = f"{life.path} #{life.number}"
        if current is None or current.ready is None or current.ready > life.start:
            return f"{who} started before its dependency {dep} was ready"
        if current.end is not None and current.end < life.start:
            return f"{who} started after its dependency {dep} had ended"
        if current.stopping is not None and current.stopping < life.start:
            return f"{who} started while its dependency {dep} was stopping"
        end = life.end if life.end is not None else len(self.transitions)
        if current.stopping is not None and not current.self_stopped and current.stopping < end:
            return f"{dep} #{current.number} began to stop while its dependent {who} was alive"
        return None

    @staticmethod
    def _current(lives: list[_Life], at: int) -> _Life | None:
        """The instance of a component that had started last by transition *at*."""
        found = None
        for life in lives:
            if life.start < at:
                found = life
        return found

    def _resolve(self, component: str) -> str:
        if component in self._seen:
            return component
        matches = [p for p in self._seen if p.rpartition("/")[2] == component]
        if len(matches) == 1:
            return matches[0]
        if not matches:
            msg = f"No component {component!r} was recorded; recorded: {', '.join(self._seen) or 'none'}."
            raise AssertionError(msg)
        msg = f"Several recorded components are named {component!r}; use the path ({', '.join(matches)})."
        raise AssertionError(msg)

    def _group(self, group: str | Iterable[str]) -> list[str]:
        return [self._resolve(group)] if isinstance(group, str) else [self._resolve(c) for c in group]

    def _first(self, path: str) -> _Life:
        return next(life for life in self._lives if life.path == path)

    def _last(self, path: str) -> _Life:
        return [life for life in self._lives if life.path == path][-1]

    def _account(self) -> str:
        lines = [f"  {t.path} #{t.instance} {t.state.value}" for t in self.transitions]
        return "Recorded transitions:\n" + "\n".join(lines)

    def __repr__(self) -> str:
        return f"<Recorder {len(self._seen)} components, {len(self.transitions)} transitions>"
