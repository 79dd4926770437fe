from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import anyio
import httpx
import pytest
from helpers import Recorder
from structlog.testing import capture_logs

import lifecycle
from lifecycle import HealthServer, Phase, Priority, ShutdownPolicy
from supervisors import Backoff, Intensity, Restart, Supervisor


def service_tree(health: HealthServer, rec: Recorder | None = None) -> Supervisor:
    rec = rec or Recorder()
    sup = Supervisor(name="app")
    sup.add(rec.resource("db"), priority=Priority.HIGH)
    sup.add(rec.service("api"), depends_on=("db",))
    sup.add(health, name="health", priority=Priority.CRITICAL)
    return sup


def url(health: HealthServer, path: str) -> str:
    return f"http://{health.host}:{health.port}{path}"


async def raw(health: HealthServer, request: bytes) -> bytes:
    """Send *request* bytes and read the whole answer."""
    async with await anyio.connect_tcp(health.host, health.port) as stream:
        await stream.send(request)
        answer = b""
        try:
            while True:
                answer += await stream.receive()
        except anyio.EndOfStream:
            return answer


class TestProbes:
    async def test_live_ready_and_tree(self) -> None:
        """/livez and /readyz answer 200 once the tree is up; /tree lists every component."""
        health = HealthServer(port=0)
        async with lifecycle.running(service_tree(health)) as tree, httpx.AsyncClient() as client:
            await tree.ready()
            live = await client.get(url(health, "/livez"))
            ready = await client.get(url(health, "/readyz?verbose=1"))
            described = await client.get(url(health, "/tree"))
        assert (live.status_code, live.text) == (200, "ok\n")
        assert (ready.status_code, ready.text) == (200, "ready\n")
        assert described.headers["content-type"] == "application/json"
        data = json.loads(described.text)
        assert data["tree"] == "app"
        assert data["ready"] is True
        assert data["stopping"] is False
        by_path = {c["path"]: c for c in data["components"]}
        assert set(by_path) == {"app", "app/db", "app/api", "app/health"}
        assert by_path["app/api"]["depends_on"] == ["db"]
        assert by_path["app/db"]["priority"] == "HIGH"
        assert by_path["app/api"]["state"] == "running"
        assert by_path["app/api"]["restarts"] == 0

    async def test_not_ready_while_a_component_starts(self) -> None:
        """/readyz answers 503 naming the components that are not up yet."""
        health = HealthServer(port=0)
        gate = anyio.Event()

        async def slow() -> object:
            await gate.wait()
            yield None

        sup = Supervisor(name="app")
        sup.add(health, name="health", priority=Priority.CRITICAL)
        sup.add(slow)
        async with lifecycle.running(sup) as tree, httpx.AsyncClient() as client:
            await anyio.wait_all_tasks_blocked()
            answer = await client.get(url(health, "/readyz"))
            gate.set()
            await tree.ready()
            after = await client.get(url(health, "/readyz"))
        assert answer.status_code == 503
        assert "app/slow" in answer.text
        assert after.status_code == 200

    async def test_readiness_flips_when_the_stop_is_requested(self) -> None:
        """/readyz turns 503 the moment the stop is requested; during the drain every component still runs."""
        health = HealthServer(port=0, drain_delay=3600)
        rec = Recorder()
        async with lifecycle.running(service_tree(health, rec)) as tree, httpx.AsyncClient() as client:
            await tree.ready()
            tree.request_shutdown()
            await anyio.wait_all_tasks_blocked()
            answer = await client.get(url(health, "/readyz"))
            live = await client.get(url(health, "/livez"))
            described = json.loads((await client.get(url(health, "/tree"))).text)
            stopped_during_drain = rec.names("stop")
            tree.escalate(Phase.GRACEFUL)  # ends the drain
            report = await tree.wait()
        assert (answer.status_code, answer.text) == (503, "stopping\n")
        assert live.status_code == 200
        assert described["phase"] == "DRAIN"
        assert stopped_during_drain == []
        assert rec.names("stop") == ["api", "db"]
        assert report.ok

    async def test_livez_fails_once_the_tree_failed(self) -> None:
        """/livez answers 503 while a failed tree is still stopping."""
        health = HealthServer(port=0)
        release = anyio.Event()
        failing = anyio.Event()

        async def doomed(ctx: lifecycle.Context) -> None:
            ctx.ready()
            await failing.wait()
            msg = "lost the disk"
            raise OSError(msg)

        async def slow(ctx: lifecycle.Context) -> None:
            ctx.ready()
            try:
                await anyio.sleep_forever()
            finally:
                async with ctx.shielded():
                    await release.wait()

        sup = Supervisor(name="app", intensity=Intensity(max_restarts=0, within=1))
        sup.add(health, name="health", priority=Priority.CRITICAL)
        sup.add(doomed)
        sup.add(slow)
        answers: list[int] = []
        with pytest.RaisesGroup(lifecycle.ComponentError, flatten_subgroups=True):
            async with lifecycle.running(sup) as tree, httpx.AsyncClient() as client:
                await tree.ready()
                answers.append((await client.get(url(health, "/livez"))).status_code)
                failing.set()
                await anyio.wait_all_tasks_blocked()
                assert tree.failed
                answers.append((await client.get(url(health, "/livez"))).status_code)
                release.set()
                await tree.wait()
        assert answers == [200, 503]


