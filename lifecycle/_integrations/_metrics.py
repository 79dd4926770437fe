"""
The health server's ``/metrics``: the tree in the Prometheus text format, through ``prometheus_client``.

``prometheus_client`` (the ``metrics`` extra) is imported at the first scrape,
never before. The tree's metrics are collected at each
scrape from the public observation API, together with everything in
``prometheus_client``'s default registry (the application's own metrics), and
nothing is registered anywhere: several trees, or several health servers, in
one process never clash.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from lifecycle._core._observe import ComponentStatus
from lifecycle._core._states import State
from lifecycle._host._running_tree import RunningTree

if TYPE_CHECKING:
    from prometheus_client.core import Metric

__all__ = ["CONTENT_TYPE", "PHASES", "Durations", "collect", "render"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

#: The values of ``lifecycle_tree_phase``'s ``phase`` label: ``none`` until a stop begins.
PHASES = ("none", "drain", "graceful", "forceful", "terminate")


class Durations:
    """
    The last start and stop duration of each component, measured from its state changes.

    Subscribed with :meth:`RunningTree.subscribe_components`: a start runs
    from ``STARTING`` until the component is up, a stop from ``STOPPING``
    until it has ended or waits for its restart. Times are on the loop clock.
    """

    def __init__(self) -> None:
        self.start: dict[str, float] = {}
        self.stop: dict[str, float] = {}
        self._since: dict[str, tuple[State, float]] = {}

    def changed(self, status: ComponentStatus, now: float) -> None:
        """Record *status*, a component's new state, seen at *now*."""
        path, state = status.path, status.state
        if state is State.STARTING or state is State.STOPPING:
            self._since[path] = (state, now)
            return
        began = self._since.get(path)
        if began is None:
            return
        if began[0] is State.STARTING and status.up:
            self.start[path] = now - began[1]
            del self._since[path]
        elif began[0] is State.STOPPING and state is not State.RUNNING:
            self.stop[path] = now - began[1]
            del self._since[path]


def _phase(tree: RunningTree, now: float) -> str:
    escalation = tree.escalation
    if escalation is None:
        return "none"
    if now < escalation.started_at:
        return "drain"
    return escalation.phase_at(now).name.lower()


def collect(tree: RunningTree, durations: Durations, *, ready: bool, now: float) -> Iterator[Metric]:
    """The tree's metric families, as they are at *now*."""
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily  # noqa: PLC0415 - an optional extra

    labels = {"tree": tree.name}
    tree_ready = GaugeMetricFamily("lifecycle_tree_ready", "1 when /readyz answers 200.", labels=list(labels))
    tree_ready.add_metric([tree.name], 1.0 if ready else 0.0)
    failed = GaugeMetricFamily("lifecycle_tree_failed", "1 once the tree has failed.", labels=list(labels))
    failed.add_metric([tree.name], 1.0 if tree.failed else 0.0)
    phase = GaugeMetricFamily(
        "lifecycle_tree_phase", "The phase of the tree's stop: 1 for the current one.", labels=["tree", "phase"]
    )
    current = _phase(tree, now)
    for name in PHASES:
        phase.add_metric([tree.name, name], 1.0 if name == current else 0.0)
    yield from (tree_ready, failed, phase)

    state = GaugeMetricFamily(
        "lifecycle_component_state", "A component's state: 1 for the current one.", labels=["component", "state"]
    )
    up = GaugeMetricFamily("lifecycle_component_ready", "1 while the component is up.", labels=["component"])
    restarts = CounterMetricFamily(
        "lifecycle_component_restarts", "How many times the component was restarted.", labels=["component"]
    )
    for status in tree.components():
        for each in State:
            state.add_metric([status.path, each.value], 1.0 if status.state is each else 0.0)
        up.add_metric([status.path], 1.0 if status.up else 0.0)
        restarts.add_metric([status.path], float(status.restarts))
    start = GaugeMetricFamily(
        "lifecycle_component_last_start_duration_seconds",
        "How long the component's last start took, until it was up.",
        labels=["component"],
    )
    for path, seconds in durations.start.items():
        start.add_metric([path], seconds)
    stop = GaugeMetricFamily(
        "lifecycle_component_last_stop_duration_seconds",
        "How long the component's last stop took.",
        labels=["component"],
    )
    for path, seconds in durations.stop.items():
        stop.add_metric([path], seconds)
    yield from (state, up, restarts, start, stop)


def render(tree: RunningTree, durations: Durations, *, ready: bool, now: float) -> str:
    """
    The text of ``/metrics``: the default registry's metrics and the tree's.

    Raises:
        ImportError: ``prometheus_client`` is not installed.
    """
    from prometheus_client import REGISTRY, CollectorRegistry, generate_latest  # noqa: PLC0415 - an optional extra

    class WithDefault(CollectorRegistry):
        """The default registry's metrics, then the tree's, without registering anything."""

        def collect(self) -> Iterator[Metric]:
            yield from REGISTRY.collect()
            yield from collect(tree, durations, ready=ready, now=now)

    return generate_latest(WithDefault(auto_describe=False)).decode()
