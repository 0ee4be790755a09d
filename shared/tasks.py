"""Stopping background tasks reliably.

redis-py can swallow a cancellation that lands in the middle of a command (it tidies up the
connection and carries on), so a single `task.cancel()` may not end a loop. `stop_tasks` cancels
again until the tasks end, and gives up (with a warning) after a bound rather than hang a shutdown.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import Any

log = logging.getLogger(__name__)


async def stop_tasks(tasks: Iterable[asyncio.Task[Any] | None], *, timeout_s: float = 10.0) -> None:
    """Cancel `tasks` and wait for them to end, re-cancelling every 100 ms, at most `timeout_s`."""
    pending = {t for t in tasks if t is not None and not t.done()}
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while pending:
        for task in pending:
            task.cancel()
        done, pending = await asyncio.wait(pending, timeout=0.1)
        for task in done:
            if not task.cancelled() and task.exception() is not None:
                log.warning("task %s ended with %r", task.get_name(), task.exception())
        if pending and loop.time() > deadline:
            log.warning("tasks still running after %.0f s, left behind: %s", timeout_s, [t.get_name() for t in pending])
            return
