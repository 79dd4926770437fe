"""What a stop did to each component: ComponentReport and ShutdownReport."""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Iterator
from typing import Literal, final

import attrs

from ._policy import Phase, Priority
from ._states import Outcome, PhaseChange, StopReason

__all__ = ["ComponentReport", "ShutdownReport"]


def _seconds(value: float | None) -> str:
    if value is None:
        return "-"
    if value < 1:
        return f"{value * 1000:.1f}ms"
    return f"{value:.3f}s"


def _ends_dict(ends: tuple[float, float, float] | None, origin: float) -> dict[str, float | None] | None:
    if ends is None:
        return None
    return {
        phase.name: None if math.isinf(end) else round(end - origin, 6) for phase, end in zip(Phase, ends, strict=True)
    }


def _error_dict(error: BaseException) -> dict[str, object]:
    cause = error.__cause__ if error.__cause__ is not None else error
    return {
        "type": type(cause).__qualname__,
        "message": str(cause),
        "raised": type(error).__qualname__,
    }


@final
@attrs.frozen
class ComponentReport:
    """
    What happened to one component.

    Times are on the event loop's clock (:func:`anyio.current_time`); compare them
    with :attr:`ShutdownReport.requested_at`.

    Attributes:
        name: The component's name.

        path: Its path in the tree, ``/``-separated from the root (``root/db``).

        outcome: How its life ended.

        phase: The phase in effect when its stop finished; ``None`` if it ended
            before any stop began (finished or failed on its own).

        priority: Its effective priority.

        error: What it raised, if it failed.

        stage: Where it failed: ``"start"``, ``"run"`` or ``"stop"``.

        restarts: How many times it was restarted.

        started_at: When its start began.

        ready_at: When it became ready (``None`` if it never did).

        stop_began: When its stop began (``None`` if it ended on its own).

        stopped_at: When its task ended (``None`` if it is stubborn).

        phase_ends: When each phase of its stop (``GRACEFUL``, ``FORCEFUL``,
            ``TERMINATE``) ended or was due to end, after any escalation and
            its own policy (``math.inf``: never); ``None`` if no stop began.

        task_errors: Failures of its non-critical background tasks.

        children: The reports of a nested tree's components.

        earlier_errors: What its runs before the last restart raised, oldest
            first: their failures, teardown and background-task errors, and the
            errors of their nested components. Bounded: only the most recent
            are kept (:attr:`restarts` counts every run).

        cut_off: ``True`` if its cleanup was cut short: a shielded scope of it
            (its teardown, a ``ctx.shielded()`` block, a ``lifecycle.shielded()``
            block in its tasks) was still running when its phase ended, by
            deadline or by escalation. A scope's own *timeout* and
            :meth:`~lifecycle.ShieldedScope.cancel` do not count.

        handled: Whether its failure was handled by supervision: a
            ``TEMPORARY`` child that failed and was not restarted, by design,
            or a failed run whose restart was still waiting when the tree
            stopped. Its outcome stays ``FAILED`` and its error is kept, but it
            does not make the stop fail (:attr:`ShutdownReport.failures`).

        containment: How its child processes were contained, for a
            :class:`~lifecycle.ProcessComponent`: ``"cgroup"`` (a cgroup v2 of
            its own), ``"tree"`` (the process tree, as a child subreaper) or
            ``"process group"`` (outside Linux); ``None`` for a component
            without child processes. See :doc:`processes`.

            .. versionadded:: 0.2
    """

    name: str
    path: str
    outcome: Outcome
    phase: Phase | None = None
    priority: Priority = Priority.NORMAL
    error: BaseException | None = None
    stage: Literal["start", "run", "stop"] | None = None
    restarts: int = 0
    started_at: float | None = None
    ready_at: float | None = None
    stop_began: float | None = None
    stopped_at: float | None = None
    task_errors: tuple[BaseException, ...] = ()
    children: tuple[ComponentReport, ...] = ()
    phase_ends: tuple[float, float, float] | None = None
    earlier_errors: tuple[BaseException, ...] = ()
    cut_off: bool = False
    handled: bool = False
    containment: str | None = None

    @property
    def start_duration(self) -> float | None:
        """Seconds from the start of its start to readiness."""
        if self.started_at is None or self.ready_at is None:
            return None
        return self.ready_at - self.started_at

    @property
    def stop_duration(self) -> float | None:
        """Seconds from the start of its stop to the end of its task."""
        if self.stop_began is None or self.stopped_at is None:
            return None
        return self.stopped_at - self.stop_began

    def walk(self) -> Iterator[ComponentReport]:
        """Yield the reports of this component's nested children, depth first, then itself."""
        for child in self.children:
            yield from child.walk()
        yield self

    def to_dict(self, *, origin: float = 0.0) -> dict[str, object]:
        """
        Return the report as JSON-ready data (nested children excluded).

        Args:
            origin: Subtracted from every time, usually the request time.
        """

        def rel(value: float | None) -> float | None:
            return None if value is None else round(value - origin, 6)

        return {
            "name": self.name,
            "path": self.path,
            "outcome": self.outcome.value,
            "phase": None if self.phase is None else self.phase.name,
            "priority": self.priority.name,
            "error": None if self.error is None else _error_dict(self.error),
            "stage": self.stage,
            "restarts": self.restarts,
            "started_at": rel(self.started_at),
            "ready_at": rel(self.ready_at),
            "stop_began": rel(self.stop_began),
            "stopped_at": rel(self.stopped_at),
            "task_errors": [_error_dict(e) for e in self.task_errors],
            "phase_ends": _ends_dict(self.phase_ends, origin),
            "earlier_errors": [_error_dict(e) for e in self.earlier_errors],
            "cut_off": self.cut_off,
            "handled": self.handled,
            "containment": self.containment,
        }


