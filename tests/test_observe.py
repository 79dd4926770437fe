"""Observing a running tree: RunningTree.components() and subscribe_components()."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator

import anyio
import pytest
from structlog.testing import capture_logs

import lifecycle
from lifecycle import ComponentStatus, Context, State, Subscription
from lifecycle.abc import ChildStatuses
from lifecycle.lowlevel import ComponentInstance, Escalation, status_of, stop_instances
from supervisors import Backoff, Intensity, Restart, Strategy, Supervisor

NO_DELAY = Backoff(initial=0.0, maximum=0.0, jitter=False)


def crashing(name: str, at: float, message: str = "lost connection") -> object:
    """A function component whose first run fails *at* seconds after it is ready; later runs stay up."""
    runs: list[int] = []

    async def component(ctx: Context) -> None:
        runs.append(1)
        ctx.ready(f"{name}#{len(runs)}")
        if len(runs) == 1:
            await anyio.sleep(at)
            raise RuntimeError(message)
        await anyio.sleep_forever()

    component.__name__ = name
    return component


async def service(ctx: Context) -> None:
    ctx.ready()
    await anyio.sleep_forever()


def by_path(statuses: tuple[ComponentStatus, ...]) -> dict[str, ComponentStatus]:
    return {s.path: s for s in statuses}


class TestComponents:
    async def test_lists_every_component_depth_first(self) -> None:
        """The root, then each component's children after it, in registration order, nested trees included."""
        inner = Supervisor("jobs")
        inner.add(service, name="worker")
        root = Supervisor("app")
        root.add(service, name="db")
        root.add(inner)
        root.add(service, name="api", depends_on=("db",))
        async with lifecycle.running(root) as tree:
            await tree.ready()
            statuses = tree.components()
            await tree.shutdown()
        assert [s.path for s in statuses] == ["app", "app/db", "app/jobs", "app/jobs/worker", "app/api"]
        assert all(s.state is State.RUNNING and s.ready and s.up and not s.settling for s in statuses)
        assert by_path(statuses)["app/api"].depends_on == ("db",)

    @pytest.mark.virtual_time
    async def test_a_child_waiting_for_its_restart_is_restarting(self) -> None:
        """From the failure to the new start: RESTARTING, with the error and when the next start is due."""
        sup = Supervisor("app", backoff=Backoff(initial=2.0, maximum=2.0, jitter=False))
        sup.add(crashing("db", at=1.0))
        sup.add(service, name="api", depends_on=("db",))
        sup.add(service, name="metrics")
        async with lifecycle.running(sup) as tree:
            await tree.ready()
            await anyio.sleep(1.5)
            during = by_path(tree.components())
            await anyio.sleep(2)
            after = by_path(tree.components())
            await tree.shutdown()
        db, api = during["app/db"], during["app/api"]
        assert (db.state, db.ready, db.next_attempt, str(db.error)) == (State.RESTARTING, False, 3.0, "lost connection")
        assert (api.state, api.next_attempt, api.error) == (State.RESTARTING, 3.0, None)
        assert db.settling
        assert during["app/metrics"].up
        assert (after["app/db"].state, after["app/db"].restarts, after["app/db"].error) == (State.RUNNING, 1, None)
        assert after["app/api"].up

    @pytest.mark.virtual_time
    async def test_children_that_ended_for_good_are_listed_with_their_end(self) -> None:
        """A TEMPORARY child that failed is FAILED, a TRANSIENT one that returned STOPPED; neither is settling."""
        sup = Supervisor("app")

        @sup.component(restart=Restart.TEMPORARY)
        async def probe(ctx: Context) -> None:
            ctx.ready()
            msg = "probe died"
            raise RuntimeError(msg)

        @sup.component(restart=Restart.TRANSIENT)
        async def migrate(ctx: Context) -> None:
            ctx.ready()

        async with lifecycle.running(sup) as tree:
            await tree.ready()
            await anyio.sleep(1)
            statuses = by_path(tree.components())
            await tree.shutdown()
        probe_status, migrate_status = statuses["app/probe"], statuses["app/migrate"]
        assert (probe_status.state, str(probe_status.error)) == (State.FAILED, "probe died")
        assert (migrate_status.state, migrate_status.error) == (State.STOPPED, None)
        assert [probe_status.ended, migrate_status.ended] == [True, True]
        assert [probe_status.settling, migrate_status.settling] == [False, False]

    @pytest.mark.virtual_time
    async def test_a_restart_that_fails_to_start_is_tried_again(self) -> None:
        """A child whose restart fails to start is RESTARTING again, with that error; its dependent waits with it."""
        runs: list[int] = []
        sup = Supervisor("app", backoff=Backoff(initial=1.0, maximum=1.0, jitter=False))

        @sup.component
        async def db(ctx: Context) -> None:
            runs.append(1)
            if len(runs) == 2:  # the first restart fails to start
                msg = "still down"
                raise OSError(msg)
            ctx.ready()
            if len(runs) == 1:
                await anyio.sleep(1)
                msg = "lost"
                raise OSError(msg)
            await anyio.sleep_forever()

        sup.add(service, name="api", depends_on=("db",))
        async with lifecycle.running(sup) as tree:
            await tree.ready()
            await anyio.sleep(2.5)  # crash at 1, restart at 2 fails, next attempt at 3
            during = by_path(tree.components())
            await anyio.sleep(1)
            after = by_path(tree.components())
            await tree.shutdown()
        assert (during["app/db"].state, during["app/db"].next_attempt) == (State.RESTARTING, 3.0)
        assert str(during["app/db"].error) == "still down"
        assert (during["app/api"].state, during["app/api"].next_attempt) == (State.RESTARTING, 3.0)
        assert after["app/db"].up
        assert after["app/api"].up

    async def test_a_dynamic_child_waiting_for_its_dependencies_is_starting(self) -> None:
        """A child given to start_child() whose dependency is not ready yet is STARTING, not ready."""
        sup = Supervisor("app")
        gate = anyio.Event()

        @sup.component
        async def db() -> AsyncIterator[str]:
            await gate.wait()
            yield "db"

        async with lifecycle.running(sup) as tree, anyio.create_task_group() as tg:
            await anyio.wait_all_tasks_blocked()
            tg.start_soon(functools.partial(sup.start_child, service, name="api", depends_on=("db",)))
            await anyio.wait_all_tasks_blocked()
            api = by_path(tree.components())["app/api"]
            gate.set()
        assert (api.state, api.ready, api.depends_on) == (State.STARTING, False, ("db",))

    async def test_after_the_stop_every_child_is_stopped(self) -> None:
        """Once the tree has stopped, its components say so."""
        sup = Supervisor("app")
        sup.add(service, name="db")
        async with lifecycle.running(sup) as tree:
            await tree.ready()
            await tree.shutdown()
        assert [(s.path, s.state) for s in tree.components()] == [("app", State.STOPPED), ("app/db", State.STOPPED)]

    @pytest.mark.virtual_time
    async def test_a_supervisor_that_gave_up_lists_its_children_stopped(self) -> None:
        """A failing child is not RESTARTING once its supervisor gave up: the stop is the truth."""
        inner = Supervisor("jobs", intensity=Intensity(max_restarts=0))
        inner.add(crashing("worker", at=1.0))
        root = Supervisor("app", backoff=Backoff(initial=60.0, maximum=60.0, jitter=False))
        root.add(inner)
        async with lifecycle.running(root) as tree:
            await tree.ready()
            await anyio.sleep(2)
            statuses = by_path(tree.components())
            await tree.shutdown()
        assert (statuses["app/jobs"].state, statuses["app/jobs"].next_attempt) == (State.RESTARTING, 61.0)
        assert "app/jobs/worker" not in statuses  # the nested supervisor is not running

    async def test_without_published_children_the_live_runs_are_listed(self) -> None:
        """A component that runs instances itself (lowlevel) without publishing them shows its live runs."""

        class Pair:
            name = "pair"

            async def run(self, ctx: Context) -> None:
                async with anyio.create_task_group() as tg:
                    spec = lifecycle.ComponentSpec.from_target(service, name="one")
                    child = ComponentInstance(spec, policy=ctx.policy, path=f"{ctx.path}/one")
                    child.start_soon(tg)
                    ctx.ready()
                    with anyio.CancelScope(shield=True):
                        await ctx.stopping.wait()
                        await stop_instances([child], Escalation.start(ctx.policy))

        async with lifecycle.running(Pair()) as tree:
            await tree.ready()
            await anyio.wait_all_tasks_blocked()
            statuses = tree.components()
            await tree.shutdown()
        assert [(s.path, s.state) for s in statuses] == [("pair", State.RUNNING), ("pair/one", State.RUNNING)]


