"""
The receiving end of sd_notify: a private ``NOTIFY_SOCKET`` for a child process.

A child that speaks the systemd notification protocol sends datagrams of
newline-separated ``KEY=VALUE`` assignments (``READY=1``, ``STATUS=...``) to the
unix datagram socket named by ``NOTIFY_SOCKET``. This module binds such a socket
in a private temporary directory and parses what arrives.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import final

import anyio
import anyio.abc

__all__ = ["NotifyListener", "open_notify_listener", "parse_notification"]


def parse_notification(data: bytes) -> dict[str, str]:
    """
    Parse one sd_notify datagram into its assignments.

    Lines without ``=`` are ignored, as systemd does; a later assignment of the
    same key wins.
    """
    fields: dict[str, str] = {}
    for line in data.decode("utf-8", "replace").split("\n"):
        key, sep, value = line.partition("=")
        if sep and key:
            fields[key] = value
    return fields


@final
class NotifyListener:
    """
    A bound unix datagram socket that children report to.

    Attributes:
        path: The socket's path, the value of ``NOTIFY_SOCKET`` for the child.
    """

    __slots__ = ("_socket", "path")

    def __init__(self, socket: anyio.abc.UNIXDatagramSocket, path: str) -> None:
        self._socket = socket
        self.path = path

    async def receive(self) -> dict[str, str]:
        """Wait for the next datagram and return its assignments. A checkpoint; cancelling it loses nothing."""
        data, _ = await self._socket.receive()
        return parse_notification(data)


@asynccontextmanager
async def open_notify_listener() -> AsyncIterator[NotifyListener]:
    """
    Bind a notification socket in a new private directory; remove both on exit.

    The directory is only accessible to this user (:func:`tempfile.mkdtemp`).
    Leaving the block is shielded: the socket is closed and the directory
    removed even when the block was cancelled.
    """
    folder = tempfile.mkdtemp(prefix="lifecycle-notify-")
    try:
        path = str(Path(folder) / "notify.sock")
        sock = await anyio.create_unix_datagram_socket(local_path=path, local_mode=0o600)
        try:
            yield NotifyListener(sock, path)
        finally:
            with anyio.CancelScope(shield=True):
                await sock.aclose()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
