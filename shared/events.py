"""Queue-wide events for WatchEvents: replay from a cursor, then live, filtered by kind, state and tag.

Every script that changes a job writes one entry to the capped `events` stream (waiting, delayed,
active, progress, completed, failed, timeout, cancelled, retrying, stalled, dead_lettered) and
pause.lua writes `paused` / `resumed`. Every entry carries its job's tags (one place writes them
all: `emit_event` in shared/scripts/common.lua), so filtering by tag never reads a job hash.
Live entries come through the process-wide `StreamHub`, like StreamProgress. With shards the
shards' streams are followed as one (`follow_events`).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import AsyncIterator, Collection
from dataclasses import dataclass
from typing import cast

from shared.errors import FieldViolation, ShuttingDown, ValidationError
from shared.model import JobState
from shared.queue import Queue
from shared.schema import EventField
from shared.shards import SEPARATOR, decode_cursor, encode_cursor
from shared.streams import Entry, StreamHub, Subscription, parse_id

#: Most entries one replay read takes; replay goes on until it reaches the live end.
REPLAY_BATCH = 500

#: Every kind of event the scripts write (a job's end is written as its terminal state's value).
EVENT_KINDS = (
    "waiting",
    "delayed",
    "active",
    "progress",
    "completed",
    "failed",
    "timeout",
    "cancelled",
    "retrying",
    "stalled",
    "dead_lettered",
    "paused",
    "resumed",
)


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


def check_kinds(kinds: Collection[str], field: str = "kinds") -> None:
    """Raise ValidationError (naming `field`) unless each of `kinds` is one of `EVENT_KINDS`."""
    unknown = ", ".join(repr(k) for k in kinds if k not in EVENT_KINDS)
    if unknown:
        raise ValidationError([FieldViolation(field, f"must be event kinds ({', '.join(EVENT_KINDS)}), got {unknown}")])


def check_cursor(cursor: str) -> None:
    """Raise ValidationError (field `cursor`) unless `cursor` is an event-stream cursor: a stream id,
    or with shards one stream id per shard (`shared.shards.encode_cursor`)."""
    try:
        for part in cursor.split(SEPARATOR):
            parse_id(part)
    except ValueError:
        raise ValidationError(
            [FieldViolation("cursor", f"is not a cursor from the event stream: {cursor!r}")]
        ) from None


async def _replay(queue: Queue, key: str, after: str) -> AsyncIterator[Entry]:
    """The entries of stream `key` after id `after`, to its end now, a batch per round trip."""
    last = after
    while True:
        batch = cast(list[Entry], await queue.redis.xrange(key, min=f"({last}", max="+", count=REPLAY_BATCH))
        for entry in batch:
            yield entry
        if batch:
            last = batch[-1][0]
        if len(batch) < REPLAY_BATCH:
            return


async def _live(hub: StreamHub, keys: list[str], positions: list[str]) -> AsyncIterator[tuple[int, Entry]]:
    """Entries of every stream in `keys` after its position, as they come: (stream index, entry)."""
    subs = [await hub.subscribe(key, after) for key, after in zip(keys, positions, strict=True)]
    merged: asyncio.Queue[tuple[int, Entry] | None] = asyncio.Queue()

    async def pump(index: int, sub: Subscription) -> None:
        try:
            async for entry in sub.entries():
                merged.put_nowait((index, entry))
        finally:
            merged.put_nowait(None)  # the hub stopped: so does this follower

    pumps = [asyncio.create_task(pump(i, sub), name=f"events-{sub.key}") for i, sub in enumerate(subs)]
    try:
        while (item := await merged.get()) is not None:
            yield item
        raise ShuttingDown
    finally:
        for task in pumps:
            task.cancel()
        await asyncio.gather(*pumps, return_exceptions=True)
        for sub in subs:
            hub.unsubscribe(sub)


async def current_cursor(queue: Queue) -> str:
    """The cursor of the queue's newest event now: `follow_events` from it yields only what comes
    after (a stream that must be resumable before its first event starts from it)."""
    return encode_cursor(await _newest(queue, [shard.keys.events for shard in queue.shards]))


async def _newest(queue: Queue, keys: list[str]) -> list[str]:
    positions = []
    for key in keys:
        top = cast(list[Entry], await queue.redis.xrevrange(key, max="+", min="-", count=1))
        positions.append(top[0][0] if top else "0-0")
    return positions


async def follow_events(
    queue: Queue,
    hub: StreamHub,
    *,
    states: Collection[JobState] = (),
    kinds: Collection[str] = (),
    tag: str = "",
    cursor: str = "",
    tenant: str | None = None,
) -> AsyncIterator[QueueEvent]:
    """Yield the queue's events after `cursor` (empty: only new ones), then live, until cancelled.

    With `tenant`, only that tenant's job events and queue-level ones (which carry no tenant).

    With `kinds`, only events of those kinds (`EVENT_KINDS`: a watcher of jobs starting asks for
    "active" and is sent no progress); with `states`, only job events in those states (queue-level
    events have none, so they are left out); with `tag`, only events of jobs carrying that tag.
    Entries left out are never decoded. A cursor older than the capped
    stream's oldest entry replays from the oldest entry still kept.

    With shards, the shards' event streams merged: replay goes shard by shard, live events come as
    each shard writes them, and each event's cursor holds every shard's position (so a resumed
    watch misses and repeats nothing on any shard). Queue-level events (pause, resume: written on
    every shard) come from the first shard only.

    Raises:
        ValidationError: a malformed cursor, or a kind not in `EVENT_KINDS` (field `kinds`).
        ShuttingDown: the service is shutting down; the client should reconnect with its cursor.
    """
    check_kinds(kinds)
    keys = [shard.keys.events for shard in queue.shards]
    wanted = frozenset(states)
    wanted_kinds = frozenset(kinds)

    def keep(shard: int, entry_id: str, fields: dict[str, str]) -> QueueEvent | None:
        if shard > 0 and not fields.get(EventField.JOB, ""):
            return None
        if wanted_kinds and fields.get(EventField.KIND, "") not in wanted_kinds:
            return None
        if tenant is not None and fields.get(EventField.TENANT, "") not in ("", tenant):
            return None
        if wanted and fields.get(EventField.STATE, "") not in wanted:
            return None
        event = event_from_entry(entry_id, fields)
        return None if tag and tag not in event.tags else event

    def at(shard: int, entry_id: str, fields: dict[str, str]) -> QueueEvent | None:
        positions[shard] = entry_id
        event = keep(shard, entry_id, fields)
        return None if event is None else dataclasses.replace(event, cursor=encode_cursor(positions))

    if cursor:
        check_cursor(cursor)
        positions = decode_cursor(cursor, len(keys))
        for shard, key in enumerate(keys):
            async for entry_id, fields in _replay(queue, key, positions[shard]):
                if (event := at(shard, entry_id, fields)) is not None:
                    yield event
    else:
        positions = await _newest(queue, keys)
    async for shard, (entry_id, fields) in _live(hub, keys, list(positions)):
        if (event := at(shard, entry_id, fields)) is not None:
            yield event
