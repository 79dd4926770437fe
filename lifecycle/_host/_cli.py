"""The ``lifecycle`` command: run, check, graph and demo."""

from __future__ import annotations

import argparse
import difflib
import importlib
import importlib.metadata
import inspect
import sys
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path

import attrs

from lifecycle._core._errors import ConfigurationError
from lifecycle._core._policy import ShutdownPolicy
from lifecycle._core._protocols import Tree, TreeInfo
from lifecycle._core._report import ShutdownReport
from lifecycle._core._settings import FORCEFUL_TIMEOUT, GRACEFUL_TIMEOUT, TERMINATE_TIMEOUT, effective
from lifecycle._core._validation import escape_unprintable

from ._cli_render import render_check, render_dot, render_mermaid, render_settings, render_text
from ._program import ExitCode, execute
from ._running_tree import as_spec

__all__ = ["main"]

PROGRAMS_GROUP = "anyio_lifecycle.programs"


class CliError(Exception):
    """A usage error: printed as one line, exit code 2."""


def _error(message: str, *, kind: str = "error") -> None:
    print(f"lifecycle: {kind}: {escape_unprintable(message)}", file=sys.stderr)  # noqa: T201 - the command's own output


def _is_component(obj: object) -> bool:
    target = getattr(obj, "func", obj)  # functools.partial
    if inspect.iscoroutinefunction(target) or inspect.isasyncgenfunction(target):
        return True
    run_method = getattr(obj, "run", None)
    return inspect.iscoroutinefunction(run_method) or inspect.isasyncgenfunction(run_method)


