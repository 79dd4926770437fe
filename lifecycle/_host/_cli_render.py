"""Text, Mermaid and Graphviz renderings of a tree, for ``lifecycle check`` and ``graph``."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

from lifecycle._core._protocols import ChildInfo, TreeInfo

__all__ = ["render_check", "render_dot", "render_mermaid", "render_settings", "render_text"]


def _walk(tree: TreeInfo, path: str) -> Iterator[tuple[str, TreeInfo]]:
    yield path, tree
    for child in tree.children:
        if child.tree is not None:
            yield from _walk(child.tree, f"{path}/{child.name}")


def _label(child: ChildInfo) -> str:
    prio = child.priority.name
    if child.effective != child.priority:
        prio = f"{prio}, stops as {child.effective.name}"
    extra = ", main" if child.main else ""
    return f"{child.name} [{prio}{extra}]"


def render_check(tree: TreeInfo) -> str:
    """Describe a valid tree: its start and stop waves and priority inheritance, nested trees too."""
    lines: list[str] = []
    for path, info in _walk(tree, tree.name):
        lines.append(f"Tree {path!r}: {len(info.children)} components, valid.")
        lines.append("  Start waves (dependencies first, CRITICAL first; each wave starts concurrently):")
        lines.extend(f"    {n}. {', '.join(wave)}" for n, wave in enumerate(info.start_waves, 1))
        lines.append("  Stop waves (dependents first, lower priorities first; each wave stops concurrently):")
        lines.extend(f"    {n}. {', '.join(wave)}" for n, wave in enumerate(info.stop_waves, 1))
        raised = [c for c in info.children if c.effective != c.priority]
        if raised:
            lines.append("  Priority inheritance (a dependency outlives its dependents):")
            for child in raised:
                givers = [
                    d.name for d in info.children if child.name in d.depends_on and d.effective == child.effective
                ]
                lines.append(
                    f"    {child.name}: declared {child.priority.name}, stops as {child.effective.name} "
                    f"(needed by {', '.join(givers)})",
                )
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def render_settings(settings: Sequence[tuple[str, str, bool]]) -> str:
    """List the ``LIFECYCLE_*`` settings in effect: ``(variable, value, set in the environment)`` each."""
    width = max(len(variable) for variable, _, _ in settings)
    lines = ["Settings (LIFECYCLE_* environment variables):"]
    lines.extend(
        f"  {variable.ljust(width)}  {value}{'' if is_set else ' (default)'}" for variable, value, is_set in settings
    )
    return "\n".join(lines) + "\n"


def render_text(tree: TreeInfo) -> str:
    """Draw the tree for a terminal: each component above the components it depends on."""
    lines = [tree.name]
    _text_tree(tree, "", lines)
    return "\n".join(lines) + "\n"


def _text_tree(tree: TreeInfo, indent: str, lines: list[str]) -> None:
    by_name = {c.name: c for c in tree.children}
    needed = {dep for c in tree.children for dep in c.depends_on}
    tops = [c for c in tree.children if c.name not in needed]
    shown: set[str] = set()

    def draw(child: ChildInfo, prefix: str, last: bool) -> None:
        branch = "└── " if last else "├── "
        if child.name in shown and (child.depends_on or child.tree is not None):
            lines.append(f"{prefix}{branch}{child.name} (see above)")
            return
        shown.add(child.name)
        lines.append(f"{prefix}{branch}{_label(child)}")
        deeper = prefix + ("    " if last else "│   ")
        deps = [by_name[d] for d in child.depends_on]
        for i, dep in enumerate(deps):
            draw(dep, deeper, i == len(deps) - 1 and child.tree is None)
        if child.tree is not None:
            lines.append(f"{deeper}└── contains:")
            _text_tree(child.tree, deeper + "    ", lines)

    for i, child in enumerate(tops):
        draw(child, indent, i == len(tops) - 1)


def _ids(tree: TreeInfo) -> dict[str, str]:
    ids: dict[str, str] = {}
    for path, info in _walk(tree, tree.name):
        for child in info.children:
            ids[f"{path}/{child.name}"] = f"n{len(ids)}"
    return ids


def _emit(
    tree: TreeInfo,
    indent: str,
    node: Callable[[str, str], str],
    nested: tuple[Callable[[str, ChildInfo, str], list[str]], str],
    edge: Callable[[str, str], str],
) -> list[str]:
    """Walk *tree* depth first, writing nodes, nested clusters and dependency edges."""
    ids = _ids(tree)
    lines: list[str] = []
    open_cluster, close_cluster = nested

    def emit(path: str, info: TreeInfo, pad: str) -> None:
        for child in info.children:
            node_id = ids[f"{path}/{child.name}"]
            if child.tree is not None:
                lines.extend(pad + line for line in open_cluster(node_id, child, _label(child)))
                emit(f"{path}/{child.name}", child.tree, pad + "  ")
                lines.append(pad + close_cluster)
            else:
                lines.append(pad + node(node_id, _label(child)))
        for child in info.children:
            lines.extend(pad + edge(ids[f"{path}/{child.name}"], ids[f"{path}/{dep}"]) for dep in child.depends_on)

    emit(tree.name, tree, indent)
    return lines


def render_mermaid(tree: TreeInfo) -> str:
    """Return a Mermaid flowchart: an arrow from each component to each of its dependencies."""

    def quote(label: str) -> str:
        return label.replace('"', "'")

    lines = _emit(
        tree,
        "  ",
        node=lambda node_id, label: f'{node_id}["{quote(label)}"]',
        nested=(lambda node_id, _, label: [f'subgraph {node_id}["{quote(label)}"]'], "end"),
        edge=lambda a, b: f"{a} --> {b}",
    )
    return "\n".join(["flowchart TD", *lines]) + "\n"


def render_dot(tree: TreeInfo) -> str:
    """Return a Graphviz digraph: an edge from each component to each of its dependencies."""

    def quote(label: str) -> str:
        return label.replace('"', '\\"')

    lines = _emit(
        tree,
        "  ",
        node=lambda node_id, label: f'{node_id} [label="{quote(label)}"];',
        nested=(
            lambda node_id, child, label: [
                f'subgraph cluster_{node_id} {{ label="{quote(label)}";',
                f'  {node_id} [label="{child.name}", shape=folder];',
            ],
            "}",
        ),
        edge=lambda a, b: f"{a} -> {b};",
    )
    head = [f'digraph "{tree.name}" {{', "  node [shape=box, fontname=Helvetica];"]
    return "\n".join([*head, *lines, "}"]) + "\n"
