"""
Containment: every descendant of a child process is found, signalled, killed and reaped.

On Linux a child of a :class:`~lifecycle.ProcessComponent` is contained by one
of two mechanisms, named in its ``process.contained`` event and its report:

``cgroup``
    A cgroup v2 of its own, below this process's cgroup, when that one is
    writable (systemd's ``Delegate=yes``, a container with a writable cgroup).
    Nothing leaves a cgroup without privileges: its ``cgroup.procs`` is the
    exact list of descendants, and ``cgroup.kill`` ends them all at once.

``tree``
    The process tree, read from ``/proc``: descendants are found through their
    parent links from the child, plus processes re-parented to this process.
    This process is a child subreaper (``PR_SET_CHILD_SUBREAPER``), so a
    descendant whose parent exits (``setsid`` then exit, a double-forking
    daemon) is re-parented here instead of to init, still carrying the
    ``LIFECYCLE_CONTAINMENT_ID`` of its component in its environment.

Either way the child is started through :mod:`._exec_helper`, which gives it a
parent-death signal (SIGKILL) where the fork happens in the loop's thread, and
the guardian (:mod:`._guardian`) learns what each containment owns, so the
child and its descendants die with this process even when this process is
killed with SIGKILL, on every backend. Re-parented descendants are reaped by
``waitpid`` on their own pid, never ``waitpid(-1)``, which would steal the exit
statuses anyio waits for. Elsewhere (``process group``) only the child's
process group is reached, as before.
"""

from __future__ import annotations

import contextlib
import ctypes
import itertools
import os
import secrets
import signal
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Literal, final

import anyio
import anyio.to_thread

from lifecycle._core._backends import spawns_in_worker_thread
from lifecycle._core._last_resort import on_hard_exit
from lifecycle._core._safe_logging import module_logger
from lifecycle._core._settings import CONTAINMENT_ID_VARIABLE, PROCESS_CONTAINMENT

from ._guardian import tell_guardian
from ._probes import wait_for_exit

_log = module_logger

__all__ = [
    "TOKEN_VARIABLE",
    "Containment",
    "Mechanism",
    "kill_everything",
    "parent_death_command",
    "reap_orphan",
    "remove_stale",
    "resolve_program",
    "scan",
    "start_time",
]

Mechanism = Literal["cgroup", "tree", "process group"]

#: Set in the environment of every contained child: orphans re-parented to
#: this process are attributed to their component by it.
TOKEN_VARIABLE = CONTAINMENT_ID_VARIABLE

_LINUX = sys.platform == "linux"
_HELPER = str(Path(__file__).with_name("_exec_helper.py"))
_PR_SET_CHILD_SUBREAPER = 36

_lock = threading.Lock()
_subreaper: bool | None = None
_cgroup_base: Path | bool | None = False  # False: not probed yet
_names = itertools.count()
# Every containment whose processes may still run: the hard exit kills them all.
_live: set[Containment] = set()


def become_subreaper() -> bool:
    """Make this process a child subreaper (once); ``False`` where that is not possible."""
    global _subreaper  # noqa: PLW0603 - a property of the whole process, set once
    with _lock:
        if _subreaper is None:
            _subreaper = False
            if _LINUX:
                libc = ctypes.CDLL(None, use_errno=True)
                _subreaper = libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
        return _subreaper


