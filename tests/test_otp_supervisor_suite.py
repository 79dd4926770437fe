"""
Erlang/OTP's ``supervisor_SUITE``, translated where our API can express it.

Each test names, in its docstring, the case of ``lib/stdlib/test/supervisor_SUITE.erl``
(OTP 27) it mirrors, and says where our answer differs and why. The mapping:

- ``supervisor:start_child(Sup, ChildSpec)`` is ``await sup.start_child(...)``: as in
  the SUITE, most children are started dynamically, so every strategy is tested with
  dynamic children.
- The SUITE's ``supervisor_1`` child is :class:`Workers`: ``terminate(Pid, normal)``
  makes the child return, ``terminate(Pid, abnormal)`` makes it raise;
  ``supervisor_1:start_child(error)`` (the first start works, every later one fails)
  is ``Workers.child(name, fail_restarts=True)``; ``supervisor_deadlock`` (starts fail
  while a flag is set, each after 2 s) is ``fail_starts`` plus a 2 s backoff.
- ``supervisor:which_children/1`` is :meth:`lifecycle.RunningTree.components`;
  ``terminate_child/2`` + ``delete_child/2`` is ``stop_child()``.
- ``check_exit([SupPid])`` (the supervisor reached its restart intensity and exited)
  is a :class:`supervisors.GaveUpError` raised out of :func:`lifecycle.running`.

Not translated, because our API has nothing to express them with: the
``simple_one_for_one`` cases (dynamic children of an ordinary supervisor cover them),
exit reasons ``shutdown`` and ``{shutdown, Term}`` (``*_shutdown``: a component returns
or raises), ``ignore`` from a start function (``sup_start_ignore_*``), ``code_change*``
and ``significant_upgrade_*`` (no hot code upgrade), ``format_log_*``, ``child_unlink``,
``count_children`` memory and scale cases, and ``restart_child/2`` (a child is started
again with ``start_child()``).

Every test runs in virtual time (Trio's ``MockClock``): restart windows and backoffs
are exact, and ``await anyio.sleep(1)`` lets the supervisor finish what it does at
that instant.
"""

from __future__ import annotations

from collections.abc import Callable

import anyio
import pytest

import lifecycle
from lifecycle import ComponentError, ConfigurationError, Context, Outcome, ShutdownPolicy, State
from supervisors import AutoShutdown, Backoff, GaveUpError, Intensity, Restart, Strategy, Supervisor

pytestmark = pytest.mark.virtual_time

NO_DELAY = Backoff(initial=0.0, maximum=0.0, jitter=False)
# supervisor_deadlock fails a start after sleeping 2 s.
DEADLOCK_DELAY = Backoff(initial=2.0, maximum=2.0, jitter=False)


class Workers:
    """OTP's ``supervisor_1`` test child: it starts, runs, and ends when the test says how."""

    def __init__(self) -> None:
        self.runs: dict[str, int] = {}
        self.events: list[tuple[str, str]] = []
        # Children whose starts fail until the name is removed, and those whose next start only fails.
        self.fail_starts: set[str] = set()
        self.fail_once: set[str] = set()
        self._endings: dict[str, tuple[anyio.Event, list[str]]] = {}

    def child(self, name: str, *, fail_restarts: bool = False) -> Callable[[Context], object]:
        """A child; with *fail_restarts* only its first start works (``supervisor_1:start_child(error)``)."""

        async def component(ctx: Context) -> None:
            run = self.runs[name] = self.runs.get(name, 0) + 1
            once = name in self.fail_once
            self.fail_once.discard(name)
            if once or name in self.fail_starts or (fail_restarts and run > 1):
                msg = f"{name} cannot start"
                raise RuntimeError(msg)
            self.events.append(("start", name))
            ending: tuple[anyio.Event, list[str]] = (anyio.Event(), [])
            self._endings[name] = ending
            ctx.ready(f"{name}#{run}")
            try:
                await ending[0].wait()
            finally:
                self.events.append(("stop", name))
            if ending[1] == ["abnormal"]:
                msg = f"{name} exited abnormally"
                raise RuntimeError(msg)

        component.__name__ = name
        return component

    async def terminate(self, name: str, reason: str) -> None:
        """``terminate(Pid, Reason)``: end the running child *name*, then let the supervisor act."""
        event, reason_box = self._endings[name]
        reason_box.append(reason)
        event.set()
        await anyio.sleep(1)

    def started(self, event: str = "start") -> list[str]:
        return [name for e, name in self.events if e == event]


