from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from lifecycle import read_state_file

ROOT = Path(__file__).resolve().parent.parent
DEADLINE = 60.0  # generous: real processes on a loaded machine


class Service:
    """The example service as a real process, with the service manager's notify socket."""

    def __init__(self, proc: subprocess.Popen[str], notify: socket.socket) -> None:
        self.proc = proc
        self.notify = notify
        self.events: list[dict[str, object]] = []
        self.messages: list[dict[str, str]] = []
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            if line.startswith("{"):
                with self._changed:
                    self.events.append(json.loads(line))
                    self._changed.notify_all()

    def wait_event(self, predicate: Callable[[dict[str, object]], bool]) -> dict[str, object]:
        """Wait until a log event matching *predicate* is seen, and return it."""
        with self._changed:
            found = self._changed.wait_for(lambda: next((e for e in self.events if predicate(e)), None), DEADLINE)
        assert found is not None, f"no matching event in {self.events}"
        return found

    def wait_message(self, key: str) -> dict[str, str]:
        """Read notify datagrams until one has *key*, and return it."""
        end = time.monotonic() + DEADLINE
        while True:
            for message in self.messages:
                if key in message:
                    return message
            self.notify.settimeout(max(0.01, end - time.monotonic()))
            data = self.notify.recv(4096)
            self.messages.append(dict(line.split("=", 1) for line in data.decode().split("\n")))

    def drain_messages(self) -> None:
        """Read every datagram still queued (the process has exited: nothing more comes)."""
        self.notify.setblocking(False)
        while True:
            try:
                data = self.notify.recv(4096)
            except BlockingIOError:
                return
            self.messages.append(dict(line.split("=", 1) for line in data.decode().split("\n")))

    def index(self, event: str, **fields: object) -> int:
        """The position of the first log event *event* with *fields*."""
        for i, e in enumerate(self.events):
            if e["event"] == event and all(e.get(k) == v for k, v in fields.items()):
                return i
        msg = f"{event} {fields} not logged"
        raise AssertionError(msg)


@pytest.fixture
def state_dir() -> Iterator[Path]:
    # Short: the notify socket lives here too, and unix socket paths are limited to about 100 bytes.
    directory = Path(tempfile.mkdtemp(prefix="lcw", dir="/tmp"))
    yield directory
    for child in directory.iterdir():
        child.unlink()
    directory.rmdir()


@pytest.fixture(params=["asyncio", "trio"])
def service(request: pytest.FixtureRequest, state_dir: Path) -> Iterator[Service]:
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(state_dir / "notify"))
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "NOTIFY_SOCKET": str(state_dir / "notify"),
        "WATCHDOG_USEC": "1000000",
        "WEB_PORT": "0",
        "HEALTH_PORT": "0",
        "WEB_DRAIN_DELAY": "1",
        "WEB_STATE_DIR": str(state_dir),
        "WEB_BACKEND": request.param,
        "LIFECYCLE_LOG_FORMAT": "json",
        "LIFECYCLE_LOG_LEVEL": "debug",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "examples.web_service"],
        cwd=ROOT,
        env=env,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    try:
        yield Service(proc, notify)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=DEADLINE)
        assert proc.stderr is not None
        proc.stderr.close()
        notify.close()


def test_serves_and_stops_in_order(service: Service, state_dir: Path) -> None:
    """Under a real notify socket the service reports READY, serves, drains on SIGTERM and exits 0 in order."""
    assert service.wait_message("READY")["READY"] == "1"
    web_url = str(service.wait_event(lambda e: e["event"] == "web.listening")["url"])
    health_port = service.wait_event(lambda e: e["event"] == "health.listening")["port"]
    health = f"http://127.0.0.1:{health_port}"
    end = time.monotonic() + DEADLINE
    while read_state_file(state_dir / "state.json").state != "running":  # written by a worker thread
        assert time.monotonic() < end
        time.sleep(0.01)

    with httpx.Client(timeout=DEADLINE) as client:
        assert client.put(f"{web_url}/items/a", content="1").json() == {"items": 1}
        assert client.get(f"{health}/readyz").status_code == 200
        described = client.get(f"{health}/tree").json()
        assert {c["name"] for c in described["components"]} >= {"store", "worker", "web", "health", "lock"}

        slow: list[httpx.Response] = []
        in_flight = threading.Thread(target=lambda: slow.append(client.get(f"{web_url}/slow?seconds=2")))
        in_flight.start()
        service.wait_event(lambda e: e["event"] == "request.slow.started")

        service.proc.send_signal(signal.SIGTERM)
        assert service.wait_message("STOPPING")["STOPPING"] == "1"
        assert client.get(f"{health}/readyz").status_code == 503
        assert client.get(f"{health}/livez").status_code == 200

        # After the drain the API stops: new connections are refused, the request in flight completes.
        service.wait_event(lambda e: e["event"] == "component.stopping" and e["component"] == "web-service/web")
        host, port = web_url.removeprefix("http://").split(":")
        end = time.monotonic() + DEADLINE
        while True:
            try:
                socket.create_connection((host, int(port)), timeout=DEADLINE).close()
            except ConnectionRefusedError:
                break
            assert time.monotonic() < end, "the API kept accepting connections"
            time.sleep(0.05)
        in_flight.join(DEADLINE)
    assert slow[0].status_code == 200
    assert slow[0].json() == {"slept": 2.0}

    assert service.proc.wait(timeout=DEADLINE) == 0
    assert service.index("request.slow.finished") < service.index("component.stopped", component="web-service/web")
    stopped = [
        service.index("component.stopped", component=f"web-service/{name}") for name in ("web", "store", "health")
    ]
    assert stopped == sorted(stopped)
    assert service.index("tree.draining") < service.index("component.stopping", component="web-service/web")
    assert read_state_file(state_dir / "state.json").state == "stopped"
    service.drain_messages()
    assert any("WATCHDOG" in m for m in service.messages)
    statuses = [m["STATUS"] for m in service.messages if "STATUS" in m]
    assert statuses[0] == "web-service: starting"
    assert statuses[-1] == "web-service: stopped"
    assert any("draining" in s for s in statuses)
    keys = [key for m in service.messages for key in m if key in {"READY", "STOPPING"}]
    assert keys == ["READY", "STOPPING"]
