"""Background tasks: stopping them reliably, and the one periodic loop (`Periodic`).

redis-py can swallow a cancellation that lands in the middle of a command (it tidies up the
connection and carries on), so a single `task.cancel()` may not end a loop. `stop_tasks` cancels
again until the tasks end, and gives up (with a warning) after a bound rather than hang a shutdown.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from typing import Any, TypeVar

from shared.failures import Failures

log = logging.getLogger(__name__)

T = TypeVar("T")


def watched(coro: Coroutine[Any, Any, T], *, name: str) -> asyncio.Task[T]:
    """A task for a loop meant to run as long as its service: should it end with an error, that is
    logged at once (ERROR, with the traceback) instead of waiting, unread, for the shutdown."""
    task = asyncio.create_task(coro, name=name)
    task.add_done_callback(_report_error)
    return task


def _report_error(task: asyncio.Task[Any]) -> None:
    if not task.cancelled() and (exc := task.exception()) is not None:
        log.error("task %s ended with an error and no longer runs", task.get_name(), exc_info=exc)


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


class Periodic:
    """Runs `work` every `interval_s` in a background task until `stop`: the one periodic loop.

    `stop` sets an event as well as cancelling, so the loop ends even when redis-py swallowed the
    cancel mid-command. An error of one of the `tolerated` types is logged and the next round
    comes as usual; any other error ends the loop, and is logged then (`watched`).
    """

    def __init__(
        self,
        name: str,
        work: Callable[[], Awaitable[object]],
        *,
        interval_s: float,
        first_now: bool = True,
        tolerated: tuple[type[BaseException], ...] = (),
    ) -> None:
        """Args:
        name: the task's name, also in the log line of a failed round.
        work: one round.
        interval_s: seconds from the end of one round to the start of the next.
        first_now: the first round runs at once; otherwise after one interval.
        tolerated: errors that fail one round, not the loop.
        """
        self.name = name
        self._work = work
        self._interval_s = interval_s
        self._first_now = first_now
        self._tolerated = tolerated
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._failures = Failures(log, name)

    def start(self) -> None:
        self._stopping.clear()
        self._task = watched(self._run(), name=self.name)

    @property
    def running(self) -> bool:
        """Whether the loop's task is alive (False before `start`, after `stop`, or after an error)."""
        return self._task is not None and not self._task.done()

    async def stop(self) -> None:
        self._stopping.set()
        await stop_tasks([self._task])
        self._task = None

    async def _run(self) -> None:
        if not self._first_now and await self._stopped_within(self._interval_s):
            return
        while not self._stopping.is_set():
            try:
                await self._work()
                self._failures.worked()
            except self._tolerated as exc:
                self._failures.failed(exc, again_in_s=self._interval_s)
            if await self._stopped_within(self._interval_s):
                return

    async def _stopped_within(self, seconds: float) -> bool:
        try:
            await asyncio.wait_for(self._stopping.wait(), timeout=seconds)
        except TimeoutError:
            return False
        return True