class TestReadinessDuringRestarts:
    """Issue 16: readiness tells the truth about supervision; a real client on 127.0.0.1 asks."""

    async def test_not_ready_while_a_failed_component_waits_for_its_restart(self) -> None:
        """/readyz is 503 during the backoff, naming the failure; /livez stays 200; /tree says restarting."""
        health = HealthServer(port=0)
        crash = anyio.Event()
        sup = Supervisor(name="app", backoff=Backoff(initial=3600.0, maximum=3600.0, jitter=False))
        sup.add(health, name="health", priority=Priority.CRITICAL)

        @sup.component
        async def db(ctx: lifecycle.Context) -> None:
            ctx.ready("pool")
            await crash.wait()
            msg = "lost connection"
            raise RuntimeError(msg)

        sup.add(Recorder().service("api"), depends_on=("db",))
        async with lifecycle.running(sup) as tree, httpx.AsyncClient() as client:
            await tree.ready()
            before = await client.get(url(health, "/readyz"))
            crash.set()
            await anyio.wait_all_tasks_blocked()  # db failed, api stopped with it, the restart waits
            ready = await client.get(url(health, "/readyz"))
            live = await client.get(url(health, "/livez"))
            described = json.loads((await client.get(url(health, "/tree"))).text)
            report = await tree.shutdown()
        assert before.status_code == 200
        assert ready.status_code == 503
        assert ready.text.startswith(
            "not ready: app/db restarting after RuntimeError: lost connection (next attempt in 3.6e+03 s)"
        )
        assert ready.text.endswith("; app/api restarting (next attempt in 3.6e+03 s)\n")
        assert (live.status_code, live.text) == (200, "ok\n")
        assert described["ready"] is False
        by_path = {c["path"]: c for c in described["components"]}
        entry = by_path["app/db"]
        assert (entry["state"], entry["ready"]) == ("restarting", False)
        assert entry["error"] == {"type": "RuntimeError", "message": "lost connection"}
        assert 3599 < entry["next_attempt_in"] <= 3600
        assert datetime.fromisoformat(entry["next_attempt_at"]) > datetime.now(UTC) + timedelta(seconds=3500)
        assert (by_path["app/api"]["state"], by_path["app/api"]["error"]) == ("restarting", None)
        assert by_path["app/health"]["next_attempt_in"] is None
        assert report.ok  # the stop came during the backoff: a handled failure

    async def test_ready_again_only_when_the_restarted_dependents_are(self) -> None:
        """After the replacement is up, /readyz waits for the dependents restarted with it, then says 200."""
        health = HealthServer(port=0)
        crash = anyio.Event()
        api_gate = anyio.Event()
        runs: dict[str, int] = {}
        sup = Supervisor(name="app", backoff=Backoff(initial=0.0, maximum=0.0, jitter=False))
        sup.add(health, name="health", priority=Priority.CRITICAL)

        @sup.component
        async def db(ctx: lifecycle.Context) -> None:
            runs["db"] = runs.get("db", 0) + 1
            ctx.ready(runs["db"])
            if runs["db"] == 1:
                await crash.wait()
                msg = "lost connection"
                raise RuntimeError(msg)
            await anyio.sleep_forever()

        @sup.component
        async def api(ctx: lifecycle.Context, db: int) -> None:
            if db == 2:  # the api restarted with the new db takes its time to start
                await api_gate.wait()
            ctx.ready()
            await anyio.sleep_forever()

        async with lifecycle.running(sup) as tree, httpx.AsyncClient() as client:
            await tree.ready()
            crash.set()
            await anyio.wait_all_tasks_blocked()
            during = await client.get(url(health, "/readyz"))
            states = {
                c["path"]: c["state"] for c in json.loads((await client.get(url(health, "/tree"))).text)["components"]
            }
            api_gate.set()
            await anyio.wait_all_tasks_blocked()
            after = await client.get(url(health, "/readyz"))
            report = await tree.shutdown()
        assert (during.status_code, during.text) == (503, "not ready: app/api starting\n")
        assert (states["app/db"], states["app/api"]) == ("running", "starting")
        assert (after.status_code, after.text) == (200, "ready\n")
        assert (report["db"].restarts, report["api"].restarts) == (1, 1)
        assert report.ok

    async def test_a_component_that_ended_for_good_does_not_hold_readiness(self) -> None:
        """A TEMPORARY child that failed is listed as failed in /tree, and the tree is still ready."""
        health = HealthServer(port=0)
        sup = Supervisor(name="app")
        sup.add(health, name="health", priority=Priority.CRITICAL)

        @sup.component(restart=Restart.TEMPORARY)
        async def probe(ctx: lifecycle.Context) -> None:
            ctx.ready()
            msg = "probe died"
            raise RuntimeError(msg)

        async with lifecycle.running(sup) as tree, httpx.AsyncClient() as client:
            await tree.ready()
            await anyio.wait_all_tasks_blocked()
            ready = await client.get(url(health, "/readyz"))
            described = json.loads((await client.get(url(health, "/tree"))).text)
            await tree.shutdown()
        assert (ready.status_code, ready.text) == (200, "ready\n")
        (entry,) = [c for c in described["components"] if c["path"] == "app/probe"]
        assert (entry["state"], entry["error"]) == ("failed", {"type": "RuntimeError", "message": "probe died"})