@final
@attrs.frozen
class ShutdownReport:
    """
    What one stop of a tree did.

    ``str(report)`` is a readable table; :meth:`to_dict` and :meth:`to_json` are
    for machines.

    Attributes:
        root: The root component's name.

        reason: Why the tree stopped.

        detail: A short human explanation of the reason.

        requested_at: When the stop was requested, on the loop clock.

        finished_at: When the last component ended.

        root_report: The root's own report; its ``children`` hold the tree.

        phase_ends: When each phase of the tree's stop (``GRACEFUL``,
            ``FORCEFUL``, ``TERMINATE``) ended or was due to end, after any
            escalation (``math.inf``: never); ``None`` if unknown.

        phase_changes: Every phase change of the stop, in order, with what
            caused it (the ``tree.phase`` events).
    """

    root: str
    reason: StopReason
    detail: str
    requested_at: float
    finished_at: float
    root_report: ComponentReport
    phase_ends: tuple[float, float, float] | None = None
    phase_changes: tuple[PhaseChange, ...] = ()
    _flat: tuple[ComponentReport, ...] = attrs.field(init=False, repr=False, eq=False)

    def __attrs_post_init__(self) -> None:
        # Flattened once: the tree may hold many thousands of components.
        object.__setattr__(self, "_flat", tuple(self.root_report.walk()))

    @property
    def components(self) -> tuple[ComponentReport, ...]:
        """
        Every component of the tree, in the order their stops ended.

        A nested tree's components come just before the nested supervisor
        itself, and the root comes last; stubborn components end their tree's
        list.
        """
        return self._flat

    @property
    def duration(self) -> float:
        """Seconds from the request to the end of the last component."""
        return self.finished_at - self.requested_at

    @property
    def counts(self) -> dict[Outcome, int]:
        """How many components ended with each outcome."""
        return dict(Counter(c.outcome for c in self._flat))

    @property
    def failures(self) -> tuple[ComponentReport, ...]:
        """
        The components that failed or were stubborn.

        A failure that supervision handled (:attr:`ComponentReport.handled`)
        is not one of them: it is in :attr:`components` with its error, but it
        did not make the stop fail.
        """
        return tuple(
            c for c in self._flat if (c.outcome is Outcome.FAILED and not c.handled) or c.outcome is Outcome.STUBBORN
        )

    @property
    def ok(self) -> bool:
        """``True`` when nothing failed (unhandled) and nothing was stubborn."""
        return not self.failures

    @property
    def cut_off(self) -> tuple[ComponentReport, ...]:
        """
        The components whose cleanup was cut short by a deadline or an escalation.

        .. versionadded:: 0.1.0
        """
        return tuple(c for c in self._flat if c.cut_off)

    @property
    def clean(self) -> bool:
        """
        ``True`` when the stop was :attr:`ok` and no cleanup was cut short (:attr:`cut_off`).

        :func:`~lifecycle.run` exits 0 only after a clean stop.

        .. versionadded:: 0.1.0
        """
        return self.ok and not any(c.cut_off for c in self._flat)

    def __getitem__(self, path: str) -> ComponentReport:
        """Return the report of the component at *path* (or with that unique name)."""
        matches = [c for c in self._flat if path in {c.path, c.name}]
        if len(matches) == 1:
            return matches[0]
        if not matches:
            msg = f"No component {path!r} in this report."
            raise KeyError(msg)
        msg = f"Several components are named {path!r}; use the path ({', '.join(c.path for c in matches)})."
        raise KeyError(msg)

    def to_dict(self) -> dict[str, object]:
        """Return the report as JSON-ready data; times are seconds after the request."""
        return {
            "root": self.root,
            "reason": self.reason.value,
            "detail": self.detail,
            "duration": round(self.duration, 6),
            "ok": self.ok,
            "clean": self.clean,
            "counts": {k.value: v for k, v in self.counts.items()},
            "phase_ends": _ends_dict(self.phase_ends, self.requested_at),
            "phase_changes": [
                {"phase": c.phase.name, "at": round(c.at - self.requested_at, 6), "reason": c.reason}
                for c in self.phase_changes
            ],
            "components": [c.to_dict(origin=self.requested_at) for c in self.components],
        }

    def to_json(self, *, indent: int | None = 2) -> str:
        """Return :meth:`to_dict` as a JSON string."""
        return json.dumps(self.to_dict(), indent=indent)

    def to_svg(self) -> str:
        """
        Return the stop's timeline as an SVG document.

        One row per component, in tree order (a nested supervisor above its
        children, siblings in the order their stops ended, nested rows
        indented), with a bar for each phase its stop spent time in, coloured
        ``GRACEFUL``, ``FORCEFUL`` or ``TERMINATE``, and a tick where its stop
        began, so the components of one stop wave line up. The tree's phase
        boundaries are dashed vertical lines; a failed component ends with a
        cross, a stubborn one with an arrow at the right edge, and one that
        ended before its stop began with a circle. A title (the reason and the
        duration), a time axis from the request and a legend complete it.

        Pure SVG text with no scripts, fonts or stylesheets to fetch, the same
        for the same report; every name and message is escaped. Each bar is a
        ``rect`` with the classes ``bar`` and the phase name in lower case, and
        ``data-phase``, ``data-start`` and ``data-end`` (seconds after the
        request); each row is a ``g`` with ``data-path`` and ``data-outcome``.

        .. versionadded:: 0.1
        """
        from ._timeline import render_timeline  # noqa: PLC0415 - the SVG renderer loads only when a timeline is drawn

        return render_timeline(self)

    def __str__(self) -> str:
        counts = ", ".join(f"{n} {o.value}" for o, n in sorted(self.counts.items(), key=lambda kv: kv[0].value))
        lines = [
            f"Shutdown of {self.root!r}: {self.reason.value} ({self.detail}); {_seconds(self.duration)}; {counts}",
        ]
        header = ("component", "priority", "outcome", "phase", "start", "stop", "restarts", "error")
        rows = [header]
        for c in self.components:
            error = ""
            if c.error is not None:
                cause = c.error.__cause__ if c.error.__cause__ is not None else c.error
                # One row per component: a multi-line message is folded onto the row.
                message = " ".join(str(cause).split())
                stage = f"{c.stage} (handled)" if c.handled else c.stage
                error = f"{stage}: {type(cause).__name__}: {message}"
            elif c.task_errors:
                # Non-critical task failures did not fail the component, but are never hidden.
                last = c.task_errors[-1]
                error = (
                    f"{len(c.task_errors)} task failure(s), last: {type(last).__name__}: {' '.join(str(last).split())}"
                )
            rows.append(
                (
                    c.path,
                    c.priority.name,
                    c.outcome.value,
                    "-" if c.phase is None else c.phase.name,
                    _seconds(c.start_duration),
                    _seconds(c.stop_duration),
                    str(c.restarts),
                    error,
                ),
            )
        widths = [max(len(r[i]) for r in rows) for i in range(len(header) - 1)]
        lines.extend(
            "  " + "  ".join(cell.ljust(w) for cell, w in zip(r[:-1], widths, strict=True)) + "  " + r[-1] for r in rows
        )
        return "\n".join(line.rstrip() for line in lines)
