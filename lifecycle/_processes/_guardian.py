"""
The service's side of the guardian: what the tree's child processes are, told to a process that outlives it.

A parent-death signal kills a child when the thread that forked it ends, not
when the process does, so it cannot be given where the fork happens in a
worker thread (Trio); and it reaches only the child, not the descendants that
left its process group. The guardian (:mod:`._guardian_process`) covers both:
started once per process, the first time a contained child is spawned
(Linux), it learns each containment's id, child, recorded descendants and
cgroup, and kills whatever of them still runs the moment this process dies,
SIGKILL included. A stop that ends normally tells it to forget them.

Writes are a few bytes to a pipe, from any thread. When the guardian cannot
be started or has died, ``process.guardian_lost`` is logged once and the
children keep the protection they have without it.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import subprocess
import sys
import threading
from pathlib import Path

from lifecycle._core._safe_logging import module_logger

__all__ = ["guardian_pid", "tell_guardian"]

_log = module_logger
_PROGRAM = str(Path(__file__).with_name("_guardian_process.py"))
_lock = threading.Lock()
_guardian: subprocess.Popen[bytes] | None = None
_owner = 0  # the pid of the process that started it (a forked copy of this one needs its own)
_lost = False


def _start() -> subprocess.Popen[bytes] | None:
    global _guardian, _owner, _lost  # noqa: PLW0603 - one guardian per process
    if _guardian is not None and _owner == os.getpid():
        return _guardian
    if _lost and _owner == os.getpid():
        return None
    _owner = os.getpid()
    _lost = False
    try:
        _guardian = subprocess.Popen(  # noqa: S603 - our own program, an argument list
            [sys.executable, "-I", "-S", _PROGRAM, str(os.getpid())],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            start_new_session=True,
            close_fds=True,
        )
    except OSError as error:
        _gone(f"it could not be started: {error}")
        return None
    atexit.register(_release, _guardian)
    return _guardian


def _release(guardian: subprocess.Popen[bytes]) -> None:
    """This process exits normally: let the guardian go (it has nothing left to kill) and reap it."""
    if guardian.stdin is not None:
        with contextlib.suppress(OSError):
            guardian.stdin.close()
    with contextlib.suppress(subprocess.TimeoutExpired):
        guardian.wait(timeout=2)


def _gone(why: str) -> None:
    global _guardian, _lost  # noqa: PLW0603 - see _start
    _guardian = None
    _lost = True
    _log.warning(
        "process.guardian_lost",
        detail=f"the process that kills child processes when this one dies is gone ({why}); "
        "children started from now on die with it only where a parent-death signal reaches them",
    )


def tell_guardian(*lines: str) -> None:
    """Send *lines* to the guardian, starting it if needed (Linux only; never raises)."""
    if sys.platform != "linux":  # pragma: no cover - the suite runs on Linux
        return
    data = "".join(f"{line}\n" for line in lines).encode()
    with _lock:
        guardian = _start()
        if guardian is None or guardian.stdin is None:
            return
        try:
            guardian.stdin.write(data)
            guardian.stdin.flush()
        except OSError as error:  # it died: EPIPE
            with contextlib.suppress(OSError):
                guardian.stdin.close()
            _gone(str(error))


def guardian_pid() -> int | None:
    """The pid of this process's guardian, if it runs."""
    with _lock:
        return _guardian.pid if _guardian is not None and _owner == os.getpid() else None
