"""Stop signals (SIGINT, SIGTERM, SIGHUP) -> shutdown escalation; the SIGUSR1 tree dump."""

from __future__ import annotations

import math
import signal
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from types import FrameType
from typing import TYPE_CHECKING, Literal

import anyio
import anyio.abc

from lifecycle._core._backends import current_scheduler
from lifecycle._core._errors import ConfigurationError
from lifecycle._core._policy import Phase
from lifecycle._core._safe_logging import module_logger
from lifecycle._core._states import StopReason

from ._dump_text import dump_fields

if TYPE_CHECKING:
    from lifecycle._core._instance import ComponentInstance

    from ._running_tree import RunningTree

__all__ = [
    "DUMP_SIGNAL",
    "HANDLED_SIGNALS",
    "STOP_SIGNALS",
    "act_on_stop_signal",
    "dump_tree",
    "handling_signals",
    "log_stop_signal",
    "reload_on_hangup",
    "stop_step",
    "watch_signals",
]

_log = module_logger

_STEPS = (
    (Phase.GRACEFUL, "stopping gracefully; send the signal again (Ctrl-C) to force"),
    (Phase.FORCEFUL, "forcing: cleanup scopes of the graceful phase are cut off; once more to terminate"),
    (Phase.TERMINATE, "terminating: whatever is still running is stubborn"),
)

# SIGHUP (the terminal closed, the ssh session dropped) stops the tree like SIGTERM:
# its default action would kill the process with no stop at all.
STOP_SIGNALS: tuple[signal.Signals, ...] = (
    signal.SIGINT,
    signal.SIGTERM,
    *((signal.SIGHUP,) if hasattr(signal, "SIGHUP") else ()),
)
DUMP_SIGNAL: signal.Signals | None = getattr(signal, "SIGUSR1", None)
HANDLED_SIGNALS: tuple[signal.Signals, ...] = (*STOP_SIGNALS, *((DUMP_SIGNAL,) if DUMP_SIGNAL is not None else ()))

Handler = Callable[[int, FrameType | None], object]

# Signals whose inherited SIG_IGN is a request to keep ignoring them (nohup).
_RESPECT_IGNORED = frozenset(s for s in STOP_SIGNALS if s.name == "SIGHUP")


def stop_step(count: int) -> tuple[Phase, str] | None:
    """
    Return what the *count*-th stop signal does (1-based): the phase it starts and a hint.

    ``None`` from the fourth on: those are ignored.
    """
    return _STEPS[count - 1] if 1 <= count <= len(_STEPS) else None


def log_stop_signal(name: str, count: int, *, stopping: bool = False) -> Phase | None:
    """
    Log the *count*-th stop signal (``signal.received`` or ``signal.ignored``); return its phase.

    *stopping*: the tree is stopping already (by itself), so a first signal
    changes nothing, and says so.
    """
    step = stop_step(count)
    if step is None:
        _log.warning("signal.ignored", signal=name, reason="already terminating")
        return None
    phase, what = step
    if phase is Phase.GRACEFUL and stopping:
        what = "already stopping; send the signal again (Ctrl-C) to force"
    _log.warning("signal.received", signal=name, phase=phase.name, next=what)
    return phase


def act_on_stop_signal(tree: RunningTree, phase: Phase, name: str) -> None:
    """
    Do what a stop signal asks of *tree*; in the event loop.

    ``GRACEFUL`` requests the stop with the reason ``signal`` (nothing more if
    it is already stopping); a later phase escalates the stop to it.
    """
    if phase is Phase.GRACEFUL:
        tree._request(StopReason.SIGNAL, f"{name} received")
    else:
        tree._escalate(phase, "signal")


def signal_name(signum: int) -> str:
    """Return ``"SIGTERM"`` for ``15`` (only handled signals get here)."""
    return signal.Signals(signum).name