def _own_cgroup() -> Path | None:
    """This process's cgroup v2 directory, if it is in a cgroup v2 hierarchy we can see."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
        mounts = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:  # pragma: no cover - every Linux has both
        return None
    path = next((line[3:] for line in lines if line.startswith("0::")), None)
    if path is None:
        return None
    for mount in mounts:
        left, _, right = mount.partition(" - ")
        if right.split()[:1] == ["cgroup2"]:
            fields = left.split()
            root, point = fields[3], fields[4]
            if path == root or path.startswith(root.rstrip("/") + "/"):
                return Path(point) / path[len(root.rstrip("/")) :].lstrip("/")
    return None


def cgroup_base() -> Path | None:
    """The writable cgroup v2 below which children get cgroups of their own, or ``None`` (probed once)."""
    global _cgroup_base  # noqa: PLW0603 - probed once per process
    with _lock:
        if _cgroup_base is False:
            _cgroup_base = None
            base = _own_cgroup() if _LINUX else None
            if base is not None:
                probe = base / f"lifecycle-probe-{os.getpid()}"
                try:
                    probe.mkdir()
                except OSError:
                    pass
                else:
                    # cgroup.kill came with Linux 5.14; the root cgroup has none, a child has.
                    if (probe / "cgroup.kill").exists():
                        _cgroup_base = base
                    probe.rmdir()
                    remove_stale(base)
        return _cgroup_base if isinstance(_cgroup_base, Path) else None


def remove_stale(base: Path) -> list[Path]:
    """
    Kill what is left in the cgroups of services that died without removing them, and remove them.

    A service killed with SIGKILL cannot stop its children's descendants; the
    next service started with the same cgroup (a restart by systemd, by a
    container runtime) ends them. Returns the cgroups it removed.
    """
    removed = []
    for folder in base.glob("lifecycle-*-*"):
        owner = folder.name.split("-")[1]
        if not owner.isdigit() or Path(f"/proc/{owner}").exists():
            continue
        with contextlib.suppress(OSError):
            (folder / "cgroup.kill").write_text("1")
        for _ in range(50):
            try:
                folder.rmdir()
            except FileNotFoundError:
                break
            except OSError:  # still populated for a moment
                time.sleep(0.01)
            else:
                removed.append(folder)
                break
    return removed


def resolve_program(program: str, env: Mapping[str, str], cwd: str | None) -> str:
    """
    The file that ``execvp`` would run for *program*, as an absolute path.

    Raises:
        FileNotFoundError: No such program.

        PermissionError: It exists but cannot be executed.
    """
    if "/" in program:
        candidates = [Path(cwd or ".") / program]
    else:
        candidates = [Path(folder or ".") / program for folder in env.get("PATH", os.defpath).split(os.pathsep)]
    denied = None
    for candidate in candidates:
        if candidate.is_file():
            if os.access(candidate, os.X_OK):
                return str(candidate.absolute())
            denied = candidate
    if denied is not None:
        raise PermissionError(13, os.strerror(13), str(denied))
    raise FileNotFoundError(2, os.strerror(2), program)


def parent_death_command(argv: tuple[str, ...], env: Mapping[str, str], cwd: str | None) -> list[str]:
    """
    The argv that starts *argv* with SIGKILL as its parent-death signal (Linux; elsewhere *argv*).

    Not under Trio, which forks in a worker thread (see ``spawns_in_worker_thread``):
    there the child gets no parent-death signal.

    Raises:
        OSError: The program cannot be found or executed.
    """
    if not _LINUX:  # pragma: no cover - the suite runs on Linux
        return list(argv)
    program = resolve_program(argv[0], env, cwd)
    # Under Trio the fork happens in a worker thread that ends when idle, and the
    # signal follows the forking thread: it would kill the child ten seconds later.
    parent = "" if spawns_in_worker_thread() else str(os.getpid())
    return [sys.executable, "-I", "-S", _HELPER, parent, "", program, *argv]


# A process as /proc shows it: (state, ppid, pgrp, start time in clock ticks).
Stat = tuple[str, int, int, int]


def _stat(pid: int) -> Stat | None:
    # os.open and one os.read: a third cheaper than open(), in the hot loop of a scan.
    try:
        fd = os.open(f"/proc/{pid}/stat", os.O_RDONLY)
    except OSError:
        return None
    try:
        raw = os.read(fd, 4096)
    except OSError:
        return None
    finally:
        os.close(fd)
    # "pid (comm) state ppid pgrp session ... starttime": comm may hold spaces and parentheses.
    fields = raw[raw.rfind(b")") + 2 :].split()
    return fields[0].decode(), int(fields[1]), int(fields[2]), int(fields[19])


def scan() -> dict[int, Stat]:
    """Every process /proc shows, with its state, parent, group and start time."""
    found: dict[int, Stat] = {}
    for entry in os.listdir("/proc"):  # noqa: PTH208 - names only, in the hot loop of a scan
        if entry.isdigit():
            stat = _stat(int(entry))
            if stat is not None:
                found[int(entry)] = stat
    return found


_scan_lock = threading.Lock()
_last_scan: tuple[float, dict[int, Stat]] = (-1.0, {})


def recent_scan() -> tuple[float, dict[int, Stat]]:
    """
    A scan of /proc that began after this call did, with when it began: the stops of many children share scans.

    Scans are serialized; one that began while the callers were already
    waiting serves them all, so a hundred children stopping together cost a
    few scans, not a hundred. Call it holding no other lock, or the callers
    queue behind that lock instead and each needs a scan of its own.
    """
    global _last_scan  # noqa: PLW0603 - shared by every containment of the process
    asked = time.monotonic()
    with _scan_lock:
        taken, processes = _last_scan
        if taken < asked:
            taken = time.monotonic()
            processes = scan()
            _last_scan = (taken, processes)
        return taken, processes


def start_time(pid: int) -> int | None:
    """The start time of *pid* in clock ticks since boot (``None`` if it is gone): with the pid, its identity."""
    stat = _stat(pid) if _LINUX else None
    return None if stat is None else stat[3]


def reap_orphan(pid: int, start: int | None) -> None:
    """
    Reap *pid* if it was re-parented to this process and has exited.

    Only the process that started at *start* (a pid is reused once reaped),
    and only by its own pid: never ``waitpid(-1)``, which would take exit
    statuses that anyio waits for.
    """
    if start is None:
        return
    stat = _stat(pid)
    if stat is not None and stat[0] == "Z" and stat[1] == os.getpid() and stat[3] == start:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)


def _carries(pid: int, token: bytes) -> bool:
    try:
        with open(f"/proc/{pid}/environ", "rb") as file:  # noqa: PTH123 - see scan()
            return token in file.read().split(b"\0")
    except OSError:
        return False


def _signal(pid: int, sig: int) -> bool | None:
    """Send *sig*: ``True`` sent, ``False`` gone, ``None`` not ours to signal."""
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        return False
    except PermissionError:
        return None
    return True


@final
class Containment:
    """What one spawned child owns: its process group, its cgroup, every descendant found."""

    def __init__(self, name: str, mechanism: Mechanism, cgroup: Path | None) -> None:
        self.name = name
        self.mechanism: Mechanism = mechanism
        self.cgroup = cgroup
        self.token = secrets.token_hex(8)
        self.root: int | None = None
        # Descendants seen alive, with their start time (a reused pid is not theirs).
        self.known: dict[int, int] = {}
        # When the scan that first found each of them began: an older scan cannot forget it.
        self._found_at: dict[int, float] = {}
        # wait_empty() found no descendant alive and none to reap.
        self._emptied = False
        # Descendants that could not be signalled (not ours to signal).
        self.escaped: set[int] = set()

    @classmethod
    def create(cls, name: str) -> Containment:
        """Choose the mechanism for a new child (and make its cgroup)."""
        if not _LINUX:  # pragma: no cover - the suite runs on Linux
            return cls(name, "process group", None)
        become_subreaper()
        wanted = PROCESS_CONTAINMENT.read()
        base = cgroup_base() if wanted in {"auto", "cgroup"} else None
        if base is None and wanted == "cgroup":
            msg = (
                "LIFECYCLE_PROCESS_CONTAINMENT=cgroup, but no writable cgroup v2 was found for this process: "
                "run it with systemd's Delegate=yes or in a container with a writable cgroup, or use 'auto'."
            )
            raise OSError(msg)
        if base is not None:
            folder = base / f"lifecycle-{os.getpid()}-{next(_names)}"
            folder.mkdir()
            containment = cls(name, "cgroup", folder)
        else:
            containment = cls(name, "tree", None)
        # Known to the guardian before the child exists: it ends them if this process dies.
        tell_guardian(f"token {containment.token}")
        if containment.cgroup is not None:
            tell_guardian(f"cgroup {containment.token} {containment.cgroup}")
        return containment

    def command(self, argv: tuple[str, ...], env: dict[str, str], cwd: str | None) -> list[str]:
        """The argv that starts *argv* contained; adds the token to *env*."""
        if self.mechanism == "process group":  # pragma: no cover - the suite runs on Linux
            return list(argv)
        env[TOKEN_VARIABLE] = self.token
        command = parent_death_command(argv, env, cwd)
        if self.cgroup is not None:
            command[5] = str(self.cgroup / "cgroup.procs")
        return command

    def attach(self, pid: int) -> None:
        """The child has been spawned as *pid*: it is now live."""
        self.root = pid
        _live.add(self)
        on_hard_exit(kill_everything)
        if self.mechanism != "process group":
            tell_guardian(f"root {self.token} {pid} {start_time(pid) or 0}")
        if self.mechanism == "tree":
            _start_recorder()

    def members(self, scanned: tuple[float, dict[int, Stat]] | None = None) -> list[int]:
        """
        The live descendants of the child (not the child itself), recorded as found.

        Blocking (reads /proc): call it in a worker thread. Re-parented
        descendants that have exited are reaped here. *scanned* is a scan
        to use instead of a new one (the recorder's), with when it began.
        """
        if self.mechanism == "process group":  # pragma: no cover - the suite runs on Linux
            return []
        if scanned is None and self.cgroup is None:
            scanned = recent_scan()  # outside the lock: callers waiting together share one scan
        with _state_lock:  # the recorder thread updates the same records
            return self._members(scanned)

    def _members(self, scanned: tuple[float, dict[int, Stat]] | None) -> list[int]:
        me = os.getpid()
        live: set[int] = set()
        taken = time.monotonic()
        if self.cgroup is not None:
            # The cgroup's list is exact: no scan of /proc needed, only the pids it names.
            with contextlib.suppress(OSError):
                live.update(int(p) for p in (self.cgroup / "cgroup.procs").read_text().split())
            processes = {pid: stat for pid in live | self.known.keys() if (stat := _stat(pid)) is not None}
            # A process leaves the cgroup's list as its exit begins, before it is a zombie: wait for it too.
            live.update(pid for pid, start in self.known.items() if processes.get(pid, ("Z", 0, 0, start))[0] != "Z")
        else:
            assert scanned is not None  # noqa: S101 - members() scans for the tree mechanism
            taken, processes = scanned
            self._descendants(processes, me, live)
        live.discard(self.root or 0)
        found = []
        for pid in live:
            stat = processes.get(pid)
            if stat is not None and pid not in self.known:
                self.known[pid] = stat[3]
                self._found_at[pid] = taken
                found.append(f"pid {self.token} {pid} {stat[3]}")
        if found:
            tell_guardian(*found)
        self._reap(processes, me, taken)
        # One that could not be signalled is reported, not waited for.
        live -= self.escaped
        return sorted(pid for pid in live if pid in processes and processes[pid][0] != "Z")

    def _descendants(self, processes: Mapping[int, Stat], me: int, live: set[int]) -> None:
        """Add to *live* the child's descendants by their parent links, and the orphans carrying its token."""
        children: dict[int, list[int]] = {}
        for pid, (_, ppid, _, _) in processes.items():
            children.setdefault(ppid, []).append(pid)
        token = f"{TOKEN_VARIABLE}={self.token}".encode()
        roots = {containment.root for containment in list(_live)}
        starts = [pid for pid, start in self.known.items() if processes.get(pid, ("", 0, 0, -1))[3] == start]
        starts += [
            pid for pid in children.get(me, ()) if pid not in self.known and pid not in roots and _carries(pid, token)
        ]
        if self.root is not None:
            starts.append(self.root)
            starts += [pid for pid, stat in processes.items() if stat[2] == self.root]
        stack = list(starts)
        while stack:
            pid = stack.pop()
            if pid in live or pid not in processes:
                continue
            live.add(pid)
            stack.extend(children.get(pid, ()))

    def _reap(self, processes: Mapping[int, Stat], me: int, taken: float) -> None:
        """Reap the known descendants that exited here; forget the vanished ones (seen by a scan *taken* later)."""
        for pid, start in list(self.known.items()):
            stat = processes.get(pid)
            if stat is None or stat[3] != start:
                # A scan that began before it was found does not show it yet.
                if self._found_at.get(pid, 0.0) < taken:
                    del self.known[pid]
                    self._found_at.pop(pid, None)
            elif stat[0] == "Z" and stat[1] == me:
                # Re-parented here and exited: ours to reap, by its own pid only.
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(pid, os.WNOHANG)
                del self.known[pid]
                self._found_at.pop(pid, None)

    def signal(self, sig: int, members: list[int]) -> None:
        """Send *sig* to the child's group and to every member (blocking-free)."""
        if self.root is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.root, sig)
        for pid in members:
            if _signal(pid, sig) is None:
                self.escaped.add(pid)

    def kill(self) -> list[int]:
        """SIGKILL everything the child owns, at once; return the pids found alive. Blocking."""
        # Found first: a process leaves cgroup.procs as soon as cgroup.kill kills it,
        # and one found only afterwards would be neither reported nor reaped.
        members = self.members()
        if self.cgroup is not None:
            with contextlib.suppress(OSError):
                (self.cgroup / "cgroup.kill").write_text("1")
        self.signal(signal.SIGKILL, members)
        return members

    async def wait_empty(self) -> None:
        """Wait until no descendant of the child is left alive (the child itself aside). Not shielded."""
        while members := await anyio.to_thread.run_sync(self.members):
            for pid in members:
                await wait_for_exit(pid)
        # Nothing left alive, nothing left to reap: unless the child still runs, nothing new can appear.
        self._emptied = not self.known

    async def aclose(self) -> None:
        """Reap what is left, remove the cgroup, and forget the child. Not shielded."""
        root = None if self.root is None else _stat(self.root)
        if not (self._emptied and (root is None or root[0] == "Z")):
            await anyio.to_thread.run_sync(self.members)
        _live.discard(self)
        if self.mechanism != "process group":
            tell_guardian(f"end {self.token}")
        if self.cgroup is not None:
            for _ in range(50):
                try:
                    self.cgroup.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:  # still populated for a moment after the last exit
                    await anyio.sleep(0.02)


