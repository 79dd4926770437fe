"""Tutorial, step 6: the shop serves its images from a child process.

From this directory: ``lifecycle run step6_process:tree`` (Ctrl-C to stop it).
It is the service of step 5 plus ``images``, a static file server run as a
separate program, supervised like any other component.
"""

from __future__ import annotations

import sys

from service import tree

from lifecycle import Context, ProcessComponent, ReadyOnLine

# `-u`: the server's output is not buffered, so its "Serving HTTP" line arrives
# as soon as it is listening. Port 0 lets the system pick a free port.
tree.add(
    ProcessComponent(
        [sys.executable, "-u", "-m", "http.server", "0", "--bind", "127.0.0.1"],
        ready=ReadyOnLine(r"Serving HTTP on \S+ port \d+"),
        ready_timeout=10.0,
    ),
    name="images",
)


@tree.component
async def gallery(ctx: Context, images: int) -> None:
    """Depends on the image server: it receives its pid, and stops before it."""
    ctx.log.info("gallery.ready", images_pid=images)
    ctx.ready()
    await ctx.stopping.wait()