def children(tree: lifecycle.RunningTree, path: str | None = None) -> dict[str, State]:
    """``which_children``: the direct children of the supervisor at *path* (the root by default), with their states."""
    parent = tree.name if path is None else path
    return {s.name: s.state for s in tree.components() if s.path.rpartition("/")[0] == parent}


def sup_test(strategy: Strategy, max_restarts: int, within: float, **options: object) -> Supervisor:
    """``start_link({ok, {{Strategy, MaxR, MaxT}, []}})``."""
    return Supervisor(
        "sup_test",
        strategy=strategy,
        intensity=Intensity(max_restarts=max_restarts, within=within),
        backoff=options.pop("backoff", NO_DELAY),  # type: ignore[arg-type]
        **options,  # type: ignore[arg-type]
    )


class TestRestartTypes:
    async def test_permanent_normal(self) -> None:
        """``permanent_normal``: a PERMANENT child that exits normally is restarted."""
        w = Workers()
        sup = sup_test(Strategy.ONE_FOR_ONE, 2, 3600)
        async with lifecycle.running(sup) as tree:
            await tree.ready()
            await sup.start_child(w.child("child1"))
            await w.terminate("child1", "normal")
            assert children(tree) == {"child1": State.RUNNING}
            assert w.runs == {"child1": 2}
            await tree.shutdown()

    async def test_transient_normal(self) -> None:
        """
        ``transient_normal``: a TRANSIENT child that exits normally is not restarted; its spec stays.

        Registered with ``add()`` here: OTP keeps the spec of a dynamic TRANSIENT child
        (``{child1, undefined, worker, []}``), while we forget a dynamic child that
        ended for good, to keep memory flat under churn; a registered one stays.
        """
        w = Workers()
        sup = sup_test(Strategy.ONE_FOR_ONE, 2, 3600)
        sup.add(w.child("child1"), restart=Restart.TRANSIENT)
        async with lifecycle.running(sup) as tree:
            await tree.ready()
            await w.terminate("child1", "normal")
            assert children(tree) == {"child1": State.STOPPED}
            assert w.runs == {"child1": 1}
            await tree.shutdown()

    async def test_temporary_normal(self) -> None:
        """``temporary_normal``: a TEMPORARY child that exits normally is not restarted, and forgotten."""
        w = Workers()
        sup = sup_test(Strategy.ONE_FOR_ONE, 2, 3600)
        async with lifecycle.running(sup) as tree:
            await tree.ready()
            await sup.start_child(w.child("child1"), restart=Restart.TEMPORARY)
            await w.terminate("child1", "normal")
            assert children(tree) == {}
            await tree.shutdown()

    async def test_permanent_abnormal(self) -> None:
        """``permanent_abnormal``: a PERMANENT child that fails is restarted."""
        w = Workers()
        sup = sup_test(Strategy.ONE_FOR_ONE, 2, 3600)
        async with lifecycle.running(sup) as tree:
            await tree.ready()
            await sup.start_child(w.child("child1"))
            await w.terminate("child1", "abnormal")
            assert children(tree) == {"child1": State.RUNNING}
            assert w.runs == {"child1": 2}
            report = await tree.shutdown()
        assert report.ok

    async def test_transient_abnormal(self) -> None:
        """``transient_abnormal``: a TRANSIENT child that fails is restarted."""
        w = Workers()
        sup = sup_test(Strategy.ONE_FOR_ONE, 2, 3600)
        async with lifecycle.running(sup) as tree:
            await tree.ready()
            await sup.start_child(w.child("child1"), restart=Restart.TRANSIENT)
            await w.terminate("child1", "abnormal")
            assert children(tree) == {"child1": State.RUNNING}
            assert w.runs == {"child1": 2}
            await tree.shutdown()

    async def test_temporary_abnormal(self) -> None:
        """``temporary_abnormal``: a TEMPORARY child that fails is not restarted, and forgotten."""
        w = Workers()
        sup = sup_test(Strategy.ONE_FOR_ONE, 2, 3600)
        async with lifecycle.running(sup) as tree:
            await tree.ready()
            await sup.start_child(w.child("child1"), restart=Restart.TEMPORARY)
            await w.terminate("child1", "abnormal")
            assert children(tree) == {}
            report = await tree.shutdown()
        assert report.ok  # handled by supervision: in the report and the log, not a failure of the stop
        assert report["child1"].handled

    @pytest.mark.parametrize("strategy", [Strategy.ONE_FOR_ALL, Strategy.REST_FOR_ONE])
    async def test_temporary_bystander(self, strategy: Strategy) -> None:
        """``temporary_bystander``: a TEMPORARY child stopped by a sibling's restart is not started again."""
        w = Workers()
        sup = sup_test(strategy, 2, 300)
        async with lifecycle.running(sup) as tree:
            await tree.ready()
            await sup.start_child(w.child("child1"))
            await sup.start_child(w.child("child2"), restart=Restart.TEMPORARY)
            await w.terminate("child1", "normal")
            assert children(tree) == {"child1": State.RUNNING}
            assert w.runs == {"child1": 2, "child2": 1}
            report = await tree.shutdown()
        assert report.ok