class TestHTTP:
    @pytest.mark.parametrize(
        ("request_bytes", "status"),
        [
            (b"GET /nowhere HTTP/1.1\r\nHost: x\r\n\r\n", b"404"),
            (b"POST /livez HTTP/1.1\r\nHost: x\r\n\r\n", b"405"),
            (b"GET /livez HTTP/2.0\r\n\r\n", b"505"),
            (b"nonsense\r\n\r\n", b"400"),
            (b"GET /livez HTTP/1.1\r\nX: " + b"y" * 10000 + b"\r\n\r\n", b"431"),
        ],
    )
    async def test_bad_requests_get_an_error_status(self, request_bytes: bytes, status: bytes) -> None:
        """Unknown paths, other methods and versions, garbage and oversized heads get the right error."""
        health = HealthServer(port=0, max_request_size=1024)
        async with lifecycle.running(service_tree(health)) as tree:
            await tree.ready()
            answer = await raw(health, request_bytes)
        assert answer.startswith(b"HTTP/1.1 " + status)
        assert b"Connection: close" in answer

    async def test_head_has_no_body(self) -> None:
        """HEAD answers with the headers only."""
        health = HealthServer(port=0)
        async with lifecycle.running(service_tree(health)) as tree:
            await tree.ready()
            answer = await raw(health, b"HEAD /livez HTTP/1.1\r\n\r\n")
        assert answer.startswith(b"HTTP/1.1 200 OK\r\n")
        assert answer.endswith(b"\r\n\r\n")
        assert b"Content-Length: 3" in answer

    async def test_slow_client_is_dropped(self) -> None:
        """A client that does not finish its request in time is disconnected without an answer."""
        health = HealthServer(port=0, request_timeout=0.2)
        async with lifecycle.running(service_tree(health)) as tree:
            await tree.ready()
            with anyio.fail_after(10):
                answer = await raw(health, b"GET /livez HTTP/1.1\r\n")
            good = await raw(health, b"GET /livez HTTP/1.1\r\n\r\n")
        assert answer == b""
        assert good.startswith(b"HTTP/1.1 200")

    def test_binds_loopback_by_default(self) -> None:
        """The endpoint listens on 127.0.0.1 unless told otherwise."""
        assert HealthServer().host == "127.0.0.1"

    @pytest.mark.parametrize(
        "options",
        [{"port": -1}, {"port": True}, {"drain_delay": -1.0}, {"max_request_size": 1}, {"request_timeout": "5"}],
    )
    def test_bad_options_are_configuration_errors(self, options: dict[str, object]) -> None:
        """Each option is checked when the server is created."""
        with pytest.raises(lifecycle.ConfigurationError, match="must be"):
            HealthServer(**options)  # type: ignore[arg-type]

    def test_answers_need_a_running_tree(self) -> None:
        """Asking a server that never started for an answer is a RuntimeError."""
        with pytest.raises(RuntimeError, match="has not started"):
            HealthServer().livez()


