"""Claimed runs' writes coalesced: one record.lua call at a time per shard, carrying every write
handed over since the last one was sent.

An executor runs many jobs at once, and they tend to report together: a claimed batch starts in
one turn, each run reports its first progress, and the replies wake them in one turn again. The
`Recorder` gathers the writes (`store.Write`: a progress update or a run's end) and sends them as
one record.lua call per shard. A shard has at most one call in flight: what is handed over while
it is goes in the next call, sent the moment it returns. Nothing waits for a timer (a lone write
goes at the end of the loop turn it was handed over in), and the calls of a shard are made in the
order their writes were handed over, so a run may hand a report over and go on without waiting
for it: its later reports and its end are written after it. Each write still carries its own run's
fence and gets its own status back.
"""

from __future__ import annotations

import asyncio

from redis.exceptions import ConnectionError as RedisConnectionError

from executor_service.store import Write, record
from shared.queue import Queue

#: The most writes in one call (a long script blocks Redis for its whole length).
MAX_BATCH = 256

Pending = list[tuple[Write, "asyncio.Future[int]"]]


class Recorder:
    def __init__(self, queue: Queue) -> None:
        self.queue = queue
        self._pending: dict[str, Pending] = {}  # shard tag -> writes handed over, not yet sent
        self._senders: dict[str, asyncio.Task[None]] = {}  # shard tag -> its sender, while it has writes

    async def write(self, write: Write) -> int:
        """Send `write` with the others handed over meanwhile; returns its status (store.record).

        Raises the RedisError of the call that carried it.
        """
        return await self.submit(write)

    def submit(self, write: Write) -> asyncio.Future[int]:
        """Hand `write` over now, to be written after those handed over before it (on its shard);
        the future gets its status (or the RedisError of the call that carried it)."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[int] = loop.create_future()
        tag = self.queue.for_job(write.claim.job_id).keys.tag
        self._pending.setdefault(tag, []).append((write, done))
        if tag not in self._senders:
            # Starts at the end of this loop turn: the writes handed over in the turn go together.
            self._senders[tag] = loop.create_task(self._send_all(tag), name=f"record-{tag}")
        return done

    async def _send_all(self, tag: str) -> None:
        """Send the shard's writes, a call at a time, until none is left."""
        try:
            while pending := self._pending.pop(tag, None):
                if len(pending) > MAX_BATCH:
                    self._pending[tag] = pending[MAX_BATCH:]  # just popped: nothing else is there
                    pending = pending[:MAX_BATCH]
                await self._send(pending)
        finally:
            # No await since the last look at the shard's writes: a write handed over from here on
            # starts a new sender.
            del self._senders[tag]
            left = self._pending.pop(tag, None)
            if left:  # only when cut off (the loop closing): their fate is known, nothing sent them
                _fail(left, RedisConnectionError("the executor's record calls were cut off before this write was sent"))

    async def _send(self, batch: Pending) -> None:
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


def _fail(batch: Pending, exc: Exception) -> None:
    for _, done in batch:
        if not done.done():
            done.set_exception(exc)
