"""
The guardian: a small process that kills a service's child processes when the service dies, however it died.

Run by path, never imported: ``python -I -S _guardian_process.py SERVICE_PID``.
It reads what the service owns from its standard input, one line each::

    token KEY              a containment: processes whose environment holds
                           LIFECYCLE_CONTAINMENT_ID=KEY are its own
    root KEY PID START     its child (PID, started at START clock ticks), whose
                           process group is its own too
    pid KEY PID START      a descendant found while it ran
    cgroup KEY PATH        its cgroup v2 directory
    end KEY                it was stopped: forget it

When the service exits (its pidfd becomes readable) or its end of the pipe
closes, every process still owned is killed with SIGKILL (``cgroup.kill`` for
cgroups), in a few rounds so that one forked meanwhile is found too, and the
guardian exits. The service's own exit, a hard exit and a SIGKILL (the OOM
killer, ``kill -9``) all end the same way, on every backend: unlike a
parent-death signal, nothing here depends on which thread forked the child.

It runs in a session of its own and ignores SIGINT, SIGTERM and SIGHUP, so
the signals of a terminal or of a process-group kill leave it to the service's
death. It imports only the standard library's smallest modules, so it costs
one short interpreter start per service.
"""

from __future__ import annotations

import os
import select
import signal
import sys
import time
from collections.abc import Callable

_ROUNDS = 5  # sweeps after the service's death; one forked meanwhile is found by a later one
_ROUND_PAUSE = 0.05


class Owned:
    """What the service owns, by containment key."""

    def __init__(self) -> None:
        self.tokens: set[bytes] = set()
        self.roots: dict[str, dict[int, int]] = {}
        self.pids: dict[str, dict[int, int]] = {}
        self.cgroups: dict[str, str] = {}

    def apply(self, line: str) -> None:
        """Apply one line of the protocol (unknown or malformed lines are ignored)."""
        kind, _, rest = line.partition(" ")
        key, *fields = rest.split(" ")
        if not key:
            return
        if kind == "token" and not fields:
            self.tokens.add(f"LIFECYCLE_CONTAINMENT_ID={key}".encode())
        elif kind in {"root", "pid"} and [f.isdigit() for f in fields] == [True, True]:
            table = self.roots if kind == "root" else self.pids
            table.setdefault(key, {})[int(fields[0])] = int(fields[1])
        elif kind == "cgroup" and fields:
            self.cgroups[key] = " ".join(fields)
        elif kind == "end" and not fields:
            self.tokens.discard(f"LIFECYCLE_CONTAINMENT_ID={key}".encode())
            self.roots.pop(key, None)
            self.pids.pop(key, None)
            self.cgroups.pop(key, None)

    def empty(self) -> bool:
        return not (self.tokens or self.roots or self.pids or self.cgroups)


def _stat(pid: int) -> tuple[str, int, int] | None:
    """(state, process group, start time) of *pid*, or ``None``."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as file:  # noqa: PTH123 - no pathlib import here
            raw = file.read()
    except OSError:
        return None
    fields = raw[raw.rfind(b")") + 2 :].split()
    return fields[0].decode(), int(fields[2]), int(fields[19])


def _environ(pid: int) -> list[bytes]:
    try:
        with open(f"/proc/{pid}/environ", "rb") as file:  # noqa: PTH123 - see _stat
            return file.read().split(b"\0")
    except OSError:
        return []


def sweep(owned: Owned) -> int:
    """Kill every live process the service owns, once; return how many were signalled."""
    me = os.getpid()
    pids = {pid: start for table in (*owned.roots.values(), *owned.pids.values()) for pid, start in table.items()}
    roots = {pid: start for table in owned.roots.values() for pid, start in table.items()}
    # A root's process group is its own while the root lives, or while no other process
    # has its pid (the kernel does not give out a pid still in use as a group id).
    groups = set()
    for pid, start in roots.items():
        stat = _stat(pid)
        if stat is None or stat[2] == start:
            groups.add(pid)
    killed = 0
    for entry in os.listdir("/proc"):  # noqa: PTH208 - no pathlib import here
        if not entry.isdigit() or int(entry) == me:
            continue
        pid = int(entry)
        stat = _stat(pid)
        if stat is None or stat[0] in {"Z", "X"}:
            continue
        ours = pids.get(pid) == stat[2] or stat[1] in groups
        if not ours and owned.tokens:
            ours = not owned.tokens.isdisjoint(_environ(pid))
        if ours:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                continue
            killed += 1
    return killed


def end_all(owned: Owned) -> None:
    """The service is gone: kill everything it owned, then remove its cgroups."""
    for path in owned.cgroups.values():
        try:
            with open(os.path.join(path, "cgroup.kill"), "w") as file:  # noqa: PTH118, PTH123 - see _stat
                file.write("1")
        except OSError:
            pass
    for _ in range(_ROUNDS):
        sweep(owned)
        time.sleep(_ROUND_PAUSE)
    for path in owned.cgroups.values():
        for _ in range(20):
            try:
                os.rmdir(path)  # noqa: PTH106 - see _stat
            except FileNotFoundError:
                break
            except OSError:  # still populated for a moment after the kill
                time.sleep(_ROUND_PAUSE)
            else:
                break


def watch(service: int, parent: Callable[[], int] = os.getppid) -> int | None:
    """A pidfd of the service, or ``None`` when it is gone (or pidfds are not available)."""
    try:
        watched = os.pidfd_open(service)
    except OSError:
        return None
    if parent() != service:  # it died before this process could watch it (asked after the pidfd is open)
        os.close(watched)
        return None
    return watched


def follow(watched: int, owned: Owned, source: int = 0) -> None:
    """Apply the service's lines, read from the file descriptor *source*, until it dies or closes the pipe."""
    poller = select.poll()
    poller.register(source, select.POLLIN)
    poller.register(watched, select.POLLIN)
    pending = b""
    while True:
        if any(fd == watched for fd, _ in poller.poll()):
            # The service died: what it wrote before is still in the pipe.
            os.set_blocking(source, False)
        try:
            chunk = os.read(source, 65536)
        except BlockingIOError:
            chunk = b""
        if not chunk:
            return
        pending += chunk
        *lines, pending = pending.split(b"\n")
        for line in lines:
            owned.apply(line.decode("utf-8", "replace"))


def main(args: list[str]) -> None:
    """Follow the service until it dies, then end what it owned."""
    for number in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(number, signal.SIG_IGN)
    watched = watch(int(args[0]))
    if watched is None:
        return
    owned = Owned()
    follow(watched, owned)
    if not owned.empty():
        end_all(owned)


if __name__ == "__main__":
    main(sys.argv[1:])
