"""Queue-wide events for WatchEvents: replay from a cursor, then live, filtered by state and tag.

Every script that changes a job writes one entry to the capped `events` stream (waiting, delayed,
active, progress, completed, failed, timeout, cancelled, retrying, stalled, dead_lettered) and
pause.lua writes `paused` / `resumed`. Entries written by submit, promote, progress and finish
carry the job's tags; for the others the tags are looked up once per job and remembered.
Live entries come through the process-wide `StreamHub`, like StreamProgress.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import AsyncIterator, Collection
from dataclasses import dataclass
from typing import cast

from shared.errors import FieldViolation, ValidationError
from shared.model import JobState
from shared.queue import Queue
from shared.streams import Entry, StreamHub, parse_id

#: Most entries one replay read takes; replay goes on until it reaches the live end.
REPLAY_BATCH = 500
#: Jobs whose tags a follower remembers.
TAG_CACHE = 10_000


@dataclass(frozen=True)
class QueueEvent:
    cursor: str
    kind: str
    job_id: str
    state: JobState | None  # None for queue-level events (paused, resumed)
    time_ms: int
    message: str
    tags: tuple[str, ...]


def _tags(raw: str) -> tuple[str, ...] | None:
    try:
        value = json.loads(raw)
    except ValueError:
        return None
    return tuple(str(t) for t in value) if isinstance(value, list) else None


def _message(kind: str, fields: dict[str, str]) -> str:
    if kind == "progress":
        text = fields.get("msg", "")
        return f"{fields.get('pct', '0')}% {text}".strip()
    return {"paused": "queue paused", "resumed": "queue resumed"}.get(kind, "")


def event_from_entry(entry_id: str, fields: dict[str, str], tags: tuple[str, ...] = ()) -> QueueEvent:
    """One events-stream entry as a `QueueEvent` (an unknown state reads as None)."""
    try:
        state: JobState | None = JobState(fields.get("state", ""))
    except ValueError:
        state = None
    ts = fields.get("ts", "")
    return QueueEvent(
        cursor=entry_id,
        kind=fields.get("kind", ""),
        job_id=fields.get("job", ""),
        state=state,
        time_ms=int(ts) if ts.isdigit() else parse_id(entry_id)[0],
        message=_message(fields.get("kind", ""), fields),
        tags=tags,
    )


class _TagLookup:
    """Tags of jobs whose entries do not carry them, from the job hash, remembered (LRU)."""

    def __init__(self, queue: Queue) -> None:
        self._queue = queue
        self._known: OrderedDict[str, tuple[str, ...]] = OrderedDict()

    async def __call__(self, job_id: str, fields: dict[str, str]) -> tuple[str, ...]:
        carried = _tags(fields["tags"]) if "tags" in fields else None
        if carried is not None or not job_id:
            return carried or ()
        if job_id in self._known:
            self._known.move_to_end(job_id)
            return self._known[job_id]
        raw = await self._queue.redis.hget(self._queue.keys.job(job_id), "tags")
        found = _tags(str(raw)) if raw else None
        self._known[job_id] = found or ()
        if len(self._known) > TAG_CACHE:
            self._known.popitem(last=False)
        return found or ()


def _check_cursor(cursor: str) -> None:
    try:
        parse_id(cursor)
    except ValueError:
        raise ValidationError(
            [FieldViolation("cursor", f"is not a cursor from the event stream: {cursor!r}")]
        ) from None


async def follow_events(
    queue: Queue,
    hub: StreamHub,
    *,
    states: Collection[JobState] = (),
    tag: str = "",
    cursor: str = "",
    tenant: str | None = None,
) -> AsyncIterator[QueueEvent]:
    """Yield the queue's events after `cursor` (empty: only new ones), then live, until cancelled.

    With `tenant`, only that tenant's job events and queue-level ones (which carry no tenant).

    With `states`, only job events in those states (queue-level events have none, so they are
    left out); with `tag`, only events of jobs carrying that tag. A cursor older than the capped
    stream's oldest entry replays from the oldest entry still kept.

    Raises:
        ValidationError: a malformed cursor.
        ShuttingDown: the service is shutting down; the client should reconnect with its cursor.
    """
    key = queue.keys.events
    lookup = _TagLookup(queue)
    wanted = frozenset(states)

    async def keep(entry_id: str, fields: dict[str, str]) -> QueueEvent | None:
        if tenant is not None and fields.get("tenant", "") not in ("", tenant):
            return None
        state = fields.get("state", "")
        if wanted and state not in wanted:
            return None
        tags = await lookup(fields.get("job", ""), fields)
        if tag and tag not in tags:
            return None
        return event_from_entry(entry_id, fields, tags)

    if cursor:
        _check_cursor(cursor)
        last = cursor
        while True:
            batch = cast(list[Entry], await queue.redis.xrange(key, min=f"({last}", max="+", count=REPLAY_BATCH))
            for entry_id, fields in batch:
                event = await keep(entry_id, fields)
                if event is not None:
                    yield event
            if batch:
                last = batch[-1][0]
            if len(batch) < REPLAY_BATCH:
                break
    else:
        top = cast(list[Entry], await queue.redis.xrevrange(key, max="+", min="-", count=1))
        last = top[0][0] if top else "0-0"
    sub = await hub.subscribe(key, last)
    try:
        async for entry_id, fields in sub.entries():
            event = await keep(entry_id, fields)
            if event is not None:
                yield event
    finally:
        hub.unsubscribe(sub)
