from __future__ import annotations

import os
import socket
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest
from helpers import Listener, Recorder
from structlog.testing import capture_logs

import lifecycle
from lifecycle import Phase, ShutdownPolicy
from lifecycle._integrations._systemd import (
    EXTEND_INTERVAL,
    SystemdNotifier,
    notify_systemd,
    sanitize,
    watchdog_interval,
)
from supervisors import Intensity, Supervisor


@pytest.fixture
def listener(monkeypatch: pytest.MonkeyPatch) -> Iterator[Listener]:
    # A short directory: unix socket paths are limited to about 100 bytes.
    directory = Path(tempfile.mkdtemp(prefix="lcn", dir="/tmp"))
    path = directory / "notify"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.setblocking(False)
    monkeypatch.setenv("NOTIFY_SOCKET", str(path))
    monkeypatch.delenv("WATCHDOG_USEC", raising=False)
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    try:
        yield Listener(sock, str(path))
    finally:
        sock.close()
        path.unlink()
        directory.rmdir()


def chain(rec: Recorder, *names: str) -> Supervisor:
    sup = Supervisor(name="app")
    previous: tuple[str, ...] = ()
    for name in names:
        sup.add(rec.resource(name), depends_on=previous)
        previous = (name,)
    return sup


class TestSanitize:
    def test_newlines_cannot_forge_an_assignment(self) -> None:
        """Newlines and control characters in user text become spaces."""
        assert sanitize("db failed\nREADY=1\r\x00x") == "db failed READY=1 x"

    def test_long_text_is_cut(self) -> None:
        """A status line is cut to its limit, marked with an ellipsis."""
        assert sanitize("x" * 300, limit=10) == "xxxxxxx..."

    def test_a_message_is_one_line_per_field(self, listener: Listener) -> None:
        """A value with a newline reaches the socket as one STATUS line, not a READY=1 line."""
        notifier = SystemdNotifier(listener.address)
        try:
            assert notifier.send(STATUS="boom\nREADY=1")
        finally:
            notifier.close()
        assert listener.drain() == [{"STATUS": "boom READY=1"}]


class TestEnvironment:
    def test_watchdog_interval_is_half_the_timeout(self) -> None:
        """WATCHDOG_USEC=4000000 means a ping every 2 seconds."""
        assert watchdog_interval({"WATCHDOG_USEC": "4000000"}) == 2.0

    def test_watchdog_of_another_process_is_not_ours(self) -> None:
        """A WATCHDOG_PID naming another process turns the pings off; our own pid keeps them."""
        assert watchdog_interval({"WATCHDOG_USEC": "4000000", "WATCHDOG_PID": "1"}) is None
        assert watchdog_interval({"WATCHDOG_USEC": "4000000", "WATCHDOG_PID": str(os.getpid())}) == 2.0

    def test_bad_watchdog_value_is_logged_and_ignored(self) -> None:
        """A WATCHDOG_USEC that is not a positive integer is logged and turns the pings off."""
        with capture_logs() as logs:
            assert watchdog_interval({"WATCHDOG_USEC": "soon"}) is None
        assert [e["event"] for e in logs] == ["notify.watchdog_invalid"]

    def test_unsupported_socket_is_logged_and_ignored(self) -> None:
        """A NOTIFY_SOCKET that is neither a path nor @abstract is logged; nothing is sent."""
        with capture_logs() as logs:
            assert SystemdNotifier.from_env({"NOTIFY_SOCKET": "vsock:2:1234"}) is None
        assert [e["event"] for e in logs] == ["notify.unsupported_socket"]

    def test_send_failure_is_logged_once(self, tmp_path: Path) -> None:
        """Sends to a socket that is gone return False and log once, never raise."""
        notifier = SystemdNotifier(str(tmp_path / "gone"))
        try:
            with capture_logs() as logs:
                assert not notifier.send(READY=1)
                assert not notifier.send(READY=1)
        finally:
            notifier.close()
        assert [e["event"] for e in logs] == ["notify.failed"]


