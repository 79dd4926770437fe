"""Readiness probes for child processes, and waiting for ports, sockets and pids."""

from __future__ import annotations

import math
import os
import re
import sys
from collections.abc import Awaitable, Callable
from typing import Literal, TypeAlias, final

import anyio
import anyio.lowlevel
import attrs

from lifecycle._core._errors import ConfigurationError
from lifecycle._core._validation import Option

__all__ = [
    "Readiness",
    "ReadyOnLine",
    "ReadyOnNotify",
    "ReadyOnPort",
    "ReadyOnSocket",
    "check_timeout",
    "wait_for_exit",
    "wait_for_port",
    "wait_for_socket",
]

# Between two connection attempts: short at first, so a fast server is seen
# at once, then longer, so a slow one is not hammered.
_FIRST_INTERVAL = 0.01
_MAX_INTERVAL = 0.2
# How often wait_for_exit() polls where there is no pidfd (not Linux).
_POLL_INTERVAL = 0.05


_TIMEOUT = Option.seconds().or_none()
_PORT = Option.whole_number(1, 65535, expected="a TCP port number from 1 to 65535")
_HOST = Option.text(expected="a host name or address such as '127.0.0.1'")
_STREAM = Option.one_of(("stdout", "stderr", None), expected="'stdout', 'stderr' or None (either)")


def check_timeout(timeout: float | None, what: str = "timeout") -> float | None:
    """Return *timeout* (seconds, or ``None`` for none) as a float, or raise a ConfigurationError naming *what*."""
    _TIMEOUT.check(what, timeout)
    return None if timeout is None else float(timeout)


def _to_path(value: str | os.PathLike[str]) -> str:
    raw: object = value  # callers without a type checker may pass anything
    if isinstance(raw, str | os.PathLike) and os.fspath(raw):
        return os.fspath(raw)
    raise Option.error("path", value, "the path of a unix socket (a str or os.PathLike)")


def _to_pattern(value: str | re.Pattern[str]) -> re.Pattern[str]:
    if isinstance(value, re.Pattern):
        if isinstance(value.pattern, str):
            return value
    elif isinstance(value, str):
        try:
            return re.compile(value)
        except re.error as exc:
            msg = f"`pattern` {value!r} is not a valid regular expression: {exc}."
            raise ConfigurationError(msg) from None
    raise Option.error("pattern", value, "a regular expression (a str or a compiled str pattern)")


@final
@attrs.frozen
class ReadyOnPort:
    """
    Readiness of a child process: a TCP port accepts connections.

    The port is tried every few milliseconds from the moment the child is
    spawned (see :func:`wait_for_port`). Any program listening there counts,
    so choose a port nothing else uses.

    Args:
        port: The TCP port.

        host: The host to connect to.

    Raises:
        ConfigurationError: *port* is not a port number, or *host* is empty.

    .. versionadded:: 0.1
    """

    port: int = attrs.field(validator=_PORT)
    host: str = attrs.field(default="127.0.0.1", kw_only=True, validator=_HOST)


@final
@attrs.frozen
class ReadyOnSocket:
    """
    Readiness of a child process: a unix stream socket accepts connections.

    See :func:`wait_for_socket`.

    Args:
        path: The socket's path.

    Raises:
        ConfigurationError: *path* is empty or not a path.

    .. versionadded:: 0.1
    """

    path: str = attrs.field(converter=_to_path)


@final
@attrs.frozen
class ReadyOnLine:
    """
    Readiness of a child process: a line of its output matches a regular expression.

    Each line (without its line ending) is tested with :meth:`re.Pattern.search`
    as it is read, so ``"listening on"`` matches anywhere in the line and
    ``"^ready$"`` only a whole line.

    Args:
        pattern: The regular expression.

        stream: ``"stdout"``, ``"stderr"``, or ``None`` for either.

    Raises:
        ConfigurationError: *pattern* is not a valid regular expression, or
            *stream* is not one of the three values.

    .. versionadded:: 0.1
    """

    pattern: re.Pattern[str] = attrs.field(converter=_to_pattern)
    stream: Literal["stdout", "stderr"] | None = attrs.field(default=None, kw_only=True, validator=_STREAM)


@final
@attrs.frozen
class ReadyOnNotify:
    """
    Readiness of a child process: it sends ``READY=1`` by the sd_notify protocol.

    The child is given ``NOTIFY_SOCKET``, the path of a unix datagram socket
    of its own, bound in a private temporary directory and removed when it
    stops; any sd_notify library (``systemd.daemon.notify``, ``sd_notify(3)``,
    ``systemd-notify``) works unchanged. Messages from any process of the
    child's group are accepted (systemd's ``NotifyAccess=all``). ``STATUS=``
    messages are logged as ``process.status`` events, at any time.

    .. versionadded:: 0.1
    """


