"""
A service that re-reads its configuration on ``systemctl reload``, without restarting.

``Settings`` reads a JSON file when it starts, and again in its ``reload()``
method; ``greeter`` applies the new values in a hook it registers with
``ctx.on_reload()``. Under systemd, ``reloading.service`` runs it with
``lifecycle run reloading:tree --sighup reload``.

Run: ``python docs/examples/reloading.py [asyncio|trio]``: it writes a
configuration, starts the tree with SIGHUP as reload, changes the
configuration and sends itself SIGHUP, then tries a configuration that does not
parse, and prints what happened.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import tempfile
from pathlib import Path

import anyio

import lifecycle
from lifecycle import Context, Priority, ReloadReport
from supervisors import Supervisor


class Settings:
    """The configuration: read at start and on every reload."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.values: dict[str, str] = {}

    def read(self) -> None:
        """Read the file."""
        # A file that does not parse raises: the reload is reported as failed
        # and the old values stay in force.
        self.values = json.loads(self.path.read_text())

    async def run(self, ctx: Context) -> None:
        """Read the settings, provide them, and run until stopped."""
        self.read()
        ctx.ready(self)
        await anyio.sleep_forever()

    async def reload(self) -> None:
        """Read the file again: a reload hook, called before those of the components that depend on it."""
        self.read()


def build(path: Path) -> Supervisor:
    """The tree: settings, and a greeter that applies them on every reload."""
    tree = Supervisor("greeter")
    tree.add(Settings(path), name="settings", priority=Priority.HIGH)

    @tree.component
    async def greeter(ctx: Context, settings: Settings) -> None:
        greeting = settings.values["greeting"]

        def apply() -> None:
            nonlocal greeting
            greeting = settings.values["greeting"]
            print(f"greeter: now saying {greeting!r}")

        ctx.on_reload(apply)  # runs after settings' reload(): dependencies first
        ctx.ready()
        print(f"greeter: saying {greeting!r}")
        await anyio.sleep_forever()

    return tree


# For `lifecycle run reloading:tree --sighup reload` (see reloading.service).
tree = build(Path(os.environ.get("GREETER_CONFIG", "greeter.json")))


async def main() -> None:
    """Reload by SIGHUP, then by a call with a file that does not parse; print what happened."""
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "greeter.json"
        path.write_text(json.dumps({"greeting": "hello"}))
        async with lifecycle.running(build(path), signals=True, sighup="reload") as handle:
            await handle.ready()
            ended = anyio.Event()

            def on_ended(report: ReloadReport) -> None:
                print(f"reload: ok={report.ok} reloaded={list(report.reloaded)}")
                ended.set()

            handle.subscribe_reloads(lambda: print("reload: began"), on_ended)
            path.write_text(json.dumps({"greeting": "bonjour"}))
            os.kill(os.getpid(), signal.SIGHUP)  # what `systemctl reload` sends
            await ended.wait()

            path.write_text("{not json")
            report = await handle.reload()
            print(f"reload: failed in {list(report.errors)}; the old settings stay")
        print(f"stopped: ok={handle.report is not None and handle.report.ok}")


if __name__ == "__main__":
    signal.signal(signal.SIGHUP, signal.SIG_DFL)  # even when started under nohup
    anyio.run(main, backend=sys.argv[1] if len(sys.argv) > 1 else "asyncio")
