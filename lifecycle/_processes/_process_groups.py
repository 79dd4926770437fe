"""
Process groups: argument lists, signalling a child's whole group, and sweeping it.

A child started with ``start_new_session=True`` leads a new session and process
group whose id is its pid; everything it starts stays in that group unless it
leaves on purpose (``setsid``, ``setpgid``). Signalling the group reaches them
all, and killing the group after the child exits leaves no orphan behind.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

import anyio
import anyio.abc
import anyio.to_thread

from lifecycle._core._errors import ConfigurationError
from lifecycle._core._validation import Option

from ._containment import reap_orphan, start_time
from ._probes import wait_for_exit

__all__ = ["check_argv", "program_name", "reap_and_sweep", "signal_group", "sweep_group", "wait_group_empty"]

# A process killed with SIGKILL is gone within milliseconds unless it is stuck
# in the kernel (uninterruptible sleep); the sweep does not wait longer than this.
SWEEP_WAIT = 5.0


def check_argv(argv: object, owner: str) -> tuple[str, ...]:
    """
    Return *argv* as a tuple of strings, or explain why it is not an argument list.

    Raises:
        ConfigurationError: *argv* is a string, empty, or holds something other
            than strings and paths.
    """
    if isinstance(argv, str | bytes):
        msg = (
            f"`argv` of {owner} must be a list of arguments, got the string {argv!r}: the program is "
            "started directly and never through a shell, so a string would be one program name with "
            "its spaces. Write the arguments as a list, e.g. ['redis-server', '--port', '6380']; for "
            "shell syntax, run the shell explicitly: ['sh', '-c', '...']."
        )
        raise ConfigurationError(msg)
    if not isinstance(argv, Sequence) or not argv:
        raise Option.error("argv", argv, "a non-empty list of arguments (the program first)", owner=owner)
    out: list[str] = []
    for arg in argv:
        if not isinstance(arg, str | os.PathLike):
            msg = f"`argv` of {owner} must hold only strings and paths, got {arg!r} in {argv!r}."
            raise ConfigurationError(msg)
        out.append(os.fspath(arg))
    return tuple(out)


def program_name(argv: Sequence[str]) -> str:
    """The file name of the program, for messages and as a default component name."""
    return Path(argv[0]).name or "process"


def signal_group(pgid: int, sig: int) -> bool:
    """Send *sig* to every process in the group; ``False`` if the group is empty."""
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        return False
    return True


def _members(pgid: int) -> list[int]:
    """The live (not zombie) processes of the group, from /proc; ``[]`` where there is no /proc; reaps our orphans."""
    found: list[int] = []
    me = os.getpid()
    try:
        entries = os.listdir("/proc")  # noqa: PTH208 - names only, in the hot loop of a scan
    except OSError:  # pragma: no cover - every Linux has /proc
        return found
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as file:  # noqa: PTH123 - the hot loop of a scan
                stat = file.read()
        except OSError:
            continue  # exited while we looked
        # "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses.
        fields = stat[stat.rfind(b")") + 2 :].split()
        if int(fields[2]) != pgid:
            continue
        if fields[0] != b"Z":
            found.append(int(entry))
        elif int(fields[1]) == me and int(entry) != pgid:
            # A member re-parented to this process (a child subreaper) when its
            # leader died: ours to reap, by its own pid. The leader is anyio's.
            with contextlib.suppress(ChildProcessError):
                os.waitpid(int(entry), os.WNOHANG)
    return found


def _kill_members(pgid: int) -> tuple[list[int], list[int]]:
    survivors = _members(pgid) if sys.platform == "linux" else []
    if not signal_group(pgid, signal.SIGKILL):
        return [], []
    return survivors, (_members(pgid) if sys.platform == "linux" else [])


async def sweep_group(pgid: int) -> list[int]:
    """
    Kill with SIGKILL whatever is left in the group, and wait until it is dead.

    Returns the pids that were still alive (zombies do not count). On Linux
    it waits (up to :data:`SWEEP_WAIT` seconds each) until those processes
    have exited; reaping them is their parent's (or init's) job. A checkpoint;
    not shielded, so shield it where it must finish.
    """
    if sys.platform == "linux":
        # A /proc scan reads a file per process: not on the event loop's thread.
        survivors, dying = await anyio.to_thread.run_sync(_kill_members, pgid)
    else:  # pragma: no cover - the suite runs on Linux
        survivors, dying = [], []
        signal_group(pgid, signal.SIGKILL)
    starts = {pid: start_time(pid) for pid in dying}
    for pid in dying:
        try:
            await wait_for_exit(pid, timeout=SWEEP_WAIT)
        except TimeoutError:  # pragma: no cover - needs a process stuck in the kernel
            continue
        # Re-parented to this process (a child subreaper) once its leader died: ours to reap.
        reap_orphan(pid, starts[pid])
    return survivors


async def wait_group_empty(pgid: int) -> None:
    """
    Wait until no live process is left in the group (zombies do not count).

    On Linux it finds the members in /proc and waits on each with a pidfd, then
    looks again, until none is left; elsewhere, where members cannot be
    listed, it kills the group with SIGKILL instead. A checkpoint; not shielded.
    """
    if sys.platform != "linux":  # pragma: no cover - the suite runs on Linux
        signal_group(pgid, signal.SIGKILL)
        return
    while members := await anyio.to_thread.run_sync(_members, pgid):
        starts = {pid: start_time(pid) for pid in members}
        for pid in members:
            await wait_for_exit(pid)
            reap_orphan(pid, starts[pid])


async def reap_and_sweep(process: anyio.abc.Process) -> tuple[int, list[int]]:
    """
    Wait until *process* exits, kill what is left of its group, then reap it.

    The group is swept while the leader is still a zombie where the backend
    allows (Linux: trio always; asyncio reaps at once in its child watcher), so
    the group id cannot have been reused by then. Returns the exit status and
    the pids the sweep killed. A checkpoint; not shielded.
    """
    await wait_for_exit(process.pid)
    survivors = await sweep_group(process.pid)
    returncode = await process.wait()
    return returncode, survivors
