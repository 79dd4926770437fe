"""The framework's answers to a hand-made async coordinator, in one small service.

Run it with ``python docs/examples/coordinators.py [asyncio|trio]``. The
``main`` job uses each helper once and prints what happened; the tree then
stops in order and the report shows the background task that failed.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import AsyncIterator
from typing import Literal

import anyio
import anyio.lowlevel

import lifecycle
from lifecycle import Context
from supervisors import Supervisor

tree = Supervisor("shop")


# -- create_task fire-and-forget -> ctx.spawn(critical=False) -------------------
async def refresh_rates(rates: dict[str, float]) -> None:
    """A background refresh that fails: logged with its traceback and counted in the report."""
    await anyio.lowlevel.checkpoint()
    rates["EUR"] = 1.1
    msg = "rates service answered 503"
    raise ConnectionError(msg)


@tree.component
async def rates(ctx: Context) -> AsyncIterator[dict[str, float]]:
    """Exchange rates, refreshed by a task the component owns."""
    table: dict[str, float] = {}
    refresh = ctx.spawn(refresh_rates, table, name="refresh", critical=False)
    await refresh.wait()  # the failure is recorded; waiting does not raise it
    yield table


# -- hand-made token refresh lock -> SingleFlight -------------------------------
class TokenSource:
    """Many callers, one fetch at a time."""

    def __init__(self) -> None:
        self.fetches = 0
        self._flight = lifecycle.SingleFlight[str]()

    async def _fetch(self) -> str:
        self.fetches += 1
        await anyio.sleep(0.01)
        return f"token-{self.fetches}"

    async def token(self) -> str:
        """Join the fetch in flight, or start one."""
        return await self._flight.run(self._fetch)


# -- cancellation_safe decorator -> on_failure ----------------------------------
class Uploads:
    """An upload that must be aborted on the server if it fails or is cancelled."""

    async def abort(self, upload_id: int) -> None:
        """Tell the server to drop the partial upload."""
        await anyio.sleep(0.01)  # shielded: runs even while the caller is being cancelled
        print(f"upload {upload_id}: aborted on the server")

    @lifecycle.on_failure(abort, timeout=5)
    async def send(self, upload_id: int) -> None:
        """Send the upload; here the connection always breaks."""
        await anyio.lowlevel.checkpoint()
        msg = f"upload {upload_id}: connection reset"
        raise ConnectionResetError(msg)


async def price(item: str, delay: float) -> float:
    """Look a price up, after *delay* seconds."""
    await anyio.sleep(delay)
    return {"apple": 0.5, "pear": 0.75}[item]


async def recommendations() -> list[str]:
    """A slow dependency."""
    await anyio.sleep(60)  # a slow dependency
    return ["apple"]  # pragma: no cover - cut off by call_with_timeout


async def migrate() -> None:
    """A migration step that fails."""
    await anyio.lowlevel.checkpoint()
    msg = "migration step 3 failed"
    raise RuntimeError(msg)


@tree.component(main=True)
async def job(rates: dict[str, float]) -> None:
    """Use each helper once and say what happened."""
    # gather(return_exceptions=True) -> gather: results in order, or every error raised.
    apple, pear = await lifecycle.gather(
        functools.partial(price, "apple", 0.02),
        functools.partial(price, "pear", 0.01),
    )
    print(f"gather: apple={apple} pear={pear} EUR={rates['EUR']}")

    # wait_for_safe(default=None) -> call_with_timeout: the default only for its own deadline.
    no_picks: list[str] = []
    picks = await lifecycle.call_with_timeout(0.05, recommendations, default=no_picks)
    print(f"call_with_timeout: picks={picks}")

    # An async lock around a token refresh -> SingleFlight: three callers, one fetch.
    tokens = TokenSource()
    got: list[str] = []

    async def caller() -> None:
        got.append(await tokens.token())

    async with anyio.create_task_group() as tasks:
        for _ in range(3):
            tasks.start_soon(caller)
    print(f"single flight: {sorted(got)} after {tokens.fetches} fetch")

    # try/except/finally with shield() -> on_failure: the cleanup runs, the error propagates.
    try:
        await Uploads().send(7)
    except ConnectionResetError as exc:
        print(f"on_failure: {exc} propagated")

    # os.environ.pop() on every path -> scoped_env: restored however the block ends.
    try:
        with lifecycle.scoped_env("SHOP_MIGRATING"):
            print(f"scoped_env: inside SHOP_MIGRATING={os.environ['SHOP_MIGRATING']}")
            await migrate()
    except RuntimeError:
        pass
    print(f"scoped_env: after SHOP_MIGRATING={os.environ.get('SHOP_MIGRATING')}")

    # proc.wait() blocking the loop -> await process.wait().
    async with await anyio.open_process([sys.executable, "-c", "print('child: done')"]) as process:
        await process.wait()
    print(f"child process: exit code {process.returncode}")


if __name__ == "__main__":
    backend: Literal["asyncio", "trio"] = "trio" if sys.argv[1:] == ["trio"] else "asyncio"
    report = lifecycle.run(tree, backend=backend)
    refresh_errors = report["rates"].task_errors
    print(f"report: rates is {report['rates'].outcome.value}, background failures: {refresh_errors!r}")
