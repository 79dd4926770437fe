"""A state file other processes can read: pid, state and a timestamp, replaced atomically."""

from __future__ import annotations

import json
import os
import secrets
import threading
import time
from pathlib import Path
from typing import final

import anyio
import anyio.to_thread
import attrs

from lifecycle._core._context import Context
from lifecycle._core._observe import Subscription
from lifecycle._core._report import ShutdownReport
from lifecycle._core._safe_logging import safe_logger
from lifecycle._core._states import State
from lifecycle._core._validation import Option
from lifecycle._host._running_tree import RunningTree, current_tree

__all__ = ["StateFile", "StateRecord", "read_state_file", "write_state_file"]

_log = safe_logger("lifecycle.state_file")
_MODE = 0o644


@final
@attrs.frozen
class StateRecord:
    """
    What a state file says about a process.

    Attributes:
        pid: The process id.

        tree: The root component's name.

        state: ``"starting"``, ``"running"``, ``"stopping"``, ``"stopped"`` or ``"failed"``.

        timestamp: When it was written, in seconds since the epoch
            (``time.time()``); a heartbeat older than a few intervals means
            the process is stuck or gone.

    .. versionadded:: 0.1.0
    """

    pid: int
    tree: str
    state: str
    timestamp: float

    def to_dict(self) -> dict[str, object]:
        """Return the record as a JSON-ready dict."""
        return attrs.asdict(self)


def write_state_file(path: str | os.PathLike[str], record: StateRecord) -> None:
    """
    Replace *path* with *record*, atomically.

    The JSON is written to a temporary file in the same directory, flushed to
    disk with ``fsync``, then renamed over *path* (and the directory synced), so
    a reader sees the old record or the new one, never a partial one. The file
    is readable by everyone (mode ``0644``, less what the umask removes). This
    function blocks: from async code, call it in a worker thread.

    .. versionchanged:: 0.1.0
       The file is created ``0644`` (less the umask), not ``0600``.

    Raises:
        OSError: The directory is not writable.
    """
    target = Path(path)
    data = json.dumps(record.to_dict(), sort_keys=True).encode() + b"\n"
    # Not tempfile.mkstemp: its files are 0600, and the state file is for other
    # processes to read. 0644 minus the umask, created exclusively (never an
    # existing file or a planted symlink).
    temporary = target.parent / f".{target.name}.{secrets.token_hex(8)}.tmp"
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | os.O_NOFOLLOW, _MODE)
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        Path(temporary).replace(target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    directory = os.open(target.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def read_state_file(path: str | os.PathLike[str]) -> StateRecord:
    """
    Read the record a :class:`StateFile` (or :func:`write_state_file`) wrote at *path*.

    Raises:
        FileNotFoundError: There is no state file.

        ValueError: The file is not a state record.

    .. versionadded:: 0.1.0
    """
    raw = json.loads(Path(path).read_text())
    try:
        return StateRecord(
            pid=int(raw["pid"]), tree=str(raw["tree"]), state=str(raw["state"]), timestamp=float(raw["timestamp"])
        )
    except (KeyError, TypeError) as exc:
        msg = f"{str(path)!r} is not a lifecycle state file: {raw!r}."
        raise ValueError(msg) from exc


def _state_of(tree: RunningTree) -> str:
    if tree.failed:
        return "failed"
    if tree.report is not None:
        return "stopped"
    if tree.stop_requested:
        return "stopping"
    return "running" if tree.state is State.RUNNING else "starting"


@final
class StateFile:
    """
    Keep a state file up to date for other processes: a component.

    Add it with ``sup.add(StateFile(path), name="state", priority=Priority.CRITICAL)``.
    It writes a :class:`StateRecord` (pid, tree, state, timestamp) with
    :func:`write_state_file` when it starts, whenever the tree's state changes,
    and every *interval* seconds as a heartbeat; the last record, written when
    the tree has stopped, says ``"stopped"`` or ``"failed"``. Other processes
    read it with :func:`read_state_file`. Every write runs in a worker thread,
    so a slow disk never blocks the event loop; the last one in a thread of its
    own (:meth:`wait_written` waits for it). The file is readable by everyone
    (``0644`` less the umask).

    A write that fails while the component runs (a missing or read-only
    directory) fails the component with a :class:`~lifecycle.ComponentError`
    like any other error, so supervision handles it; the last write, after the
    tree has stopped, can only be logged (``state_file.write_failed``).
    Subscriptions end with each run, so restarts leave nothing behind.

    Args:
        path: The state file, e.g. ``/run/myservice/state.json``.

        interval: Seconds between heartbeats.

    .. versionadded:: 0.1.0
    """

    def __init__(self, path: str | os.PathLike[str], *, interval: float = 5.0) -> None:
        self.path = Path(path)
        self.interval = float(Option.seconds(finite=True).check("interval", interval))
        # The tree whose last record is still to be written, with that subscription:
        # one per tree, however often the component is restarted.
        self._final: tuple[RunningTree, Subscription] | None = None
        self._last_write: threading.Thread | None = None

    def wait_written(self, timeout: float | None = None) -> bool:
        """
        Wait until the last record (written in a thread once the tree has stopped) is on disk.

        Blocks the calling thread; ``True`` if no write is pending, ``False`` on
        *timeout*. A program that exits needs none of it (the interpreter waits
        for the write); a test that reads the file right after the tree stops does.

        .. versionadded:: 0.1.0
        """
        thread = self._last_write
        if thread is None:
            return True
        thread.join(timeout)
        return not thread.is_alive()

    def _write_last(self, record: StateRecord) -> None:
        try:
            write_state_file(self.path, record)
        except Exception:  # noqa: BLE001 - the tree has stopped: nothing is left to fail but the log
            _log.exception("state_file.write_failed", path=str(self.path), state=record.state)

    def record(self, tree: RunningTree) -> StateRecord:
        """Return the record for *tree* as it is now."""
        return StateRecord(pid=os.getpid(), tree=tree.name, state=_state_of(tree), timestamp=time.time())

    async def run(self, ctx: Context) -> None:
        """As a component: write on every change and heartbeat until stopped; provide this object."""
        tree = current_tree()
        changed = anyio.Event()

        def wake() -> None:
            changed.set()

        def final(_: ShutdownReport) -> None:
            # The tree has stopped (this component long before), and a callback
            # cannot await: the last write runs in a thread of its own, not on the
            # loop. Not a daemon, so the interpreter waits for it before exiting.
            thread = threading.Thread(
                target=self._write_last, args=(self.record(tree),), name=f"lifecycle:state-file:{self.path}"
            )
            self._last_write = thread
            thread.start()

        if self._final is None or self._final[0] is not tree or not self._final[1].active:
            self._final = (tree, tree.subscribe_report(final))
        with tree.subscribe_stop(wake), tree.subscribe_ready(wake):
            await anyio.to_thread.run_sync(write_state_file, self.path, self.record(tree))
            ctx.ready(self)
            while True:
                with anyio.move_on_after(self.interval):
                    await changed.wait()
                changed = anyio.Event()
                with anyio.CancelScope(shield=ctx.stopping.is_set()):
                    await anyio.to_thread.run_sync(write_state_file, self.path, self.record(tree))
