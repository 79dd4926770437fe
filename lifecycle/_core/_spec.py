"""The component model: how a function, generator or object becomes a component."""

from __future__ import annotations

import enum
import functools
import inspect
from collections.abc import Callable, Iterable, Sequence
from typing import Any, final

import attrs

from ._errors import ConfigurationError
from ._policy import Priority, ShutdownPolicy
from ._validation import Option

__all__ = ["ComponentSpec", "Style"]

CTX = "ctx"


class Style(enum.Enum):
    """How a component is written."""

    GENERATOR = "generator"
    """An async generator: code before ``yield`` starts it, code after is its teardown."""
    FUNCTION = "function"
    """An async function (or an object's ``async def run``) that calls ``ctx.ready()``."""


def _unwrap(target: object) -> object:
    while isinstance(target, functools.partial):
        target = target.func
    return target


def _describe(target: object) -> str:
    name = getattr(target, "__qualname__", None) or getattr(target, "__name__", None)
    return repr(name) if name else repr(target)


#: A component's name: also a part of the paths of everything below it.
COMPONENT_NAME = Option.name(expected="a non-empty string of printable characters without '/' (the path separator)")
_MAIN = Option.boolean()
_POLICY = Option.instance_of(ShutdownPolicy, "a lifecycle.ShutdownPolicy").or_none()


def _check_name(name: object, what: str) -> str:
    if not isinstance(name, str) or not COMPONENT_NAME.test(name):
        hint = Option.name_hint(name)
        msg = f"{what} {name!r} is not a valid component name: use {COMPONENT_NAME.expected}" + (
            f" ({hint})." if hint else "."
        )
        raise ConfigurationError(msg)
    return name


def _check_depends_on(name: str, depends_on: object) -> tuple[str, ...]:
    if isinstance(depends_on, str) or not isinstance(depends_on, Iterable):
        raise Option.error(
            "depends_on",
            depends_on,
            "a sequence of component names",
            owner=f"component {name!r}",
            hint=f"write depends_on=({depends_on!r},) for a single one",
        )
    deps = tuple(depends_on)
    for dep in deps:
        _check_name(dep, f"`depends_on` entry of component {name!r}:")
    return deps


def _check_priority(name: str, priority: object) -> Priority:
    # Priority(True) is HIGH and Priority(2.0) is NORMAL: only members and plain ints are priorities.
    if isinstance(priority, Priority) or (type(priority) is int and Priority.CRITICAL <= priority <= Priority.LOWEST):
        return Priority(priority)
    raise Option.error(
        "priority", priority, "a lifecycle.Priority (or a plain int from 0 to 4)", owner=f"component {name!r}"
    )


def _signature_dependencies(name: str, call: Callable[..., object]) -> tuple[bool, tuple[str, ...]]:
    try:
        signature = inspect.signature(call)
    except (
        TypeError,
        ValueError,
    ):  # pragma: no cover - builtins without signatures are rejected earlier
        return False, ()
    wants_ctx = False
    injected: list[str] = []
    for param in signature.parameters.values():
        if param.kind in {param.VAR_POSITIONAL, param.VAR_KEYWORD}:
            continue
        if param.kind is param.POSITIONAL_ONLY:
            msg = (
                f"Parameter {param.name!r} of component {name!r} is positional-only; dependencies "
                "are passed by name, so remove the '/' from its signature."
            )
            raise ConfigurationError(msg)
        if param.name == CTX:
            wants_ctx = True
        elif param.default is param.empty:
            injected.append(param.name)
    return wants_ctx, tuple(injected)


