"""A live tree driven by a state machine: start_child, stop_child, crashes and shutdown, in any order."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Coroutine, Iterator
from typing import Any, ClassVar

import anyio
import anyio.from_thread
import hypothesis.strategies as st
import pytest
from hypothesis import settings
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

import lifecycle
from supervisors import Backoff, Intensity, Supervisor

NAMES = ("a", "b", "c", "d", "e", "f")
SETTLE_SECONDS = 10.0


class DynamicTree(RuleBasedStateMachine):
    """
    The model: the children started and not stopped, with their dependencies.

    Each child checks, when it starts, that its dependencies are running and
    that no other instance of itself is; when it ends, that none of its
    dependents still runs. Violations are collected and asserted after every step.
    """

    backend: ClassVar[str] = "asyncio"

    def __init__(self) -> None:
        super().__init__()
        self.model: dict[str, tuple[str, ...]] = {}
        self.live: dict[str, int] = dict.fromkeys(NAMES, 0)
        self.crash: dict[str, anyio.Event] = {}
        # How many times each child started, and which run of each dependency each child started with.
        self.generation: dict[str, int] = dict.fromkeys(NAMES, 0)
        self.started_with: dict[str, dict[str, int]] = {}
        self.violations: list[str] = []
        # Set (in the tree's loop) whenever a child starts or ends.
        self.changed: anyio.Event | None = None
        self.stack = contextlib.ExitStack()
        self.portal = self.stack.enter_context(anyio.from_thread.start_blocking_portal(self.backend))
        self.sup = Supervisor(
            "dyn",
            backoff=Backoff(initial=0.0, maximum=0.0, jitter=False),
            intensity=Intensity(max_restarts=1_000_000, within=1.0),
        )
        self.tree = self.stack.enter_context(self.portal.wrap_async_context_manager(lifecycle.running(self.sup)))
        self.portal.call(self.tree.ready)

    def dependents(self, name: str) -> list[str]:
        return [other for other, deps in self.model.items() if name in deps]

    def component(self, name: str) -> Callable[[lifecycle.Context], Coroutine[Any, Any, None]]:
        async def child(ctx: lifecycle.Context) -> None:
            self.live[name] += 1
            self.touched()
            self.generation[name] += 1
            self.started_with[name] = {dep: self.generation[dep] for dep in self.model[name]}
            if self.live[name] > 1:
                self.violations.append(f"two instances of {name} alive")
            self.violations.extend(
                f"{name} started while {dep} was down" for dep in self.model[name] if not self.live[dep]
            )
            crash = self.crash[name] = anyio.Event()
            try:
                ctx.ready()
                await crash.wait()
            finally:
                self.live[name] -= 1
                self.touched()
                if not crash.is_set():  # stopped by its supervisor, not by its own failure
                    self.violations.extend(
                        f"{name} stopped while its dependent {other} ran"
                        for other in self.dependents(name)
                        if self.live[other]
                    )
            msg = f"{name} crashed"
            raise RuntimeError(msg)

        child.__name__ = name
        return child

    def touched(self) -> None:
        if self.changed is not None:
            self.changed.set()
            self.changed = None

    def settle(self) -> None:
        """Wait until every child of the model runs (restarts included), within a generous bound."""

        async def running() -> None:
            with anyio.fail_after(SETTLE_SECONDS):
                while not all(self.live[name] == 1 for name in self.model):
                    changed = self.changed = anyio.Event()
                    await changed.wait()

        self.portal.call(running)

    @rule(name=st.sampled_from(NAMES), data=st.data())
    def start_child(self, name: str, data: st.DataObject) -> None:
        if name in self.model:
            with pytest.raises(lifecycle.ConfigurationError, match="already has a child"):
                self.portal.call(lambda: self.sup.start_child(self.component(name), name=name))
            return
        deps = (
            tuple(data.draw(st.lists(st.sampled_from(sorted(self.model)), unique=True, max_size=2)))
            if self.model
            else ()
        )
        self.model[name] = deps
        self.portal.call(lambda: self.sup.start_child(self.component(name), name=name, depends_on=deps))
        assert self.live[name] == 1

    @precondition(lambda self: self.model)
    @rule(data=st.data())
    def stop_child(self, data: st.DataObject) -> None:
        name = data.draw(st.sampled_from(sorted(self.model)))
        gone = {name}
        changed = True
        while changed:
            more = {other for other, deps in self.model.items() if gone & set(deps)} - gone
            changed = bool(more)
            gone |= more
        report = self.portal.call(self.sup.stop_child, name)
        assert report.name == name
        for child in gone:
            del self.model[child]
            assert not self.live[child], f"{child} still runs after stop_child({name!r})"

    @precondition(lambda self: self.model)
    @rule(data=st.data())
    def crash_child(self, data: st.DataObject) -> None:
        name = data.draw(st.sampled_from(sorted(self.model)))
        self.portal.call(self.crash[name].set)
        self.settle()

    @invariant()
    def nothing_went_wrong(self) -> None:
        assert self.violations == []

    @invariant()
    def the_model_runs(self) -> None:
        self.settle()
        assert {name for name, count in self.live.items() if count} == set(self.model)

    @invariant()
    def dependents_hold_the_current_run_of_their_dependencies(self) -> None:
        for name, deps in self.model.items():
            assert self.started_with[name] == {dep: self.generation[dep] for dep in deps}, name

    def teardown(self) -> None:
        try:
            report = self.portal.call(self.tree.shutdown)
            self.stack.close()
            assert self.violations == []
            assert not any(self.live.values())
            assert sorted(c.name for c in report.components if c.name != "dyn") == sorted(self.model)
        finally:
            self.stack.close()


def machines() -> Iterator[type[DynamicTree]]:
    for backend in ("asyncio", "trio"):
        yield type(f"DynamicTree_{backend}", (DynamicTree,), {"backend": backend})


# Hypothesis drives the state machine from the test thread; the tree runs in a
# portal's event loop, so these tests are not async and pick their backend themselves.
TestDynamicTreeAsyncio, TestDynamicTreeTrio = (
    settings(max_examples=25, stateful_step_count=12, deadline=None)(machine).TestCase for machine in machines()
)
