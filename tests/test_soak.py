"""A tree under random faults for a fixed time: memory stays flat (run with LIFECYCLE_SOAK_SECONDS=60)."""

from __future__ import annotations

import gc
import os
import random
import time
import tracemalloc
from collections.abc import Iterator, Mapping, MutableMapping

import anyio
import pytest
import structlog
import trio.testing
from strategies import STYLES, TEARDOWNS, ChildPlan, Life, Scenario, TreePlan
from test_fault_properties import World

import lifecycle
from lifecycle import Priority, ShutdownPolicy
from lifecycle.testing import Recorder

SECONDS = float(os.environ.get("LIFECYCLE_SOAK_SECONDS", "0") or 0)

pytestmark = pytest.mark.skipif(not SECONDS, reason="set LIFECYCLE_SOAK_SECONDS to run the soak test")


@pytest.fixture
def anyio_backend() -> object:
    """Virtual time: hours of faults per minute of wall time."""
    return ("trio", {"clock": trio.testing.MockClock(autojump_threshold=0)})


class RandomWorld(World):
    """Every start of every component draws a new random life; nothing is kept per instance."""

    def __init__(self, seed: int) -> None:
        super().__init__(Scenario(TreePlan("root", "one_for_one", 0, 0, ()), (1, 1, 1), 0), 1.0, Recorder())
        self.random = random.Random(seed)  # noqa: S311 - faults, not cryptography

    def begin(self, path: str, plan: ChildPlan) -> object:  # type: ignore[override]
        inst = super().begin(path, plan)
        r = self.random
        inst.life = Life(
            start_delay=r.randint(0, 2),
            start="fail" if inst.number > 1 and r.random() < 0.05 else "ok",  # the first start is clean
            run="fail" if plan.style == "generator" else r.choice(("fail", "finish")),  # every start ends
            run_for=r.randint(1, 20),
            teardown=r.choice(TEARDOWNS),
            stubborn_for=r.randint(1, 5),
        )
        self.instances.clear()  # a soak keeps nothing per start
        self.raised.clear()
        return inst


def soak_tree(world: RandomWorld) -> TreePlan:
    r = world.random
    names = [f"c{i}" for i in range(8)]
    children = tuple(
        ChildPlan(
            name, tuple(r.sample(names[:i], min(i, r.randint(0, 2)))), Priority.NORMAL, r.choice(STYLES), "permanent"
        )
        for i, name in enumerate(names)
    )
    return TreePlan("root", "one_for_one", 10**9, 1, children)


@pytest.fixture
def quiet_logs() -> Iterator[None]:
    def drop(_: object, __: str, ___: MutableMapping[str, object]) -> Mapping[str, object]:
        raise structlog.DropEvent

    structlog.configure(processors=[drop])
    try:
        yield
    finally:
        structlog.reset_defaults()


async def test_memory_stays_flat_under_random_faults(quiet_logs: None) -> None:
    """Hours of virtual time of crashes and restarts: the second half's peak memory is not above the first's."""
    world = RandomWorld(seed=1)
    root = world.build(soak_tree(world))
    policy = ShutdownPolicy(graceful=2, forceful=2, terminate=2)
    samples: list[int] = []
    tracemalloc.start()
    try:
        async with lifecycle.running(root, policy=policy) as tree:
            await tree.ready()
            end = time.monotonic() + SECONDS
            while time.monotonic() < end:
                await anyio.sleep(100)  # virtual seconds of faults and restarts
                gc.collect()
                samples.append(tracemalloc.get_traced_memory()[0])
    except ExceptionGroup:
        pass  # children that crash while the tree stops are raised: expected here
    finally:
        tracemalloc.stop()
    report = tree.report
    assert report is not None
    half = len(samples) // 2
    first, second = max(samples[:half]), max(samples[half:])
    restarts = sum(c.restarts for c in report.components)
    print(  # noqa: T201 - the figure a soak run is for
        f"soak: {SECONDS:g}s, {len(samples)} samples, {restarts} restarts, first half peak {first} B, second {second} B"
    )
    assert restarts > 100
    assert second <= first * 1.05 + 64 * 1024
