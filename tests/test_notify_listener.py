"""The private NOTIFY_SOCKET: parsing sd_notify datagrams, binding and cleaning up."""

from __future__ import annotations

import socket
import sys
from pathlib import Path

import pytest

from lifecycle._processes._notify_listener import open_notify_listener, parse_notification

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="unix datagram sockets")


def test_parse_assignments() -> None:
    """Newline-separated KEY=VALUE pairs; lines without '=' are ignored; values may hold '='."""
    data = b"READY=1\nSTATUS=a=b\ngarbage\n=x\nMAINPID=7\n"
    assert parse_notification(data) == {"READY": "1", "STATUS": "a=b", "MAINPID": "7"}


def test_invalid_utf8_is_replaced() -> None:
    """Bytes that are not UTF-8 do not break parsing."""
    assert parse_notification(b"STATUS=\xff") == {"STATUS": "\ufffd"}


async def test_receives_what_a_client_sends_and_removes_its_directory() -> None:
    """A datagram sent to the listener's path is received parsed; the directory is removed on exit."""
    async with open_notify_listener() as listener:
        folder = Path(listener.path).parent
        assert folder.stat().st_mode & 0o077 == 0  # private to this user
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as client:
            client.sendto(b"READY=1\nSTATUS=up", listener.path)
        assert await listener.receive() == {"READY": "1", "STATUS": "up"}
    assert not folder.exists()
