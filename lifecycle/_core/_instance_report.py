"""The report of one component run, as it is now: what ComponentInstance.report() returns."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._report import ComponentReport
from ._states import Outcome

if TYPE_CHECKING:
    from ._instance import ComponentInstance

__all__ = ["instance_report"]


def instance_report(instance: ComponentInstance, now: float | None) -> ComponentReport:
    """Return what happened to the run *instance* so far (see :meth:`ComponentInstance.report`)."""
    escalation = instance.escalation
    phase = None
    if escalation is not None:
        at = instance.stopped_at if instance.stopped_at is not None else now
        phase = escalation.phase if at is None else escalation.phase_at(at)
    if instance._errors:
        outcome = Outcome.FAILED
    elif not instance._done:
        outcome = Outcome.STUBBORN
    elif phase is None:
        outcome = Outcome.FINISHED
    else:
        outcome = Outcome.for_phase(phase)  # the phase it ended in
    stage = instance._errors[0][0] if instance._errors else None
    return ComponentReport(
        name=instance.spec.name,
        path=instance.path,
        outcome=outcome,
        phase=phase,
        priority=instance.priority,
        error=instance._error(),
        stage=stage,
        restarts=instance.restarts,
        started_at=instance.started_at,
        ready_at=instance.ready_at,
        stop_began=instance.stop_began,
        stopped_at=instance.stopped_at,
        task_errors=instance._task_errors,
        children=instance._children_reports,
        cut_off=instance._cut_off,
        phase_ends=None if escalation is None else escalation.ends,
        containment=instance._containment,
    )
