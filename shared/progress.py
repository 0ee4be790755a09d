"""Following a job's progress: replay from a cursor, then live until the terminal event.

Used by the API's StreamProgress. Replay reads the job (its tenant and state) and its progress
stream with XRANGE in one pipelined round trip, a bounded number of followers at a time; live
events come through the process-wide `StreamHub`, subscribed at the last replayed id, so a
reconnect with the last cursor misses nothing and repeats nothing.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import cast

from shared import codec
from shared.errors import FieldViolation, NotFoundError, ValidationError
from shared.jobs import job_of
from shared.model import Job, ProgressEvent
from shared.queue import Queue
from shared.redis_errors import REDIS_ERRORS
from shared.schema import EntryField, EventField
from shared.streams import Announces, Entry, StreamHub, parse_id


def progress_doorbells(queue: Queue) -> dict[str, Announces]:
    """Each shard's events stream, for the stream hub to block on instead of every progress stream.

    Every script that appends to a job's progress stream appends an event naming the job to the
    events stream of the job's shard in the same call: an event announces the job's progress stream.
    """

    def announces(fields: dict[str, str]) -> str | None:
        job_id = fields.get(EventField.JOB, "")
        return queue.for_job(job_id).keys.progress(job_id) if job_id else None

    return {shard.keys.events: announces for shard in queue.shards}


def check_cursor(cursor: str) -> str:
    """The stream id to read after: `cursor`, or the start for none; ValidationError (field `cursor`) if malformed."""
    if not cursor:
        return "0-0"
    try:
        parse_id(cursor)
    except ValueError:
        raise ValidationError([FieldViolation("cursor", f"is not a cursor from this stream: {cursor!r}")]) from None
    return cursor


def _synthetic_terminal(job: Job, cursor: str) -> ProgressEvent:
    """The terminal event of a finished job whose progress stream no longer holds it."""
    return ProgressEvent(
        job_id=job.job_id,
        cursor=cursor,
        state=job.state,
        progress=job.progress,
        attempt=job.attempt,
        terminal=True,
    )


async def _opening(
    queue: Queue, job_id: str, key: str, after: str, *, tenant: str | None
) -> tuple[Job, list[Entry], list[Entry]]:
    """The job, its progress entries after `after`, and the stream's last entry: one round trip.

    Raises:
        NotFoundError: no such job for this tenant.
    """
    if not job_id:
        job_of({}, job_id, tenant=tenant)
    pipe = queue.redis.pipeline(transaction=False)
    pipe.hgetall(queue.keys.job(job_id))
    pipe.xrange(key, min=f"({after}", max="+")
    pipe.xrevrange(key, max="+", min="-", count=1)
    raw, entries, top = await pipe.execute()
    return job_of(cast(dict[str, str], raw), job_id, tenant=tenant), cast(list[Entry], entries), cast(list[Entry], top)


async def follow_progress(
    queue: Queue, hub: StreamHub, job_id: str, *, tenant: str | None, cursor: str = ""
) -> AsyncIterator[ProgressEvent]:
    """Yield the job's progress events after `cursor`, live, ending after the terminal event.

    Raises:
        NotFoundError: no such job for this tenant.
        ValidationError: a malformed cursor.
        ShuttingDown: the service is shutting down; the client should reconnect with its cursor.
    """
    after = check_cursor(cursor)
    queue = queue.for_job(job_id)
    key = queue.keys.progress(job_id)
    async with hub.opening:  # a burst of followers takes turns rather than exhaust the Redis pool
        job, entries, top = await _opening(queue, job_id, key, after, tenant=tenant)
    for entry_id, fields in entries:
        event = codec.progress_event_from_entry(job_id, entry_id, fields)
        yield event
        if event.terminal:
            return
    last = entries[-1][0] if entries else after
    if job.state.terminal:
        if top and top[0][1].get(EntryField.TERMINAL) == "1":
            return  # the client already has the terminal event
        yield _synthetic_terminal(job, last)
        return
    del job, entries, top  # a live follower may stay for hours: it keeps only its cursor
    sub = await hub.subscribe(key, last)

    async def still_there() -> None:
        # Redis was away: it may have come back without its data, and then no entry ever comes.
        try:
            async with hub.opening:
                found = await queue.redis.exists(queue.keys.job(job_id))
        except REDIS_ERRORS:
            return  # Redis is away again: looked at at its next return
        if not found:
            raise NotFoundError(f"job {job_id!r} is gone: Redis came back without it (its data was lost)")

    try:
        async for entry_id, fields in sub.entries(reconnected=still_there):
            event = codec.progress_event_from_entry(job_id, entry_id, fields)
            yield event
            if event.terminal:
                return
    finally:
        hub.unsubscribe(sub)
