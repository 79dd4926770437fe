"""A single-instance lock: an advisory ``flock`` on a path, naming its holder."""

from __future__ import annotations

import errno
import fcntl
import os
import stat
from pathlib import Path
from types import TracebackType
from typing import final

import anyio

from lifecycle._core._context import Context
from lifecycle._core._errors import ConfigurationError, LifecycleError

__all__ = ["AlreadyRunningError", "InstanceLock"]


class AlreadyRunningError(LifecycleError, RuntimeError):
    """
    Another process holds the single-instance lock.

    Args:
        path: The lock file.

        pid: The holder's process id, if it could be read.

    Attributes:
        path: The lock file.

        pid: The holder's process id, or ``None`` if it had not written it yet.

    .. versionadded:: 0.1.0
    """

    def __init__(self, path: str | os.PathLike[str], pid: int | None) -> None:
        holder = f"process {pid}" if pid is not None else "another process (its pid is not written yet)"
        msg = (
            f"Another instance is already running: {holder} holds the lock {str(path)!r}. "
            "Stop it first, or give this instance another lock path."
        )
        super().__init__(msg)
        self.path = Path(path)
        self.pid = pid


def _open_lock_file(path: Path) -> int:
    """
    Open (or create) the lock file at *path*, refusing anything but a plain regular file.

    ``O_NOFOLLOW`` refuses a symlink in the last place, so a planted
    ``lock -> /etc/victim.conf`` never gets a pid written into its target; a
    hard link to another file, a FIFO, a device or a directory is refused too.
    """
    flags = os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0)
    try:
        fd = os.open(path, flags, 0o644)
    except OSError as exc:
        if exc.errno in {errno.ELOOP, errno.EMLINK, errno.EISDIR, errno.ENXIO}:
            msg = (
                f"The lock file {str(path)!r} is not a regular file ({os.strerror(exc.errno)}): "
                "InstanceLock never follows a symlink; remove it or choose another path."
            )
            raise ConfigurationError(msg) from exc
        raise
    try:
        info = os.fstat(fd)
    except BaseException:
        os.close(fd)
        raise
    if not stat.S_ISREG(info.st_mode) or info.st_nlink != 1:
        os.close(fd)
        what = "a hard link to another file" if stat.S_ISREG(info.st_mode) else "not a regular file"
        msg = f"The lock file {str(path)!r} is {what}; InstanceLock refuses it: remove it or choose another path."
        raise ConfigurationError(msg)
    return fd


def _read_pid(fd: int) -> int | None:
    os.lseek(fd, 0, os.SEEK_SET)
    raw = os.read(fd, 64).decode("ascii", "replace").strip()
    return int(raw) if raw.isdigit() else None


@final
class InstanceLock:
    """
    Make sure one instance of a program runs at a time, with an advisory ``flock``.

    :meth:`acquire` takes an exclusive, non-blocking ``flock`` on *path* (created
    if needed) and writes this process's pid into it; a second instance fails at
    once with :class:`AlreadyRunningError` naming the holder's pid. The kernel
    releases the lock when the process dies, however it dies, so a stale file
    never blocks a restart. The file is left in place on release (removing it
    would let two processes lock two different files of the same name).

    Use it around :func:`~lifecycle.run` (``with InstanceLock(path): run(tree)``),
    or add it to the tree as a ``CRITICAL`` component
    (``sup.add(InstanceLock(path), name="lock", priority=Priority.CRITICAL)``) so
    it is taken first and released last; it then provides itself.

    Args:
        path: The lock file, e.g. ``/run/myservice/lock``.

    Attributes:
        path: The lock file.

    .. versionadded:: 0.1.0
    """

    __slots__ = ("_fd", "path")

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        """``True`` while this object holds the lock."""
        return self._fd is not None

    def acquire(self) -> None:
        """
        Take the lock now, or fail at once; never waits.

        Raises:
            AlreadyRunningError: Another process holds it.

            RuntimeError: This object holds it already.

            ConfigurationError: *path* is a symlink (never followed), a hard
                link, or not a regular file.

            OSError: The file cannot be opened or written.
        """
        if self._fd is not None:
            msg = f"The lock {str(self.path)!r} is already held by this InstanceLock; release it first."
            raise RuntimeError(msg)
        fd = _open_lock_file(self.path)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = _read_pid(fd)
            os.close(fd)
            raise AlreadyRunningError(self.path, pid) from None
        except BaseException:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        """
        Release the lock (idempotent); the pid is erased from the file first.

        Only a lock this object holds is touched: releasing one it never took
        (or took and released) changes no file.
        """
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            os.ftruncate(fd, 0)
        finally:
            os.close(fd)  # closing the last descriptor releases the flock

    def __enter__(self) -> InstanceLock:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()

    async def run(self, ctx: Context) -> None:
        """As a component: take the lock, provide this object, and release it when stopped."""
        self.acquire()
        try:
            ctx.ready(self)
            await anyio.sleep_forever()
        finally:
            self.release()

    def __repr__(self) -> str:
        return f"<InstanceLock {str(self.path)!r} {'held' if self.held else 'not held'}>"