class TestIntensity:
    async def test_multiple_restarts(self) -> None:
        """``multiple_restarts``: restarts further apart than the period never reach the intensity (1 per 1 s)."""
        w = Workers()
        sup = sup_test(Strategy.ONE_FOR_ONE, 1, 1)
        async with lifecycle.running(sup) as tree:
            await tree.ready()
            await sup.start_child(w.child("child1"))
            await w.terminate("child1", "abnormal")
            for _ in range(3):
                await anyio.sleep(2.1)
                await w.terminate("child1", "abnormal")
            assert children(tree) == {"child1": State.RUNNING}
            await sup.stop_child("child1")
            report = await tree.shutdown()
        assert w.runs == {"child1": 5}
        assert report.ok

    async def test_intensity_zero(self) -> None:
        """
        Intensity 0: the first restart is one too many, whatever ended the child.

        No SUITE case tests it on its own (``code_change`` starts ``{one_for_one, 0, 1}``);
        the rule is ``add_restart/1`` in ``supervisor.erl``: the supervisor terminates
        once the restarts in the period exceed the intensity.
        """
        w = Workers()
        sup = sup_test(Strategy.ONE_FOR_ONE, 0, 1)
        with pytest.RaisesGroup(GaveUpError) as info:
            async with lifecycle.running(sup) as tree:
                await tree.ready()
                await sup.start_child(w.child("child1"))
                await w.terminate("child1", "normal")
                pytest.fail("the supervisor must have given up")  # pragma: no cover
        (error,) = info.value.exceptions
        assert isinstance(error, GaveUpError)
        assert (error.child, error.reason, error.failed) == (
            "sup_test/child1",
            "more than 0 restarts within 1 s",
            False,
        )
        assert w.runs == {"child1": 1}


