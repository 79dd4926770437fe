"""
Running a tree inside an existing program: ``running()``.

The tree runs in a task group of the caller's, its own task shielded, so the
host's cancellation reaches it only as a stop request and the stop is always
ordered. Signals, systemd notification and startup progress are switched on
here; :func:`~lifecycle.run` builds on it to own the whole program.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Literal

import anyio
import anyio.abc

from lifecycle._core._failures import failure_group
from lifecycle._core._policy import ShutdownPolicy
from lifecycle._core._settings import GRACE_PERIOD, STARTUP_PROGRESS_INTERVAL
from lifecycle._core._states import StopReason
from lifecycle._core._validation import Option

from ._grace_period import check_budget
from ._running_tree import RunningTree, as_spec
from ._signals import watch_signals
from ._startup_progress import watch_startup

__all__ = ["SIGHUP_ACTIONS", "running"]

_POLICY = Option.instance_of(ShutdownPolicy, "a lifecycle.ShutdownPolicy").or_none()
SIGHUP_ACTIONS = Option.one_of(("stop", "reload"))


@asynccontextmanager
async def running(
    root: object,
    *,
    signals: bool = False,
    policy: ShutdownPolicy | None = None,
    notify: bool = False,
    sighup: Literal["stop", "reload"] = "stop",
) -> AsyncIterator[RunningTree]:
    """
    Run a tree inside an existing anyio, asyncio or trio program.

    The tree is validated first; a :class:`~lifecycle.ConfigurationError` is raised before
    anything starts, never wrapped. Then the root starts in the background and
    the block's body runs at once (``await handle.ready()`` waits for the tree).
    Leaving the block requests a stop and waits for it, shielded: the tree always
    stops in order, even when the block is left by an exception or cancellation.

    A failure that nothing in the tree handles cancels the block's body and is
    raised when the block exits, like an error in a task group: an
    :class:`ExceptionGroup` of :class:`~lifecycle.ComponentError` (each with the original as
    ``__cause__``). An exception raised by the body itself propagates unchanged
    when the tree stopped cleanly, and in the same group otherwise.

    While the tree is slow to start, ``startup.waiting`` is logged every
    ``LIFECYCLE_STARTUP_PROGRESS_INTERVAL`` seconds (5 by default, 0 turns it
    off) with the paths of the components still starting and the seconds
    each has spent starting.

    Args:
        root: A component (usually a ``Supervisor``) or a :class:`~lifecycle.ComponentSpec`.

        signals: Handle SIGINT, SIGTERM and SIGHUP (counted together): the
            first stops gracefully, the second jumps to FORCEFUL, the third
            to TERMINATE; SIGUSR1 logs a dump of the tree. Off by default: an
            embedded tree leaves signals to its host. The previous handlers
            are put back when the tree has stopped. Unlike :func:`~lifecycle.run`,
            nothing watches a blocked loop: signals act when it runs again.

        policy: The stop's budgets; defaults to the root's own policy, else
            :meth:`~lifecycle.ShutdownPolicy.from_env`.

        sighup: With *signals*, what SIGHUP does: ``"stop"`` (counted with
            SIGINT and SIGTERM) or ``"reload"`` (:meth:`RunningTree.reload()
            <lifecycle.RunningTree.reload>`; see :ref:`reload`).

        notify: Report the tree's life to systemd over ``NOTIFY_SOCKET``
            (``READY=1``, ``STOPPING=1``, ``STATUS=``, ``WATCHDOG=1``,
            ``EXTEND_TIMEOUT_USEC=``; see :doc:`systemd`). Off by default for an
            embedded tree; :func:`~lifecycle.run` turns it on. Nothing is sent
            when ``NOTIFY_SOCKET`` is unset.

    Raises:
        ConfigurationError: The tree is declared wrongly, or
            ``LIFECYCLE_STARTUP_PROGRESS_INTERVAL`` is not a number of seconds,
            or ``LIFECYCLE_GRACE_PERIOD`` is not a number of seconds.

        ExceptionGroup: Components failed and nothing handled it.

    .. versionchanged:: 0.1.0
       Added *notify* and *sighup*.
    """
    spec = as_spec(root)
    spec.validate_tree()
    _POLICY.check("policy", policy)
    SIGHUP_ACTIONS.check("sighup", sighup)
    tree_policy = policy or spec.policy or ShutdownPolicy.from_env()
    progress_interval = STARTUP_PROGRESS_INTERVAL.read()
    handle = RunningTree(spec, tree_policy)
    handle.grace_period = GRACE_PERIOD.read()
    # When the tree has started, so drain delays registered by its components count.
    handle.subscribe_ready(lambda: check_budget(handle))
    cancelled = anyio.get_cancelled_exc_class()
    body_error: BaseException | None = None
    async with anyio.create_task_group() as task_group:
        handle._task_group = task_group
        if notify:
            # Started before the tree: no state change can be missed.
            await task_group.start(_notify_in, handle, name=f"lifecycle:notify:{spec.name}")
        task_group.start_soon(handle._main, task_group, name=f"lifecycle:tree:{spec.name}")
        watch_startup(handle._instance, task_group, progress_interval)
        if signals:
            # Started (not start_soon): the handlers are installed before the body runs.
            signal_scope = anyio.CancelScope()
            handle._signal_scope = signal_scope
            await task_group.start(_watch_in, signal_scope, handle, sighup, name=f"lifecycle:signals:{spec.name}")
        try:
            yield handle
        except BaseException as exc:  # noqa: BLE001 - re-raised below, after the ordered stop
            body_error = exc
        finally:
            with anyio.CancelScope(shield=True):
                handle._request(StopReason.REQUEST, _left_block(body_error, cancelled))
                await handle._stopped.wait()
        failures = handle._instance.failures()
        if isinstance(body_error, cancelled) and not failures:
            raise body_error
    if failures:
        if body_error is not None and not isinstance(body_error, cancelled):
            failures.append(body_error)
        msg = f"tree {spec.name!r} failed"
        raise failure_group(msg, failures)
    if body_error is not None:
        raise body_error


def _left_block(error: BaseException | None, cancelled: type[BaseException]) -> str:
    """Why the tree stops when its ``running()`` block is left, in the words of whoever reads the log."""
    if error is None:
        return "the program stopped the tree: it left the running() block"
    if isinstance(error, cancelled):
        return "the program stopped the tree: its running() block was cancelled"
    return f"the program stopped the tree: its running() block raised {type(error).__name__}"


async def _notify_in(tree: RunningTree, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
    # The one place the host starts an integration: running(notify=True) switches the
    # systemd notifier on, and it is loaded only then.
    from lifecycle._integrations._systemd import notify_systemd  # noqa: PLC0415

    # Shielded like the tree's own task: it reports the stop to its very end.
    with anyio.CancelScope(shield=True):
        await notify_systemd(tree, task_status=task_status)


async def _watch_in(
    scope: anyio.CancelScope,
    tree: RunningTree,
    sighup: Literal["stop", "reload"],
    *,
    task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
) -> None:
    with scope:
        await watch_signals(tree, sighup=sighup, task_status=task_status)