# How often the descendants of children contained by their tree are recorded
# while they run, so that one whose parent exits later is still known.
RECORD_INTERVAL = 1.0
_state_lock = threading.RLock()
_recorder: threading.Thread | None = None


def _start_recorder() -> None:
    global _recorder  # noqa: PLW0603 - one recorder for the whole process
    with _lock:
        if _recorder is None:
            _recorder = threading.Thread(target=_record, name="lifecycle-process-recorder", daemon=True)
            _recorder.start()


def _record() -> None:
    """Record the descendants of every child contained by its tree, every RECORD_INTERVAL, while there are any."""
    global _recorder  # noqa: PLW0603 - see _start_recorder
    while True:
        time.sleep(RECORD_INTERVAL)
        with _lock:
            watched = [c for c in list(_live) if c.mechanism == "tree"]
            if not watched:
                _recorder = None
                return
        scanned = recent_scan()
        for containment in watched:
            with contextlib.suppress(Exception):  # a record is a best effort; the stop scans again
                containment.members(scanned)


def kill_everything() -> None:  # pragma: no cover - called by the hard exit, tested in a subprocess
    """SIGKILL every process of every live containment, synchronously (the hard exit)."""
    for containment in list(_live):
        with contextlib.suppress(Exception):
            containment.kill()
            _log.critical(
                "process.killed",
                component=containment.name,
                pid=containment.root,
                signal="SIGKILL",
                mechanism=containment.mechanism,
            )
    # The cgroups empty within milliseconds of cgroup.kill; remove them if they do.
    for containment in list(_live):
        for _ in range(25):
            if containment.cgroup is None:
                break
            try:
                containment.cgroup.rmdir()
            except OSError:
                time.sleep(0.004)
            else:
                break