class TestOneForOne:
    async def test_one_for_one(self) -> None:
        """``one_for_one``: only the failed child restarts; the third restart within the period is too many."""
        w = Workers()
        sup = sup_test(Strategy.ONE_FOR_ONE, 2, 3600)
        with pytest.RaisesGroup(GaveUpError):
            async with lifecycle.running(sup) as tree:
                await tree.ready()
                await sup.start_child(w.child("child1"))
                await sup.start_child(w.child("child2"))
                await w.terminate("child1", "abnormal")
                assert children(tree) == {"child1": State.RUNNING, "child2": State.RUNNING}
                assert w.runs == {"child1": 2, "child2": 1}
                await w.terminate("child2", "abnormal")
                await w.terminate("child1", "abnormal")
                pytest.fail("the supervisor must have given up")  # pragma: no cover
        assert w.runs == {"child1": 2, "child2": 2}  # the third end was one too many: no third run

    async def test_one_for_one_escalation(self) -> None:
        """
        ``one_for_one_escalation``: a child whose restarts fail to start exhausts the intensity (4).

        The supervisor stops its other child and fails; its parent then handles the
        failure (escalation): here the parent has intensity 0 and gives up in turn.
        """
        await _escalation(Strategy.ONE_FOR_ONE, failing="child1", other="child2")


class TestOneForAll:
    async def test_one_for_all(self) -> None:
        """``one_for_all``: every child restarts when one fails; the third restart is too many."""
        w = Workers()
        sup = sup_test(Strategy.ONE_FOR_ALL, 2, 3600)
        with pytest.RaisesGroup(GaveUpError):
            async with lifecycle.running(sup) as tree:
                await tree.ready()
                await sup.start_child(w.child("child1"))
                await sup.start_child(w.child("child2"))
                await w.terminate("child1", "abnormal")
                assert children(tree) == {"child1": State.RUNNING, "child2": State.RUNNING}
                assert w.runs == {"child1": 2, "child2": 2}  # no old child is still alive
                await w.terminate("child1", "abnormal")
                await w.terminate("child2", "abnormal")
                pytest.fail("the supervisor must have given up")  # pragma: no cover

    async def test_one_for_all_escalation(self) -> None:
        """``one_for_all_escalation``: a child whose restarts fail to start takes the supervisor down."""
        await _escalation(Strategy.ONE_FOR_ALL, failing="child2", other="child1")

    async def test_one_for_all_other_child_fails_restart(self) -> None:
        """
        ``one_for_all_other_child_fails_restart``: a sibling failing to start stops the restarted child again.

        OTP aborts the restart and tries again; here the sibling's start failure is one
        more failure, whose ONE_FOR_ALL restart stops the child restarted just before
        and starts both again: the same outcome.
        """
        w = Workers()
        sup = sup_test(Strategy.ONE_FOR_ALL, 3, 3600)
        async with lifecycle.running(sup) as tree:
            await tree.ready()
            await sup.start_child(w.child("child1"))
            await sup.start_child(w.child("child2"), depends_on=("child1",))  # started after child1, as in OTP
            w.fail_once.add("child2")
            await w.terminate("child1", "abnormal")
            assert children(tree) == {"child1": State.RUNNING, "child2": State.RUNNING}
            report = await tree.shutdown()
        assert w.runs == {"child1": 3, "child2": 3}  # first start, failed restart, the restart after it
        # child1 crashed, child2 was stopped for the restart, then the restarted child1 was stopped again.
        assert w.started("stop")[:3] == ["child1", "child2", "child1"]
        assert report.ok


class TestRestForOne:
    async def test_rest_for_one(self) -> None:
        """``rest_for_one``: the failed child and those started after it restart; the third restart is too many."""
        w = Workers()
        sup = sup_test(Strategy.REST_FOR_ONE, 2, 3600)
        with pytest.RaisesGroup(GaveUpError):
            async with lifecycle.running(sup) as tree:
                await tree.ready()
                for name in ("child1", "child2", "child3"):
                    await sup.start_child(w.child(name))
                await w.terminate("child2", "abnormal")
                assert children(tree) == dict.fromkeys(("child1", "child2", "child3"), State.RUNNING)
                assert w.runs == {"child1": 1, "child2": 2, "child3": 2}
                await w.terminate("child3", "abnormal")
                assert w.runs == {"child1": 1, "child2": 2, "child3": 3}
                await w.terminate("child2", "abnormal")
                pytest.fail("the supervisor must have given up")  # pragma: no cover

    async def test_rest_for_one_escalation(self) -> None:
        """``rest_for_one_escalation``: a failed child whose rest fails to restart takes the supervisor down."""
        await _escalation(Strategy.REST_FOR_ONE, failing="child2", other="child1", trigger="child1")

    async def test_rest_for_one_other_child_fails_restart(self) -> None:
        """``rest_for_one_other_child_fails_restart``: when the next child fails to restart, only it restarts again."""
        w = Workers()
        sup = sup_test(Strategy.REST_FOR_ONE, 3, 3600)
        async with lifecycle.running(sup) as tree:
            await tree.ready()
            await sup.start_child(w.child("child1"))
            await sup.start_child(w.child("child2"), depends_on=("child1",))
            w.fail_once.add("child2")
            await w.terminate("child1", "abnormal")
            assert children(tree) == {"child1": State.RUNNING, "child2": State.RUNNING}
            await tree.shutdown()
        assert w.runs == {"child1": 2, "child2": 3}  # child1 was not restarted a second time


