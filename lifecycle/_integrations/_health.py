"""An HTTP endpoint for probes: liveness, readiness and the tree as JSON."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Final, final

import anyio
import anyio.abc
import structlog

from lifecycle._core._context import Context
from lifecycle._core._errors import ComponentError
from lifecycle._core._observe import ComponentStatus
from lifecycle._core._states import State
from lifecycle._core._validation import Option
from lifecycle._host._running_tree import RunningTree, current_tree

__all__ = ["HealthServer"]

_log = structlog.get_logger("lifecycle")

_HOST = Option.text(expected="a host name or address such as '0.0.0.0'")
_PORT = Option.whole_number(0, 65535)
_REQUEST_SIZE = Option.whole_number(64, 1 << 20)
_SECONDS = Option.seconds(finite=True)

_REASONS: Final = {
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    431: "Request Header Fields Too Large",
    503: "Service Unavailable",
    505: "HTTP Version Not Supported",
}


class _BadRequestError(Exception):
    def __init__(self, status: int, text: str) -> None:
        super().__init__(text)
        self.status = status
        self.text = text


@final
class HealthServer:
    """
    An HTTP endpoint for Kubernetes probes and humans: ``/livez``, ``/readyz``, ``/tree``.

    A component: add it to a tree with ``sup.add(HealthServer(port=8081),
    name="health", priority=Priority.CRITICAL)`` (``CRITICAL``, so it answers
    until the rest of the tree has stopped). It needs no web framework: a
    minimal HTTP/1.1 server on anyio sockets, one request per connection
    (``Connection: close``), ``GET`` and ``HEAD`` only, with a bounded request
    size and a timeout per request. It provides itself as its value, so
    :attr:`port` says where it listens when it was asked for port 0.

    - ``GET /livez``: 200 while the event loop runs (it answers) and the tree
      has not failed, restarts included: supervision at work is alive; 503
      once the root has failed (a root supervisor that gave up).
    - ``GET /readyz``: 200 when every component is up (ready and running) or
      has ended for good (a ``TEMPORARY`` child that ended, a ``TRANSIENT``
      one that returned, and what depended on them), and no stop has been
      requested; 503 otherwise, with the reason in the body: from the moment
      a component fails until its replacement, and the dependents restarted
      with it, are ready again; while a component starts; and from the
      moment the stop is requested, before the drain delay and before
      anything stops.
    - ``GET /tree``: the tree as JSON: every declared component's path,
      state (``restarting`` while it waits for a restart, with the error that
      ended its run and when the next attempt is due), readiness, restarts,
      effective priority and dependencies.

    Args:
        host: The address to bind; loopback unless you say otherwise (in a
            Kubernetes pod, ``"0.0.0.0"`` so the kubelet can reach it).

        port: The TCP port; 0 picks a free one.

        drain_delay: Seconds to wait, once a stop is requested, before the first
            component stops, while readiness already says 503: enough for load
            balancers to stop routing here (see :attr:`lifecycle.RunningTree.drain_delay`).

        grace_period: The platform's grace period (Kubernetes'
            ``terminationGracePeriodSeconds``); at start-up a stop budget that
            does not fit in it is logged as ``budget.exceeds_grace_period``.
            Defaults to ``LIFECYCLE_GRACE_PERIOD``.

        request_timeout: Seconds a client has to send its request and read the answer.

        max_request_size: The largest request head accepted, in bytes (431 beyond).

    Attributes:
        host: The bound address.

        port: The bound port (the real one once started, when 0 was asked for).

    Raises:
        ConfigurationError: An option has the wrong type or value.

    .. versionadded:: 0.1.0
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 8081,
        drain_delay: float = 0.0,
        grace_period: float | None = None,
        request_timeout: float = 5.0,
        max_request_size: int = 8192,
    ) -> None:
        self.host = _HOST.check("host", host)
        self.port = _PORT.check("port", port)
        self.max_request_size = _REQUEST_SIZE.check("max_request_size", max_request_size)
        self.drain_delay = float(_SECONDS.check("drain_delay", drain_delay))
        self.grace_period = _SECONDS.or_none().check("grace_period", grace_period)
        self.request_timeout = float(_SECONDS.check("request_timeout", request_timeout))
        self._tree: RunningTree | None = None

    async def run(self, ctx: Context) -> None:
        """
        Serve until the component's stop; provide this server once it listens.

        Registers the drain delay and grace period with the running tree first.
        Cancelling the body (its stop) closes the listening socket and abandons
        the requests in flight, which are short.
        """
        tree = self._tree = current_tree()
        if self.drain_delay:
            tree.drain_delay = self.drain_delay
        if self.grace_period is not None:
            tree.grace_period = self.grace_period
        listener = await anyio.create_tcp_listener(local_host=self.host, local_port=self.port, reuse_port=False)
        async with listener:
            self.port = int(listener.extra(anyio.abc.SocketAttribute.local_port))
            ctx.log.info("health.listening", host=self.host, port=self.port)
            ctx.ready(self)
            await listener.serve(self._handle)

    # -- answers -------------------------------------------------------------------

    def livez(self) -> tuple[int, str]:
        """Return the status and text of ``/livez``."""
        tree = self._require_tree()
        if tree.failed:
            return 503, "failed\n"
        return 200, "ok\n"

    def readyz(self) -> tuple[int, str]:
        """
        Return the status and text of ``/readyz``.

        The text names each component that holds readiness back, with its
        state, the error that ended its run and when its restart is due:
        ``not ready: app/db restarting after RuntimeError: lost (next attempt
        in 0.4 s); app/api restarting``.
        """
        tree = self._require_tree()
        if tree.stop_requested:
            return 503, "stopping\n"
        waiting = [status for status in tree.components() if status.settling]
        if waiting:
            now = anyio.current_time()
            return 503, "not ready: " + "; ".join(_why(status, now) for status in waiting) + "\n"
        return 200, "ready\n"

    def describe(self) -> dict[str, object]:
        """Return what ``/tree`` shows: the tree and every declared component."""
        tree = self._require_tree()
        escalation = tree.escalation
        now = anyio.current_time()
        phase = None
        if escalation is not None:
            phase = "DRAIN" if now < escalation.started_at else escalation.phase_at(now).name
        return {
            "tree": tree.name,
            "state": tree.state.value,
            "ready": self.readyz()[0] == 200,  # noqa: PLR2004 - HTTP OK
            "stopping": tree.stop_requested,
            "failed": tree.failed,
            "phase": phase,
            "drain_delay": tree.drain_delay,
            "policy": {
                "graceful": tree.policy.graceful,
                "forceful": tree.policy.forceful,
                "terminate": tree.policy.terminate,
            },
            "components": [_component(status, now) for status in tree.components()],
        }

    def _require_tree(self) -> RunningTree:
        if self._tree is None:
            msg = "The health server has not started; add it to a tree and start the tree."
            raise RuntimeError(msg)
        return self._tree

    # -- HTTP ----------------------------------------------------------------------

    async def _handle(self, stream: anyio.abc.SocketStream) -> None:
        async with stream:
            try:
                with anyio.fail_after(self.request_timeout):
                    try:
                        method, path = await self._read_request(stream)
                    except _BadRequestError as bad:
                        await stream.send(_response(bad.status, bad.text))
                        if bad.status == 431:  # noqa: PLR2004 - the client may still be sending
                            await _discard_rest(stream, self.max_request_size * 8)
                        return
                    status, body, content_type = self._route(method, path)
                    await stream.send(_response(status, body, content_type, head=method == "HEAD"))
            except (TimeoutError, anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
                return  # the client went away or was too slow: nothing to answer
            except Exception as exc:  # noqa: BLE001 - one bad request must not stop the probes
                _log.exception("health.request_failed", error=str(exc))

    async def _read_request(self, stream: anyio.abc.SocketStream) -> tuple[str, str]:
        head = b""
        while b"\r\n\r\n" not in head:
            if len(head) > self.max_request_size:
                raise _BadRequestError(431, "request too large\n")
            head += await stream.receive(4096)
        line = head.split(b"\r\n", 1)[0]
        if len(head.split(b"\r\n\r\n", 1)[0]) > self.max_request_size:
            raise _BadRequestError(431, "request too large\n")
        parts = line.split(b" ")
        if len(parts) != 3:  # noqa: PLR2004 - method, target, version
            raise _BadRequestError(400, "malformed request line\n")
        method, target, version = (p.decode("ascii", "replace") for p in parts)
        if not version.startswith("HTTP/1."):
            raise _BadRequestError(505, "only HTTP/1.x is served\n")
        if method not in {"GET", "HEAD"}:
            raise _BadRequestError(405, "only GET and HEAD are allowed\n")
        return method, target.split("?", 1)[0]

    def _route(self, method: str, path: str) -> tuple[int, str, str]:
        del method
        if path == "/livez":
            return (*self.livez(), "text/plain; charset=utf-8")
        if path == "/readyz":
            return (*self.readyz(), "text/plain; charset=utf-8")
        if path == "/tree":
            return 200, json.dumps(self.describe(), indent=2) + "\n", "application/json"
        return 404, "not found: try /livez, /readyz or /tree\n", "text/plain; charset=utf-8"

    def __repr__(self) -> str:
        return f"<HealthServer http://{self.host}:{self.port}>"


async def _discard_rest(stream: anyio.abc.SocketStream, limit: int) -> None:
    """
    Read and drop what the client still sends, up to *limit* bytes, after answering.

    Closing a socket with unread data makes the kernel reset the connection, and
    the client would lose the answer instead of reading the error status.
    """
    await stream.send_eof()
    dropped = 0
    while dropped < limit:
        dropped += len(await stream.receive())


def _why(status: ComponentStatus, now: float) -> str:
    """One component that holds readiness back, in words."""
    text = f"{status.path} {status.state.value}"
    if status.state is State.RESTARTING and status.error is not None:
        text += f" after {type(_cause(status.error)).__name__}: {' '.join(str(_cause(status.error)).split())}"
    if status.next_attempt is not None:
        text += f" (next attempt in {max(0.0, status.next_attempt - now):.3g} s)"
    return text


def _cause(error: BaseException) -> BaseException:
    """The component's own error: the original of a ComponentError."""
    return error.__cause__ if isinstance(error, ComponentError) and error.__cause__ is not None else error


def _component(status: ComponentStatus, now: float) -> dict[str, object]:
    """One component of ``/tree``."""
    due = status.next_attempt
    error = None
    if status.error is not None:
        cause = _cause(status.error)
        error = {"type": type(cause).__qualname__, "message": str(cause)}
    return {
        "path": status.path,
        "name": status.name,
        "state": status.state.value,
        "ready": status.ready,
        "restarts": status.restarts,
        "priority": status.priority.name,
        "depends_on": list(status.depends_on),
        "error": error,
        # The loop clock means nothing outside the process: seconds from now, and wall-clock UTC.
        "next_attempt_in": None if due is None else round(max(0.0, due - now), 6),
        "next_attempt_at": None
        if due is None
        else (datetime.now(UTC) + timedelta(seconds=max(0.0, due - now))).isoformat(timespec="milliseconds"),
    }


def _response(status: int, body: str, content_type: str = "text/plain; charset=utf-8", *, head: bool = False) -> bytes:
    data = body.encode()
    lines = [
        f"HTTP/1.1 {status} {_REASONS[status]}",
        f"Content-Type: {content_type}",
        f"Content-Length: {len(data)}",
        "Cache-Control: no-store",
        "Connection: close",
    ]
    if status == 405:  # noqa: PLR2004 - Method Not Allowed must say what is
        lines.append("Allow: GET, HEAD")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + (b"" if head else data)
