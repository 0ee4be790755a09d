"""Fan-out of Redis stream reads to many local subscribers, with one blocking XREAD per process.

Every `StreamProgress` (and `WatchEvents`) call subscribes here instead of holding its own
blocking Redis connection: the hub reads all watched streams with a single `XREAD BLOCK` and
hands each entry to the subscribers of its stream. A new subscriber wakes the hub with
`CLIENT UNBLOCK` so it is followed at once; one waker task sends it, so a burst of thousands of
subscribers costs a few wake-ups, not one Redis command (and pooled connection) each. On a Redis
Cluster one XREAD per hash tag (queue shard) instead, each woken by cancelling it.

The hub also bounds how many followers read their opening state (job, replay) from Redis at once
(`opening`): a burst of subscribers then waits its turn instead of asking the API's connection
pool for more connections than it has.

Ordering guarantee: a subscriber registered at position P receives every entry after P exactly
once and in order — the hub rewinds a stream's read position when a subscriber starts behind it,
and each subscriber drops what it has already seen.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, cast

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster

from shared.errors import ShuttingDown
from shared.failures import Failures
from shared.redis_errors import REDIS_ERRORS
from shared.tasks import stop_tasks, watched
from shared.xread import RING_COUNT, PackedXread, Position
from shared.xread import Entry as Entry  # a stream entry, (id, fields): part of this module's interface

log = logging.getLogger(__name__)


_ID = re.compile(r"(\d{1,20})(?:-(\d{1,20}))?", re.ASCII)


def parse_id(entry_id: str) -> tuple[int, int]:
    """A stream id as a comparable (ms, seq) pair; ValueError for anything Redis would refuse."""
    match = _ID.fullmatch(entry_id)
    if match is None:
        raise ValueError(f"malformed stream id {entry_id!r}")
    ms, seq = int(match.group(1)), int(match.group(2) or 0)
    if ms >= 2**64 or seq >= 2**64:
        raise ValueError(f"stream id out of range {entry_id!r}")
    return ms, seq


@dataclass(eq=False)
class Subscription:
    key: str
    last: tuple[int, int]
    queue: asyncio.Queue[Entry | _Reconnected | None] = field(default_factory=asyncio.Queue)

    async def entries(self, *, reconnected: Callable[[], Awaitable[None]] | None = None) -> AsyncIterator[Entry]:
        """The stream's entries after `last`, as the hub reads them.

        `reconnected`: awaited when the hub reads again after Redis was away — what the follower
        follows may be gone (a Redis that came back without its data); it raises to end the follow.
        """
        while True:
            item = await self.queue.get()
            if item is None:
                raise ShuttingDown
            if isinstance(item, _Reconnected):
                if reconnected is not None:
                    await reconnected()
                continue
            yield item


class _Reconnected:
    """Put in every subscription when the hub reads again after failing to."""


RECONNECTED = _Reconnected()


def slot_group(key: str) -> str:
    """The hash tag of `key` (what picks its cluster slot), or "" when it has none."""
    match = _TAG.search(key)
    return match.group(1) if match else ""


_TAG = re.compile(r"\{([^{}]+)\}")


@dataclass(eq=False)
class _Reader:
    """The blocking read of one group of streams (all of them on one Redis; one slot on a cluster)."""

    changed: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None
    read: asyncio.Future[Any] | None = None  # the XREAD under way (a cluster's is woken by cancelling it)


#: What tells from a doorbell entry's fields which followed stream it announces (None: none).
Announces = Callable[[dict[str, str]], str | None]
#: Most entries one read takes from each stream.
READ_COUNT = 500
#: Followers reading their opening state at once; well under the API's Redis pool (redis-py's default: 100).
MAX_OPENING = 32


class StreamHub:
    def __init__(
        self,
        reader: aioredis.Redis,
        control: aioredis.Redis,
        *,
        block_ms: int = 5000,
        max_opening: int = MAX_OPENING,
        doorbells: Mapping[str, Announces] | None = None,
    ) -> None:
        """Args:
        reader: a single-connection client used only for the blocking read; on a Redis Cluster a
            cluster client (`shared.queue.connect_blocking`): then streams are read with one XREAD
            per hash tag (one XREAD may only name keys of one slot), each on its node, and a read
            is woken by cancelling it, since CLIENT UNBLOCK would have to find the node and
            connection the read is on.
        control: any client, used to wake the reader.
        block_ms: longest single XREAD block.
        max_opening: how many followers may hold `opening` at once.
        doorbells: streams that get an entry in the same script as every append to a followed
            stream (a queue's events stream, one per shard), each with what tells from an entry's
            fields which stream it announces (None: none). The reader then blocks on these alone
            and reads only the streams they announce (`shared.xread`). A doorbell missed costs at
            most `block_ms` of delay, never an entry. Ignored on a cluster.
        """
        self._reader = reader
        self._control = control
        self._block_ms = block_ms
        self._cluster = isinstance(reader, RedisCluster)
        self._subs: dict[str, set[Subscription]] = {}
        self._pos: dict[str, tuple[int, int]] = {}
        self._rewound: set[str] = set()
        self._readers: dict[str, _Reader] = {}
        self._reader_id: int | None = None
        self._away = False  # a read failed, and none has worked since
        self._failures = Failures(log, "stream hub read")
        self._reading = False
        self._wake_wanted = asyncio.Event()
        self._waker: asyncio.Task[None] | None = None
        self._started = False
        self._closed = False
        self.opening = asyncio.Semaphore(max_opening)
        self._packed = PackedXread(block_ms=block_ms, count=READ_COUNT)
        self._doorbells: dict[str, Announces] = {} if self._cluster or not doorbells else dict(doorbells)
        self._bells_at: dict[str, str] = {}  # how far the doorbells' entries have been acted on
        self._full_due = True  # every stream to be read (at start, after a timeout, past a count)
        self._announced: set[str] = set()  # streams the last doorbell entries named

    def _group(self, key: str) -> str:
        return slot_group(key) if self._cluster else ""

    def _reader_for(self, group: str) -> _Reader:
        reader = self._readers.get(group)
        if reader is None:
            reader = self._readers[group] = _Reader()
            if self._started:
                reader.task = watched(self._run(group, reader), name=f"stream-hub-{group}")
        return reader

    async def start(self) -> None:
        self._started = True
        for group, reader in self._readers.items():
            reader.task = watched(self._run(group, reader), name=f"stream-hub-{group}")
        self._reader_for("")  # one Redis: the one reader, started now
        if not self._cluster:
            self._waker = watched(self._wake_loop(), name="stream-hub-waker")

    async def stop(self) -> None:
        self._closed = True
        await stop_tasks([self._waker, *(reader.task for reader in self._readers.values())])
        for subs in self._subs.values():
            for sub in subs:
                sub.queue.put_nowait(None)
        self._subs.clear()
        self._pos.clear()

    @property
    def subscriber_count(self) -> int:
        return sum(len(s) for s in self._subs.values())

    async def subscribe(self, key: str, after: str) -> Subscription:
        """Follow `key` from just after stream id `after` ("0-0" for the start)."""
        if self._closed:
            raise ShuttingDown
        sub = Subscription(key=key, last=parse_id(after))
        self._subs.setdefault(key, set()).add(sub)
        current = self._pos.get(key)
        if current is None or sub.last < current:
            self._pos[key] = sub.last
            self._rewound.add(key)
            reader = self._reader_for(self._group(key))
            reader.changed.set()
            self._wake(reader)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        subs = self._subs.get(sub.key)
        if subs is None:
            return
        subs.discard(sub)
        if not subs:
            del self._subs[sub.key]
            self._pos.pop(sub.key, None)
            self._rewound.discard(sub.key)
            self._packed.drop(sub.key)

    def _wake(self, reader: _Reader) -> None:
        if self._cluster:
            if reader.read is not None and not reader.read.done():
                reader.read.cancel()
            return
        self._wake_wanted.set()

    async def _wake_loop(self) -> None:
        """Unblock the read under way while a stream waits to be added to it (one Redis: CLIENT UNBLOCK).

        The keys `_run` has not yet put in a read are `_rewound`; it clears them as it starts the
        next read, so subscribers arriving together share one wake-up. CLIENT UNBLOCK answers 0
        when the read has not reached Redis yet (it travels on another connection): then again,
        shortly, until that read is unblocked or another one has started.
        """
        while True:
            await self._wake_wanted.wait()
            self._wake_wanted.clear()
            pause = 0.001
            while self._rewound and self._reading and self._reader_id is not None:
                try:
                    if await self._control.client_unblock(self._reader_id):
                        break
                except REDIS_ERRORS as exc:
                    log.debug("stream hub wake-up failed: %s", exc)  # the read's own error path reconnects
                await asyncio.sleep(pause)
                pause = min(pause * 2, 0.05)

    async def _read(self, reader: _Reader, streams: dict[str, Position]) -> list[tuple[str, list[Entry]]] | None:
        """One blocking XREAD; None when it was woken (a cluster's read, cancelled)."""
        if not self._cluster:
            self._reading = True
            try:
                return await self._packed.read(self._reader, streams)
            finally:
                self._reading = False
        ids: dict[Any, Any] = {key: f"{ms}-{seq}" for key, (ms, seq) in streams.items()}
        reader.read = asyncio.ensure_future(self._reader.xread(ids, block=self._block_ms, count=READ_COUNT))
        try:
            await asyncio.wait([reader.read])
        finally:
            if not reader.read.done():  # the hub is stopping
                reader.read.cancel()
        if reader.read.cancelled():
            return None
        return cast(list[tuple[str, list[Entry]]], reader.read.result())

    def _streams_of(self, group: str) -> dict[str, Position]:
        """The followed streams `group`'s reader reads, at their positions (a copy)."""
        if not self._cluster:
            return dict(self._pos)
        return {k: p for k, p in self._pos.items() if self._group(k) == group}

    def _has_streams(self, group: str) -> bool:
        if not self._cluster:
            return bool(self._pos)
        return any(self._group(k) == group for k in self._pos)

    async def _run(self, group: str, reader: _Reader) -> None:
        delay = 0.05
        while not self._closed:
            if not self._has_streams(group):
                reader.changed.clear()
                await reader.changed.wait()
                continue
            try:
                if self._reader_id is None and not self._cluster:
                    self._reader_id = int(await self._reader.client_id())
                if self._doorbells:
                    fresh, self._rewound = self._rewound, set()
                    await self._poll_then_wait(fresh)
                    delay = 0.05
                    self._back()
                    continue
                streams = self._streams_of(group)
                if not streams:  # the last subscriber left while we were getting the reader's id
                    continue
                self._rewound.difference_update(streams)
                reply = await self._read(reader, streams)
                delay = 0.05
                self._back()
            except REDIS_ERRORS as exc:
                self._reader_id = None
                self._full_due = True  # what was read before the failure is unknown: read everything
                self._away = True
                self._failures.failed(exc, again_in_s=delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)
                continue
            for key, entries in reply or []:
                self._dispatch(key, entries)

    async def _poll_then_wait(self, fresh: set[str]) -> None:
        """Read the streams there may be news on, then block on the doorbells until one rings.

        Every stream is read (with the doorbells' last ids, first) at start, after a block ran out
        and when a read or a ring was cut short by its count; otherwise only the streams the last
        doorbell entries announced and those of new subscribers (`fresh`).
        """
        if self._full_due:
            self._bells_at, reply = await self._packed.poll(self._reader, dict(self._pos), list(self._doorbells))
            self._full_due = False
        else:
            wanted = {key: self._pos[key] for key in (fresh | self._announced) if key in self._pos}
            # Nothing announced (a ring its own followers took, or one for nobody here): no read.
            _, reply = await self._packed.poll(self._reader, wanted, ()) if wanted else ({}, [])
        self._announced = set()
        for key, entries in reply:
            self._dispatch(key, entries)
        if any(len(entries) >= READ_COUNT for _, entries in reply):
            self._full_due = True
            return
        if self._rewound:
            return  # streams to add: read them at once
        self._reading = True
        waited_from = dict(self._bells_at)
        try:
            rings = await self._packed.wait(self._reader, self._bells_at)
        finally:
            self._reading = False
        if not rings and not self._rewound:
            self._full_due = True  # the block ran out: read everything, whatever rang or not
        for bell, entries in rings:
            self._bells_at[bell] = entries[-1][0]
            if len(entries) >= RING_COUNT:
                self._full_due = True
            if bell in self._pos:  # the doorbell is followed itself (WatchEvents)
                if self._continues(bell, waited_from.get(bell)):
                    self._dispatch(bell, entries)  # the ring is its next entries: no second read
                else:
                    self._announced.add(bell)
            announces = self._doorbells[bell]
            for _, fields in entries:
                named = announces(fields)
                if named is not None and named in self._pos:
                    self._announced.add(named)

    def _continues(self, key: str, after: str | None) -> bool:
        """Whether entries read from just after `after` follow on from what `key`'s subscribers have."""
        if after is None or key in self._rewound:
            return False
        try:
            return self._pos.get(key) == parse_id(after)
        except ValueError:
            return False

    def _back(self) -> None:
        """After a read that worked: if Redis was away before it, tell every subscriber."""
        if self._away:
            self._away = False
            self._failures.worked()
            for subs in self._subs.values():
                for sub in subs:
                    sub.queue.put_nowait(RECONNECTED)

    def _dispatch(self, key: str, entries: list[Entry]) -> None:
        subs = self._subs.get(key)
        if not subs or not entries:
            return
        for entry_id, fields in entries:
            position = parse_id(entry_id)
            for sub in subs:
                if position > sub.last:
                    sub.last = position
                    sub.queue.put_nowait((entry_id, fields))
        if key not in self._rewound:
            self._pos[key] = parse_id(entries[-1][0])