async def _escalation(strategy: Strategy, *, failing: str, other: str, trigger: str | None = None) -> None:
    """The ``*_escalation`` cases: intensity 4, a child whose restarts never start, a parent that gives up too."""
    w = Workers()
    sup = sup_test(strategy, 4, 3600)
    parent = Supervisor("parent", intensity=Intensity(max_restarts=0))
    parent.add(sup)
    with pytest.RaisesGroup(GaveUpError) as info:
        async with lifecycle.running(parent) as tree:
            await tree.ready()
            first, second = sorted((failing, other))
            await sup.start_child(w.child(first, fail_restarts=first == failing))
            await sup.start_child(w.child(second, fail_restarts=second == failing))
            await w.terminate(trigger or failing, "abnormal")
            pytest.fail("the supervisors must have given up")  # pragma: no cover
    (outer,) = info.value.exceptions
    assert isinstance(outer, GaveUpError)
    assert (outer.supervisor, outer.child) == ("parent", "parent/sup_test")
    (inner,) = outer.errors
    assert isinstance(inner, GaveUpError)
    assert (inner.supervisor, inner.child, inner.reason) == (
        "parent/sup_test",
        f"parent/sup_test/{failing}",
        "more than 4 restarts within 3600 s",
    )
    assert [e.stage for e in inner.errors if isinstance(e, ComponentError)] == ["run", *["start"] * 4]
    assert w.started("stop").count(other) == w.runs[other]  # every run of the other child was stopped


class TestTree:
    async def test_tree(self) -> None:
        """
        ``tree``: only the child that dies restarts; a restarted nested supervisor has no dynamic children.

        OTP's third nested supervisor (``supchild3``, stopped with ``terminate_child``)
        is left out: ``stop_child()`` also deletes the child, so a later restart of the
        tree does not start it again, while OTP's ``terminate_child`` keeps its spec.
        """
        w = Workers()
        sup1 = Supervisor("supchild1", intensity=Intensity(4, 3600), backoff=NO_DELAY)
        sup1.add(w.child("child1"))
        sup1.add(w.child("child2"))
        sup2 = Supervisor("supchild2", intensity=Intensity(4, 3600), backoff=NO_DELAY)
        top = sup_test(Strategy.ONE_FOR_ALL, 4, 3600)
        top.add(sup1)
        top.add(sup2)
        async with lifecycle.running(top) as tree:
            await tree.ready()
            await sup2.start_child(w.child("child3", fail_restarts=True))
            await sup2.start_child(w.child("child4"))
            await w.terminate("child4", "abnormal")
            assert w.runs == {"child1": 1, "child2": 1, "child3": 1, "child4": 2}  # only the process that died
            await w.terminate("child3", "abnormal")  # its restarts fail: supchild2 gives up, sup_test restarts all
            assert children(tree) == {"supchild1": State.RUNNING, "supchild2": State.RUNNING}
            assert children(tree, "sup_test/supchild2") == {}  # restarted without its dynamic children
            assert children(tree, "sup_test/supchild1") == {"child1": State.RUNNING, "child2": State.RUNNING}
            report = await tree.shutdown()
        assert (w.runs["child1"], w.runs["child2"]) == (2, 2)
        assert report["sup_test/supchild2"].restarts == 1


