"""Owning the process: run(), its signals, its exit codes."""

from __future__ import annotations

import importlib.util
import signal
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Literal

import anyio

from lifecycle._core._errors import ConfigurationError
from lifecycle._core._policy import ShutdownPolicy
from lifecycle._core._report import ShutdownReport
from lifecycle._core._safe_logging import module_logger
from lifecycle._core._settings import BLOCKED_LOOP_THRESHOLD
from lifecycle._core._spec import ComponentSpec
from lifecycle._core._states import StopReason
from lifecycle._core._validation import Option

from ._embedded import SIGHUP_ACTIONS, running
from ._exits import ExitCode, conclude, print_err
from ._logging_setup import configure_logging
from ._running_tree import RunningTree, as_spec
from ._signals import HANDLED_SIGNALS, handling_signals, reload_on_hangup
from ._unhandled_errors import routing_unhandled_errors
from ._watchdog import Watchdog

__all__ = ["ExitCode", "execute", "run"]

_log = module_logger


_BACKEND = Option.one_of(("asyncio", "trio"))


def _check_backend(backend: str, backend_options: Mapping[str, object] | None) -> dict[str, object]:
    options = dict(backend_options or {})
    _BACKEND.check("backend", backend)
    if backend == "trio" and importlib.util.find_spec("trio") is None:
        msg = "The trio backend needs Trio: pip install 'anyio-lifecycle[trio]'."
        raise ConfigurationError(msg)
    if options.get("use_uvloop") and importlib.util.find_spec("uvloop") is None:
        msg = "`use_uvloop` needs uvloop, which is not installed: pip install uvloop."
        raise ConfigurationError(msg)
    return options


def _tree_policy(spec: ComponentSpec, policy: ShutdownPolicy | None) -> ShutdownPolicy:
    """The policy :func:`running` would give the tree: the same, computed before the loop starts."""
    if policy is not None and not isinstance(policy, ShutdownPolicy):
        msg = f"`policy` must be a lifecycle.ShutdownPolicy or None, got {policy!r}."
        raise ConfigurationError(msg)
    return policy or spec.policy or ShutdownPolicy.from_env()


def _usage(exc: ConfigurationError) -> SystemExit:
    print_err(f"lifecycle: configuration error: {exc}")
    return SystemExit(ExitCode.USAGE)


def run(
    root: object,
    *,
    backend: Literal["asyncio", "trio"] = "asyncio",
    backend_options: Mapping[str, object] | None = None,
    policy: ShutdownPolicy | None = None,
    signals: bool = True,
    notify: bool = True,
    sighup: Literal["stop", "reload"] = "stop",
) -> ShutdownReport:
    """
    Run a tree as the whole program, until it stops, and exit like a service.

    Validates the tree, sets up logging (unless structlog is configured
    already), installs the signal handlers before any component starts, then
    runs the tree on *backend* until it stops: a signal, a ``main`` component
    returning, or a failure.

    Signals (see :ref:`signals`): SIGINT, SIGTERM and SIGHUP (unless *sighup*
    is ``"reload"``) count together;
    the first stops the tree gracefully, the second jumps to FORCEFUL, the third
    to TERMINATE, later ones are logged (``signal.ignored``) and ignored.
    SIGUSR1 logs a dump of the tree and its stacks. The handlers are plain
    Python-level handlers feeding a watchdog thread, so signals are seen even
    while a blocking call holds the event loop; none of these signals can kill
    the process by its default action while ``run()`` runs. The previous
    handlers are put back when it returns or raises, after the report is
    written.

    The watchdog thread also keeps the stop's deadlines on the wall clock. If
    something is still running when the terminate deadline passes (a coroutine
    that swallows cancellation, a call that blocks the loop), or if a third
    signal comes while the loop has not run for a second, it logs the stubborn
    components and the stack of the main thread, prints the report and exits
    the process at once with ``ExitCode.TERMINATED``. It watches the event loop
    too: when it has not run for longer than
    ``LIFECYCLE_BLOCKED_LOOP_THRESHOLD`` seconds (1 by default; 0 turns this
    off), ``loop.blocked`` is logged with the stack of the code blocking it,
    and ``loop.unblocked`` once it runs again.

    Args:
        root: A component, usually a ``Supervisor``.

        backend: ``"asyncio"`` or ``"trio"``.

        backend_options: Passed to :func:`anyio.run`; ``{"use_uvloop": True}``
            runs asyncio on uvloop.

        policy: The stop's budgets; defaults to the root's own policy, else
            :meth:`ShutdownPolicy.from_env`.

        signals: Install the signal handling (on by default). It needs the
            main thread.

        notify: Report to systemd over ``NOTIFY_SOCKET`` when it is set (on by
            default; see :func:`running`).

        sighup: What SIGHUP does: ``"stop"`` (the default, counted with SIGINT
            and SIGTERM) or ``"reload"``: run every component's reload hooks
            (:meth:`Context.on_reload`, an object's ``reload()``) and tell
            systemd (``RELOADING=1`` then ``READY=1``), for ``systemctl reload``
            and ``Type=notify-reload``; see :ref:`reload`. A reload during the
            stop is logged (``reload.ignored``) and ignored.

    Returns:
        The report of a clean stop (:attr:`ShutdownReport.clean`).

    Raises:
        SystemExit: With an :class:`ExitCode` whenever the stop was not clean:
            ``FAILURE`` after failures, ``CUT_OFF`` when cleanup was cut short
            (the report is printed to stderr first), ``USAGE`` for a
            configuration error (printed to stderr), or the code a component
            asked for by raising :exc:`SystemExit` or :exc:`KeyboardInterrupt`;
            ``TERMINATED`` ends the process directly.

    .. versionchanged:: 0.1.0
       SIGHUP stops the tree too; signals are seen while the loop is blocked;
       a stop whose cleanup was cut short exits with ``ExitCode.CUT_OFF``;
       added *sighup*.
    """
    return execute(
        root,
        backend=backend,
        backend_options=backend_options,
        policy=policy,
        signals=signals,
        notify=notify,
        sighup=sighup,
    )