@pytest.mark.virtual_time
class TestDrain:
    async def test_drain_delay_before_the_first_stop(self) -> None:
        """The first component stops drain_delay after the request; the phase deadlines count from there."""
        stops: list[float] = []
        cut: list[float] = []

        async def worker(ctx: lifecycle.Context) -> None:
            ctx.ready()
            try:
                await anyio.sleep_forever()
            finally:
                stops.append(anyio.current_time())
                async with ctx.shielded() as scope:
                    await anyio.sleep(100)
                if scope.cancelled_caught:
                    cut.append(anyio.current_time())

        sup = Supervisor(name="app")
        sup.add(worker)
        sup.add(HealthServer(port=0, drain_delay=5), name="health", priority=Priority.CRITICAL)
        async with lifecycle.running(sup, policy=ShutdownPolicy(graceful=2, forceful=1, terminate=1)) as tree:
            await tree.ready()
            t0 = anyio.current_time()
            report = await tree.shutdown()
        assert stops == [t0 + 5]
        assert cut == [t0 + 7]
        assert report.requested_at == t0
        assert report.duration == 7

    async def test_escalation_ends_the_drain(self) -> None:
        """Escalating during the drain (a second signal) starts the stop at once."""
        stops: list[float] = []

        async def worker(ctx: lifecycle.Context) -> None:
            ctx.ready()
            await ctx.stopping.wait()
            stops.append(anyio.current_time())

        sup = Supervisor(name="app")
        sup.add(worker)
        async with lifecycle.running(sup) as tree:
            await tree.ready()
            tree.drain_delay = 30
            t0 = anyio.current_time()
            tree.request_shutdown()
            await anyio.sleep(4)
            tree.escalate(Phase.FORCEFUL)
            await tree.wait()
        assert stops == [t0 + 4]

    async def test_failure_does_not_drain(self) -> None:
        """A tree that failed stops at once, without the drain delay."""
        failed_at: list[float] = []
        stopped_at: list[float] = []

        async def doomed(ctx: lifecycle.Context) -> None:
            ctx.ready()
            await anyio.sleep(1)
            failed_at.append(anyio.current_time())
            msg = "boom"
            raise RuntimeError(msg)

        async def other(ctx: lifecycle.Context) -> None:
            ctx.ready()
            await ctx.stopping.wait()
            stopped_at.append(anyio.current_time())

        sup = Supervisor(name="app", intensity=Intensity(max_restarts=0, within=1))
        sup.add(doomed)
        sup.add(other)
        with pytest.RaisesGroup(lifecycle.ComponentError, flatten_subgroups=True):
            async with lifecycle.running(sup) as tree:
                tree.drain_delay = 30
                await tree.wait()
        assert stopped_at == failed_at

    async def test_failure_during_the_drain_ends_it(self) -> None:
        """A failure that stops the tree during the drain starts the ordered stop at once."""
        crash = anyio.Event()
        stopped_at: list[float] = []

        async def doomed(ctx: lifecycle.Context) -> None:
            ctx.ready()
            await crash.wait()
            msg = "boom"
            raise RuntimeError(msg)

        async def other(ctx: lifecycle.Context) -> None:
            ctx.ready()
            await ctx.stopping.wait()
            stopped_at.append(anyio.current_time())

        sup = Supervisor(name="app", intensity=Intensity(max_restarts=0, within=1))
        sup.add(doomed)
        sup.add(other)
        with pytest.RaisesGroup(lifecycle.ComponentError, flatten_subgroups=True):
            async with lifecycle.running(sup) as tree:
                await tree.ready()
                tree.drain_delay = 30
                t0 = anyio.current_time()
                tree.request_shutdown()
                await anyio.sleep(2)
                crash.set()
                await tree.wait()
        assert stopped_at == [t0 + 2]

    async def test_value_of_a_component(self) -> None:
        """RunningTree.value() returns a live component's value and names a missing one."""
        async with lifecycle.running(service_tree(HealthServer(port=0))) as tree:
            await tree.ready()
            assert tree.value("db") == "db"
            assert tree.value("") is not None
            with pytest.raises(LookupError, match="No live, ready component 'nope'"):
                tree.value("nope")

    async def test_drain_delay_must_be_seconds(self) -> None:
        """A negative drain delay is a ConfigurationError; a smaller one keeps the larger."""
        async with lifecycle.running(Supervisor(name="app")) as tree:
            tree.drain_delay = 5
            tree.drain_delay = 2
            assert tree.drain_delay == 5
            with pytest.raises(lifecycle.ConfigurationError, match="drain_delay"):
                tree.drain_delay = -1


