"""The README's example runs as the README says."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README, flags=re.DOTALL)


def test_readme_starts_with_the_two_commands() -> None:
    """The first code block is the install-and-demo command and the test command, unchanged."""
    first = re.search(r"```sh\n(.*?)```", README, flags=re.DOTALL)
    assert first is not None
    assert first.group(1).splitlines() == [
        "python3 -m venv .venv && .venv/bin/pip install -e . && .venv/bin/lifecycle demo --for 5",
        "python3 -m venv .venv && .venv/bin/pip install -e '.[test]' && .venv/bin/python scripts/check.py",
    ]
    assert README.index(first.group(0)) < README.index("```python")


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
@pytest.mark.parametrize("how", ["script", "cli"])
def test_example_serves_and_stops_in_order(how: str, tmp_path: Path) -> None:
    """The example logs its port and answers 42 there; on SIGINT it stops api before db's teardown; exit code 0."""
    (example,) = python_blocks()
    (tmp_path / "app.py").write_text(example, encoding="utf-8")
    env = {key: value for key, value in os.environ.items() if not key.startswith("LIFECYCLE_")}
    env |= {"PYTHONPATH": str(ROOT), "LIFECYCLE_LOG_FORMAT": "json"}
    argv = [sys.executable, "app.py"] if how == "script" else [sys.executable, "-m", "lifecycle", "run", "app:tree"]
    events: list[dict[str, object]] = []
    with subprocess.Popen(argv, cwd=tmp_path, env=env, stderr=subprocess.PIPE, text=True) as proc:
        assert proc.stderr is not None
        for line in proc.stderr:
            if line.startswith("{"):
                events.append(json.loads(line))
                if events[-1]["event"] == "tree.ready":
                    break
        (listening,) = [e for e in events if e["event"] == "api.listening"]
        with socket.create_connection(("127.0.0.1", int(str(listening["port"]))), timeout=10) as client:
            assert client.recv(16) == b"42\n"
        proc.send_signal(signal.SIGINT)
        rest = proc.stderr.read()
    assert proc.returncode == 0, rest
    events += [json.loads(line) for line in rest.splitlines() if line.startswith("{")]
    names = [event["event"] for event in events]
    assert [e["components"] for e in events if e["event"] == "tree.wave_starting"] == [["db"], ["api"]]
    assert names.index("tree.stopping") < names.index("db.closed") < names.index("tree.stopped")
