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


class TestHostileLockPaths:
    def test_symlink_is_refused_and_its_target_untouched(self, tmp_path: Path) -> None:
        """A lock path that is a symlink is a ConfigurationError naming it; the target keeps its content."""
        victim = tmp_path / "victim.conf"
        victim.write_text("precious\n")
        link = tmp_path / "svc.lock"
        link.symlink_to(victim)
        lock = InstanceLock(link)
        with pytest.raises(lifecycle.ConfigurationError, match=r"svc\.lock"):
            lock.acquire()
        lock.release()
        assert victim.read_text() == "precious\n"
        assert not lock.held

    def test_dangling_symlink_creates_nothing(self, tmp_path: Path) -> None:
        """A symlink to a file that does not exist yet is refused, and the file is not created."""
        link = tmp_path / "svc.lock"
        link.symlink_to(tmp_path / "created-elsewhere")
        with pytest.raises(lifecycle.ConfigurationError, match="symlink"):
            InstanceLock(link).acquire()
        assert not (tmp_path / "created-elsewhere").exists()

    def test_hard_link_is_refused(self, tmp_path: Path) -> None:
        """A lock path that is a hard link to another file is refused, and that file is untouched."""
        victim = tmp_path / "victim.conf"
        victim.write_text("precious\n")
        (tmp_path / "svc.lock").hardlink_to(victim)
        with pytest.raises(lifecycle.ConfigurationError, match="hard link"):
            InstanceLock(tmp_path / "svc.lock").acquire()
        assert victim.read_text() == "precious\n"

    def test_fifo_is_refused(self, tmp_path: Path) -> None:
        """A FIFO at the lock path is refused at once (the open does not block)."""
        os.mkfifo(tmp_path / "svc.lock")
        with pytest.raises(lifecycle.ConfigurationError, match="not a regular file"):
            InstanceLock(tmp_path / "svc.lock").acquire()

    def test_directory_is_refused(self, tmp_path: Path) -> None:
        """A directory at the lock path is a ConfigurationError naming it."""
        (tmp_path / "svc.lock").mkdir()
        with pytest.raises(lifecycle.ConfigurationError, match=r"svc\.lock"):
            InstanceLock(tmp_path / "svc.lock").acquire()

    def test_release_without_holding_changes_nothing(self, tmp_path: Path) -> None:
        """Releasing a lock this object does not hold leaves the file as it is."""
        path = tmp_path / "svc.lock"
        path.write_text("4242\n")
        InstanceLock(path).release()
        assert path.read_text() == "4242\n"

    def test_holders_pid_survives_a_refused_second_lock(self, tmp_path: Path) -> None:
        """A second InstanceLock that fails to take the lock does not erase the holder's pid."""
        path = tmp_path / "svc.lock"
        with InstanceLock(path):
            second = InstanceLock(path)
            with pytest.raises(AlreadyRunningError):
                second.acquire()
            second.release()
            assert path.read_text() == f"{os.getpid()}\n"

    async def test_symlink_fails_the_component_with_a_configuration_error(self, tmp_path: Path) -> None:
        """As a component, a symlinked lock path fails the start; the target is untouched."""
        victim = tmp_path / "victim.conf"
        victim.write_text("precious\n")
        (tmp_path / "svc.lock").symlink_to(victim)
        sup = Supervisor(name="app")
        sup.add(InstanceLock(tmp_path / "svc.lock"), name="lock", priority=Priority.CRITICAL)
        with pytest.RaisesGroup(
            pytest.RaisesExc(
                lifecycle.ComponentError, check=lambda e: isinstance(e.__cause__, lifecycle.ConfigurationError)
            )
        ):
            async with lifecycle.running(sup) as tree:
                await tree.ready()
        assert victim.read_text() == "precious\n"