#: Every way a child process can say it is ready.
Readiness: TypeAlias = ReadyOnPort | ReadyOnSocket | ReadyOnLine | ReadyOnNotify


async def wait_for_port(host: str, port: int, *, timeout: float | None) -> None:
    """
    Wait until a TCP port accepts connections.

    Connects to *host*:*port* repeatedly, a few milliseconds apart at first and
    at most 0.2 s apart later, and closes the first connection that succeeds.

    A checkpoint. Cancelling it stops the waiting; a connection attempt in
    progress is abandoned and its socket closed. Nothing is shielded.

    Args:
        host: The host name or address.

        port: The TCP port.

        timeout: Seconds to wait at most; ``None`` waits forever.

    Raises:
        TimeoutError: The port did not accept a connection within *timeout*.

        ConfigurationError: *timeout* is negative.

    .. versionadded:: 0.1
    """
    limit = check_timeout(timeout)

    async def connect() -> None:
        stream = await anyio.connect_tcp(host, port)
        await stream.aclose()

    await _retry(connect, limit, f"{host}:{port} did not accept a TCP connection within {timeout} s.")


async def wait_for_socket(path: str | os.PathLike[str], *, timeout: float | None) -> None:
    """
    Wait until a unix stream socket accepts connections.

    Connects to *path* repeatedly (the file need not exist yet), a few
    milliseconds apart at first and at most 0.2 s apart later, and closes the
    first connection that succeeds.

    A checkpoint. Cancelling it stops the waiting. Nothing is shielded.

    Args:
        path: The socket's path.

        timeout: Seconds to wait at most; ``None`` waits forever.

    Raises:
        TimeoutError: The socket did not accept a connection within *timeout*.

        ConfigurationError: *timeout* is negative.

    .. versionadded:: 0.1
    """
    limit = check_timeout(timeout)
    target = _to_path(path)

    async def connect() -> None:
        stream = await anyio.connect_unix(target)
        await stream.aclose()

    await _retry(connect, limit, f"Unix socket {target!r} did not accept a connection within {timeout} s.")


async def _retry(connect: Callable[[], Awaitable[None]], timeout: float | None, message: str) -> None:
    interval = _FIRST_INTERVAL
    with anyio.move_on_after(math.inf if timeout is None else timeout) as scope:
        while True:
            try:
                await connect()
            except OSError:
                await anyio.sleep(interval)
                interval = min(interval * 2, _MAX_INTERVAL)
            else:
                return
    if scope.cancelled_caught:
        raise TimeoutError(message)


def _pidfd(pid: int) -> int | None:
    """Open a pidfd for *pid*; ``None`` if it has already been reaped (or never existed)."""
    try:
        return os.pidfd_open(pid)
    except ProcessLookupError:
        return None


async def wait_for_exit(pid: int, *, timeout: float | None = None) -> None:
    """
    Wait until the process *pid* has exited, without blocking the event loop.

    Any process can be waited for, not only children of this one, and nothing
    is reaped: a child that has exited but was not reaped yet (a zombie) counts
    as exited, and its parent still gets its exit status. A pid that does not
    exist returns at once. On Linux it waits on a pidfd (:func:`os.pidfd_open`
    with :func:`anyio.wait_readable`), so it wakes the moment the process exits,
    on every backend; elsewhere it polls every 50 ms, and there a zombie counts
    as still running.

    A checkpoint. Cancelling it only stops the waiting. Nothing is shielded.

    Args:
        pid: The process id.

        timeout: Seconds to wait at most; ``None`` waits forever.

    Raises:
        TimeoutError: The process was still running after *timeout*.

        ConfigurationError: *timeout* is negative.

    .. versionadded:: 0.1
    """
    limit = check_timeout(timeout)
    with anyio.move_on_after(math.inf if limit is None else limit) as scope:
        await _wait_exit(pid)
        return
    if scope.cancelled_caught:
        msg = f"Process {pid} was still running after {timeout} s."
        raise TimeoutError(msg)


async def _wait_exit(pid: int) -> None:
    if sys.platform != "linux":  # pragma: no cover - the suite runs on Linux
        while _exists(pid):  # noqa: ASYNC110 - no event exists for another process's exit
            await anyio.sleep(_POLL_INTERVAL)
        return
    fd = _pidfd(pid)
    if fd is None:
        await anyio.lowlevel.checkpoint()
        return
    try:
        await anyio.wait_readable(fd)
    finally:
        os.close(fd)


def _exists(pid: int) -> bool:  # pragma: no cover - used where there is no pidfd (not Linux)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, it is someone else's
    return True
