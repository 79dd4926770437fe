"""The environment of the child processes the framework starts."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Final

__all__ = ["SERVICE_VARIABLES", "child_environment"]

# systemd's per-service variables: they describe this process (its notification
# socket, its watchdog, the sockets it was activated with), never a child of it.
# A child that inherited them would notify systemd as if it were the service, or
# take file descriptors it does not have for its listening sockets.
SERVICE_VARIABLES: Final = (
    "NOTIFY_SOCKET",
    "WATCHDOG_USEC",
    "WATCHDOG_PID",
    "LISTEN_FDS",
    "LISTEN_PID",
    "LISTEN_FDNAMES",
)


def child_environment(env: Mapping[str, str] | None) -> dict[str, str]:
    """
    Return the environment a child process is started with.

    *env*, when given, is the child's whole environment, used as it is: a
    variable listed there is passed on, a service variable included, since the
    caller asked for it. ``None`` means this process's environment without
    :data:`SERVICE_VARIABLES`.
    """
    if env is not None:
        return dict(env)
    return {key: value for key, value in os.environ.items() if key not in SERVICE_VARIABLES}
