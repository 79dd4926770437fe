"""
Start a child process that dies with its parent, then become the real program.

Run by path, never imported: ``python -I -S _exec_helper.py PARENT PROCS PROGRAM ARGV0 ARGS...``
(an empty *PARENT*: no parent-death signal).
It joins the cgroup whose ``cgroup.procs`` file is *PROCS* (when not empty),
asks the kernel for SIGKILL when its parent dies (``PR_SET_PDEATHSIG``), checks
that *PARENT* is still its parent (the parent may have died before the request
took effect), and executes *PROGRAM* with the argument list ``ARGV0 ARGS...``.
The pid stays the same through the exec, and so do the process group, the
session and the parent-death signal (kept across ``execve`` except for
set-user-ID programs). It imports only ``ctypes``, ``os`` and ``sys``, so the
detour costs one short interpreter start and no ``preexec_fn`` runs in a
threaded parent.
"""

from __future__ import annotations

import ctypes
import os
import sys

_PR_SET_PDEATHSIG = 1
_SIGKILL = 9
# Exit codes of the helper itself, as a shell reports a command it could not run.
_CANNOT_CONTAIN = 126


def _fail(message: str) -> None:
    sys.stderr.write(f"lifecycle: {message}\n")
    sys.stderr.flush()
    os._exit(_CANNOT_CONTAIN)


def main(args: list[str]) -> None:
    """Contain this process as the arguments say, then execute the program."""
    parent, procs, program, *argv = args
    if procs:
        try:
            with open(procs, "w") as file:  # noqa: PTH123 - pathlib costs an import here
                file.write("0")  # "0": the writing process itself
        except OSError as error:
            _fail(f"cannot join the cgroup {os.path.dirname(procs)!r}: {error}")  # noqa: PTH120 - see above
    if parent:  # empty: forked by a thread that may end first, so no parent-death signal
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(_PR_SET_PDEATHSIG, _SIGKILL, 0, 0, 0) != 0:
            _fail(f"prctl(PR_SET_PDEATHSIG) failed: {os.strerror(ctypes.get_errno())}")
        if os.getppid() != int(parent):
            # The parent died before the request took effect: the signal will never come.
            os.kill(os.getpid(), _SIGKILL)
    try:
        os.execv(program, argv)  # noqa: S606 - an argument list, never a shell, by design
    except OSError as error:
        _fail(f"cannot execute {program!r}: {error}")


if __name__ == "__main__":
    main(sys.argv[1:])
