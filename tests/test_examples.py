from __future__ import annotations

import json
import re
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_service_example_serves_and_stops_in_order(backend: str) -> None:
    """examples/service.py serves HTTP, then stops in order and prints a clean report."""
    with subprocess.Popen(
        [sys.executable, str(ROOT / "examples" / "service.py"), "--for", "3", "--backend", backend],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as proc:
        assert proc.stderr is not None
        url = None
        for line in proc.stderr:
            match = re.search(r"url=(http://127\.0\.0\.1:\d+/)", line)
            if match:
                url = match.group(1)
                break
        assert url is not None
        with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - a local http URL
            first = json.loads(response.read())
        with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - a local http URL
            second = json.loads(response.read())
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert second["jobs"] >= first["jobs"]
    rows = [line.split()[0] for line in out.splitlines()[2:]]
    assert rows == ["service/api", "service/workers", "service/cache", "service/store", "service"]
    assert "5 graceful" in out
