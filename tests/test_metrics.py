"""HealthServer's /metrics: the Prometheus text format, read back with prometheus_client's own parser."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator

import anyio
import httpx
import pytest
from prometheus_client import REGISTRY, Counter
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

import lifecycle
from lifecycle import HealthServer, Priority
from supervisors import Supervisor


def service_tree(health: HealthServer, *, gate: anyio.Event | None = None) -> Supervisor:
    sup = Supervisor(name="app")

    async def db(ctx: lifecycle.Context) -> None:
        ctx.ready()
        await anyio.sleep_forever()

    async def api(ctx: lifecycle.Context) -> None:
        if gate is not None:
            await gate.wait()
        ctx.ready()
        await anyio.sleep_forever()

    sup.add(health, name="health", priority=Priority.CRITICAL)
    sup.add(db, priority=Priority.HIGH)
    sup.add(api, depends_on=("db",))
    return sup


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of the exposition *text*, parsed by prometheus_client, by name and labels."""
    found: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            assert isinstance(sample, Sample)
            found[sample.name, frozenset(sample.labels.items())] = sample.value
    return found


def key(name: str, **labels: str) -> tuple[str, frozenset[tuple[str, str]]]:
    return name, frozenset(labels.items())


@pytest.fixture
def app_counter() -> Iterator[tuple[str, Counter]]:
    """A counter of the application's, in prometheus_client's default registry while the test runs."""
    name = f"app_requests_{uuid.uuid4().hex[:8]}"
    counter = Counter(name, "Requests the application served.")
    try:
        yield name, counter
    finally:
        REGISTRY.unregister(counter)


class TestMetricsEndpoint:
    async def test_the_tree_and_the_application_metrics_in_one_scrape(self, app_counter: tuple[str, Counter]) -> None:
        """A real scrape parses; it holds the tree's state, readiness, restarts, phase and the app's own counter."""
        name, counter = app_counter
        counter.inc(3)
        health = HealthServer(port=0)
        async with lifecycle.running(service_tree(health)) as tree, httpx.AsyncClient() as client:
            await tree.ready()
            answer = await client.get(f"http://127.0.0.1:{health.port}/metrics")
        assert answer.status_code == 200
        assert answer.headers["content-type"].startswith("text/plain; version=0.0.4")
        found = samples(answer.text)
        assert found[key(f"{name}_total")] == 3.0
        assert found[key("lifecycle_tree_ready", tree="app")] == 1.0
        assert found[key("lifecycle_tree_failed", tree="app")] == 0.0
        assert found[key("lifecycle_tree_phase", tree="app", phase="none")] == 1.0
        assert found[key("lifecycle_tree_phase", tree="app", phase="graceful")] == 0.0
        assert found[key("lifecycle_component_state", component="app/api", state="running")] == 1.0
        assert found[key("lifecycle_component_state", component="app/api", state="starting")] == 0.0
        assert found[key("lifecycle_component_ready", component="app/db")] == 1.0
        assert found[key("lifecycle_component_restarts_total", component="app/api")] == 0.0
        assert found[key("lifecycle_component_last_start_duration_seconds", component="app/api")] >= 0.0

    async def test_not_ready_while_a_component_starts(self) -> None:
        """While a component starts, tree readiness is 0 and its state is ``starting``."""
        gate = anyio.Event()
        health = HealthServer(port=0)
        async with lifecycle.running(service_tree(health, gate=gate)), httpx.AsyncClient() as client:
            # Everything else is up, or waits for the gate: the health server listens.
            await anyio.wait_all_tasks_blocked()
            answer = await client.get(f"http://127.0.0.1:{health.port}/metrics")
            gate.set()
        found = samples(answer.text)
        assert found[key("lifecycle_tree_ready", tree="app")] == 0.0
        assert found[key("lifecycle_component_state", component="app/api", state="starting")] == 1.0
        assert found[key("lifecycle_component_ready", component="app/api")] == 0.0

    async def test_stop_durations_after_the_stop(self) -> None:
        """Once the tree has stopped, each component's last stop duration and its stopped state are there."""
        health = HealthServer(port=0)
        async with lifecycle.running(service_tree(health)) as tree:
            await tree.ready()
            await tree.shutdown()
        status, text = health.metrics()
        assert status == 200
        found = samples(text)
        for path in ("app/api", "app/db"):
            assert found[key("lifecycle_component_last_stop_duration_seconds", component=path)] >= 0.0
            assert found[key("lifecycle_component_state", component=path, state="stopped")] == 1.0
        assert found[key("lifecycle_tree_ready", tree="app")] == 0.0

    @pytest.mark.virtual_time
    async def test_the_phase_during_the_drain_and_the_stop(self) -> None:
        """From the stop request, readiness is 0 and the phase is ``drain``, then ``graceful``."""
        health = HealthServer(port=0, drain_delay=5)

        async def slow(ctx: lifecycle.Context) -> None:
            ctx.ready()
            try:
                await anyio.sleep_forever()
            finally:
                async with ctx.shielded():
                    await anyio.sleep(10)

        sup = Supervisor(name="app")
        sup.add(health, name="health", priority=Priority.CRITICAL)
        sup.add(slow)
        async with lifecycle.running(sup) as tree:
            await tree.ready()
            tree.request_shutdown()
            await anyio.sleep(1)
            draining = samples(health.metrics()[1])
            await anyio.sleep(5)
            stopping = samples(health.metrics()[1])
        assert draining[key("lifecycle_tree_phase", tree="app", phase="drain")] == 1.0
        assert draining[key("lifecycle_tree_ready", tree="app")] == 0.0
        assert stopping[key("lifecycle_tree_phase", tree="app", phase="graceful")] == 1.0
        assert stopping[key("lifecycle_tree_phase", tree="app", phase="drain")] == 0.0

    async def test_without_prometheus_client_the_answer_is_501(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Without prometheus_client, /metrics answers 501 and says what to install; the probes still answer."""
        monkeypatch.setitem(sys.modules, "prometheus_client", None)
        health = HealthServer(port=0)
        async with lifecycle.running(service_tree(health)) as tree, httpx.AsyncClient() as client:
            await tree.ready()
            metrics = await client.get(f"http://127.0.0.1:{health.port}/metrics")
            ready = await client.get(f"http://127.0.0.1:{health.port}/readyz")
        assert metrics.status_code == 501
        assert "pip install 'anyio-lifecycle[metrics]'" in metrics.text
        assert ready.status_code == 200
