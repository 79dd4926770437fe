"""A child process as a component, and a command run with a timeout.

Run it with ``python docs/examples/processes.py [asyncio|trio]``. ``web`` is
Python's own HTTP server in a child process, ready once its port accepts
connections; ``check``, the ``main`` job, fetches a page from it with a
command, then runs a command that hangs and is killed at its timeout. When
``check`` returns, the tree stops in order: ``web`` gets SIGTERM and is
reaped, and the report is printed.
"""

from __future__ import annotations

import logging
import shutil
import socket
import sys
import tempfile
from pathlib import Path

import anyio
import structlog

import lifecycle
from lifecycle import ProcessComponent, ReadyOnPort, ShutdownPolicy, run_command
from supervisors import Supervisor


def free_port() -> int:
    """A TCP port that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


PORT = free_port()
SITE = Path(tempfile.mkdtemp(prefix="lifecycle-site-"))
(SITE / "hello.txt").write_text("hello from the child\n")

tree = Supervisor("site", policy=ShutdownPolicy(graceful=5, forceful=2, terminate=1))
tree.add(
    ProcessComponent(
        [sys.executable, "-m", "http.server", str(PORT), "--bind", "127.0.0.1", "--directory", str(SITE)],
        ready=ReadyOnPort(PORT),
        stderr_level="info",  # http.server logs each request to stderr: not a warning
    ),
    name="web",
)


@tree.component(main=True)
async def check(web: int) -> None:
    """Fetch a page from ``web`` with a command, then time a hanging command out."""
    print(f"check: web is ready (pid {web})")
    fetch = f"import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:{PORT}/hello.txt').read().decode())"
    result = await run_command([sys.executable, "-c", fetch], timeout=30)
    print(f"check: fetched {result.stdout.decode().strip()!r} (exit code {result.returncode})")
    try:
        await run_command([sys.executable, "-c", "import time; time.sleep(60)"], timeout=0.5)
    except TimeoutError as exc:  # lifecycle.CommandTimeoutError
        print(f"check: {type(exc).__name__}: {exc}")


async def main() -> None:
    """Run the tree until ``check`` is done and print what happened."""
    try:
        async with lifecycle.running(tree) as handle:
            report = await handle.wait()
    finally:
        shutil.rmtree(SITE, ignore_errors=True)
    print(report)


if __name__ == "__main__":
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.INFO))
    anyio.run(main, backend=sys.argv[1] if len(sys.argv) > 1 else "asyncio")
