from __future__ import annotations

import anyio
import anyio.lowlevel
import pytest
from structlog.testing import capture_logs

import lifecycle
from lifecycle import ConfigurationError, Phase


class Recorder:
    def __init__(self) -> None:
        self.calls: list[object] = []

    async def cleanup(self, *args: object) -> None:
        # A checkpoint first: a cleanup that was not shielded would be cancelled here.
        await anyio.lowlevel.checkpoint()
        self.calls.append(args)


class TestCleanupOnFailure:
    async def test_success_runs_no_cleanup(self) -> None:
        """A block that ends normally does not run the cleanup."""
        rec = Recorder()
        async with lifecycle.cleanup_on_failure(rec.cleanup, "upload-1"):
            await anyio.lowlevel.checkpoint()
        assert rec.calls == []

    async def test_error_runs_the_cleanup_and_propagates_unchanged(self) -> None:
        """An error runs the cleanup with its arguments; the same error object propagates."""
        rec = Recorder()
        error = ValueError("bad chunk")
        with pytest.raises(ValueError, match="bad chunk") as info:
            async with lifecycle.cleanup_on_failure(rec.cleanup, "upload-1"):
                raise error
        assert info.value is error
        assert rec.calls == [("upload-1",)]
        assert getattr(error, "__notes__", None) is None

    async def test_cancellation_runs_the_cleanup_shielded_and_propagates(self) -> None:
        """A cancelled block runs the cleanup to completion despite the cancellation, which then propagates."""
        rec = Recorder()
        after: list[str] = []
        with anyio.CancelScope() as outer:
            outer.cancel()
            async with lifecycle.cleanup_on_failure(rec.cleanup, "upload-1"):
                await anyio.sleep_forever()
            after.append("not reached")  # pragma: no cover
        assert outer.cancelled_caught
        assert rec.calls == [("upload-1",)]
        assert after == []

    async def test_cleanup_failure_is_attached_not_substituted(self) -> None:
        """A failing cleanup is logged and attached to the original error, which still propagates."""

        async def broken_cleanup() -> None:
            await anyio.lowlevel.checkpoint()
            raise ConnectionError("cannot abort")

        with capture_logs() as logs, pytest.raises(ValueError, match="bad chunk") as info:
            async with lifecycle.cleanup_on_failure(broken_cleanup):
                raise ValueError("bad chunk")
        notes = info.value.__notes__
        assert len(notes) == 1
        assert "broken_cleanup" in notes[0]
        assert "cannot abort" in notes[0]
        (cleanup_error,) = info.value.cleanup_errors  # type: ignore[attr-defined]
        assert isinstance(cleanup_error, ConnectionError)
        (entry,) = [e for e in logs if e["event"] == "cleanup.failed"]
        assert entry["exc_info"] is cleanup_error
        assert entry["log_level"] == "error"

    async def test_cleanup_failure_under_cancellation_keeps_the_cancellation(self) -> None:
        """When the cleanup of a cancelled block fails, the cancellation still propagates."""

        async def broken_cleanup() -> None:
            raise ConnectionError("cannot abort")

        with capture_logs() as logs, anyio.CancelScope() as outer:
            outer.cancel()
            async with lifecycle.cleanup_on_failure(broken_cleanup):
                await anyio.sleep_forever()
        assert outer.cancelled_caught
        assert [e["event"] for e in logs] == ["cleanup.failed"]

    def test_bad_options_are_refused_at_once(self) -> None:
        """A bad `until` or `timeout` is a ConfigurationError when the block is made, not when it fails."""
        with pytest.raises(ConfigurationError, match=r"`until` must be a lifecycle\.Phase"):
            lifecycle.cleanup_on_failure(Recorder().cleanup, until="graceful")  # type: ignore[arg-type]
        with pytest.raises(ConfigurationError, match="`timeout` must be a non-negative"):
            lifecycle.on_failure(Recorder().cleanup, timeout=-1)


class Upload:
    def __init__(self) -> None:
        self.aborted: list[tuple[Upload, str]] = []

    async def abort(self, upload_id: str) -> None:
        await anyio.lowlevel.checkpoint()
        self.aborted.append((self, upload_id))

    @lifecycle.on_failure(abort)
    async def send(self, upload_id: str) -> str:
        await anyio.lowlevel.checkpoint()
        if upload_id.startswith("broken"):
            raise OSError("connection lost")
        return f"sent {upload_id}"

    @lifecycle.on_failure(abort)
    async def send_forever(self, upload_id: str) -> None:
        del upload_id
        await anyio.sleep_forever()


class TestOnFailure:
    async def test_success_returns_the_value_without_cleanup(self) -> None:
        """The decorated method returns its value and the cleanup does not run."""
        upload = Upload()
        assert await upload.send("u1") == "sent u1"
        assert upload.aborted == []

    async def test_failure_runs_the_cleanup_with_the_same_arguments(self) -> None:
        """The cleanup gets the method's arguments, self included; the error propagates."""
        upload = Upload()
        with pytest.raises(OSError, match="connection lost"):
            await upload.send("broken-1")
        assert upload.aborted == [(upload, "broken-1")]

    async def test_cancellation_runs_the_cleanup_and_propagates(self) -> None:
        """A cancelled method runs its cleanup shielded, and the cancellation propagates."""
        upload = Upload()
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(upload.send_forever, "u2")
            await anyio.wait_all_tasks_blocked()
            tasks.cancel_scope.cancel()
        assert tasks.cancel_scope.cancelled_caught
        assert upload.aborted == [(upload, "u2")]

    def test_keeps_the_method_name(self) -> None:
        """The decorator keeps the function's name and docstring."""
        assert Upload.send.__name__ == "send"


@pytest.mark.virtual_time
class TestBound:
    async def test_hung_cleanup_is_cut_off_at_its_timeout(self) -> None:
        """A cleanup that hangs is cut off after `timeout`; the original error propagates with a note."""
        started = anyio.current_time()

        async def hangs() -> None:
            await anyio.sleep_forever()

        with capture_logs() as logs, pytest.raises(KeyError) as info:
            async with lifecycle.cleanup_on_failure(hangs, timeout=3):
                raise KeyError("k")
        assert anyio.current_time() - started == 3
        assert "was cut off" in info.value.__notes__[0]
        (entry,) = [e for e in logs if e["event"] == "cleanup.cut_off"]
        assert entry["timeout"] == 3
        assert entry["log_level"] == "warning"

    async def test_cleanup_in_a_component_is_cut_off_at_the_phase_end(self) -> None:
        """Inside a stopping component, the cleanup is cut off when its phase ends, before its own timeout."""
        from supervisors import Supervisor  # noqa: PLC0415 - only this test builds a tree

        sup = Supervisor()
        ended: list[float] = []

        async def slow_cleanup() -> None:
            try:
                await anyio.sleep(100)
            finally:
                ended.append(anyio.current_time())

        @sup.component
        async def api(ctx: lifecycle.Context) -> None:
            ctx.ready()
            async with lifecycle.cleanup_on_failure(slow_cleanup, timeout=60, until=Phase.GRACEFUL):
                await anyio.sleep_forever()

        with capture_logs():
            async with lifecycle.running(sup, policy=lifecycle.ShutdownPolicy(graceful=4.0)) as tree:
                await tree.ready()
        assert ended == [4.0]
