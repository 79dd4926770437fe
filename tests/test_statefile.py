from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import anyio
import pytest

import lifecycle
from lifecycle import Priority, StateFile, StateRecord, read_state_file, write_state_file
from lifecycle._integrations import _state_file
from supervisors import Backoff, Intensity, Supervisor

READER = textwrap.dedent(
    """
    import sys
    from lifecycle import read_state_file
    path, count = sys.argv[1], 0
    while True:
        record = read_state_file(path)  # raises on a partial file
        count += 1
        if record.state == "done":
            print(count)
            break
    """
)


class TestFile:
    def test_round_trip(self, tmp_path: Path) -> None:
        """A written record reads back equal, and leaves no temporary file behind."""
        record = StateRecord(pid=os.getpid(), tree="app", state="running", timestamp=time.time())
        write_state_file(tmp_path / "state.json", record)
        assert read_state_file(tmp_path / "state.json") == record
        assert [p.name for p in tmp_path.iterdir()] == ["state.json"]

    def test_replacement_is_atomic(self, tmp_path: Path) -> None:
        """A reader in another process never sees a partial record while the file is rewritten."""
        path = tmp_path / "state.json"
        write_state_file(path, StateRecord(pid=1, tree="app", state="running", timestamp=0.0))
        with subprocess.Popen([sys.executable, "-c", READER, str(path)], stdout=subprocess.PIPE, text=True) as reader:
            for i in range(300):
                write_state_file(path, StateRecord(pid=1, tree="app" * (i % 50 + 1), state="running", timestamp=i))
            write_state_file(path, StateRecord(pid=1, tree="app", state="done", timestamp=0.0))
            out, _ = reader.communicate(timeout=60)
        assert reader.returncode == 0
        assert int(out) >= 1

    def test_not_a_state_file(self, tmp_path: Path) -> None:
        """Reading a JSON file that is not a record is a ValueError naming the file."""
        path = tmp_path / "other.json"
        path.write_text(json.dumps({"hello": 1}))
        with pytest.raises(ValueError, match="not a lifecycle state file"):
            read_state_file(path)

    def test_failed_write_leaves_no_temporary(self, tmp_path: Path) -> None:
        """A write that fails (the target is a directory) removes its temporary file."""
        (tmp_path / "state.json").mkdir()
        with pytest.raises(OSError):  # noqa: PT011 - the OS decides which subclass
            write_state_file(tmp_path / "state.json", StateRecord(pid=1, tree="app", state="x", timestamp=0.0))
        assert [p.name for p in tmp_path.iterdir()] == ["state.json"]


class TestComponent:
    async def test_follows_the_tree(self, tmp_path: Path) -> None:
        """The file says running while the tree runs, stopping once the stop is requested, stopped at the end."""
        path = tmp_path / "state.json"
        seen_stopping: list[str] = []

        async def api(ctx: lifecycle.Context) -> None:
            ctx.ready()
            try:
                await anyio.sleep_forever()
            finally:
                async with ctx.shielded():
                    with anyio.fail_after(10):
                        while read_state_file(path).state != "stopping":  # noqa: ASYNC110 - another process's view
                            await anyio.sleep(0.01)
                    seen_stopping.append("stopping")

        sup = Supervisor(name="app")
        state_file = StateFile(path, interval=3600)
        sup.add(state_file, name="state", priority=Priority.CRITICAL)
        sup.add(api)
        async with lifecycle.running(sup) as tree:
            await tree.ready()
            with anyio.fail_after(10):
                while read_state_file(path).state != "running":  # noqa: ASYNC110 - another process's view
                    await anyio.sleep(0.01)
            record = read_state_file(path)
        assert record.pid == os.getpid()
        assert record.tree == "app"
        assert abs(record.timestamp - time.time()) < 60
        assert seen_stopping == ["stopping"]
        assert state_file.wait_written(timeout=10)
        assert read_state_file(path).state == "stopped"

    async def test_heartbeat(self, tmp_path: Path) -> None:
        """The record is rewritten every interval even when nothing changes."""
        path = tmp_path / "state.json"
        sup = Supervisor(name="app")
        sup.add(StateFile(path, interval=0.05), name="state")
        async with lifecycle.running(sup) as tree:
            await tree.ready()
            first = read_state_file(path).timestamp
            path.unlink()
            with anyio.fail_after(10):
                while not path.exists():  # noqa: ASYNC110 - written by a worker thread
                    await anyio.sleep(0.01)
            assert read_state_file(path).timestamp >= first


