"""Escalation on the real clock and in a real process: three Ctrl-C, and no false stubborn reports."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import anyio
import pytest
from structlog.testing import capture_logs

import lifecycle
from lifecycle import Phase, ShutdownPolicy
from supervisors import Supervisor

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "docs" / "examples"


@pytest.mark.real_time
@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="POSIX signals")
@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_three_ctrl_c_cut_every_scope_at_once(backend: str, tmp_path: Path) -> None:
    """
    Issue 15, problem 1, under ``lifecycle run``: db <- worker, db <- wal with budgets 6, 4, 3.

    The second SIGINT cuts the worker's GRACEFUL scope, the third cuts the wal's
    FORCEFUL scope at once (not 3.5 s later, at its forceful deadline), db's
    teardown runs after it, and the process is not ended hard.
    """
    env = {key: value for key, value in os.environ.items() if not key.startswith("LIFECYCLE_")}
    env.update(LIFECYCLE_LOG_FORMAT="json", PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1")
    report_path = tmp_path / "report.json"
    args = [
        *(sys.executable, "-m", "lifecycle", "run", "escalation:tree", "--backend", backend),
        *("--report-json", str(report_path)),
    ]
    lines: list[str] = []
    with subprocess.Popen(
        args, cwd=EXAMPLES, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    ) as proc:
        assert proc.stdout is not None
        stream = iter(proc.stdout)
        timer = threading.Timer(60, proc.kill)  # generous: the stop takes about a second
        timer.start()

        def until(predicate: str) -> float:
            for line in stream:
                lines.append(line)
                if predicate in line:
                    return time.monotonic()
            pytest.fail(f"{predicate!r} never came; output:\n{''.join(lines)}")

        try:
            until('"tree.ready"')
            proc.send_signal(signal.SIGINT)
            until('"phase": "GRACEFUL"')
            proc.send_signal(signal.SIGINT)
            until("worker: batch cut off")
            third = time.monotonic()
            proc.send_signal(signal.SIGINT)
            cut = until("wal: flush cut off")
            until("db: teardown ended")
            lines.extend(stream)
            proc.wait()
        finally:
            timer.cancel()
    output = "".join(lines)
    assert cut - third < 2.0, output  # at once, not at the forceful deadline 3.5 s later
    assert proc.returncode not in {-signal.SIGINT, int(lifecycle.ExitCode.TERMINATED)}, output
    assert '"tree.terminated"' not in output
    events = [json.loads(line) for line in lines if line.startswith("{")]
    assert [(e["phase"], e["reason"]) for e in events if e["event"] == "tree.phase"] == [
        ("GRACEFUL", "signal"),
        ("FORCEFUL", "signal"),
        ("TERMINATE", "signal"),
    ]
    assert not [e for e in events if e["event"] == "component.stubborn"]
    report = json.loads(report_path.read_text(encoding="utf-8"))
    assert {c["path"]: c["cut_off"] for c in report["components"]} == {
        "app/worker": True,
        "app/wal": True,
        "app/db": True,
        "app": False,
    }
    assert report["clean"] is False


def nested_tree() -> Supervisor:
    """A root with a nested supervisor of slow FORCEFUL cleanups, and a slow generator teardown."""
    root = Supervisor("root", policy=ShutdownPolicy(0.05, 0.05, 0.5))
    inner = Supervisor("inner")
    for number in range(5):

        @inner.component(name=f"w{number}")
        async def worker(ctx: lifecycle.Context) -> None:
            ctx.ready()
            try:
                await anyio.sleep_forever()
            finally:
                with ctx.shielded(until=Phase.FORCEFUL):
                    await anyio.sleep(5)

    root.add(inner)

    @root.component
    async def cache(ctx: lifecycle.Context) -> object:
        yield None
        with ctx.shielded():
            await anyio.sleep(5)

    return root


@pytest.mark.real_time
async def test_supervisors_waiting_for_their_children_are_never_stubborn() -> None:
    """
    Issue 15, problem 2: cleanups cut off as TERMINATE begins never make a supervisor stubborn.

    Before the fix this logged ``root`` or ``root/inner`` as stubborn in every run,
    on every backend.
    """
    for _ in range(5):
        with capture_logs() as logs:
            async with lifecycle.running(nested_tree()) as tree:
                await tree.ready()
                report = await tree.shutdown()
        assert [e["component"] for e in logs if e["event"] == "component.stubborn"] == []
        assert report.ok
        assert {c.path for c in report.cut_off} == {f"root/inner/w{n}" for n in range(5)} | {"root/cache"}