class TestHangingRestartLoop:
    async def test_hanging_restart_loop(self) -> None:
        """
        ``hanging_restart_loop`` (OTP-9549): a child stuck in failing restarts can be stopped, and its supervisor too.

        ``supervisor_deadlock`` fails each start after 2 s; a 2 s backoff keeps the
        restarts under the intensity (8 in 10 s), so the loop goes on.
        """
        w = Workers()
        sup = sup_test(Strategy.ONE_FOR_ONE, 8, 10, backoff=DEADLOCK_DELAY)
        async with lifecycle.running(sup) as tree:
            await tree.ready()
            await sup.start_child(w.child("child1"))
            w.fail_starts.add("child1")
            await w.terminate("child1", "abnormal")
            await anyio.sleep(10)  # in the loop: a failed start every 2 s
            assert children(tree) == {"child1": State.RESTARTING}
            with pytest.raises(ConfigurationError, match="already has a child named 'child1'"):
                await sup.start_child(w.child("child1"))  # {error, already_present}
            t0 = anyio.current_time()
            report = await sup.stop_child("child1")  # terminate_child works while it loops
            assert anyio.current_time() == t0
            assert report.outcome is Outcome.FAILED
            assert children(tree) == {}
            w.fail_starts.clear()
            await sup.start_child(w.child("child1"))  # restart_child
            w.fail_starts.add("child1")
            await w.terminate("child1", "abnormal")
            await anyio.sleep(5)
            assert children(tree) == {"child1": State.RESTARTING}
            t0 = anyio.current_time()
            await tree.shutdown()  # the supervisor does not hang in the restart loop
            assert anyio.current_time() == t0


class TestOrderOfChildren:
    async def test_order_of_children(self) -> None:
        """
        ``order_of_children``: children start in order, REST_FOR_ONE stops the rest in reverse and starts it in order.

        Our children start in dependency waves, concurrently within a wave, so the
        order is written as dependencies (a chain); with them, the order is OTP's.
        The ids are not alphabetical, as in the SUITE.
        """
        w = Workers()
        ids = ["ch7", "ch3", "ch10", "ch2", "ch5"]
        sup = sup_test(Strategy.REST_FOR_ONE, 2, 3600)
        for before, name in zip([None, *ids], ids, strict=False):
            sup.add(w.child(name), depends_on=() if before is None else (before,))
        async with lifecycle.running(sup) as tree:
            await tree.ready()
            assert w.started() == ids
            await w.terminate("ch10", "abnormal")
            assert w.started("stop") == ["ch10", "ch5", "ch2"]
            assert w.started()[5:] == ["ch10", "ch2", "ch5"]
            w.events.clear()
            await tree.shutdown()
        assert w.started("stop") == ids[::-1]