@contextmanager
def handling_signals(
    signums: Sequence[signal.Signals],
    handler: Handler,
    *,
    then_ignore: bool = False,
) -> Iterator[None]:
    """
    Make *handler* the Python-level handler of *signums* for the duration of the block.

    ``signal.signal``, not the event loop's signal API: the handler runs in the
    main thread between two bytecodes, also while the loop is blocked (a
    ``time.sleep`` is interrupted, and resumed after it, PEP 475), and leaving
    the block puts back exactly the handlers that were there before, never the
    default action. With *then_ignore*, the signals are ignored after the block
    instead (a program that exits right after).

    A SIGHUP that is ignored already stays ignored: ``nohup`` asked for the
    program to survive its terminal. (SIGINT and SIGTERM are taken over even
    when ignored, as asyncio's and Trio's own handling would.)

    The signal mask is left alone: a blocked signal would stay blocked in every
    child process started meanwhile.

    Raises:
        ConfigurationError: Not called from the main thread (only it may set
            signal handlers).
    """
    if threading.current_thread() is not threading.main_thread():
        msg = (
            "Signal handling needs the main thread: call lifecycle.run() (or running(signals=True)) "
            "from the main thread, or pass `signals=False` and stop the tree yourself."
        )
        raise ConfigurationError(msg)
    previous: dict[signal.Signals, object] = {}
    for signum in signums:
        if signum in _RESPECT_IGNORED and signal.getsignal(signum) is signal.SIG_IGN:
            continue  # `nohup`: the program was asked to survive its terminal
        previous[signum] = signal.signal(signum, handler)
    try:
        yield
    finally:
        for signum, old in previous.items():
            # An old handler set from C is reported as None: leaving ours beats the default action.
            signal.signal(signum, signal.SIG_IGN if then_ignore else old if old is not None else handler)  # type: ignore[arg-type]


def _remaining(instance: ComponentInstance, now: float) -> dict[str, float] | None:
    escalation = instance.escalation
    if escalation is None:
        return None
    return {
        phase.name: round(max(0.0, escalation.end(phase) - now), 3)
        for phase in Phase
        if not math.isinf(escalation.end(phase))
    }


def dump_tree(root: ComponentInstance) -> list[dict[str, object]]:
    """
    Describe every live component under *root*: state, restarts, deadlines, stack.

    Safe to call from another thread (it only reads); stacks are then a snapshot.
    """
    now = anyio.current_time() if _in_loop() else None
    return [
        {
            "component": instance.path,
            "state": instance.state.value,
            "restarts": instance.restarts,
            "phase": None if instance.escalation is None or now is None else instance.escalation.phase_at(now).name,
            "remaining": None if now is None else _remaining(instance, now),
            "stack": "".join(instance.stack()),
        }
        for instance in root.walk_live()
    ]


def log_dump(tree: RunningTree, name: str) -> None:
    """Log ``tree.dump``: every live component with its state, deadlines and stack."""
    _log.warning("tree.dump", tree=tree.name, signal=name, **dump_fields(dump_tree(tree._instance)))


def _in_loop() -> bool:
    try:
        anyio.current_time()
    except Exception:  # noqa: BLE001 - any "no event loop here" error means: not in the loop
        return False
    return True


def reload_on_hangup(tree: RunningTree) -> None:
    """Start a reload of *tree* for a SIGHUP; in the loop."""
    tree._reloads.start(tree, "SIGHUP received")


async def watch_signals(
    tree: RunningTree,
    *,
    sighup: Literal["stop", "reload"] = "stop",
    task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """
    Turn stop signals into stop requests and escalations; dump the tree on SIGUSR1.

    For :func:`~lifecycle.running` with ``signals=True``. SIGINT, SIGTERM and
    SIGHUP count together: the first requests a graceful stop, the second jumps
    to FORCEFUL, the third to TERMINATE; later ones are logged and ignored. The
    handlers are Python-level ones (:func:`handling_signals`) that only schedule
    the reaction in the event loop; they are installed when
    ``task_status.started()`` is called, and the previous handlers are put
    back when this is cancelled. Runs until cancelled. With *sighup*
    ``"reload"``, SIGHUP reloads the tree instead, and is not counted.
    """
    schedule = current_scheduler()
    received = 0

    def react(signum: int) -> None:  # in the loop
        nonlocal received
        name = signal_name(signum)
        if signum == DUMP_SIGNAL:
            log_dump(tree, name)
            return
        if name == "SIGHUP" and sighup == "reload":
            _log.warning("signal.received", signal=name, action="reload")
            reload_on_hangup(tree)
            return
        received += 1
        phase = log_stop_signal(name, received, stopping=tree.stop_requested)
        if phase is not None:
            act_on_stop_signal(tree, phase, name)

    def handler(signum: int, _: FrameType | None) -> None:
        # A signal handler: no logging and no locks here, only a thread-safe,
        # signal-safe hand-over to the loop.
        schedule(lambda: react(signum))

    with handling_signals(HANDLED_SIGNALS, handler):
        task_status.started()
        await anyio.sleep_forever()