class TestHardening:
    @pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o077, 0o600), (0o002, 0o644)])
    def test_file_is_readable_by_others_less_the_umask(self, tmp_path: Path, umask: int, mode: int) -> None:
        """The state file is created 0644 less the umask (never 0600 regardless of it, never writable by others)."""
        old = os.umask(umask)
        try:
            write_state_file(tmp_path / "state.json", StateRecord(pid=1, tree="app", state="x", timestamp=0.0))
        finally:
            os.umask(old)
        assert (tmp_path / "state.json").stat().st_mode & 0o777 == mode

    async def test_every_write_runs_off_the_loop_thread(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """No write, the last one after the tree has stopped included, runs on the event loop's thread."""
        loop_thread = threading.get_ident()
        writers: list[tuple[str, int]] = []

        def recording(path: Path, record: StateRecord) -> None:
            writers.append((record.state, threading.get_ident()))
            write_state_file(path, record)

        monkeypatch.setattr(_state_file, "write_state_file", recording)
        state_file = StateFile(tmp_path / "state.json", interval=3600)
        sup = Supervisor(name="app")
        sup.add(state_file, name="state", priority=Priority.CRITICAL)
        async with lifecycle.running(sup) as tree:
            await tree.ready()
        assert state_file.wait_written(timeout=10)
        assert writers[-1][0] == "stopped"
        assert all(ident != loop_thread for _, ident in writers)

    @pytest.mark.parametrize("where", ["missing", "read-only"])
    async def test_failed_write_is_the_components_error(self, tmp_path: Path, where: str) -> None:
        """A write that fails (missing or read-only directory) is a ComponentError of the state component."""
        directory = tmp_path / "run"
        if where == "read-only":
            if os.geteuid() == 0:
                pytest.skip("root writes into read-only directories")
            directory.mkdir(mode=0o500)
        sup = Supervisor(name="app")
        sup.add(StateFile(directory / "state.json", interval=3600), name="state", priority=Priority.CRITICAL)
        with pytest.RaisesGroup(
            pytest.RaisesExc(lifecycle.ComponentError, check=lambda e: isinstance(e.__cause__, OSError))
        ):
            async with lifecycle.running(sup) as tree:
                await tree.ready()

    @pytest.mark.real_time
    async def test_restarts_leave_one_last_write(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """A state component restarted after failed writes subscribes once to the report: one last write."""
        path = tmp_path / "state.json"
        calls = {"n": 0}

        def flaky(target: Path, record: StateRecord) -> None:
            calls["n"] += 1
            if calls["n"] in {2, 4}:  # the first heartbeat of the first two runs fails
                msg = "disk hiccup"
                raise OSError(msg)
            write_state_file(target, record)

        monkeypatch.setattr(_state_file, "write_state_file", flaky)
        state_file = StateFile(path, interval=0.01)
        sup = Supervisor(name="app", intensity=Intensity(max_restarts=10, within=60), backoff=Backoff(initial=0.0))
        sup.add(state_file, name="state", priority=Priority.CRITICAL)
        async with lifecycle.running(sup) as tree:
            await tree.ready()
            with anyio.fail_after(10):
                while calls["n"] < 6 or not [s for s in tree.components() if s.name == "state" and s.ready]:  # noqa: ASYNC110 - counts a thread's calls
                    await anyio.sleep(0.01)
            restarts = next(s.restarts for s in tree.components() if s.name == "state")
            before = threading.active_count()
        assert restarts == 2
        assert state_file.wait_written(timeout=10)
        assert read_state_file(path).state == "stopped"
        assert threading.active_count() <= before