class TestDynamicChildren:
    async def test_sup_start_child_returns_error(self) -> None:
        """``sup_start_child_returns_error``: a child that fails to start is an error, and is not kept."""
        w = Workers()
        w.fail_starts.add("child1")
        sup = sup_test(Strategy.ONE_FOR_ONE, 2, 3600)
        async with lifecycle.running(sup) as tree:
            await tree.ready()
            with pytest.raises(ComponentError, match="child1 cannot start"):
                await sup.start_child(w.child("child1"))
            assert children(tree) == {}
            await tree.shutdown()

    async def test_child_adm(self) -> None:
        """``child_adm`` (what applies): a started child is listed; its name is taken until it is stopped."""
        w = Workers()
        sup = sup_test(Strategy.ONE_FOR_ONE, 2, 3600)
        async with lifecycle.running(sup) as tree:
            await tree.ready()
            assert await sup.start_child(w.child("child1")) == "child1#1"
            assert children(tree) == {"child1": State.RUNNING}
            with pytest.raises(ConfigurationError, match="already has a child named 'child1'"):
                await sup.start_child(w.child("child1"))  # {error, {already_started, Pid}}
            assert (await sup.stop_child("child1")).outcome is Outcome.GRACEFUL
            with pytest.raises(KeyError):
                await sup.stop_child("child1")  # {error, not_found}
            assert await sup.start_child(w.child("child1")) == "child1#2"
            await tree.shutdown()

    async def test_sup_stop_timeout(self) -> None:
        """``sup_stop_timeout``: a child that does not stop within its shutdown time is cut off (OTP kills it)."""
        w = Workers()
        sup = sup_test(Strategy.ONE_FOR_ONE, 2, 3600)

        async def sleeper(ctx: Context) -> None:
            ctx.ready()
            try:
                await anyio.sleep_forever()
            finally:
                async with ctx.shielded():  # {sleep, 200000}: it ignores the request to stop
                    await anyio.sleep(200)

        async with lifecycle.running(sup) as tree:
            await tree.ready()
            await sup.start_child(w.child("child1"), policy=ShutdownPolicy(graceful=1.0))
            await sup.start_child(sleeper, name="child2", policy=ShutdownPolicy(graceful=1.0))
            report = await tree.shutdown()
        assert report["child1"].outcome is Outcome.GRACEFUL
        assert (report["child2"].outcome, report["child2"].stop_duration) == (Outcome.FORCED, 1.0)