class TestLifecycle:
    async def test_nothing_without_notify_socket(self, listener: Listener, monkeypatch: pytest.MonkeyPatch) -> None:
        """Without NOTIFY_SOCKET nothing is sent, and the tree runs as usual."""
        monkeypatch.delenv("NOTIFY_SOCKET")
        async with lifecycle.running(chain(Recorder(), "db"), notify=True) as tree:
            await tree.ready()
        assert listener.drain() == []

    async def test_off_unless_asked(self, listener: Listener) -> None:
        """An embedded tree sends nothing unless notify=True."""
        async with lifecycle.running(chain(Recorder(), "db")) as tree:
            await tree.ready()
        assert listener.drain() == []

    async def test_ready_when_the_tree_is_up(self, listener: Listener) -> None:
        """READY=1 is sent once the whole tree has started, not before."""
        seen_at_start: list[str] = []
        gate = anyio.Event()

        async def slow() -> object:
            seen_at_start.extend(listener.fields())
            await gate.wait()
            yield "slow"

        sup = Supervisor(name="app")
        sup.add(slow, name="slow")
        async with lifecycle.running(sup, notify=True) as tree:
            await anyio.wait_all_tasks_blocked()
            assert "READY" not in listener.fields()
            gate.set()
            await tree.ready()
            assert listener.values("READY") == ["1"]
        assert seen_at_start == ["STATUS"]
        assert listener.values("STATUS")[0] == "app: starting"

    async def test_stopping_before_the_first_component_stops(self, listener: Listener) -> None:
        """STOPPING=1 has arrived when the first component's stop begins."""
        seen: list[str] = []

        async def api(ctx: lifecycle.Context) -> None:
            ctx.ready()
            await ctx.stopping.wait()
            seen.extend(listener.fields())

        rec = Recorder()
        sup = chain(rec, "db")
        sup.add(api, depends_on=("db",))
        async with lifecycle.running(sup, notify=True) as tree:
            await tree.ready()
            await tree.shutdown()
        assert "STOPPING" in seen
        assert seen.index("READY") < seen.index("STOPPING")
        statuses = listener.values("STATUS")
        assert statuses[-1] == "app: stopped"
        assert any(s.startswith("app: stopping (request: shutdown() was called)") for s in statuses)

    async def test_failed_stop_says_so(self, listener: Listener) -> None:
        """A tree that fails ends with a STATUS saying it stopped with failures."""

        async def broken(ctx: lifecycle.Context) -> None:
            ctx.ready()
            msg = "disk on fire"
            raise OSError(msg)

        sup = Supervisor(name="app", intensity=Intensity(max_restarts=0, within=1))
        sup.add(broken)
        with pytest.RaisesGroup(lifecycle.ComponentError, flatten_subgroups=True):
            async with lifecycle.running(sup, notify=True) as tree:
                await tree.wait()
        assert listener.values("STATUS")[-1] == "app: stopped with failures"
        assert "STOPPING" in listener.fields()

    async def test_abstract_socket(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """An @name NOTIFY_SOCKET reaches a socket in the abstract namespace."""
        name = f"lifecycle-test-{uuid.uuid4().hex}"
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind(b"\0" + name.encode())
        sock.setblocking(False)
        monkeypatch.setenv("NOTIFY_SOCKET", f"@{name}")
        monkeypatch.delenv("WATCHDOG_USEC", raising=False)
        abstract = Listener(sock, "")
        try:
            async with lifecycle.running(chain(Recorder(), "db"), notify=True) as tree:
                await tree.ready()
            assert abstract.values("READY") == ["1"]
            assert "STOPPING" in abstract.fields()
        finally:
            sock.close()

    async def test_drain_is_reported(self, listener: Listener) -> None:
        """During a drain delay, STATUS says the tree is draining, after STOPPING=1."""

        async def drains(ctx: lifecycle.Context) -> None:
            lifecycle.current_tree().drain_delay = 0.01
            ctx.ready()
            await anyio.sleep_forever()

        sup = Supervisor(name="app")
        sup.add(drains)
        async with lifecycle.running(sup, notify=True) as tree:
            await tree.ready()
            await tree.shutdown()
        statuses = listener.values("STATUS")
        draining = [i for i, s in enumerate(statuses) if "draining for" in s]
        assert draining
        assert "STOPPING" in listener.fields()


@pytest.mark.virtual_time
class TestTimed:
    async def test_watchdog_cadence(self, listener: Listener, monkeypatch: pytest.MonkeyPatch) -> None:
        """WATCHDOG=1 goes out at once and then every half of WATCHDOG_USEC."""
        monkeypatch.setenv("WATCHDOG_USEC", "2000000")
        async with lifecycle.running(chain(Recorder(), "db"), notify=True) as tree:
            start = anyio.current_time()
            await tree.ready()
            counts = []
            for at in (0.5, 1.5, 3.5):
                await anyio.sleep_until(start + at)
                counts.append(len(listener.values("WATCHDOG")))
        assert counts == [1, 2, 4]

    async def test_no_watchdog_for_another_pid(self, listener: Listener, monkeypatch: pytest.MonkeyPatch) -> None:
        """With WATCHDOG_PID naming another process, no ping is sent."""
        monkeypatch.setenv("WATCHDOG_USEC", "2000000")
        monkeypatch.setenv("WATCHDOG_PID", "1")
        async with lifecycle.running(chain(Recorder(), "db"), notify=True) as tree:
            await tree.ready()
            await anyio.sleep(10)
        assert listener.values("WATCHDOG") == []

    async def test_no_watchdog_once_the_tree_failed(self, listener: Listener, monkeypatch: pytest.MonkeyPatch) -> None:
        """Once the root has failed, pings stop even though the loop still runs its stop."""
        monkeypatch.setenv("WATCHDOG_USEC", "2000000")
        failed_at: list[float] = []

        async def crash() -> None:
            await anyio.sleep(3.2)
            failed_at.append(anyio.current_time())
            msg = "crash"
            raise RuntimeError(msg)

        async def root(ctx: lifecycle.Context) -> None:
            ctx.spawn(crash)
            ctx.ready()
            try:
                await anyio.sleep_forever()
            finally:
                async with ctx.shielded():
                    await anyio.sleep(10)  # a slow cleanup after the failure

        with pytest.RaisesGroup(lifecycle.ComponentError):
            async with lifecycle.running(root, notify=True, policy=ShutdownPolicy(graceful=20)) as tree:
                start = anyio.current_time()
                await tree.wait()
        assert failed_at == [pytest.approx(start + 3.2)]
        # Pings at 0, 1, 2 and 3 seconds; none during the 10 seconds of cleanup.
        assert len(listener.values("WATCHDOG")) == 4

    async def test_phase_changes_are_reported(self, listener: Listener) -> None:
        """STATUS names each phase as the stop reaches it."""

        async def stubborn(ctx: lifecycle.Context) -> None:
            ctx.ready()
            try:
                await anyio.sleep_forever()
            finally:
                # Alive until TERMINATE ends, so each phase begins with it still running
                # (cut off when FORCEFUL ends, it would race the TERMINATE status).
                async with ctx.shielded(until=Phase.TERMINATE):
                    await anyio.sleep(100)

        policy = ShutdownPolicy(graceful=1, forceful=1, terminate=1)
        async with lifecycle.running(stubborn, notify=True, policy=policy) as tree:
            await tree.ready()
            await tree.shutdown()
        phases = [s for s in listener.values("STATUS") if "phase" in s]
        assert phases == [
            "stubborn: stopping, GRACEFUL phase, 1 components running",
            "stubborn: stopping, FORCEFUL phase, 1 components running",
            "stubborn: stopping, TERMINATE phase, 1 components running",
        ]

    async def test_extend_timeout_while_a_slow_start_progresses(self, listener: Listener) -> None:
        """A start that keeps making progress asks for more time every interval, and stops asking once up."""

        def slow(name: str) -> object:
            async def component() -> object:
                await anyio.sleep(8)
                yield name

            component.__name__ = name
            return component

        sup = Supervisor(name="app")
        previous: tuple[str, ...] = ()
        for name in ("a", "b", "c"):
            sup.add(slow(name), depends_on=previous)
            previous = (name,)
        async with lifecycle.running(sup, notify=True) as tree:
            await tree.ready()
            await anyio.sleep(60)
        extends = listener.values("EXTEND_TIMEOUT_USEC")
        # Ticks at 10 s and 20 s saw components become ready; at 24 s the tree is up.
        assert extends == [str(int(2 * EXTEND_INTERVAL * 1_000_000))] * 2

    async def test_no_extension_without_progress(self, listener: Listener) -> None:
        """A start stuck in one component stops asking for more time."""
        gate = anyio.Event()

        async def stuck() -> object:
            await gate.wait()
            yield None

        sup = Supervisor(name="app")
        sup.add(stuck)
        async with lifecycle.running(sup, notify=True) as tree:
            await anyio.sleep(60)
            gate.set()
            await tree.ready()
        # One extension at the first tick (the tree's components were started), none after.
        assert len(listener.values("EXTEND_TIMEOUT_USEC")) == 1


async def test_notify_systemd_returns_at_once_without_socket(monkeypatch: pytest.MonkeyPatch) -> None:
    """The notifier task ends at once when NOTIFY_SOCKET is unset."""
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    async with lifecycle.running(chain(Recorder(), "db")) as tree:
        with anyio.fail_after(5):
            await notify_systemd(tree)
