"""Dynamic children: registering, starting and stopping children while the supervisor runs, and forgetting them."""

from __future__ import annotations

from collections.abc import Iterable

import anyio

from lifecycle import ComponentReport, ConfigurationError, Priority, StoppedError, UsageError
from lifecycle.lowlevel import current_instance, failure_group, safe_logger

from ._child import Child, Declaration
from ._engine import Engine
from ._graph import _unknown_dependency_message

__all__ = ["DynamicChildren"]

_log = safe_logger("lifecycle.supervisors")


class DynamicChildren(Engine):
    """A supervisor's run, with the children it starts and stops while it runs (``start_child()``, ``stop_child()``)."""

    __slots__ = ()

    def _check_open(self, what: str) -> None:
        if self.stopping or self.ctx.escalation is not None:
            msg = f"Supervisor {self.ctx.path!r} is stopping; {what}."
            raise StoppedError(msg)

    def _register(self, declaration: Declaration) -> Child:
        spec = declaration.spec
        self._check_open(f"child {spec.name!r} was not started")
        if spec.name in self.children:
            msg = (
                f"Supervisor {self.ctx.path!r} already has a child named {spec.name!r}; pass a different `name=`, "
                "or stop the existing child first with `stop_child()`."
            )
            raise ConfigurationError(msg)
        missing = [dep for dep in spec.depends_on if dep not in self.children]
        if missing:  # the names are listed only then: a start stays O(its dependencies)
            names = list(self.children)
            unknown = [_unknown_dependency_message(spec.name, dep, names) for dep in missing]
            raise ConfigurationError(unknown[0] if len(unknown) == 1 else "\n".join(unknown))
        deps = tuple(dict.fromkeys(self.children[dep] for dep in spec.depends_on))
        gone = [dep.name for dep in deps if dep.removing or dep.ended_for_good()]
        if gone:
            msg = (
                f"Child {spec.name!r} depends on {gone[0]!r}, which has ended and will not be restarted; "
                f"start {gone[0]!r} again first."
            )
            raise StoppedError(msg)
        child = Child(declaration, self.next_order, dynamic=True)
        self.next_order += 1
        child.deps = deps
        for dep in deps:
            self._counts(dep)[child.effective] += 1
            if dep.dependents is None:
                dep.dependents = {}
            dep.dependents[child] = None
        self.children[spec.name] = child
        self.reshaped = True
        self._refresh_priorities(deps)
        return child

    @staticmethod
    def _counts(child: Child) -> list[int]:
        """How many direct dependents *child* has at each effective priority (counted on first use)."""
        if child.counts is None:
            child.counts = [0] * len(Priority)
            for dependent in child.dependents or ():
                child.counts[dependent.effective] += 1
        return child.counts

    def _refresh_priorities(self, start: Iterable[Child]) -> None:
        """Recompute the effective priority of *start* and, where it changed, of their dependencies."""
        todo = list(start)
        while todo:
            child = todo.pop()
            effective = child.spec.priority
            if child.dependents:
                counts = self._counts(child)
                effective = min(effective, next(Priority(p) for p, n in enumerate(counts) if n))
            if effective == child.effective:
                continue
            for dep in child.deps:
                counts = self._counts(dep)
                counts[child.effective] -= 1
                counts[effective] += 1
            child.effective = effective
            if child.instance is not None:
                child.instance.priority = effective
            todo.extend(child.deps)

    async def start_child(self, declaration: Declaration) -> object:
        """Register a child and start it once its dependencies are ready; return its value once it is ready."""
        child = self._register(declaration)
        try:
            return await self._wait_started(child)
        except BaseException as exc:
            # Once ready, the child stays (a cancelled caller only misses its value).
            if child.started is None and self._registered(child) and not self.stopping:
                cancelled = isinstance(exc, anyio.get_cancelled_exc_class())
                why = "start_child() was cancelled" if cancelled else "it failed to start"
                with anyio.CancelScope(shield=True):
                    await self._remove(child, why=why)
            raise

    async def _wait_started(self, child: Child) -> object:
        while True:
            if child.started is not None:
                return child.started[0]
            if not self._registered(child):
                msg = f"Child {child.name!r} of {self.ctx.path!r} was stopped before it was ready."
                raise StoppedError(msg)
            self._check_open(f"child {child.name!r} was stopped before it was ready")
            instance = child.instance
            if instance is None:
                gone = [dep.name for dep in child.deps if dep.ended_for_good() or not self._registered(dep)]
                if gone:
                    msg = (
                        f"Child {child.name!r} of {self.ctx.path!r} was not started: {gone[0]!r}, which it "
                        "depends on, ended and will not be restarted."
                    )
                    raise StoppedError(msg)
                if all(dep.ready() for dep in child.deps):
                    self._new_instance(child, None).start_soon(self.task_group)
            elif not child.retired and instance.done:  # it ended before it was ready
                errors = instance.failures()
                if errors:
                    raise errors[0] if len(errors) == 1 else failure_group(f"{instance.path!r} failed", errors)
                msg = f"Child {instance.path!r} returned before it was ready."
                raise StoppedError(msg)
            await self._changes()

    async def stop_child(self, name: str) -> ComponentReport:
        """Stop the child *name* and its dependents, forget them, and return the child's report."""
        child = self.children.get(name)
        if child is None:
            msg = f"Supervisor {self.ctx.path!r} has no child named {name!r}."
            raise KeyError(msg)
        if self.stopping or self.ctx.escalation is not None or child.removing:
            # Stopped in its wave by the supervisor's stop (or by another stop_child()).
            if child.instance is not None:
                await child.instance.wait()
            return child.report()
        async with self.lock:
            if not self._registered(child):  # removed while we waited for the lock
                return child.report()
            if self.stopping:
                if child.instance is not None:
                    await child.instance.wait()
                return child.report()
            with anyio.CancelScope(shield=True):
                await self._remove(child, why="stop_child()", locked=True)
        return child.report()

    async def _remove(self, child: Child, *, why: str, locked: bool = False) -> None:
        """Stop *child* and its transitive dependents in order, and forget them."""
        if not locked:
            async with self.lock:
                if self._registered(child) and not self.stopping:
                    await self._remove(child, why=why, locked=True)
            return
        group = self._dependents_of(child)
        group.append(child)
        owner = current_instance()
        while owner is not None:
            for member in group:
                if member.instance is owner:
                    msg = (
                        f"Component {owner.path!r} called `stop_child({child.name!r})`, which stops "
                        f"{owner.path!r} itself and would wait for its own stop; return from it instead."
                    )
                    raise UsageError(msg)
            owner = owner.parent
        for member in group:
            member.removing = True
        await self._stop_group(group)
        for member in group:
            self._forget(member)
            report = member.report()
            _log.info(
                "supervisor.child_stopped",
                tree=self.ctx.path,
                child=report.path,
                outcome=report.outcome.value,
                reason=why,
            )

    def _drop(self, child: Child) -> None:
        """Forget a dynamic child that ended for good, keeping its report if it failed."""
        instance = child.instance
        if instance is not None and instance.failed and instance.exit_order is not None:
            self.dropped.append((instance.exit_order, child.report()))
        self._forget(child)

    def _forget(self, child: Child) -> None:
        if self.children.get(child.name) is not child:
            return
        del self.children[child.name]
        self.reshaped = True
        for dep in child.deps:
            if dep.dependents is not None and child in dep.dependents:
                self._counts(dep)[child.effective] -= 1
                del dep.dependents[child]
        self._refresh_priorities(child.deps)
        if child.instance is not None:
            self.noticed.discard(child.instance)
        self._notify()