@final
@attrs.frozen
class ComponentSpec:
    """
    A declared component: what to run, its name, dependencies and options.

    Build one with :meth:`from_target`; supervisors do it for you in
    ``@sup.component`` and ``sup.add()``.

    Attributes:
        name: The component's name, unique among its siblings.

        target: What was registered (a function, an async generator function,
            or an object with ``async def run``).

        call: The callable that runs the component.

        style: Generator or function style.

        wants_ctx: Whether ``call`` takes the ``ctx`` parameter.

        injected: Parameters of ``call`` filled with dependencies' values.

        depends_on: Every dependency: the injected ones and the explicit ones.

        priority: The declared priority.

        main: Whether the component is the program's job.

        policy: The component's own shutdown policy, if any.
    """

    name: str
    target: object
    call: Callable[..., Any]
    style: Style
    wants_ctx: bool
    injected: tuple[str, ...]
    depends_on: tuple[str, ...]
    priority: Priority = Priority.NORMAL
    main: bool = False
    policy: ShutdownPolicy | None = None

    @classmethod
    def from_target(
        cls,
        target: object,
        *,
        name: str | None = None,
        depends_on: Sequence[str] = (),
        priority: Priority = Priority.NORMAL,
        main: bool = False,
        policy: ShutdownPolicy | None = None,
    ) -> ComponentSpec:
        """
        Declare *target* as a component.

        *target* is an async generator function, an async function, or an object
        with an ``async def run(self, ...)`` method (itself a coroutine or an async
        generator). Its parameters other than ``ctx`` and those with a default
        value are dependencies on the components of the same names and receive
        the values those components provide.

        Args:
            target: What to run.

            name: The component's name; defaults to the function's ``__name__``,
                or for an object to its ``name`` attribute if it is a string, else
                its class name. Printable characters only, without ``/``: a
                newline, NUL, escape or other control character is refused, so
                a name cannot forge a line of the logs.

            depends_on: Further dependencies whose values are not injected.

            priority: How important the component is: a
                :class:`~lifecycle.Priority`, or a plain ``int`` from 0 to 4
                (not a ``bool``, not a ``float``).

            main: Whether the component is the program's job.

            policy: The component's own shutdown budgets; they can only make the
                tree's deadlines earlier. For an object, defaults to its ``policy``
                attribute if that is a :class:`ShutdownPolicy` (a supervisor's).

        Raises:
            ConfigurationError: *target* is not an async callable or an object
                with ``async def run``, or an option is invalid.
        """
        if isinstance(target, ComponentSpec):
            msg = f"Component {target.name!r} is already a ComponentSpec; register the spec itself."
            raise ConfigurationError(msg)
        raw = _unwrap(target)
        if inspect.isclass(raw):
            msg = (
                f"{_describe(raw)} is a class; register an instance of it "
                f"(e.g. sup.add({raw.__name__}())), whose `async def run(self, ctx)` is the component."
            )
            raise ConfigurationError(msg)
        if inspect.isasyncgenfunction(raw) or inspect.iscoroutinefunction(raw):
            call: Callable[..., Any] = target  # type: ignore[assignment]
            default_name = getattr(raw, "__name__", None)
        else:
            run = getattr(target, "run", None)
            if run is None or not (inspect.isasyncgenfunction(run) or inspect.iscoroutinefunction(run)):
                kind = "a plain (sync) function" if callable(raw) else f"a {type(target).__name__}"
                msg = (
                    f"{_describe(target)} is {kind}, not a component: register an `async def` "
                    "function, an async generator function, or an object with an "
                    "`async def run(self, ctx)` method."
                )
                raise ConfigurationError(msg)
            call = run
            own_name = getattr(target, "name", None)
            default_name = own_name if isinstance(own_name, str) else type(target).__name__
            own_policy = getattr(target, "policy", None)
            if policy is None and isinstance(own_policy, ShutdownPolicy):
                policy = own_policy
        resolved = _check_name(name if name is not None else default_name, "Name")
        style = Style.GENERATOR if inspect.isasyncgenfunction(_unwrap(call)) else Style.FUNCTION
        wants_ctx, injected = _signature_dependencies(resolved, call)
        if style is Style.GENERATOR and main:
            msg = (
                f"Component {resolved!r} is an async generator (a resource) and cannot be "
                "`main=True`; a main component is a job that returns: write it as an async function."
            )
            raise ConfigurationError(msg)
        explicit = _check_depends_on(resolved, depends_on)
        if resolved in injected or resolved in explicit:
            msg = f"Component {resolved!r} depends on itself: remove {resolved!r} from its parameters or `depends_on`."
            raise ConfigurationError(msg)
        _POLICY.check("policy", policy, owner=f"component {resolved!r}")
        _MAIN.check("main", main, owner=f"component {resolved!r}")
        return cls(
            name=resolved,
            target=target,
            call=call,
            style=style,
            wants_ctx=wants_ctx,
            injected=injected,
            depends_on=tuple(dict.fromkeys(injected + explicit)),
            priority=_check_priority(resolved, priority),
            main=main,
            policy=policy,
        )

    def validate_tree(self) -> None:
        """
        Validate the tree this component holds, if it is one (:class:`~lifecycle.abc.Tree`).

        Raises:
            ConfigurationError: The nested tree is declared wrongly.
        """
        # Not isinstance(target, Tree): a runtime-checkable Protocol check costs
        # microseconds per call, and running() calls this for every component.
        validate = getattr(type(self.target), "validate_tree", None)
        if validate is not None:
            validate(self.target)
