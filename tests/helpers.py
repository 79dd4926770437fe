"""Small fakes shared by the engine tests."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anyio

import lifecycle
from supervisors import Supervisor


class Recorder:
    """Records lifecycle events as ``(event, name)`` pairs, in the order they happen."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []

    def add(self, event: str, name: str) -> None:
        """Record that *event* happened to *name*."""
        self.events.append((event, name))

    def names(self, event: str) -> list[str]:
        """Return the names that had *event*, in order."""
        return [n for e, n in self.events if e == event]

    def index(self, event: str, name: str) -> int:
        """Return the position of one event."""
        return self.events.index((event, name))

    def resource(self, name: str, value: object = None) -> Callable[[], AsyncIterator[object]]:
        """Return an async generator component that records its start and stop."""

        async def component() -> AsyncIterator[object]:
            self.add("start", name)
            yield name if value is None else value
            self.add("stop", name)

        component.__name__ = name
        return component

    def service(self, name: str) -> Callable[[lifecycle.Context], Coroutine[Any, Any, None]]:
        """Return a function component that records its start and stop."""

        async def component(ctx: lifecycle.Context) -> None:
            self.add("start", name)
            ctx.ready(name)
            try:
                await anyio.sleep_forever()
            finally:
                self.add("stop", name)

        component.__name__ = name
        return component


def run_logged(script: Path, *args: str, **env: str) -> tuple[subprocess.CompletedProcess[str], list[dict[str, Any]]]:
    """Run *script* in a fresh interpreter with JSON logs and *env* set; return it and its log events."""
    environ = {
        **os.environ,
        "PYTHONPATH": str(Path(__file__).resolve().parent.parent),
        "LIFECYCLE_LOG_FORMAT": "json",
        **env,
    }
    proc = subprocess.run(
        [sys.executable, str(script), *args],
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    events = [json.loads(line) for line in proc.stderr.splitlines() if line.startswith("{")]
    return proc, events


class Listener:
    """The service manager's end of NOTIFY_SOCKET: a real unix datagram socket."""

    def __init__(self, sock: socket.socket, address: str) -> None:
        self.sock = sock
        self.address = address
        self.received: list[dict[str, str]] = []

    def drain(self) -> list[dict[str, str]]:
        """Read every datagram delivered so far (sends are synchronous) and return all of them."""
        while True:
            try:
                data = self.sock.recv(4096)
            except BlockingIOError:
                return self.received
            fields = dict(line.split("=", 1) for line in data.decode().split("\n"))
            self.received.append(fields)

    def fields(self) -> list[str]:
        """Every key received so far, in order."""
        return [key for message in self.drain() for key in message]

    def values(self, key: str) -> list[str]:
        """Every value of *key* received so far, in order."""
        return [message[key] for message in self.drain() if key in message]


# `python -m lifecycle`, with SIGHUP back to its default action first: the tests may
# run under nohup, and an ignored SIGHUP stays ignored (as it should).
LIFECYCLE_COMMAND = (
    "import signal, sys; signal.signal(signal.SIGHUP, signal.SIG_DFL); "
    "from lifecycle._host._cli import entry_point; sys.argv[0] = 'lifecycle'; entry_point()"
)


@contextmanager
def start_lifecycle(cwd: Path, *args: str, **variables: str) -> Iterator[subprocess.Popen[str]]:
    """Run ``lifecycle ARGS`` in *cwd* with *variables* set, logging JSON lines to stderr; kill it if left running."""
    root = Path(__file__).resolve().parent.parent
    env = {**os.environ, "PYTHONPATH": f"{root}{os.pathsep}{cwd}", "LIFECYCLE_LOG_FORMAT": "json", **variables}
    with subprocess.Popen(
        [sys.executable, "-c", LIFECYCLE_COMMAND, *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as proc:
        try:
            yield proc
        finally:
            if proc.poll() is None:  # a failed test: never wait for it forever
                proc.kill()


def draining_api(draining: anyio.Event) -> Supervisor:
    """A tree ``app`` whose ``api`` drains for 60 s in a GRACEFUL scope at its stop, setting *draining* as it begins."""
    sup = Supervisor("app")

    @sup.component
    async def api(ctx: lifecycle.Context) -> None:
        ctx.ready()
        try:
            await anyio.sleep_forever()
        finally:
            with ctx.shielded():
                draining.set()
                await anyio.sleep(60)

    return sup
