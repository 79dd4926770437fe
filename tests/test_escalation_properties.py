"""
Random trees under random schedules of requests, escalations and deadlines, on trio's MockClock.

A model of the phase deadlines (below, independent of ``lifecycle.lowlevel.Escalation``)
says when each phase ends after the escalations a schedule applied; the test
checks every run against it:

- each shielded scope ends exactly at the earlier of its own end (its work or its
  *timeout*) and the end of its phase, and at its first checkpoint when it is
  born past that end (DESIGN.md, "Escalation is immediate");
- a scope is reported cut off exactly when its phase ended first;
- a component is logged ``component.stubborn`` exactly when it is still running
  after its cut and TERMINATE began (it swallowed cancellation and kept working
  under a shield of its own); a supervisor waiting for its children never is
  (DESIGN.md, "Stubborn");
- dependents stop before their dependencies, and every started component's stop
  runs exactly once (:meth:`lifecycle.testing.Recorder.assert_invariants`);
- every phase change is reported once, in order, with its reason.

Times are exact: virtual time passes only when every task is blocked. Work and
timeouts last a whole number of units plus a fraction that no sum of a few of
them makes whole, so no scope's own end ever ties with a phase end.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Iterator, MutableMapping
from typing import Any

import anyio
import attrs
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from strategies import component_names
from structlog.testing import capture_logs

import lifecycle
from lifecycle import Context, Phase, ShutdownPolicy, ShutdownReport
from lifecycle.testing import Recorder
from supervisors import Supervisor

pytestmark = pytest.mark.virtual_time

# Work lasts n + FRACTION units, a timeout n + FRACTION / 2: no sum of fewer than
# 5,000 such amounts is a whole number, so nothing ends on a phase end (whole
# units), and no timeout ends with the work it bounds.
FRACTION = 0.1234

KINDS = ("plain", "generator", "graceful", "forceful", "swallower", "tree")
"""
What a component does when its stop begins: ``plain`` returns at once; ``generator``
runs a teardown after ``yield`` (cut off when GRACEFUL ends); ``graceful`` and
``forceful`` work in ``ctx.shielded(until=...)``; ``swallower`` catches the
cancellation and works under a hand-made shield (stubborn if TERMINATE comes
first); ``tree`` is a nested supervisor with children of its own.
"""


@attrs.frozen
class Plan:
    """One component: its dependencies, what its stop does, and for how long."""

    name: str
    depends_on: tuple[str, ...]
    kind: str
    work: float = 0.0
    timeout: float | None = None
    children: tuple[Plan, ...] = ()


@attrs.frozen
class Schedule:
    """A tree, the stop's budgets, when the stop is requested and the escalations after it."""

    tree: tuple[Plan, ...]
    budgets: tuple[int, int, int]
    request_at: int
    escalations: tuple[tuple[int, Phase], ...]


def _work() -> st.SearchStrategy[float]:
    return st.integers(0, 9).map(lambda n: n + FRACTION)


def _timeout() -> st.SearchStrategy[float]:
    return st.integers(0, 9).map(lambda n: n + FRACTION / 2)


@st.composite
def plans(draw: st.DrawFn, *, max_size: int, nest: bool) -> tuple[Plan, ...]:
    """A DAG of components, each depending only on earlier ones."""
    names = draw(st.lists(component_names, min_size=1, max_size=max_size, unique=True))
    found: list[Plan] = []
    for i, name in enumerate(names):
        deps = tuple(draw(st.lists(st.sampled_from(names[:i]), max_size=2, unique=True))) if i else ()
        kind = draw(st.sampled_from(KINDS if nest else KINDS[:-1]))
        if kind == "tree":
            found.append(Plan(name, deps, kind, children=draw(plans(max_size=3, nest=False))))
            continue
        timeout = draw(st.none() | _timeout()) if kind in {"graceful", "forceful"} else None
        found.append(Plan(name, deps, kind, work=draw(_work()), timeout=timeout))
    return tuple(found)


schedules = st.builds(
    Schedule,
    tree=plans(max_size=6, nest=True),
    budgets=st.tuples(st.integers(1, 6), st.integers(1, 6), st.integers(1, 6)),
    request_at=st.integers(0, 2),
    escalations=st.lists(
        st.tuples(st.integers(0, 14), st.sampled_from((Phase.FORCEFUL, Phase.TERMINATE))), max_size=3
    ).map(lambda xs: tuple(sorted(xs, key=lambda e: e[0]))),
)


# -- the model ---------------------------------------------------------------------------


@attrs.frozen
class Model:
    """When each phase ends, and why each later phase began, after the applied escalations."""

    ends: tuple[float, float, float]
    causes: tuple[str, str]  # why FORCEFUL and TERMINATE began: "request", "deadline" or "either" (both at once)