class TestSignificantChildren:
    @pytest.mark.parametrize("mode", list(AutoShutdown))
    @pytest.mark.parametrize("restart", [Restart.TEMPORARY, Restart.TRANSIENT])
    async def test_nonsignificant_children(self, mode: AutoShutdown, restart: Restart) -> None:
        """``nonsignificant_temporary``, ``nonsignificant_transient``: other children's ends stop nothing."""
        w = Workers()
        sup = sup_test(Strategy.ONE_FOR_ONE, 5, 3600, auto_shutdown=mode)
        async with lifecycle.running(sup) as tree:
            await tree.ready()
            await sup.start_child(w.child("child1"), restart=restart)
            await sup.stop_child("child1")  # terminated via the supervisor
            for reason in ("abnormal", "normal"):
                if "child1" not in children(tree):
                    await sup.start_child(w.child("child1"), restart=restart)
                await w.terminate("child1", reason)
            assert tree.state is State.RUNNING
            assert tree.report is None
            await tree.shutdown()

    @pytest.mark.parametrize("restart", [Restart.TEMPORARY, Restart.TRANSIENT])
    async def test_significant_any(self, restart: Restart) -> None:
        """
        ``significant_temporary``, ``significant_transient`` (any_significant): the first ``main`` to return stops.

        A ``main`` child stopped through the supervisor does not. A ``main`` child that
        *fails* is where we differ: OTP restarts a TRANSIENT one and shuts down on a
        TEMPORARY one with reason ``shutdown``; for us it fails the supervisor (the
        program's job failed, exit 1).
        """
        w = Workers()
        sup = sup_test(Strategy.ONE_FOR_ONE, 5, 3600, auto_shutdown=AutoShutdown.ANY_SIGNIFICANT)
        async with lifecycle.running(sup) as tree:
            await tree.ready()
            await sup.start_child(w.child("child1"), restart=restart, main=True)
            await sup.start_child(w.child("child2"), restart=restart, main=True)
            await sup.start_child(w.child("child3"), restart=restart)
            await sup.stop_child("child1")  # terminate(Sup1, ChildPid1_1, child1, supervisor)
            assert tree.report is None
            await w.terminate("child2", "normal")
            report = await tree.wait()
        assert report.reason is lifecycle.StopReason.MAIN_EXITED
        assert report.ok
        assert w.started("stop") == ["child1", "child2", "child3"]

    @pytest.mark.parametrize("restart", [Restart.TEMPORARY, Restart.TRANSIENT])
    async def test_significant_all(self, restart: Restart) -> None:
        """
        ``significant_temporary``, ``significant_transient`` (all_significant): the last ``main`` child to return stops.

        Only the supervisor's own ``main`` children count; the others (``child3``) do not.
        """
        w = Workers()
        sup = sup_test(Strategy.ONE_FOR_ONE, 5, 3600, auto_shutdown=AutoShutdown.ALL_SIGNIFICANT)
        sup.add(w.child("child1"), restart=restart, main=True)
        sup.add(w.child("child2"), restart=restart, main=True)
        sup.add(w.child("child3"), restart=restart)
        async with lifecycle.running(sup) as tree:
            await tree.ready()
            await w.terminate("child1", "normal")
            assert tree.report is None
            assert children(tree)["child1"] is State.STOPPED
            await w.terminate("child2", "normal")
            report = await tree.wait()
        assert report.reason is lifecycle.StopReason.MAIN_EXITED
        assert report.detail == "'sup_test/child2', the last main child, returned"
        assert report.ok

    @pytest.mark.parametrize("mode", [AutoShutdown.ANY_SIGNIFICANT, AutoShutdown.ALL_SIGNIFICANT])
    @pytest.mark.parametrize("strategy", list(Strategy))
    async def test_significant_bystander(self, strategy: Strategy, mode: AutoShutdown) -> None:
        """``significant_bystander``: ``main`` children stopped by a sibling's restart do not stop the supervisor."""
        w = Workers()
        sup = sup_test(strategy, 5, 3600, auto_shutdown=mode)
        async with lifecycle.running(sup) as tree:
            await tree.ready()
            await sup.start_child(w.child("child1"), restart=Restart.TRANSIENT, main=True)
            await sup.start_child(w.child("child2"), restart=Restart.TRANSIENT)
            await sup.start_child(w.child("child3"), restart=Restart.TRANSIENT, main=True)
            await w.terminate("child2", "abnormal")  # killed
            expected = {
                Strategy.ONE_FOR_ONE: {"child1": 1, "child2": 2, "child3": 1},
                Strategy.ONE_FOR_ALL: {"child1": 2, "child2": 2, "child3": 2},
                Strategy.REST_FOR_ONE: {"child1": 1, "child2": 2, "child3": 2},
            }
            assert w.runs == expected[strategy]
            assert tree.report is None
            report = await tree.shutdown()
        assert report.ok

    async def test_significant_escalation(self) -> None:
        """
        ``significant_escalation``: a nested supervisor stopped by its ``main`` child stops a parent it is ``main`` in.

        When it is not ``main`` in its parent (and TRANSIENT, as in the SUITE), the
        parent goes on.
        """
        for significant in (True, False):
            w = Workers()
            inner = Supervisor("sup1", auto_shutdown=AutoShutdown.ANY_SIGNIFICANT)
            outer = sup_test(Strategy.ONE_FOR_ONE, 1, 5, auto_shutdown=AutoShutdown.ANY_SIGNIFICANT)
            outer.add(inner, restart=Restart.TRANSIENT, main=significant)
            async with lifecycle.running(outer) as tree:
                await tree.ready()
                await inner.start_child(w.child("child1"), restart=Restart.TRANSIENT, main=True)
                await w.terminate("child1", "normal")
                if significant:
                    report = await tree.wait()
                    assert report.reason is lifecycle.StopReason.MAIN_EXITED
                else:
                    assert tree.report is None
                    assert children(tree) == {"sup1": State.STOPPED}
                    report = await tree.shutdown()
            assert report.ok

    async def test_significant_children_need_auto_shutdown(self) -> None:
        """``significant_upgrade_never_any`` (first step): under ``never``, a ``main`` child is refused."""
        sup = sup_test(Strategy.ONE_FOR_ONE, 2, 3600, auto_shutdown=AutoShutdown.NEVER)
        async with lifecycle.running(sup) as tree:
            await tree.ready()
            with pytest.raises(ConfigurationError, match="cannot be `main=True`"):
                await sup.start_child(Workers().child("child1"), restart=Restart.TRANSIENT, main=True)
            assert children(tree) == {}
            await tree.shutdown()
