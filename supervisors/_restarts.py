"""Supervision: what a supervisor does when a child ends (restart it and its group, let it go, or give up)."""

from __future__ import annotations

from typing import final

import anyio

from lifecycle.lowlevel import ComponentInstance, safe_logger

from ._child import Child, with_dependents
from ._dynamic import DynamicChildren
from ._errors import GaveUpError
from ._restart_timing import backoff_delay
from ._strategy import AutoShutdown, Restart, Strategy

__all__ = ["Supervision"]

_log = safe_logger("lifecycle.supervisors")


@final
class Supervision(DynamicChildren):
    """
    One run of a supervisor, as its ``run()`` holds it: starting, supervising, restarting and stopping its children.

    It applies each ended child's restart type and the supervisor's strategy,
    intensity and backoff (see :doc:`supervision`).
    """

    __slots__ = ()

    async def supervise(self) -> None:
        """Handle children that end; return when the supervisor gives up, a ``main`` child returns, or it stops."""
        while True:
            while not self.exited:
                if self.ctx.escalation is not None:
                    return
                await self._next_event()
            exited, self.exited = self.exited, []
            for instance in exited:
                self.noticed.discard(instance)
                child = self._child_of(instance)
                if child is None or child.retired or child.removing:  # retired by a restart, or removed
                    continue
                if not await self._child_ended(child, instance):
                    return

    async def _child_ended(self, child: Child, instance: ComponentInstance) -> bool:
        """Apply the restart type and strategy to a child that ended; ``False`` ends supervision."""
        failed = instance.failed
        exit_request = _exit_request(instance)
        if exit_request is not None:
            # sys.exit() or KeyboardInterrupt asks for the program to end, as in a plain
            # script: the whole tree stops, with no restart that would undo the request.
            return self._fail(instance, f"it raised {type(exit_request).__name__}: the program is to exit")
        if instance.spec.main:
            if failed:
                return self._fail(instance, "its main child failed")
            return await self._main_returned(child, instance)
        restart = child.restart
        if restart is Restart.TEMPORARY or (restart is Restart.TRANSIENT and not failed):
            return await self._ended_for_good(child, instance)
        # As in Erlang/OTP, every restart counts, a PERMANENT child's normal exit too.
        now = anyio.current_time()
        # Ends older than the window no longer count, nor are they reported: keep none
        # of them (a window that allows many restarts would otherwise hold every run).
        ends, within = self.ends, self.sup.intensity.within
        while ends and now - ends[0][0] >= within:
            ends.popleft()
        ends.append((now, instance))
        if not self.window.allow(now):
            return self._give_up(instance, now)
        await self._restart(child, instance)
        return self.ctx.escalation is None

    async def _main_returned(self, child: Child, instance: ComponentInstance) -> bool:
        """A ``main`` child returned: stop the supervisor, unless it waits for every ``main`` child."""
        if self.sup.auto_shutdown is AutoShutdown.ALL_SIGNIFICANT:
            child.gone = True
            if self._main_left():
                return await self._ended_for_good(child, instance)
            detail = f"{instance.path!r}, the last main child, returned"
        else:
            detail = f"{instance.path!r} (main) returned"
        _log.info("tree.main_exited", tree=self.ctx.path, child=instance.path)
        self.ctx.request_stop(detail)
        return False

    def _main_left(self) -> bool:
        """Whether a ``main`` child may still run (ALL_SIGNIFICANT waits for all of them)."""
        return any(c.spec.main and not c.gone and not c.removing for c in self.children.values())

    async def _ended_for_good(self, child: Child, instance: ComponentInstance) -> bool:
        """A child ended and is not restarted: stop what depends on it, then let its teardown run."""
        if instance.failed:
            _log.warning("supervisor.child_ended", tree=self.ctx.path, child=instance.path, restart=child.restart.value)
        else:
            _log.info("component.finished", component=instance.path)
        child.gone = True
        child.handled = instance.failed
        self.ctx.child_changed(child.name)
        dependents = [c for c in self._dependents_of(child) if c.instance is not None and not c.instance.done]
        if dependents:
            # They hold its value and it will not come back: they stop too, in order,
            # before its (held) teardown runs.
            _log.warning(
                "supervisor.dependents_stopping",
                tree=self.ctx.path,
                child=instance.path,
                dependents=sorted(c.name for c in dependents),
            )
            async with self.lock:
                for dependent in dependents:
                    dependent.retired = True
                    dependent.gone = True
                await self._stop_group(dependents)
        instance.release_teardown()
        if child.dynamic:
            self._drop(child)
            for dependent in dependents:
                if dependent.dynamic:
                    self._drop(dependent)
        main = [c for c in dependents if c.spec.main]
        if main and (self.sup.auto_shutdown is AutoShutdown.ANY_SIGNIFICANT or not self._main_left()):
            self.ctx.request_stop(f"{main[0].name!r} (main) stopped: {child.name!r}, which it depends on, ended")
            return False
        return self.ctx.escalation is None

    def _fail(self, instance: ComponentInstance, reason: str) -> bool:
        """Stop the supervisor because of a failure nothing handles (a ``main`` child's)."""
        _log.error("supervisor.giving_up", tree=self.ctx.path, child=instance.path, reason=reason)
        self.ctx.request_stop(f"{instance.path!r} failed ({reason})", failed=True)
        return False

    def _give_up(self, instance: ComponentInstance, now: float) -> bool:
        """The intensity was exceeded: stop every child and fail with a GaveUpError."""
        intensity = self.sup.intensity
        reason = f"more than {intensity.max_restarts} restarts within {intensity.within:g} s"
        errors = tuple(e for at, ended in self.ends if now - at < intensity.within for e in ended.failures())
        error = GaveUpError(self.ctx.path, instance.path, reason, errors, instance.failed)
        self.gave_up = (error, instance)
        how = "failed" if instance.failed else "returned"
        _log.error("supervisor.giving_up", tree=self.ctx.path, child=instance.path, reason=reason, ended=how)
        self.ctx.request_stop(f"{instance.path!r} {how} ({reason})", failed=True)
        return False

    def _restart_group(self, child: Child) -> list[Child]:
        """The children a restart of *child* restarts: the strategy's, plus their dependents."""
        strategy = self.sup.strategy
        if strategy is Strategy.ONE_FOR_ALL:
            group = dict.fromkeys(self.children.values())
        elif strategy is Strategy.REST_FOR_ONE:
            group = dict.fromkeys(c for c in self.children.values() if c.order >= child.order)
        else:
            group = {child: None}
        return list(with_dependents(group))  # dependents hold the old value: they restart too

    async def _restart(self, child: Child, failed: ComponentInstance) -> None:
        group = self._restart_group(child)
        async with self.lock:
            # Retire the group first, so its members' exits are not taken for new events.
            running: set[Child] = set()
            for member in group:
                if member.instance is not None and not member.retired:
                    member.retired = True
                    if not member.instance.done:
                        running.add(member)
            await self._stop_group([c for c in group if c in running])
        members = self._members(child, group)
        delay = self._schedule(child, failed, group, members)
        await self._sleep(delay)
        if self.ctx.escalation is not None:
            return
        async with self.lock:
            members = {c for c in members if self._registered(c)}
            for member in members:
                if member.instance is not None:
                    member.restarts += 1
            await self.start(members)
            for member in members:
                if member.retired and member.restart_at is not None:
                    # Not started: it waits for a dependency's own restart.
                    member.restart_at = None
                    self.ctx.child_changed(member.name)

    def _schedule(self, child: Child, failed: ComponentInstance, group: list[Child], members: set[Child]) -> float:
        """Compute the backoff of a restart, mark its members as due then, and log it; return the delay."""
        child.handled = failed.failed  # a failure the restart handles: not the stop's failure
        delay = self._backoff(child, failed)
        due = anyio.current_time() + delay
        for member in members:
            member.restart_at = due
        for member in group:
            self.ctx.child_changed(member.name)
        errors = failed.errors
        # What its report would say, without building the report for one error.
        error = (errors[0][1] if len(errors) == 1 else failed.report().error) if errors else None
        _log.warning(
            "supervisor.restarting",
            tree=self.ctx.path,
            child=failed.path,
            reason="failed" if failed.failed else "exited",
            error=None if error is None else f"{type(error).__name__}: {error}",
            attempt=child.attempts,
            delay=round(delay, 6),
            restarting=sorted(c.name for c in members),
        )
        return delay

    def _members(self, child: Child, group: list[Child]) -> set[Child]:
        """
        The members of a restart group that start again; the others are gone for good.

        As in Erlang/OTP (``supervisor.erl``: ``terminate_children/2``, then
        ``start_children/2``), every member but a ``TEMPORARY`` one starts again,
        a ``TRANSIENT`` child that had already returned included; a dynamic child
        not ready yet still waits for its first start.
        """
        members = {
            c
            for c in group
            if c is child
            or c.pending
            or c.instance is None  # never started: this is its first start
            or c.restart is not Restart.TEMPORARY
        }
        for member in group:
            if member not in members:
                member.gone = True
                if member.dynamic:
                    self._drop(member)
        return members

    async def _sleep(self, delay: float) -> None:
        """Wait *delay* seconds, or until the supervisor's stop begins."""
        if delay > 0:  # no cancel scope for a zero backoff: a crash loop stays cheap
            with anyio.move_on_after(delay):
                while self.ctx.escalation is None:
                    await self._next_event()

    def _backoff(self, child: Child, failed: ComponentInstance) -> float:
        """The delay before restarting *child*, counting its attempts."""
        attempt = child.attempts
        up = failed.ready_at, failed.stopped_at
        if up[0] is not None and up[1] is not None and up[1] - up[0] >= self.sup.intensity.within:
            attempt = 0  # it stayed up long enough: start the backoff over
        child.attempts = attempt + 1
        return backoff_delay(self.sup.backoff, attempt, self.random.random)


def _exit_request(instance: ComponentInstance) -> BaseException | None:
    """The ``SystemExit`` or ``KeyboardInterrupt`` the child (or a component below it) raised, if any."""
    errors = list(instance.failures())
    while errors:
        error = errors.pop()
        if isinstance(error, SystemExit | KeyboardInterrupt):
            return error
        if isinstance(error, BaseExceptionGroup):
            errors.extend(error.exceptions)
    return None