def model(requested: float, budgets: tuple[int, int, int], applied: list[tuple[float, Phase]]) -> Model:
    """
    The phase ends of a stop requested at *requested*, escalated at the *applied* times.

    Each phase ends its budget after the previous one; escalating to a phase at
    time *e* ends the earlier phases at *e* and lets that phase and the later
    ones keep their budgets counted from *e*, never ending later than before.
    """
    g, f, t = budgets
    ends = [requested + g, requested + g + f, requested + g + f + t]
    causes = ["deadline", "deadline"]
    for at, phase in applied:
        began = ends[phase - 1]
        if began <= at:
            continue  # that phase is in effect already
        for later in range(phase, 3):
            ends[later] = min(ends[later], at + (ends[later] - began))
        for earlier in range(phase):
            if ends[earlier] > at:
                ends[earlier] = at
                causes[earlier] = "request"
            elif ends[earlier] == at and earlier < 2:
                causes[earlier] = "either"  # the deadline and the escalation came at once
    return Model((ends[0], ends[1], ends[2]), (causes[0], causes[1]))


Logs = list[MutableMapping[str, Any]]

# -- running a schedule --------------------------------------------------------------------


@attrs.define
class Seen:
    """What one component's stop did, as its own code saw it."""

    kind: str
    began: list[float] = attrs.Factory(list)
    ended: float | None = None
    caught: bool = False


class World:
    """Builds the components of a schedule and records what their stops did."""

    def __init__(self) -> None:
        self.seen: dict[str, Seen] = {}

    def _seen(self, path: str, kind: str) -> Seen:
        return self.seen.setdefault(path, Seen(kind))

    def build(self, name: str, tree: tuple[Plan, ...], prefix: str = "", policy: ShutdownPolicy | None = None) -> Any:
        sup = Supervisor(name, policy=policy)
        for plan in tree:
            path = f"{prefix}{name}/{plan.name}"
            target = (
                self.build(plan.name, plan.children, f"{prefix}{name}/")
                if plan.kind == "tree"
                else self.make(path, plan)
            )
            sup.add(target, name=plan.name, depends_on=plan.depends_on)
        return sup

    def make(self, path: str, plan: Plan) -> Any:
        seen = self._seen(path, plan.kind)
        if plan.kind == "generator":

            async def resource() -> AsyncIterator[None]:
                yield
                seen.began.append(anyio.current_time())
                try:
                    await anyio.sleep(plan.work)
                finally:
                    seen.ended = anyio.current_time()

            return resource

        async def component(ctx: Context) -> None:
            ctx.ready()
            try:
                await anyio.sleep_forever()
            except anyio.get_cancelled_exc_class():
                seen.began.append(anyio.current_time())
                if plan.kind != "swallower":
                    raise
                with anyio.CancelScope(shield=True):  # the fault: no deadline can cut this
                    await anyio.sleep(plan.work)
                seen.ended = anyio.current_time()
                return  # and the cancellation is swallowed
            finally:
                if plan.kind in {"graceful", "forceful"}:
                    until = Phase.GRACEFUL if plan.kind == "graceful" else Phase.FORCEFUL
                    with ctx.shielded(until=until, timeout=plan.timeout) as scope:
                        await anyio.sleep(plan.work)
                    seen.ended = anyio.current_time()
                    seen.caught = scope.cancelled_caught
                elif plan.kind == "plain":
                    seen.ended = anyio.current_time()

        return component


async def run_schedule(
    schedule: Schedule,
) -> tuple[World, ShutdownReport, Model, Logs, Recorder]:
    world = World()
    root = world.build("root", schedule.tree, policy=ShutdownPolicy(*map(float, schedule.budgets)))
    applied: list[tuple[float, Phase]] = []
    with Recorder() as recorder, capture_logs() as logs:
        async with lifecycle.running(root) as tree:
            await tree.ready()
            await anyio.sleep(schedule.request_at)
            requested = anyio.current_time()
            tree.request_shutdown()
            for at, phase in schedule.escalations:
                await anyio.sleep(max(0.0, requested + at - anyio.current_time()))
                if tree.report is not None:
                    break
                tree.escalate(phase)
                applied.append((anyio.current_time(), phase))
            report = await tree.wait()
    return world, report, model(requested, schedule.budgets, applied), logs, recorder


def _leaves(tree: tuple[Plan, ...], prefix: str) -> Iterator[tuple[str, Plan]]:
    for plan in tree:
        path = f"{prefix}/{plan.name}"
        if plan.kind == "tree":
            yield from _leaves(plan.children, path)
        else:
            yield path, plan


