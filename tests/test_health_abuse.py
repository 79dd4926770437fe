"""The health endpoint under abuse: floods, exhausted file descriptors, odd requests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import anyio
import pytest
from structlog.testing import capture_logs

import lifecycle
from lifecycle import HealthServer, Priority
from supervisors import Supervisor

pytestmark = [
    pytest.mark.skipif(sys.platform != "linux", reason="RLIMIT_NOFILE and the flood are tested on Linux"),
    pytest.mark.real_time,
]

CHILD = textwrap.dedent(
    """
    import resource
    import sys

    import anyio

    import lifecycle
    from lifecycle import HealthServer, Priority
    from supervisors import Supervisor

    backend, limit, max_connections = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (limit, hard))

    sup = Supervisor(name="app")
    health = HealthServer(port=0, max_connections=max_connections, request_timeout=60)
    sup.add(health, name="health", priority=Priority.CRITICAL)


    @sup.component
    async def announce(ctx, health):
        print("port", health.port, flush=True)
        ctx.ready()
        await anyio.sleep_forever()


    lifecycle.run(sup, backend=backend)
    """
)


def wait_for_port(log: Path, proc: subprocess.Popen[bytes], within: float) -> int:
    """The port the child prints once its health server listens."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline and proc.poll() is None:
        for line in log.read_text(errors="replace").splitlines():
            if line.startswith("port "):
                return int(line.split()[1])
        time.sleep(0.05)
    msg = f"the child did not start:\n{log.read_text(errors='replace')[-3000:]}"
    raise AssertionError(msg)


def get(port: int, path: str, timeout: float = 2.0) -> bytes:
    """One GET over a fresh connection; the whole answer (b"" if the server closed at once)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        answer = b""
        while chunk := sock.recv(4096):
            answer += chunk
        return answer


def wait_for_livez(port: int, within: float) -> bytes:
    """Ask /livez until it answers, for at most *within* seconds; the last answer."""
    deadline = time.monotonic() + within
    answer = b""
    while time.monotonic() < deadline:
        try:
            answer = get(port, "/livez")
        except OSError:
            answer = b""
        if answer.startswith(b"HTTP/1.1 200"):
            return answer
        time.sleep(0.05)
    return answer


class TestFlood:
    @pytest.mark.parametrize("backend", ["asyncio", "trio"])
    @pytest.mark.parametrize(
        ("limit", "max_connections", "flood", "event"),
        [
            # The report of the issue: 1,024 descriptors, ~1,100 idle connections; the limit refuses the excess.
            (1024, 64, 1100, "health.connections_refused"),
            # No effective connection limit: accept() runs out of descriptors (EMFILE) and retries.
            (64, 10_000, 200, "health.accept_exhausted"),
        ],
    )
    def test_service_survives_a_connection_flood(  # noqa: PLR0917 - pytest passes the parameters
        self, tmp_path: Path, backend: str, limit: int, max_connections: int, flood: int, event: str
    ) -> None:
        """Idle connections held against the health port never fail the service; /livez answers afterwards."""
        script = tmp_path / "child.py"
        script.write_text(CHILD)
        log = tmp_path / "child.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [sys.executable, str(script), backend, str(limit), str(max_connections)],
                stdout=out,
                stderr=subprocess.STDOUT,
                env={**os.environ, "LIFECYCLE_LOG_FORMAT": "json", "LIFECYCLE_LOG_LEVEL": "info"},
            )
        held: list[socket.socket] = []
        try:
            port = wait_for_port(log, proc, within=30)
            for _ in range(flood):
                sock = socket.create_connection(("127.0.0.1", port), timeout=5)
                held.append(sock)
            time.sleep(1.0)  # let the server meet the flood: a bounded wait, not ordering
            assert proc.poll() is None, "the service died under the flood"
            for sock in held:
                sock.close()
            held.clear()
            assert wait_for_livez(port, within=20).startswith(b"HTTP/1.1 200")
            assert proc.poll() is None
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)
        finally:
            for sock in held:
                sock.close()
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        text = log.read_text(errors="replace")
        assert event in text, text[-3000:]
        assert "component.failed" not in text, text[-3000:]
        assert proc.returncode == 0, text[-3000:]


def service(health: HealthServer) -> Supervisor:
    sup = Supervisor(name="app")
    sup.add(health, name="health", priority=Priority.CRITICAL)
    return sup


async def raw(health: HealthServer, request: bytes) -> bytes:
    """Send *request* bytes and read the whole answer."""
    async with await anyio.connect_tcp(health.host, health.port) as stream:
        await stream.send(request)
        answer = b""
        try:
            while True:
                answer += await stream.receive()
        except (anyio.EndOfStream, anyio.BrokenResourceError):
            return answer


class TestRequests:
    @pytest.mark.parametrize("request_bytes", [b"GET /livez HTTP/1.1\nHost: x\n\n", b"GET /livez HTTP/1.1\n\n"])
    async def test_bare_lf_request_is_answered(self, request_bytes: bytes) -> None:
        """A request whose lines end in a bare LF is answered, not left to time out."""
        health = HealthServer(port=0, request_timeout=30)
        async with lifecycle.running(service(health)) as tree:
            await tree.ready()
            with anyio.fail_after(5):
                answer = await raw(health, request_bytes)
        assert answer.startswith(b"HTTP/1.1 200 OK\r\n")

    async def test_excess_connections_are_closed_at_once(self) -> None:
        """Beyond max_connections a connection is closed at once; freed slots serve again."""
        health = HealthServer(port=0, max_connections=2, request_timeout=30)
        with capture_logs() as logs:
            async with lifecycle.running(service(health)) as tree:
                await tree.ready()
                idle = [await anyio.connect_tcp(health.host, health.port) for _ in range(2)]
                with anyio.fail_after(5):
                    refused = await raw(health, b"GET /livez HTTP/1.1\r\n\r\n")
                for stream in idle:
                    await stream.aclose()
                with anyio.fail_after(5):
                    while not (answer := await raw(health, b"GET /livez HTTP/1.1\r\n\r\n")):  # noqa: ASYNC110 - the server closes the idle ones in its own time
                        await anyio.sleep(0.01)
        assert refused == b""
        assert answer.startswith(b"HTTP/1.1 200")
        assert [e["event"] for e in logs].count("health.connections_refused") == 1

    async def test_stop_does_not_wait_for_open_connections(self) -> None:
        """Idle connections in flight are cut by the stop: the health server stops at once."""
        health = HealthServer(port=0, request_timeout=3600)
        async with lifecycle.running(service(health)) as tree:
            await tree.ready()
            idle = [await anyio.connect_tcp(health.host, health.port) for _ in range(3)]
            with anyio.fail_after(5):
                report = await tree.shutdown()
        for stream in idle:
            await stream.aclose()
        assert report.ok

    @pytest.mark.parametrize("options", [{"max_connections": 0}, {"max_connections": True}, {"request_timeout": 0}])
    def test_bad_limits_are_configuration_errors(self, options: dict[str, object]) -> None:
        """Limits out of range are ConfigurationErrors."""
        with pytest.raises(lifecycle.ConfigurationError):
            HealthServer(**options)  # type: ignore[arg-type]