@contextmanager
def _no_signals() -> Iterator[None]:
    yield


def execute(
    root: object,
    *,
    backend: Literal["asyncio", "trio"] = "asyncio",
    backend_options: Mapping[str, object] | None = None,
    policy: ShutdownPolicy | None = None,
    signals: bool = True,
    on_report: Callable[[ShutdownReport], None] | None = None,
    notify: bool = True,
    print_report: bool = False,
    exiting: bool = False,
    sighup: Literal["stop", "reload"] = "stop",
) -> ShutdownReport:
    """
    :func:`run`, with *on_report* called with the report however the run ends.

    On a hard exit it is called from the watchdog thread, just before the exit.
    With *print_report*, the report of a clean stop is printed to stderr too.
    With *exiting* (the process ends right after), the handled signals are
    ignored from the end of the run on, instead of getting their previous
    handlers back: a late signal cannot kill a process that has finished.
    """
    try:
        configure_logging()
        options = _check_backend(backend, backend_options)
        blocked_after = BLOCKED_LOOP_THRESHOLD.read()
        spec = as_spec(root)
        spec.validate_tree()
        tree_policy = _tree_policy(spec, policy)
        SIGHUP_ACTIONS.check("sighup", sighup)
    except ConfigurationError as exc:
        raise _usage(exc) from None

    on_hangup = reload_on_hangup if sighup == "reload" else None
    watchdog = Watchdog(tree_policy, blocked_after=blocked_after, on_report=on_report, on_hangup=on_hangup)
    try:
        handlers = handling_signals(HANDLED_SIGNALS, watchdog.on_signal, then_ignore=exiting)
        with handlers if signals else _no_signals():
            return _execute(
                spec,
                watchdog,
                signals=signals,
                backend=backend,
                options=options,
                policy=tree_policy,
                notify=notify,
                on_report=on_report,
                print_report=print_report,
            )
    except ConfigurationError as exc:
        raise _usage(exc) from None
    finally:
        watchdog.close()


def _execute(
    spec: ComponentSpec,
    watchdog: Watchdog,
    *,
    signals: bool,
    backend: Literal["asyncio", "trio"],
    options: dict[str, object],
    policy: ShutdownPolicy,
    notify: bool,
    on_report: Callable[[ShutdownReport], None] | None,
    print_report: bool,
) -> ShutdownReport:
    holder: list[RunningTree] = []

    async def main() -> None:
        async with (
            running(spec, policy=policy, notify=notify) as tree,
            anyio.create_task_group() as tasks,
        ):
            holder.append(tree)
            watchdog.attach(tree)
            # Shielded: signals act and the loop is watched until the tree has
            # stopped, even when a failure cancels this block.
            reacting, beating = anyio.CancelScope(shield=True), anyio.CancelScope(shield=True)
            tasks.start_soon(watchdog.react, reacting)
            if watchdog.watches_loop:
                tasks.start_soon(watchdog.heartbeat, beating)
            try:
                await tree.wait()
            finally:
                if tree.report is None:
                    # Cancelled from outside (asyncio's own Ctrl-C handling, with
                    # `signals=False`): the tree stops in order first.
                    tree._request(StopReason.REQUEST, "run() was cancelled")
                    with anyio.CancelScope(shield=True):
                        await tree.wait()
                reacting.cancel()
                beating.cancel()
                watchdog.detach()
                if backend == "trio" and signals:
                    # Trio closes its wakeup socket before it puts the previous wakeup fd
                    # back: a signal in between makes Python print a traceback of a
                    # failed write. The loop needs no waking any more; the watchdog
                    # still gets the signals from the handlers.
                    signal.set_wakeup_fd(-1)

    failed: BaseExceptionGroup[BaseException] | None = None
    try:
        anyio.run(routing_unhandled_errors(main), backend=backend, backend_options=options)
    except BaseExceptionGroup as group:
        failed = group
    except ConfigurationError:
        raise
    except BaseException:
        # Not the tree's failure (KeyboardInterrupt with `signals=False`, a bug):
        # hand the report over if there is one, and let it through.
        watchdog.claim_ending()
        if holder and holder[0].report is not None and on_report is not None:
            on_report(holder[0].report)
        raise
    watchdog.claim_ending()
    return _conclude(holder[0].report if holder else None, failed, on_report, print_report=print_report)


def _conclude(
    report: ShutdownReport | None,
    failed: BaseExceptionGroup[BaseException] | None,
    on_report: Callable[[ShutdownReport], None] | None,
    *,
    print_report: bool,
) -> ShutdownReport:
    """Hand the report over and turn the stop into the documented exit code."""
    if report is not None and on_report is not None:
        on_report(report)
    ending = conclude(report, failed)
    if report is not None and (ending.show_report or print_report):
        print_err(str(report))
    if failed is not None and ending.code == ExitCode.FAILURE:
        _log.error("tree.failed", errors=[str(e) for e in failed.exceptions])
        if ending.raise_group:  # pragma: no cover - running() raises only the framework's errors
            raise failed
    for line in ending.lines:
        print_err(line)
    if ending.code != ExitCode.OK:
        raise SystemExit(ending.code)
    assert report is not None  # noqa: S101 - running() sets it before returning
    return report
