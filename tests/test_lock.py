from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import lifecycle
from lifecycle import AlreadyRunningError, InstanceLock, Priority
from supervisors import Supervisor

HOLD = textwrap.dedent(
    """
    import sys
    from lifecycle import InstanceLock
    lock = InstanceLock(sys.argv[1])
    lock.acquire()
    print("held", flush=True)
    sys.stdin.read()
    """
)


class TestInstanceLock:
    def test_second_process_fails_with_the_holders_pid(self, tmp_path: Path) -> None:
        """A second process cannot take the lock; its error names the holder's pid."""
        path = tmp_path / "lock"
        with InstanceLock(path):
            result = subprocess.run(
                [
                    sys.executable,
                    "-c",
                    "import sys; from lifecycle import InstanceLock; InstanceLock(sys.argv[1]).acquire()",
                    str(path),
                ],
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
        assert result.returncode == 1
        assert "AlreadyRunningError" in result.stderr
        assert f"process {os.getpid()} holds the lock" in result.stderr

    def test_lock_of_another_process(self, tmp_path: Path) -> None:
        """This process fails fast while another holds the lock, and gets it once that one is gone."""
        path = tmp_path / "lock"
        with subprocess.Popen(
            [sys.executable, "-c", HOLD, str(path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        ) as holder:
            assert holder.stdout is not None
            assert holder.stdout.readline() == "held\n"
            with pytest.raises(AlreadyRunningError) as caught:
                InstanceLock(path).acquire()
            assert caught.value.pid == holder.pid
            assert caught.value.path == path
            holder.kill()  # the kernel drops the lock with the process
            holder.wait(timeout=60)
        lock = InstanceLock(path)
        with lock:
            assert lock.held
            assert path.read_text() == f"{os.getpid()}\n"
        assert not lock.held
        assert path.read_text() == ""

    def test_acquiring_twice_is_a_mistake(self, tmp_path: Path) -> None:
        """Acquiring a lock this object holds already raises RuntimeError; release is idempotent."""
        lock = InstanceLock(tmp_path / "lock")
        with lock:
            with pytest.raises(RuntimeError, match="already held"):
                lock.acquire()
            lock.release()
            lock.release()
            assert "not held" in repr(lock)

    def test_unknown_pid(self, tmp_path: Path) -> None:
        """A holder that has not written its pid yet is reported as such."""
        assert "pid is not written yet" in str(AlreadyRunningError(tmp_path / "lock", None))


class TestComponent:
    async def test_held_for_the_trees_life(self, tmp_path: Path) -> None:
        """As a component, the lock is held while the tree runs and released when it stops."""
        path = tmp_path / "lock"
        sup = Supervisor(name="app")
        sup.add(InstanceLock(path), name="lock", priority=Priority.CRITICAL)
        async with lifecycle.running(sup) as tree:
            await tree.ready()
            lock = tree.value("lock")
            assert isinstance(lock, InstanceLock)
            assert lock.held
            with pytest.raises(AlreadyRunningError):
                InstanceLock(path).acquire()
        assert not lock.held

    async def test_second_tree_fails_to_start(self, tmp_path: Path) -> None:
        """A tree whose lock is taken fails to start with AlreadyRunningError as the cause."""
        path = tmp_path / "lock"
        sup = Supervisor(name="app")
        sup.add(InstanceLock(path), name="lock", priority=Priority.CRITICAL)
        with (
            InstanceLock(path),
            pytest.RaisesGroup(
                pytest.RaisesExc(
                    lifecycle.ComponentError, check=lambda e: isinstance(e.__cause__, AlreadyRunningError)
                ),
                flatten_subgroups=True,
            ),
        ):
            async with lifecycle.running(sup) as tree:
                await tree.ready()
