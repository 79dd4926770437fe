"""What users see of reload, pinned for type checkers (never run)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import assert_type

import lifecycle
from lifecycle import Context, ReloadReport, RunningTree, Subscription


async def reloadable(ctx: Context) -> None:
    async def read_again() -> None:
        pass

    assert_type(ctx.on_reload(read_again), Subscription)
    assert_type(ctx.on_reload(lambda: None), Subscription)
    ctx.ready()


async def reload(tree: RunningTree) -> None:
    report = await tree.reload()
    assert_type(report, ReloadReport)
    assert_type(report.ok, bool)
    assert_type(report.reloaded, tuple[str, ...])
    assert_type(report.errors, Mapping[str, Exception])
    assert_type(report.ignored, str | None)
    tree.request_reload()
    assert_type(tree.subscribe_reloads(lambda: None, print), Subscription)


def run() -> None:
    lifecycle.run(reloadable, sighup="reload")
    lifecycle.run(reloadable, sighup="restart")  # type: ignore[arg-type]
