"""The SIGUSR1 tree dump as readable text, for a console log."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import structlog

__all__ = ["dump_fields", "render_dump"]


def _deadlines(phase: object, remaining: object) -> str:
    if not isinstance(remaining, Mapping) or not remaining:
        return ""
    ends = [f"{name} ends in {seconds:g}s" for name, seconds in remaining.items()]
    return f", {phase} phase ({'; '.join(ends)})" if phase else f" ({'; '.join(ends)})"


def render_dump(components: Sequence[Mapping[str, object]]) -> str:
    """
    Render :func:`~lifecycle._host._signals.dump_tree`'s list as an indented tree of text.

    One line per component (its path, state, restarts, and the phase its stop
    is in with the seconds left until each phase ends), each nested under its
    parent, followed by its task's stack, indented under it.
    """
    if not components:
        return "(no live component)\n"
    top = min(str(c["component"]).count("/") for c in components)
    lines: list[str] = []
    for component in components:
        path = str(component["component"])
        indent = "  " * (path.count("/") - top)
        line = f"{indent}{path}: {component['state']}"
        restarts = component.get("restarts")
        if isinstance(restarts, int) and restarts:
            line += f", {restarts} restart{'s' if restarts > 1 else ''}"
        line += _deadlines(component.get("phase"), component.get("remaining"))
        lines.append(line)
        stack = str(component.get("stack") or "").rstrip("\n")
        lines.extend(f"{indent}  {frame_line}" for frame_line in stack.splitlines())
    return "\n".join(lines) + "\n"


def _console() -> bool:
    """Whether structlog renders for a console (its last processor is a ``ConsoleRenderer``)."""
    processors = structlog.get_config().get("processors") or []
    return bool(processors) and isinstance(processors[-1], structlog.dev.ConsoleRenderer)


def dump_fields(components: list[dict[str, object]]) -> dict[str, object]:
    """
    The fields of a ``tree.dump`` event: the components as data, or as a text tree on a console.

    A console renderer shows the ``stack`` field as a block of lines under the
    event, so the tree goes there (with ``count``, the number of components);
    every other renderer (JSON, a capture in tests) gets ``components``, a
    list of dictionaries.
    """
    if _console():
        return {"count": len(components), "stack": render_dump(components)}
    return {"components": components}