def check(schedule: Schedule, world: World, report: ShutdownReport, m: Model, logs: Logs) -> None:
    graceful_end, forceful_end, _ = m.ends
    stubborn_expected: set[str] = set()
    for path, plan in _leaves(schedule.tree, "root"):
        seen = world.seen[path]
        assert len(seen.began) == 1, f"{path}: its stop ran {len(seen.began)} times"
        (began,) = seen.began
        assert seen.ended is not None, f"{path}: its stop never ended"
        cut = False
        if plan.kind == "plain":
            expected = began
        elif plan.kind == "swallower":
            expected = began + plan.work
            if expected > forceful_end:
                stubborn_expected.add(path)
        else:
            phase_end = forceful_end if plan.kind == "forceful" else graceful_end
            own_end = began + (plan.work if plan.timeout is None else min(plan.work, plan.timeout))
            cut = phase_end < own_end
            expected = max(began, min(own_end, phase_end))
            if plan.kind != "generator":
                assert seen.caught == (expected < began + plan.work), f"{path}: cancelled_caught"
        assert math.isclose(seen.ended, expected, abs_tol=1e-9), (
            f"{path} ({plan.kind}, work {plan.work}, timeout {plan.timeout}): its stop began at {began} and "
            f"ended at {seen.ended}, expected {expected}; phase ends {m.ends}"
        )
        assert report[path].cut_off == cut, f"{path}: cut_off is {report[path].cut_off}, expected {cut}"
    stubborn = {e["component"] for e in logs if e["event"] == "component.stubborn"}
    assert stubborn == stubborn_expected, f"stubborn: {stubborn}, expected {stubborn_expected}; phase ends {m.ends}"
    assert report.ok
    assert report.clean == (not any(c.cut_off for c in report.components))

    # Phase changes: GRACEFUL at the request, then each phase that began before the stop ended.
    changes = [(c.phase, c.at, c.reason) for c in report.phase_changes]
    assert changes[0] == (Phase.GRACEFUL, report.requested_at, "request")
    assert [c[0] for c in changes] == sorted({c[0] for c in changes})
    for phase, began_at, cause in zip((Phase.FORCEFUL, Phase.TERMINATE), m.ends[:2], m.causes, strict=True):
        logged = [c for c in changes if c[0] is phase]
        if began_at < report.finished_at:
            reasons = {"request", "deadline"} if cause == "either" else {cause}
            assert [(p, at) for p, at, _ in logged] == [(phase, began_at)], f"{phase.name}: {changes}, model {m}"
            assert logged[0][2] in reasons, f"{phase.name}: {changes}, model {m}"
        elif began_at > report.finished_at:
            assert not logged, f"{phase.name} began after the stop ended: {changes}"
    events = [(e["phase"], e["reason"]) for e in logs if e["event"] == "tree.phase"]
    assert events == [(c[0].name, c[2]) for c in changes]


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(schedules)
@example(  # issue 15, problem 1: TERMINATE after one sibling's scope was cut at FORCEFUL
    Schedule(
        tree=(
            Plan("db", (), "generator", work=0.1234),
            Plan("worker", ("db",), "graceful", work=20.1234),
            Plan("wal", ("db",), "forceful", work=20.1234),
        ),
        budgets=(6, 4, 3),
        request_at=0,
        escalations=((1, Phase.FORCEFUL), (2, Phase.TERMINATE)),
    )
)
@example(  # a swallower in a nested tree: the leaf is stubborn, its supervisors are not
    Schedule(
        tree=(Plan("inner", (), "tree", children=(Plan("w", (), "swallower", work=9.1234),)),),
        budgets=(1, 1, 1),
        request_at=0,
        escalations=(),
    )
)
@example(  # a nested supervisor waiting for its spawned tasks as TERMINATE begins is not stubborn
    Schedule(
        tree=(
            Plan(
                "u",
                (),
                "tree",
                children=(
                    Plan("u", (), "generator", work=5.1234),
                    Plan("vegi", (), "generator", work=3.1234),
                    Plan("oq20", ("u", "vegi"), "forceful", work=6.1234),
                ),
            ),
            Plan("vegi", ("u",), "graceful", work=3.1234),
            Plan("oq20", ("u", "vegi"), "tree", children=(Plan("ekzq0r", (), "forceful", work=4.1234),)),
        ),
        budgets=(3, 2, 4),
        request_at=1,
        escalations=(),
    )
)
async def test_escalation_model(schedule: Schedule) -> None:
    """Scopes end by their phase's end or their own, stubborn is exact, order and phase changes hold."""
    world, report, m, logs, recorder = await run_schedule(schedule)
    recorder.assert_invariants()
    check(schedule, world, report, m, logs)


class TestModel:
    def test_budgets_follow_each_other(self) -> None:
        """Without escalations, each phase ends its budget after the previous one."""
        assert model(10.0, (6, 4, 3), []) == Model((16.0, 20.0, 23.0), ("deadline", "deadline"))

    def test_forceful_keeps_its_budget_from_the_escalation(self) -> None:
        """Escalating to FORCEFUL ends GRACEFUL now; FORCEFUL and TERMINATE keep their budgets from now."""
        assert model(0.0, (6, 4, 3), [(1.0, Phase.FORCEFUL)]) == Model((1.0, 5.0, 8.0), ("request", "deadline"))

    def test_terminate_ends_every_earlier_phase(self) -> None:
        """Escalating to TERMINATE after FORCEFUL ends FORCEFUL now and leaves a terminate budget."""
        m = model(0.0, (6, 4, 3), [(1.0, Phase.FORCEFUL), (2.0, Phase.TERMINATE)])
        assert m == Model((1.0, 2.0, 5.0), ("request", "request"))

    def test_an_escalation_to_a_phase_in_effect_changes_nothing(self) -> None:
        """Escalating to FORCEFUL during FORCEFUL moves no deadline."""
        assert model(0.0, (1, 4, 3), [(2.0, Phase.FORCEFUL)]) == Model((1.0, 5.0, 8.0), ("deadline", "deadline"))
