"""An HTTP endpoint for probes: liveness, readiness and the tree as JSON."""

from __future__ import annotations

import errno
import json
import re
from datetime import UTC, datetime, timedelta
from typing import Final, final

import anyio
import anyio.abc
import anyio.streams.stapled

from lifecycle._core._context import Context
from lifecycle._core._errors import ComponentError
from lifecycle._core._observe import ComponentStatus
from lifecycle._core._safe_logging import safe_logger
from lifecycle._core._states import State
from lifecycle._core._validation import Option
from lifecycle._host._running_tree import RunningTree, current_tree

from ._metrics import CONTENT_TYPE, Durations, render

__all__ = ["HealthServer"]

_log = safe_logger("lifecycle.health")

_HOST = Option.text(expected="a host name or address such as '0.0.0.0'")
_PORT = Option.whole_number(0, 65535)
_REQUEST_SIZE = Option.whole_number(64, 1 << 20)
_CONNECTIONS = Option.whole_number(1, 65536)
_SECONDS = Option.seconds(finite=True)
_TIMEOUT = Option("a positive, finite number of seconds", lambda v: _SECONDS.test(v) and v != 0)

# accept(2) errors that mean the process or the system is out of something for
# a while (file descriptors, buffers, memory), not that the listener is broken:
# as trio's serve_listeners does, log and retry after a pause instead of failing.
_ACCEPT_CAPACITY_ERRNOS: Final = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
_ACCEPT_PAUSE: Final = 0.1

# The end of a request head: a blank line, with CRLF or bare LF line ends
# (RFC 9112 section 2.2 lets a server accept a bare LF as a line terminator).
_HEAD_END: Final = re.compile(rb"\r?\n\r?\n")
_LINE_END: Final = re.compile(rb"\r?\n")

