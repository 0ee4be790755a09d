"""Claimed runs' writes coalesced: what runs report in the same event-loop turn goes in one call.

An executor runs many jobs at once, and they tend to report together: a claimed batch starts in
one turn, each run reports its first progress, and the replies wake them in one turn again. The
`Recorder` gathers the writes (`store.Write`: a progress update or a run's end) handed to it
during one turn of the loop and sends them at the end of that turn as one record.lua call per
shard. Each write still carries its own run's fence and gets its own status back; nothing waits
for a window to fill, so a lone write goes at once.
"""

from __future__ import annotations

import asyncio

from redis.exceptions import ConnectionError as RedisConnectionError

from executor_service.store import Write, record
from shared.queue import Queue

#: The most writes in one call (a long script blocks Redis for its whole length).
MAX_BATCH = 256


class Recorder:
    def __init__(self, queue: Queue) -> None:
        self.queue = queue
        self._pending: dict[str, list[tuple[Write, asyncio.Future[int]]]] = {}
        self._scheduled = False
        self._sending: set[asyncio.Task[None]] = set()

    async def write(self, write: Write) -> int:
        """Send `write` with the others of this loop turn; returns its status (store.record).

        Raises the RedisError of the call that carried it.
        """
        return await self.submit(write)

    def submit(self, write: Write) -> asyncio.Future[int]:
        """Hand `write` over now, to go with the others of this loop turn, after those handed over
        before it; the future gets its status (or the RedisError of the call that carried it)."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[int] = loop.create_future()
        tag = self.queue.for_job(write.claim.job_id).keys.tag
        self._pending.setdefault(tag, []).append((write, done))
        if not self._scheduled:
            self._scheduled = True
            loop.call_soon(self._flush)
        return done

    def _flush(self) -> None:
        self._scheduled = False
        pending, self._pending = self._pending, {}
        for batch in pending.values():
            for at in range(0, len(batch), MAX_BATCH):
                task = asyncio.create_task(self._send(batch[at : at + MAX_BATCH]))
                self._sending.add(task)
                task.add_done_callback(self._sending.discard)

    async def _send(self, batch: list[tuple[Write, asyncio.Future[int]]]) -> None:
        try:
            statuses = await record(self.queue, [w for w, _ in batch])
        except Exception as exc:  # each caller sees its call's failure (a RedisError), as alone
            _fail(batch, exc)
            return
        except BaseException as exc:
            # A call cut off by a cancellation (the loop closing, or one a client library let out)
            # reaches its callers as a connection error: its writes' fate is unknown, and a run's
            # end is retried on that.
            _fail(batch, RedisConnectionError(f"the record call was cut off ({exc!r})"))
            raise
        for (_, done), status in zip(batch, statuses, strict=True):
            if not done.done():  # its run was cancelled meanwhile: the write was made all the same
                done.set_result(status)


def _fail(batch: list[tuple[Write, asyncio.Future[int]]], exc: Exception) -> None:
    for _, done in batch:
        if not done.done():
            done.set_exception(exc)
