"""Telling systemd about the tree: the sd_notify protocol over ``NOTIFY_SOCKET``."""

from __future__ import annotations

import math
import os
import socket
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, final

import anyio
import anyio.abc

from lifecycle._core._policy import Phase
from lifecycle._core._safe_logging import safe_logger

if TYPE_CHECKING:
    from lifecycle import ReloadReport
    from lifecycle._host._running_tree import RunningTree

__all__ = ["EXTEND_INTERVAL", "SystemdNotifier", "monotonic_usec", "notify_systemd", "sanitize", "watchdog_interval"]

_log = safe_logger("lifecycle.systemd")

#: How often a start or stop that makes progress asks systemd for more time;
#: each request extends the timeout by twice this.
EXTEND_INTERVAL = 10.0

_MAX_STATUS = 200


def sanitize(text: str, limit: int = _MAX_STATUS) -> str:
    """
    Return *text* as one short line that is safe in an sd_notify message.

    Newlines and other control characters would start a new assignment (a
    component name or an error message could forge ``READY=1``): they become
    spaces, runs of whitespace collapse, and the line is cut at *limit* characters.
    """
    line = " ".join("".join(ch if ch.isprintable() else " " for ch in text).split())
    if len(line) > limit:
        line = line[: limit - 3] + "..."
    return line


def socket_address(value: str) -> str | bytes | None:
    """
    Return the ``sendto`` address for a ``NOTIFY_SOCKET`` value, or ``None`` if unsupported.

    ``/path`` is a socket in the file system; ``@name`` is in Linux's abstract
    namespace (a leading NUL byte instead of the ``@``).
    """
    if value.startswith("@") and len(value) > 1:
        return b"\0" + os.fsencode(value[1:])
    if value.startswith("/"):
        return value
    return None


def monotonic_usec() -> int:
    """``CLOCK_MONOTONIC`` in microseconds, as ``MONOTONIC_USEC=`` wants it."""
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000


def watchdog_interval(environ: Mapping[str, str]) -> float | None:
    """
    Return the seconds between ``WATCHDOG=1`` pings, or ``None`` if the watchdog is off.

    systemd sets ``WATCHDOG_USEC`` (the watchdog timeout, in microseconds) and
    ``WATCHDOG_PID``; the watchdog is this process's only when ``WATCHDOG_PID``
    is unset or is our pid (like ``sd_watchdog_enabled()``). Pings go out every
    half of the timeout, as systemd recommends.
    """
    raw = environ.get("WATCHDOG_USEC", "").strip()
    if not raw:
        return None
    pid = environ.get("WATCHDOG_PID", "").strip()
    if pid and pid != str(os.getpid()):
        return None
    try:
        usec = int(raw)
    except ValueError:
        usec = 0
    if usec <= 0:
        _log.warning("notify.watchdog_invalid", WATCHDOG_USEC=raw, reason="not a positive number of microseconds")
        return None
    return usec / 2_000_000


@final
class SystemdNotifier:
    """
    Sends sd_notify datagrams to the service manager's socket.

    Sends never block and never raise: a message the socket does not take is
    logged (``notify.failed``) and dropped, since a service must not stop
    because its supervisor's socket is full.
    """

    __slots__ = ("_address", "_failed", "_sock")

    def __init__(self, address: str | bytes) -> None:
        self._address = address
        self._failed = False
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sock.setblocking(False)

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> SystemdNotifier | None:
        """Return a notifier for ``NOTIFY_SOCKET``, or ``None`` when it is unset or unsupported."""
        value = environ.get("NOTIFY_SOCKET", "")
        if not value:
            return None
        address = socket_address(value)
        if address is None:
            _log.warning("notify.unsupported_socket", NOTIFY_SOCKET=value, reason="not a path or an @abstract name")
            return None
        return cls(address)

    def send(self, **fields: object) -> bool:
        """
        Send one message of ``KEY=value`` lines, in the order given.

        Values are sanitized to one line each. Not a checkpoint.

        Returns:
            ``True`` if the socket took the message.
        """
        message = "\n".join(f"{key}={sanitize(str(value))}" for key, value in fields.items())
        try:
            self._sock.sendto(message.encode(), self._address)
        except OSError as exc:
            if not self._failed:  # once: a missing socket would otherwise flood the log
                _log.warning("notify.failed", message=message, error=str(exc))
            self._failed = True
            return False
        self._failed = False
        return True

    def close(self) -> None:
        """Close the socket."""
        self._sock.close()


def _reason_text(tree: RunningTree) -> str:
    reason = tree.stop_reason
    return "not stopped" if reason is None else f"{reason.value}: {tree.stop_detail}"


def _phase_name(tree: RunningTree, now: float) -> str | None:
    escalation = tree.escalation
    if escalation is None:
        return None
    if now < escalation.started_at:
        return "DRAIN"
    return escalation.phase_at(now).name


def _next_change(tree: RunningTree, now: float) -> float:
    escalation = tree.escalation
    if escalation is None:
        return math.inf
    times = [escalation.started_at, *(escalation.end(phase) for phase in Phase)]
    return min((t for t in times if t > now), default=math.inf)