_REASONS: Final = {
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    431: "Request Header Fields Too Large",
    501: "Not Implemented",
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
    An HTTP endpoint for Kubernetes probes, Prometheus and humans: ``/livez``, ``/readyz``, ``/tree``, ``/metrics``.

    A component: add it to a tree with ``sup.add(HealthServer(port=8081),
    name="health", priority=Priority.CRITICAL)`` (``CRITICAL``, so it answers
    until the rest of the tree has stopped). It needs no web framework: a
    minimal HTTP/1.1 server on anyio sockets, one request per connection
    (``Connection: close``), ``GET`` and ``HEAD`` only. It provides itself as
    its value, so :attr:`port` says where it listens when it was asked for port 0.

    It is built to survive abuse, so a flood on the health port never takes
    the service down:

    - At most *max_connections* connections are served at once; a connection
      beyond that is accepted and closed at once (never queued), and the
      first of a burst is logged as ``health.connections_refused``.
    - Every request has a deadline (*request_timeout*) for sending its head
      and reading the answer, and a size limit (*max_request_size*, 431
      beyond); lines may end in CRLF or a bare LF.
    - When ``accept()`` fails for lack of resources (``EMFILE``, ``ENFILE``,
      ``ENOBUFS``, ``ENOMEM``: out of file descriptors, buffers or memory),
      it logs ``health.accept_exhausted`` once, pauses 0.1 s and retries, as
      trio's ``serve_listeners`` does, until an accept succeeds again
      (``health.accept_recovered``); the component never fails for it.
    - Its stop cancels the connections in flight at once: it never delays
      the shutdown.

    Binding ``"0.0.0.0"`` exposes ``/tree`` (the names, states and last
    errors of every component) to whoever can reach the port; keep it on a
    port that only the kubelet, or a network policy you trust, can reach.

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
    - ``GET /metrics``: the Prometheus text format, through
      ``prometheus_client`` (``pip install 'anyio-lifecycle[metrics]'``):
      everything in its default registry (the application's own metrics),
      then the tree's: readiness, failure and the stop's phase of the tree;
      the state, readiness, restarts and last start and stop durations of
      each component (see :ref:`metrics`). Without ``prometheus_client``,
      501 with the command that installs it.

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

        request_timeout: Seconds a client has to send its request head and
            read the answer; it is then disconnected.

        max_request_size: The largest request head accepted, in bytes (431 beyond).

        max_connections: How many connections are served at once; the
            excess is closed as soon as it is accepted.

    Attributes:
        host: The bound address.

        port: The bound port (the real one once started, when 0 was asked for).

    Raises:
        ConfigurationError: An option has the wrong type or value.

    .. versionadded:: 0.1.0

    .. versionchanged:: 0.1.0
       *max_connections*; accept errors for lack of resources are retried;
       bare-LF requests are answered; ``/metrics``.
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
        max_connections: int = 64,
    ) -> None:
        self.host = _HOST.check("host", host)
        self.port = _PORT.check("port", port)
        self.max_request_size = _REQUEST_SIZE.check("max_request_size", max_request_size)
        self.drain_delay = float(_SECONDS.check("drain_delay", drain_delay))
        self.grace_period = _SECONDS.or_none().check("grace_period", grace_period)
        self.request_timeout = float(_TIMEOUT.check("request_timeout", request_timeout))
        self.max_connections = _CONNECTIONS.check("max_connections", max_connections)
        self._tree: RunningTree | None = None
        self._active = 0
        self._durations = Durations()

    async def run(self, ctx: Context) -> None:
        """
        Serve until the component's stop; provide this server once it listens.

        Registers the drain delay and grace period with the running tree first.
        Cancelling the body (its stop) closes the listening socket and abandons
        the requests in flight at once.

        Raises:
            OSError: The address cannot be bound, or ``accept()`` fails for a
                reason other than a lack of resources.
        """
        tree = self._tree = current_tree()
        if self.drain_delay:
            tree.drain_delay = self.drain_delay
        if self.grace_period is not None:
            tree.grace_period = self.grace_period
        durations = self._durations
        listener = await anyio.create_tcp_listener(local_host=self.host, local_port=self.port, reuse_port=False)
        with tree.subscribe_components(lambda status: durations.changed(status, anyio.current_time())):
            async with listener:
                self.port = int(listener.extra(anyio.abc.SocketAttribute.local_port))
                ctx.log.info("health.listening", host=self.host, port=self.port)
                ctx.ready(self)
                await self._serve(listener, ctx)

    async def _serve(self, listener: anyio.abc.Listener[anyio.abc.SocketStream], ctx: Context) -> None:
        # One accept loop per socket (IPv4 and IPv6 of a name), one limit for all.
        listeners = listener.listeners if isinstance(listener, anyio.streams.stapled.MultiListener) else [listener]
        async with anyio.create_task_group() as connections:
            for one in listeners:
                if isinstance(one, anyio.abc.SocketListener):  # what create_tcp_listener makes
                    connections.start_soon(self._accept_loop, one, connections, ctx)

    async def _accept_loop(
        self,
        listener: anyio.abc.SocketListener,
        connections: anyio.abc.TaskGroup,
        ctx: Context,
    ) -> None:
        exhausted = False
        refused = 0
        while True:
            try:
                stream = await listener.accept()
            except (OSError, anyio.BrokenResourceError) as exc:
                code = _capacity_errno(exc)
                if code is None:
                    raise
                if not exhausted:
                    exhausted = True
                    ctx.log.warning(
                        "health.accept_exhausted", error=errno.errorcode.get(code, str(code)), retry_after=_ACCEPT_PAUSE
                    )
                await anyio.sleep(_ACCEPT_PAUSE)
                continue
            if exhausted:
                exhausted = False
                ctx.log.info("health.accept_recovered")
            if self._active >= self.max_connections:
                if not refused:
                    ctx.log.warning("health.connections_refused", max_connections=self.max_connections)
                refused += 1
                await _refuse(stream)
                continue
            if refused:
                ctx.log.info("health.connections_admitted", refused=refused)
                refused = 0
            self._active += 1
            connections.start_soon(self._handle, stream)

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

    def metrics(self) -> tuple[int, str]:
        """
        Return the status and text of ``/metrics``: the Prometheus text format.

        Everything in ``prometheus_client``'s default registry (the
        application's own metrics), then the tree's; 501, saying what to
        install, when ``prometheus_client`` is not installed.

        .. versionadded:: 0.1.0
        """
        tree = self._require_tree()
        try:
            text = render(tree, self._durations, ready=self.readyz()[0] == 200, now=anyio.current_time())  # noqa: PLR2004 - HTTP OK
        except ImportError:
            return 501, "/metrics needs prometheus_client: pip install 'anyio-lifecycle[metrics]'\n"
        return 200, text

    def _require_tree(self) -> RunningTree:
        if self._tree is None:
            msg = "The health server has not started; add it to a tree and start the tree."
            raise RuntimeError(msg)
        return self._tree

    # -- HTTP ----------------------------------------------------------------------

    async def _handle(self, stream: anyio.abc.SocketStream) -> None:
        try:
            await self._answer(stream)
        finally:
            self._active -= 1

    async def _answer(self, stream: anyio.abc.SocketStream) -> None:
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
        while (end := _HEAD_END.search(head)) is None:
            if len(head) > self.max_request_size:
                raise _BadRequestError(431, "request too large\n")
            head += await stream.receive(4096)
        if end.start() > self.max_request_size:
            raise _BadRequestError(431, "request too large\n")
        line = _LINE_END.split(head, maxsplit=1)[0]
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
        if path == "/metrics":
            status, text = self.metrics()
            return status, text, CONTENT_TYPE if status == 200 else "text/plain; charset=utf-8"  # noqa: PLR2004 - HTTP OK
        return 404, "not found: try /livez, /readyz, /tree or /metrics\n", "text/plain; charset=utf-8"

    def __repr__(self) -> str:
        return f"<HealthServer http://{self.host}:{self.port}>"


def _capacity_errno(exc: BaseException) -> int | None:
    """The errno of an accept error that means a lack of resources, or ``None``."""
    # anyio's trio backend raises BrokenResourceError from the OSError.
    error = exc.__cause__ if isinstance(exc, anyio.BrokenResourceError) else exc
    if isinstance(error, OSError) and error.errno in _ACCEPT_CAPACITY_ERRNOS:
        return error.errno
    return None


async def _refuse(stream: anyio.abc.SocketStream) -> None:
    """Close a connection over the limit at once, without reading or answering it."""
    with anyio.CancelScope(shield=True):
        await stream.aclose()


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
