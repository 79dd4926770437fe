from __future__ import annotations

import functools
from collections.abc import AsyncIterator

import pytest

import lifecycle
from lifecycle import ComponentSpec, ConfigurationError, Priority, ShutdownPolicy, Style
from supervisors import Supervisor


async def db() -> AsyncIterator[str]:
    yield "pool"


async def api(ctx: lifecycle.Context, db: str, cache: str, port: int = 8000) -> None:
    del ctx, db, cache, port


class Worker:
    name = "worker"
    policy = ShutdownPolicy(graceful=1.0)

    async def run(self, ctx: lifecycle.Context, db: str) -> None:
        del ctx, db


class TestStyles:
    def test_async_generator_is_generator_style(self) -> None:
        """An async generator function is a generator-style component named after the function."""
        spec = ComponentSpec.from_target(db)
        assert (spec.name, spec.style, spec.wants_ctx, spec.depends_on) == ("db", Style.GENERATOR, False, ())

    def test_parameters_without_default_are_injected_dependencies(self) -> None:
        """Parameters other than ctx and those with defaults are dependencies, in signature order."""
        spec = ComponentSpec.from_target(api)
        assert spec.style is Style.FUNCTION
        assert spec.wants_ctx
        assert spec.injected == ("db", "cache")
        assert spec.depends_on == ("db", "cache")

    def test_depends_on_adds_dependencies_without_injection(self) -> None:
        """`depends_on` adds dependencies after the injected ones, without duplicates."""
        spec = ComponentSpec.from_target(api, depends_on=("cache", "queue"))
        assert spec.injected == ("db", "cache")
        assert spec.depends_on == ("db", "cache", "queue")

    def test_object_with_run_uses_its_name_and_policy(self) -> None:
        """An object's `name` and `policy` attributes are its defaults, and `run` parameters are injected."""
        spec = ComponentSpec.from_target(Worker())
        assert spec.name == "worker"
        assert spec.policy == ShutdownPolicy(graceful=1.0)
        assert spec.injected == ("db",)

    def test_object_without_name_is_named_after_its_class(self) -> None:
        """An object without a string `name` is named after its class."""

        class Poller:
            async def run(self, ctx: lifecycle.Context) -> None:
                del ctx

        assert ComponentSpec.from_target(Poller()).name == "Poller"

    def test_partial_is_accepted(self) -> None:
        """A functools.partial of an async function is a component; bound parameters are not dependencies."""

        async def job(ctx: lifecycle.Context, db: str, retries: int) -> None:
            del ctx, db, retries

        spec = ComponentSpec.from_target(functools.partial(job, retries=3), name="job")
        assert spec.injected == ("db",)


