"""RunningTree's observation API: components() and the subscribe_* methods, and the integrations built on them."""

from __future__ import annotations

from pathlib import Path

import anyio
from helpers import Recorder
from structlog.testing import capture_logs

import lifecycle
from lifecycle import ComponentStatus, Phase, PhaseChange, ShutdownReport, State, StateFile, StopReason, Subscription
from supervisors import Supervisor


def two_components(rec: Recorder) -> Supervisor:
    sup = Supervisor(name="app")
    sup.add(rec.resource("db"), name="db")
    sup.add(rec.service("api"), name="api", depends_on=("db",))
    return sup


class TestComponents:
    async def test_lists_the_root_then_its_children_with_their_states(self) -> None:
        """components() lists the root first, then its children in start order, each with its state."""
        async with lifecycle.running(two_components(Recorder())) as tree:
            await tree.ready()
            statuses = tree.components()
        assert [(s.path, s.state, s.ready) for s in statuses] == [
            ("app", State.RUNNING, True),
            ("app/db", State.RUNNING, True),
            ("app/api", State.RUNNING, True),
        ]
        assert statuses[2].depends_on == ("db",)
        assert all(s.up and not s.settling and not s.ended for s in statuses)

    async def test_each_change_is_reported_once_in_order(self) -> None:
        """subscribe_components() reports each component starting, ready, stopping and stopped, once each."""
        seen: list[tuple[str, State, bool]] = []
        async with lifecycle.running(two_components(Recorder())) as tree:
            tree.subscribe_components(lambda s: seen.append((s.path, s.state, s.ready)))
            await tree.ready()
            await tree.shutdown()
        db = [(state, ready) for path, state, ready in seen if path == "app/db"]
        assert db == [
            (State.STARTING, False),
            (State.RUNNING, True),
            (State.STOPPING, True),
            (State.STOPPED, True),
        ]
        assert seen.index(("app/api", State.STOPPED, True)) < seen.index(("app/db", State.STOPPING, True))
        assert seen[-1] == ("app", State.STOPPED, True)

    async def test_a_cancelled_subscription_hears_nothing_more(self) -> None:
        """After cancel(), or leaving the subscription as a context manager, the callback is not called."""
        seen: list[ComponentStatus] = []
        async with lifecycle.running(two_components(Recorder())) as tree:
            with tree.subscribe_components(seen.append) as subscription:
                await tree.ready()
            assert not subscription.active
            count = len(seen)
            await tree.shutdown()
        assert len(seen) == count > 0


class TestTreeEvents:
    async def test_ready_is_heard_once_and_late_subscribers_at_once(self) -> None:
        """subscribe_ready() calls back when the tree is up; subscribing afterwards calls back at once."""
        calls: list[str] = []
        async with lifecycle.running(two_components(Recorder())) as tree:
            early = tree.subscribe_ready(lambda: calls.append("early"))
            await tree.ready()
            assert calls == ["early"]
            assert not early.active
            late = tree.subscribe_ready(lambda: calls.append("late"))
            assert calls == ["early", "late"]
            assert not late.active

    async def test_stop_is_heard_before_any_component_stops(self) -> None:
        """subscribe_stop() calls back when the stop is requested, with its reason set, before anything stops."""
        rec = Recorder()
        heard: list[tuple[StopReason | None, str | None, list[str]]] = []
        async with lifecycle.running(two_components(rec)) as tree:
            await tree.ready()
            tree.subscribe_stop(lambda: heard.append((tree.stop_reason, tree.stop_detail, rec.names("stop"))))
            assert tree.stop_reason is None
            await tree.shutdown()
        assert heard == [(StopReason.REQUEST, "shutdown() was called", [])]

    async def test_phases_are_heard_as_they_begin(self) -> None:
        """subscribe_phases() hears GRACEFUL when the stop begins and each escalation, with its reason."""
        changes: list[PhaseChange] = []
        stuck = anyio.Event()

        async def slow(ctx: lifecycle.Context) -> None:
            ctx.ready()
            with ctx.shielded(until=Phase.TERMINATE):
                stuck.set()
                await anyio.sleep(0.05)

        sup = Supervisor(name="app")
        sup.add(slow)
        async with lifecycle.running(sup) as tree:
            tree.subscribe_phases(changes.append)
            await tree.ready()
            tree.request_shutdown()
            await stuck.wait()
            tree.escalate(Phase.FORCEFUL)
            report = await tree.wait()
        assert [(c.phase, c.reason) for c in changes] == [(Phase.GRACEFUL, "request"), (Phase.FORCEFUL, "request")]
        assert tree.phase is Phase.FORCEFUL
        assert tree.phase_changes == tuple(changes) == report.phase_changes

    async def test_report_is_heard_before_wait_returns(self) -> None:
        """subscribe_report() hands over the report before wait() returns; late subscribers get it at once."""
        reports: list[ShutdownReport] = []
        async with lifecycle.running(two_components(Recorder())) as tree:
            tree.subscribe_report(reports.append)
            await tree.ready()
            tree.request_shutdown()
            report = await tree.wait()
            assert reports == [report]
        tree.subscribe_report(reports.append)
        assert reports == [report, report]

    async def test_a_failing_subscriber_is_logged_and_the_tree_goes_on(self) -> None:
        """A subscriber that raises is logged as tree.subscriber_failed; the others and the tree carry on."""
        heard: list[str] = []

        def broken() -> None:
            raise RuntimeError("observer bug")

        with capture_logs() as logs:
            async with lifecycle.running(two_components(Recorder())) as tree:
                tree.subscribe_ready(broken)
                tree.subscribe_ready(lambda: heard.append("ready"))
                tree.subscribe_components(lambda _: broken())
                await tree.ready()
                report = await tree.shutdown()
        assert heard == ["ready"]
        assert report.ok
        failed = [e for e in logs if e["event"] == "tree.subscriber_failed"]
        assert {e.get("topic") for e in failed} >= {"ready", None}

    async def test_a_subscriber_may_cancel_another_before_it_is_called(self) -> None:
        """A one-time event skips a subscription that an earlier subscriber of the same event cancelled."""
        calls: list[str] = []
        async with lifecycle.running(two_components(Recorder())) as tree:
            second: list[Subscription] = []
            tree.subscribe_stop(lambda: second[0].cancel())  # noqa: PLW0108 - second[0] does not exist yet
            second.append(tree.subscribe_stop(lambda: calls.append("second")))
            await tree.ready()
            await tree.shutdown()
        assert calls == []
        assert repr(second[0]) == "<Subscription cancelled>"


class TestIntegrationsUnsubscribe:
    async def test_a_restarted_state_file_leaves_no_subscription_behind(self, tmp_path: Path) -> None:
        """Each run of a StateFile drops its subscriptions when it ends; the last record is written once."""
        state = StateFile(tmp_path / "state.json", interval=60)
        sup = Supervisor(name="app")

        @sup.component
        async def churn(ctx: lifecycle.Context) -> None:
            # Started from inside the tree, where current_tree() finds it.
            for _ in range(3):
                await sup.start_child(state, name="state")
                await sup.stop_child("state")
            ctx.ready()
            await anyio.sleep_forever()

        async with lifecycle.running(sup) as tree:
            await tree.ready()
            assert tree._stop_topic.subscriptions == ()
            assert tree._ready_topic.subscriptions == ()
            assert len(tree._report_topic.subscriptions) == 1
        assert state.wait_written(timeout=10)  # the last write runs in a thread once the tree has stopped
        assert lifecycle.read_state_file(tmp_path / "state.json").state == "stopped"