@final
class _Loop:
    """The notifier's state: what was sent, and when the next message is due."""

    def __init__(self, tree: RunningTree, notifier: SystemdNotifier, watchdog: float | None, extend: float) -> None:
        self.tree = tree
        self.notifier = notifier
        self.watchdog = watchdog
        self.extend = extend
        self.wake = anyio.Event()
        self.ready_sent = False
        self.stopping_sent = False
        self.phase: str | None = None

    def progress(self) -> tuple[int, int]:
        components = self.tree.components()
        return len(components), sum(1 for status in components if status.ready)

    def on_ready(self) -> None:
        if self.ready_sent or self.tree.stop_requested:
            return
        self.ready_sent = True
        count = len(self.tree.components())
        self.notifier.send(READY=1, STATUS=f"{self.tree.name}: running ({count} components)")
        self.wake.set()

    def wake_up(self) -> None:
        self.wake.set()

    def on_reloading(self) -> None:
        # sd_notify(3): RELOADING=1 goes with MONOTONIC_USEC= (CLOCK_MONOTONIC, µs) so that
        # systemd (Type=notify-reload) matches it to the reload it asked for.
        self.notifier.send(
            RELOADING=1, MONOTONIC_USEC=monotonic_usec(), STATUS=f"{self.tree.name}: reloading configuration"
        )

    def on_reloaded(self, report: ReloadReport) -> None:
        if self.tree.stop_requested:
            return  # STOPPING=1 was sent: the service is not ready again
        count = len(self.tree.components())
        if report.errors:
            failed = ", ".join(f"{path}: {error!r}" for path, error in report.errors.items())
            status = f"running ({count} components); reload failed in {failed}"
        else:
            status = f"running ({count} components); reloaded"
        # Always READY=1: a failed hook leaves the service running, on its old configuration.
        self.notifier.send(READY=1, STATUS=f"{self.tree.name}: {status}")

    def on_stop(self) -> None:
        # Called synchronously when the stop is requested, before anything stops.
        if not self.stopping_sent:
            self.stopping_sent = True
            reason = _reason_text(self.tree)
            self.notifier.send(STOPPING=1, STATUS=f"{self.tree.name}: stopping ({reason})")
            # At once, not when the loop below next runs: a short drain would be over by then.
            self.phase_status(anyio.current_time())
        self.wake.set()

    def phase_status(self, now: float) -> None:
        phase = _phase_name(self.tree, now)
        if phase is None or phase == self.phase:
            return
        self.phase = phase
        escalation = self.tree.escalation
        assert escalation is not None  # noqa: S101 - phase is None otherwise
        if phase == "DRAIN":
            status = f"draining for {escalation.started_at - now:g}s before the first component stops"
        else:
            live = len(self.tree.components())
            status = f"stopping, {phase} phase, {live} components running"
        self.notifier.send(STATUS=f"{self.tree.name}: {status}")

    async def run(self, task_status: anyio.abc.TaskStatus[None]) -> None:
        tree = self.tree
        self.notifier.send(STATUS=f"{tree.name}: starting")
        subscriptions = [
            tree.subscribe_ready(self.on_ready),
            tree.subscribe_stop(self.on_stop),
            tree.subscribe_phases(lambda _: self.wake_up()),
            tree.subscribe_report(lambda _: self.wake_up()),
            tree.subscribe_reloads(self.on_reloading, self.on_reloaded),
        ]
        try:
            task_status.started()
            await self._loop()
        finally:
            for subscription in subscriptions:
                subscription.cancel()

    async def _loop(self) -> None:
        tree = self.tree
        now = anyio.current_time()
        next_ping = now if self.watchdog is not None else math.inf
        next_extend = now + self.extend
        mark = self.progress()
        while tree.report is None:
            now = anyio.current_time()
            if now >= next_ping:
                assert self.watchdog is not None  # noqa: S101 - next_ping is inf otherwise
                # Pings come from the loop itself: a blocked loop or a failed tree
                # stops them, and systemd's watchdog then acts.
                if not tree.failed:
                    self.notifier.send(WATCHDOG=1)
                next_ping = now + self.watchdog
            moving = not self.ready_sent or tree.stop_requested
            if now >= next_extend:
                current = self.progress()
                if moving and current != mark and not tree.failed:
                    self.notifier.send(EXTEND_TIMEOUT_USEC=round(2 * self.extend * 1_000_000))
                mark = current
                next_extend = now + self.extend
            self.phase_status(now)
            deadline = min(next_ping, next_extend, _next_change(tree, now))
            with anyio.CancelScope(deadline=deadline):
                await self.wake.wait()
            if self.wake.is_set():
                self.wake = anyio.Event()
        outcome = "stopped" if tree.report.ok else "stopped with failures"
        self.notifier.send(STATUS=f"{tree.name}: {outcome}")


async def notify_systemd(
    tree: RunningTree,
    *,
    environ: Mapping[str, str] | None = None,
    extend_interval: float = EXTEND_INTERVAL,
    task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """
    Report *tree*'s life to systemd until it has stopped; do nothing without ``NOTIFY_SOCKET``.

    Sends ``STATUS=`` when the tree starts, ``READY=1`` when it is up,
    ``STOPPING=1`` synchronously when its stop is requested (before the drain
    and before any component stops), ``STATUS=`` on every phase change,
    ``WATCHDOG=1`` every half of ``WATCHDOG_USEC`` while the tree has not
    failed, ``RELOADING=1`` with ``MONOTONIC_USEC=`` when a reload begins and
    ``READY=1`` when it ends (unless the stop began meanwhile), and
    ``EXTEND_TIMEOUT_USEC=`` (twice *extend_interval*) every
    *extend_interval* seconds during a start or stop that made progress (a
    component started, became ready or ended) since the last one.
    """
    env = os.environ if environ is None else environ
    notifier = SystemdNotifier.from_env(env)
    if notifier is None:
        task_status.started()
        return
    try:
        await _Loop(tree, notifier, watchdog_interval(env), extend_interval).run(task_status)
    finally:
        notifier.close()
