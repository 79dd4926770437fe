"""Helpers for tests with real child processes: inline scripts, a beacon, and checks for leftovers."""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import textwrap
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import anyio.abc
import pytest

from lifecycle._processes._guardian import guardian_pid

PY = sys.executable

# Imported by child scripts as `beacon(...)`: sends one datagram to the test.
BEACON_CODE = """
import os as _os, socket as _socket
def beacon(text):
    with _socket.socket(_socket.AF_UNIX, _socket.SOCK_DGRAM) as s:
        s.sendto(str(text).encode(), _os.environ["TEST_BEACON"])
"""


def script(code: str) -> list[str]:
    """The argv that runs *code* (dedented, with `beacon()` defined) in a fresh interpreter."""
    return [PY, "-c", BEACON_CODE + textwrap.dedent(code)]


class Beacon:
    """A unix datagram socket the test listens on; children find it in ``TEST_BEACON``."""

    def __init__(self, socket: anyio.abc.UNIXDatagramSocket, path: str) -> None:
        self.socket = socket
        self.path = path

    async def receive(self, timeout: float = 30) -> str:
        """The next message from a child (generous bound: the machine may be loaded)."""
        with anyio.fail_after(timeout):
            data, _ = await self.socket.receive()
        return data.decode()


@asynccontextmanager
async def open_beacon(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Beacon]:
    """Bind a beacon and export its path as ``TEST_BEACON`` (children inherit it)."""
    with tempfile.TemporaryDirectory(prefix="lc-test-") as folder:
        path = str(Path(folder) / "beacon")
        sock = await anyio.create_unix_datagram_socket(local_path=path)
        monkeypatch.setenv("TEST_BEACON", path)
        async with sock:
            yield Beacon(sock, path)


def _stat(pid: int) -> tuple[str, int, int] | None:
    """``(state, ppid, pgrp)`` of *pid*, or ``None`` if it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = stat[stat.rfind(b")") + 2 :].split()
    return fields[0].decode(), int(fields[1]), int(fields[2])


def is_dead(pid: int) -> bool:
    """
    Whether *pid* has exited.

    Either it is gone (``os.kill(pid, 0)`` raises ``ProcessLookupError``), or it
    is an orphan zombie waiting for init to reap it: not a child of ours.
    """
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    stat = _stat(pid)
    return stat is None or (stat[0] == "Z" and stat[1] != os.getpid())


def wait_gone(pid: int, timeout: float = 15) -> None:
    """
    Wait until *pid* no longer exists at all (``os.kill`` raises ``ProcessLookupError``).

    Only for a process already known to be dead: an orphan zombie disappears
    when init reaps it, which some container inits do only every few seconds.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        stat = _stat(pid)
        if stat is not None and stat[0] == "Z" and stat[1] == os.getpid():
            # An orphan re-parented to this test process, which an earlier tree made a
            # subreaper: dead, and ours to reap (by its own pid: no Popen owns it).
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)
            continue
        assert time.monotonic() < deadline, f"process {pid} still exists: {stat}"
        time.sleep(0.02)


def group_members(pgid: int) -> list[int]:
    """The live (not zombie) processes of a process group."""
    found = []
    for entry in os.listdir("/proc"):  # noqa: PTH208 - names only
        if entry.isdigit():
            stat = _stat(int(entry))
            if stat is not None and stat[0] != "Z" and stat[2] == pgid:
                found.append(int(entry))
    return found


def our_children() -> dict[int, str]:
    """The child processes of this (test) process, with their state (``Z``: an unreaped zombie)."""
    found = {}
    for entry in os.listdir("/proc"):  # noqa: PTH208 - names only
        if entry.isdigit():
            stat = _stat(int(entry))
            if stat is not None and stat[1] == os.getpid():
                found[int(entry)] = stat[0]
    return found


# The children this process had when the running test began: zombies of earlier
# tests' orphans may be among them, once a tree made this process a subreaper.
_before: set[int] = set()


_began = [0.0]  # when the running test began, in clock ticks since boot (as /proc/PID/stat counts)


def _ticks_now() -> float:
    return float(Path("/proc/uptime").read_text().split()[0]) * os.sysconf("SC_CLK_TCK")


def _started(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return int(stat[stat.rfind(b")") + 2 :].split()[19])


def new_children() -> dict[int, str]:
    """
    The child processes of this process that the running test made (see :func:`our_children`).

    A process started before the test began is not its doing, even when it turns
    up as a child during the test: an orphan of an earlier test, re-parented to
    this process once a tree made it a subreaper.
    """
    guardian = guardian_pid()  # started by the first contained child, lives as long as this process
    return {
        pid: state
        for pid, state in our_children().items()
        if pid not in _before and pid != guardian and (_started(pid) or 0) >= _began[0] - 1
    }


def reap_adopted(timeout: float = 5) -> None:
    """
    Wait until the processes this test's program left to this one (a subreaper) have exited, and reap them.

    A program run in a subprocess has a guardian (and may leave killed
    descendants): when the program is gone they are re-parented here, and
    they exit on their own within moments.
    """
    deadline = time.monotonic() + timeout
    while left := new_children():
        for pid, state in left.items():
            if state == "Z":
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(pid, os.WNOHANG)
        assert time.monotonic() < deadline, f"processes left to this one still run: {left}"
        time.sleep(0.02)


@pytest.fixture(autouse=True)
def no_leftover_children() -> Iterator[None]:
    """Fail a test that leaves a child process (running or zombie) of this process behind."""
    _before.clear()
    _before.update(our_children())
    _began[0] = _ticks_now()
    yield
    left = new_children()
    assert left == {}, f"child processes left behind (pid: state): {left}"