class TestBudget:
    async def test_warns_when_the_stop_outlasts_the_grace_period(self) -> None:
        """A drain plus budgets longer than the grace period is logged at start-up with the numbers."""
        sup = Supervisor(name="app")
        sup.add(HealthServer(port=0, drain_delay=5, grace_period=30), name="health")
        with capture_logs() as logs:
            async with lifecycle.running(sup, policy=ShutdownPolicy(graceful=20, forceful=5, terminate=5)) as tree:
                await tree.ready()
                tree.escalate(Phase.GRACEFUL)  # no need to wait out the drain here
        warnings = [e for e in logs if e["event"] == "budget.exceeds_grace_period"]
        assert len(warnings) == 1
        assert warnings[0]["grace_period"] == 30
        assert warnings[0]["needed"] == 35
        assert (warnings[0]["drain_delay"], warnings[0]["graceful"]) == (5, 20)

    async def test_quiet_when_the_budgets_fit(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """With LIFECYCLE_GRACE_PERIOD at least the whole budget, nothing is logged."""
        monkeypatch.setenv("LIFECYCLE_GRACE_PERIOD", "45")
        with capture_logs() as logs:
            async with lifecycle.running(Supervisor(name="app"), policy=ShutdownPolicy()) as tree:
                await tree.ready()
                assert tree.grace_period == 45
        assert not [e for e in logs if e["event"] == "budget.exceeds_grace_period"]

    async def test_bad_grace_period_is_a_configuration_error(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """A LIFECYCLE_GRACE_PERIOD that is not a number stops running() before anything starts."""
        monkeypatch.setenv("LIFECYCLE_GRACE_PERIOD", "soon")
        with pytest.raises(lifecycle.ConfigurationError, match="LIFECYCLE_GRACE_PERIOD"):
            async with lifecycle.running(Supervisor(name="app")):
                pass  # pragma: no cover - never entered


def test_current_tree_outside_a_tree() -> None:
    """current_tree() outside a running tree says where to call it from."""
    with pytest.raises(RuntimeError, match="outside a running tree"):
        lifecycle.current_tree()
