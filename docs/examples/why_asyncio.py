"""Four ways a plain asyncio service dies badly, each run for real.

Run it with ``python docs/examples/why_asyncio.py``. Each function shows one
failure and prints what happened; docs/why.rst shows how the framework
prevents each one.
"""

from __future__ import annotations

import asyncio
import gc
from typing import Any


async def cancelled_cleanup() -> None:
    """A second cancellation lands in the cleanup: the connection is never closed."""
    closed = False

    async def handler() -> None:
        nonlocal closed
        try:
            await asyncio.sleep(3600)  # serve a connection
        finally:
            await asyncio.sleep(0.01)  # close it: this await can be cancelled too
            closed = True

    task = asyncio.create_task(handler())
    await asyncio.sleep(0)
    task.cancel()  # the shutdown
    await asyncio.sleep(0)
    task.cancel()  # a timeout around the shutdown, or a second Ctrl-C
    try:
        await task
    except asyncio.CancelledError as exc:
        nested = type(exc.__context__).__name__
        print(f"cancelled cleanup: closed={closed}, CancelledError raised while handling a {nested}")


def random_order() -> None:
    """asyncio.run() cancels the tasks left over all at once: the db closes under the api."""
    log: list[str] = []

    async def db() -> None:
        try:
            await asyncio.sleep(3600)
        finally:
            log.append("db closed")

    async def api() -> None:
        try:
            await asyncio.sleep(3600)
        finally:
            await asyncio.sleep(0)  # answer the last request, with the db
            log.append("api answered its last request")

    async def main() -> None:
        tasks = [asyncio.create_task(db()), asyncio.create_task(api())]  # noqa: F841 - orphaned on purpose
        await asyncio.sleep(0.01)

    asyncio.run(main())  # main returns: the orphaned tasks are cancelled together, in no useful order
    print(f"random order: {log}")


async def swallowed_cancellation() -> None:
    """``except BaseException`` in a retry loop swallows the cancellation: the task never stops."""
    stop = False

    async def poller() -> None:
        while not stop:  # (only so that this script can end)
            try:
                await asyncio.sleep(0.001)  # poll an upstream
            except BaseException:  # noqa: BLE001, S112 - the bug: "never crash"
                continue

    task = asyncio.create_task(poller())
    await asyncio.sleep(0)
    task.cancel()
    await asyncio.sleep(0.05)
    print(f"swallowed cancellation: cancelled 50 ms ago, still running={not task.done()}")
    task.cancel()  # and again: it swallows every cancellation
    await asyncio.sleep(0.01)
    print(f"swallowed cancellation: still running={not task.done()}")
    stop = True
    await task


async def never_retrieved() -> None:
    """A fire-and-forget task fails; nobody hears of it until the garbage collector runs."""
    messages: list[str] = []

    def handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        del loop
        messages.append(context["message"])

    asyncio.get_running_loop().set_exception_handler(handler)

    async def send_receipt() -> None:
        msg = "smtp server down"
        raise ConnectionError(msg)

    asyncio.create_task(send_receipt())  # noqa: RUF006 - the bug: nobody keeps or awaits the task
    await asyncio.sleep(0.01)
    gc.collect()
    print(f"never retrieved: the only trace is {messages}")


if __name__ == "__main__":
    asyncio.run(cancelled_cleanup())
    random_order()
    asyncio.run(swallowed_cancellation())
    asyncio.run(never_retrieved())