def load_target(target: str) -> object:
    """
    Import ``module:attr`` and return the component it names.

    The current directory is importable. A zero-argument callable that is not a
    component itself is called, and what it returns is the component.

    Raises:
        CliError: The target is malformed, the module or attribute is missing,
            or a factory needs arguments; the message says where it looked.
    """
    module_name, sep, attr = target.partition(":")
    if not sep or not module_name or not attr:
        msg = f"expected MODULE:ATTRIBUTE (e.g. app.main:tree), got {target!r}"
        raise CliError(msg)
    cwd = str(Path.cwd())
    if cwd not in sys.path:
        sys.path.insert(0, cwd)
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and (module_name == exc.name or module_name.startswith(f"{exc.name}.")):
            msg = (
                f"no module named {exc.name!r}: looked in the current directory ({cwd}) and in the "
                f"{len(sys.path) - 1} other sys.path entries; check the spelling, or install the package"
            )
            raise CliError(msg) from None
        raise _import_failed(module_name) from exc
    except Exception as exc:
        raise _import_failed(module_name) from exc
    obj: object = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            where = f"module {module_name!r}" if obj is module else repr(obj)
            names = [n for n in dir(obj) if not n.startswith("_")]
            close = difflib.get_close_matches(part, names, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            msg = f"{where} has no attribute {part!r}{hint}"
            raise CliError(msg)
        obj = getattr(obj, part)
    if callable(obj) and not _is_component(obj) and not inspect.isclass(obj):
        try:
            obj = obj()
        except TypeError as exc:
            msg = f"{target} is a callable that is not a component; calling it without arguments failed: {exc}"
            raise CliError(msg) from None
    return obj


def _import_failed(module_name: str) -> CliError:
    traceback.print_exc()
    return CliError(f"importing {module_name!r} failed (traceback above)")


def _tree_info(obj: object) -> TreeInfo | None:
    spec = as_spec(obj)
    spec.validate_tree()
    return spec.target.describe_tree() if isinstance(spec.target, Tree) else None


def _policy(obj: object, args: argparse.Namespace) -> ShutdownPolicy | None:
    """The tree's policy with the command line's budgets in place of its own."""
    overrides = {k: v for k in ("graceful", "forceful", "terminate") if (v := getattr(args, k, None)) is not None}
    if not overrides:
        return None
    base = as_spec(obj).policy or ShutdownPolicy.from_env()
    return attrs.evolve(base, **overrides)


def _run(obj: object, args: argparse.Namespace) -> int:
    options = {"use_uvloop": True} if getattr(args, "uvloop", False) else None
    report_json: Path | None = getattr(args, "report_json", None)
    timeline: Path | None = getattr(args, "timeline", None)

    def write_files(report: ShutdownReport) -> None:
        if report_json is not None:
            report_json.write_text(report.to_json() + "\n")
        if timeline is not None:
            timeline.write_text(report.to_svg(), encoding="utf-8")

    # The report is printed (and written) while the signal handlers are still
    # installed; after that the command only exits, so late signals are ignored.
    execute(
        obj,
        backend=args.backend,
        backend_options=options,
        policy=_policy(obj, args),
        on_report=write_files,
        print_report=True,
        exiting=True,
        sighup=getattr(args, "sighup", "stop"),
    )
    return ExitCode.OK


def _demo_program() -> Callable[..., object]:
    for entry in importlib.metadata.entry_points(group=PROGRAMS_GROUP):
        if entry.name == "demo":
            program: Callable[..., object] = entry.load()
            return program
    msg = (
        "the demo program is not installed: reinstall anyio-lifecycle "
        f"(no 'demo' entry point in the {PROGRAMS_GROUP!r} group)"
    )
    raise CliError(msg)


def _version() -> str:
    try:
        return importlib.metadata.version("anyio-lifecycle")
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover - running from a source tree never installed
        return "unknown (not installed)"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lifecycle",
        description="Run, check and draw anyio-lifecycle trees.",
        epilog="Exit codes: 0 clean stop, 1 a failure nothing handled, 2 usage or configuration error, "
        "3 hard exit (terminate deadline, or a third signal while the event loop was blocked), "
        "4 stopped without failures but some cleanup was cut short, 130 a component raised KeyboardInterrupt, "
        "n a component raised SystemExit(n).",
    )
    parser.add_argument(
        "--version",
        action="version",
        version=f"%(prog)s {_version()} (Python {sys.version.split()[0]})",
        help="print the installed version of anyio-lifecycle and exit",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def backend_options(p: argparse.ArgumentParser) -> None:
        p.add_argument("--backend", choices=["asyncio", "trio"], default="asyncio", help="event loop (asyncio)")
        p.add_argument("--uvloop", action="store_true", help="run asyncio on uvloop (needs uvloop installed)")

    timeline_help = "also draw the shutdown timeline as SVG to PATH (after failures and hard exits too)"
    target_help = "the tree to use, as MODULE:ATTRIBUTE (a Supervisor, a component, or a factory returning one)"
    p_run = sub.add_parser("run", help="run a tree until it stops", description="Run a tree until it stops.")
    p_run.add_argument("target", help=target_help)
    backend_options(p_run)
    for phase, setting in (
        ("graceful", GRACEFUL_TIMEOUT),
        ("forceful", FORCEFUL_TIMEOUT),
        ("terminate", TERMINATE_TIMEOUT),
    ):
        p_run.add_argument(
            f"--{phase}",
            type=float,
            metavar="S",
            help=(
                f"{phase} budget in seconds (default: the root's own policy, else "
                f"{setting.variable}, else {setting.show(setting.default)})"
            ),
        )
    p_run.add_argument(
        "--report-json",
        type=Path,
        metavar="PATH",
        help="also write the report as JSON to PATH (after failures and hard exits too)",
    )
    p_run.add_argument("--timeline", type=Path, metavar="PATH", help=timeline_help)
    p_run.add_argument(
        "--sighup",
        choices=["stop", "reload"],
        default="stop",
        help="what SIGHUP does: stop the tree (the default), or reload it: run the components' reload hooks "
        "and tell systemd (for `systemctl reload` and Type=notify-reload)",
    )

    p_check = sub.add_parser(
        "check",
        help="validate a tree and print its start and stop waves",
        description="Validate a tree (exit 0) or show what is wrong (exit 2); print its waves.",
    )
    p_check.add_argument("target", help=target_help)

    p_graph = sub.add_parser("graph", help="draw the dependency graph", description="Draw the dependency graph.")
    p_graph.add_argument("target", help=target_help)
    p_graph.add_argument("--format", choices=["text", "mermaid", "dot"], default="text", help="output format")

    p_demo = sub.add_parser(
        "demo",
        help="run the built-in demo service",
        description="Run a small service tree (store, cache, workers, ticker, HTTP API, child process) until Ctrl-C.",
    )
    p_demo.add_argument("--for", dest="seconds", type=float, metavar="SECONDS", help="stop after SECONDS")
    p_demo.add_argument(
        "--slow",
        action="store_true",
        help="slow cleanups, each bound to a phase, and budgets of 4 s each: watch GRACEFUL, FORCEFUL and "
        "TERMINATE, and what each Ctrl-C does",
    )
    backend_options(p_demo)
    p_demo.add_argument("--timeline", type=Path, metavar="PATH", help=timeline_help)
    return parser


def _command(args: argparse.Namespace) -> int:
    if args.command == "demo":
        return _run(_demo_program()(args.seconds, slow=args.slow), args)
    obj = load_target(args.target)
    if args.command == "run":
        return _run(obj, args)
    info = _tree_info(obj)
    if args.command == "check":
        text = f"{args.target}: a single component, valid.\n" if info is None else render_check(info)
        text += "\n" + render_settings(effective())
    elif info is None:
        msg = f"{args.target} is a single component, not a tree: there is no graph to draw"
        raise CliError(msg)
    else:
        text = {"text": render_text, "mermaid": render_mermaid, "dot": render_dot}[args.format](info)
    print(escape_unprintable(text, keep="\n"), end="")  # noqa: T201 - the command's own output
    return ExitCode.OK


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``lifecycle`` command; return its exit code."""
    args = _parser().parse_args(argv)
    try:
        return _command(args)
    except CliError as exc:
        _error(str(exc))
        return ExitCode.USAGE
    except ConfigurationError as exc:
        _error(str(exc), kind="configuration error")
        return ExitCode.USAGE


def entry_point() -> None:
    """The ``lifecycle`` console script."""
    sys.exit(main())


if __name__ == "__main__":  # pragma: no cover - `python -m lifecycle` goes through __main__.py
    entry_point()