class TestSubscribe:
    @pytest.mark.virtual_time
    async def test_reports_each_change_of_a_restart_once(self) -> None:
        """A restart is reported as it happens: restarting (then due), starting, running; no change twice."""
        sup = Supervisor("app", backoff=Backoff(initial=2.0, maximum=2.0, jitter=False))
        sup.add(crashing("db", at=1.0))
        seen: list[tuple[float, str, State, float | None]] = []
        async with lifecycle.running(sup) as tree:
            await tree.ready()
            with tree.subscribe_components(
                lambda s: seen.append((anyio.current_time(), s.path, s.state, s.next_attempt))
            ) as subscription:
                assert subscription.active
                await anyio.sleep(4)
            assert not subscription.active
            await tree.shutdown()
        assert seen == [
            (1.0, "app/db", State.RESTARTING, None),
            (1.0, "app/db", State.RESTARTING, 3.0),
            (3.0, "app/db", State.STARTING, None),
            (3.0, "app/db", State.RUNNING, None),
        ]

    async def test_reports_the_root_and_the_stop(self) -> None:
        """The root's own changes and every component's stop are reported, in order."""
        sup = Supervisor("app")
        sup.add(service, name="db")
        seen: list[tuple[str, State]] = []
        async with lifecycle.running(sup) as tree:
            tree.subscribe_components(lambda s: seen.append((s.path, s.state)))
            await tree.ready()
            await tree.shutdown()
        assert seen == [
            ("app/db", State.STARTING),
            ("app/db", State.RUNNING),
            ("app", State.RUNNING),
            ("app", State.STOPPING),
            ("app/db", State.STOPPING),
            ("app/db", State.STOPPED),
            ("app", State.STOPPED),
        ]

    async def test_cancel_ends_the_callbacks(self) -> None:
        """After cancel() nothing more is reported; cancelling twice is harmless."""
        sup = Supervisor("app")
        sup.add(service, name="db")
        seen: list[State] = []
        async with lifecycle.running(sup) as tree:
            subscription = tree.subscribe_components(lambda s: seen.append(s.state))
            assert repr(subscription) == "<Subscription active>"
            await tree.ready()
            subscription.cancel()
            subscription.cancel()
            assert repr(subscription) == "<Subscription cancelled>"
            await tree.shutdown()
        assert seen == [State.STARTING, State.RUNNING, State.RUNNING]

    async def test_a_callback_that_raises_is_logged_and_the_others_go_on(self) -> None:
        """A failing subscriber does not break the tree nor the other subscribers."""
        sup = Supervisor("app")
        sup.add(service, name="db")
        seen: list[State] = []

        def broken(status: ComponentStatus) -> None:
            msg = f"cannot show {status.path}"
            raise ValueError(msg)

        with capture_logs() as logs:
            async with lifecycle.running(sup) as tree:
                tree.subscribe_components(broken)
                tree.subscribe_components(lambda s: seen.append(s.state))
                await tree.ready()
                report = await tree.shutdown()
        assert report.ok
        assert len(seen) == 7
        failed = [e for e in logs if e["event"] == "tree.subscriber_failed"]
        assert len(failed) == 7
        assert str(failed[0]["exc_info"]) == "cannot show app/db"

    @pytest.mark.virtual_time
    async def test_a_group_restart_reports_every_member(self) -> None:
        """ONE_FOR_ALL: every member is reported restarting, then up again."""
        sup = Supervisor("app", strategy=Strategy.ONE_FOR_ALL, backoff=NO_DELAY)
        sup.add(service, name="a")
        sup.add(crashing("b", at=1.0))
        seen: list[tuple[str, State]] = []
        async with lifecycle.running(sup) as tree:
            await tree.ready()
            tree.subscribe_components(lambda s: seen.append((s.path, s.state)))
            await anyio.sleep(2)
            await tree.shutdown()
        restarting = [path for path, state in seen if state is State.RESTARTING]
        assert sorted(set(restarting)) == ["app/a", "app/b"]
        assert seen.index(("app/a", State.RUNNING)) > seen.index(("app/a", State.RESTARTING))

    async def test_a_status_source_that_raises_is_logged(self) -> None:
        """A ChildStatuses whose status() raises is logged (tree.status_failed); nothing breaks."""

        class Broken:
            def statuses(self) -> list[ComponentStatus]:
                return []

            def status(self, name: str) -> ComponentStatus | None:
                msg = f"no status for {name}"
                raise LookupError(msg)

        assert isinstance(Broken(), ChildStatuses)

        async def root(ctx: Context) -> None:
            ctx.publish_children(Broken())
            ctx.ready()
            ctx.child_changed("x")
            await anyio.sleep_forever()

        seen: list[ComponentStatus] = []
        with capture_logs() as logs:
            async with lifecycle.running(lifecycle.ComponentSpec.from_target(root)) as tree:
                tree.subscribe_components(seen.append)
                await tree.ready()
                await tree.shutdown()
        assert [e["child"] for e in logs if e["event"] == "tree.status_failed"] == ["x"]
        assert [s.path for s in seen] == ["root", "root", "root"]


class TestStatusOf:
    def test_takes_what_the_run_says(self) -> None:
        """status_of() reads a run's path, state, readiness, restarts, priority, dependencies and last error."""

        async def api(ctx: Context, db: str) -> None:
            del ctx, db

        spec = lifecycle.ComponentSpec.from_target(api, depends_on=("cache",), priority=lifecycle.Priority.HIGH)

        async def build() -> ComponentStatus:
            instance = ComponentInstance(spec, policy=lifecycle.ShutdownPolicy(), path="app/api", restarts=2)
            return status_of(instance)

        status = anyio.run(build)
        assert status == ComponentStatus(
            path="app/api",
            name="api",
            state=State.STARTING,
            restarts=2,
            priority=lifecycle.Priority.HIGH,
            depends_on=("cache", "db"),
        )
        assert status.settling
        assert not status.up
        assert not status.ended


def test_subscription_is_exported() -> None:
    """Subscription is the public type subscribe_components() returns."""
    assert Subscription.__module__ == "lifecycle"