class TestMistakes:
    def test_sync_function_is_rejected(self) -> None:
        """A plain function is a ConfigurationError that asks for `async def`."""

        def sync() -> None:
            pass

        with pytest.raises(ConfigurationError, match=r"plain \(sync\) function.*async def"):
            ComponentSpec.from_target(sync)

    def test_class_is_rejected_with_a_hint_to_instantiate(self) -> None:
        """Passing a class instead of an instance says to register an instance."""
        with pytest.raises(
            ConfigurationError, match=r"is a class; register an instance of it \(e.g. sup.add\(Worker\(\)\)\)"
        ):
            ComponentSpec.from_target(Worker)

    def test_object_without_async_run_is_rejected(self) -> None:
        """An object without `async def run` is a ConfigurationError naming its type."""
        with pytest.raises(ConfigurationError, match="a int, not a component"):
            ComponentSpec.from_target(42)

    def test_string_depends_on_is_rejected(self) -> None:
        """A bare string for `depends_on` suggests a one-element tuple."""
        with pytest.raises(ConfigurationError, match=r"depends_on=\('db',\)"):
            ComponentSpec.from_target(db, name="x", depends_on="db")

    @pytest.mark.parametrize("name", ["", "a/b", 3])
    def test_invalid_names_are_rejected(self, name: object) -> None:
        """Names must be non-empty strings without '/'."""
        with pytest.raises(ConfigurationError, match="not a valid component name"):
            ComponentSpec.from_target(db, name=name)  # type: ignore[arg-type]

    def test_self_dependency_is_rejected(self) -> None:
        """A component that depends on itself is rejected at once."""
        with pytest.raises(ConfigurationError, match="depends on itself"):
            ComponentSpec.from_target(db, depends_on=("db",))

    def test_generator_cannot_be_main(self) -> None:
        """A resource (async generator) cannot be the program's job."""
        with pytest.raises(ConfigurationError, match="cannot be `main=True`"):
            ComponentSpec.from_target(db, main=True)

    def test_bad_priority_is_rejected(self) -> None:
        """An unknown priority value is a ConfigurationError naming the component."""
        with pytest.raises(ConfigurationError, match="`priority` of component 'db'"):
            ComponentSpec.from_target(db, priority=9)  # type: ignore[arg-type]

    def test_bad_policy_is_rejected(self) -> None:
        """`policy` must be a ShutdownPolicy."""
        with pytest.raises(ConfigurationError, match="`policy` of component 'db'"):
            ComponentSpec.from_target(db, policy=30)  # type: ignore[arg-type]

    def test_positional_only_parameter_is_rejected(self) -> None:
        """Dependencies are passed by name, so positional-only parameters are rejected."""

        async def job(db: str, /) -> None:
            del db

        with pytest.raises(ConfigurationError, match="positional-only"):
            ComponentSpec.from_target(job)

    def test_spec_cannot_be_wrapped_again(self) -> None:
        """from_target() on a spec says to register the spec itself."""
        with pytest.raises(ConfigurationError, match="already a ComponentSpec"):
            ComponentSpec.from_target(ComponentSpec.from_target(db))


class TestRegistration:
    def test_decorator_returns_the_function_unchanged(self) -> None:
        """@sup.component returns the original function, bare or with options."""
        sup = Supervisor()
        assert sup.component(db) is db
        assert sup.component(name="db2", priority=Priority.HIGH)(db) is db
        assert [c.name for c in sup.children] == ["db", "db2"]

    def test_duplicate_name_is_rejected_at_once(self) -> None:
        """Registering a second component with a taken name raises immediately."""
        sup = Supervisor()
        sup.add(db)
        with pytest.raises(ConfigurationError, match="already has a component named 'db'"):
            sup.add(db)

    def test_add_returns_the_object(self) -> None:
        """sup.add() returns what it was given."""
        worker = Worker()
        assert Supervisor().add(worker) is worker

    def test_nested_supervisor_is_named_after_itself(self) -> None:
        """A supervisor added to another is a component named after the supervisor."""
        root = Supervisor()
        root.add(Supervisor("storage"))
        assert [c.name for c in root.children] == ["storage"]

    @pytest.mark.parametrize(
        ("kwargs", "match"),
        [
            ({"strategy": "one_for_one"}, "`strategy`"),
            ({"intensity": 3}, "`intensity`"),
            ({"backoff": 0.1}, "`backoff`"),
            ({"policy": 30}, "`policy`"),
        ],
    )
    def test_supervisor_options_are_checked(self, kwargs: dict[str, object], match: str) -> None:
        """A wrongly typed supervisor option is a ConfigurationError naming it."""
        with pytest.raises(ConfigurationError, match=match):
            Supervisor("root", **kwargs)  # type: ignore[arg-type]

    def test_supervisor_name_is_checked(self) -> None:
        """A supervisor name with '/' is rejected."""
        with pytest.raises(ConfigurationError, match="Supervisor name 'a/b' is invalid"):
            Supervisor("a/b")

    def test_restart_option_is_checked(self) -> None:
        """`restart` must be a supervisors.Restart."""
        with pytest.raises(ConfigurationError, match="`restart` of component 'db'"):
            Supervisor().add(db, restart="always")  # type: ignore[arg-type]
