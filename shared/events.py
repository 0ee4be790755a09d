"""Queue-wide events for WatchEvents: replay from a cursor, then live, filtered by state and tag.

Every script that changes a job writes one entry to the capped `events` stream (waiting, delayed,
active, progress, completed, failed, timeout, cancelled, retrying, stalled, dead_lettered) and
pause.lua writes `paused` / `resumed`. Every entry carries its job's tags (one place writes them
all: `emit_event` in shared/scripts/common.lua), so filtering by tag never reads a job hash.
Live entries come through the process-wide `StreamHub`, like StreamProgress.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Collection
from dataclasses import dataclass
from typing import cast

from shared.errors import FieldViolation, ValidationError
from shared.model import JobState
from shared.queue import Queue
from shared.schema import EventField
from shared.streams import Entry, StreamHub, parse_id

#: Most entries one replay read takes; replay goes on until it reaches the live end.
REPLAY_BATCH = 500


@dataclass(frozen=True)
class QueueEvent:
    cursor: str
    kind: str
    job_id: str
    state: JobState | None  # None for queue-level events (paused, resumed)
    time_ms: int
    message: str
    tags: tuple[str, ...]
    tenant: str = ""  # the job's tenant ("" for queue-level events)
    percentage: int | None = None  # progress events only


def _tags(raw: str) -> tuple[str, ...]:
    try:
        value = json.loads(raw)
    except ValueError:
        return ()
    return tuple(str(t) for t in value) if isinstance(value, list) else ()


def _message(kind: str, fields: dict[str, str]) -> str:
    if kind == "progress":
        text = fields.get(EventField.MSG, "")
        return f"{fields.get(EventField.PCT, '0')}% {text}".strip()
    return {"paused": "queue paused", "resumed": "queue resumed"}.get(kind, "")


def event_from_entry(entry_id: str, fields: dict[str, str]) -> QueueEvent:
    """One events-stream entry as a `QueueEvent` (an unknown state reads as None)."""
    try:
        state: JobState | None = JobState(fields.get(EventField.STATE, ""))
    except ValueError:
        state = None
    ts = fields.get(EventField.TS, "")
    kind = fields.get(EventField.KIND, "")
    pct = fields.get(EventField.PCT, "")
    return QueueEvent(
        cursor=entry_id,
        kind=kind,
        job_id=fields.get(EventField.JOB, ""),
        state=state,
        time_ms=int(ts) if ts.isdigit() else parse_id(entry_id)[0],
        message=_message(kind, fields),
        tags=_tags(fields.get(EventField.TAGS, "[]")),
        tenant=fields.get(EventField.TENANT, ""),
        percentage=int(pct) if kind == "progress" and pct.isdigit() else None,
    )


def check_cursor(cursor: str) -> None:
    """Raise ValidationError (field `cursor`) unless `cursor` is an event-stream id."""
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
    wanted = frozenset(states)

    def keep(entry_id: str, fields: dict[str, str]) -> QueueEvent | None:
        if tenant is not None and fields.get(EventField.TENANT, "") not in ("", tenant):
            return None
        if wanted and fields.get(EventField.STATE, "") not in wanted:
            return None
        event = event_from_entry(entry_id, fields)
        return None if tag and tag not in event.tags else event

    if cursor:
        check_cursor(cursor)
        last = cursor
        while True:
            batch = cast(list[Entry], await queue.redis.xrange(key, min=f"({last}", max="+", count=REPLAY_BATCH))
            for entry_id, fields in batch:
                event = keep(entry_id, fields)
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
            event = keep(entry_id, fields)
            if event is not None:
                yield event
    finally:
        hub.unsubscribe(sub)
