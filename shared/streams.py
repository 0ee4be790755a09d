"""Fan-out of Redis stream reads to many local subscribers, with one blocking XREAD per process.

Every `StreamProgress` (and `WatchEvents`) call subscribes here instead of holding its own
blocking Redis connection: the hub reads all watched streams with a single `XREAD BLOCK` and
hands each entry to the subscribers of its stream. A new subscriber wakes the hub with
`CLIENT UNBLOCK` so it is followed at once.

Ordering guarantee: a subscriber registered at position P receives every entry after P exactly
once and in order — the hub rewinds a stream's read position when a subscriber starts behind it,
and each subscriber drops what it has already seen.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, cast

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from shared.errors import ShuttingDown
from shared.tasks import stop_tasks

log = logging.getLogger(__name__)

Entry = tuple[str, dict[str, str]]


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
    queue: asyncio.Queue[Entry | None] = field(default_factory=asyncio.Queue)

    async def entries(self) -> AsyncIterator[Entry]:
        while True:
            item = await self.queue.get()
            if item is None:
                raise ShuttingDown
            yield item


class StreamHub:
    def __init__(self, reader: aioredis.Redis, control: aioredis.Redis, *, block_ms: int = 5000) -> None:
        """Args:
        reader: a single-connection client used only for the blocking read.
        control: any client, used to wake the reader.
        block_ms: longest single XREAD block.
        """
        self._reader = reader
        self._control = control
        self._block_ms = block_ms
        self._subs: dict[str, set[Subscription]] = {}
        self._pos: dict[str, tuple[int, int]] = {}
        self._rewound: set[str] = set()
        self._changed = asyncio.Event()
        self._reader_id: int | None = None
        self._reading = False
        self._task: asyncio.Task[None] | None = None
        self._closed = False

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="stream-hub")

    async def stop(self) -> None:
        self._closed = True
        await stop_tasks([self._task])
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
            self._changed.set()
            await self._wake()
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

    async def _wake(self) -> None:
        if not self._reading or self._reader_id is None:
            return
        with contextlib.suppress(RedisError):
            await self._control.client_unblock(self._reader_id)

    async def _run(self) -> None:
        delay = 0.05
        while not self._closed:
            if not self._pos:
                self._changed.clear()
                await self._changed.wait()
                continue
            try:
                if self._reader_id is None:
                    self._reader_id = int(await self._reader.client_id())
                streams: dict[Any, Any] = {k: f"{p[0]}-{p[1]}" for k, p in self._pos.items()}
                if not streams:  # the last subscriber left while we were getting the reader's id
                    continue
                self._rewound.clear()
                self._reading = True
                try:
                    reply = cast(
                        list[tuple[str, list[Entry]]],
                        await self._reader.xread(streams, block=self._block_ms, count=500),
                    )
                finally:
                    self._reading = False
                delay = 0.05
            except RedisError as exc:
                self._reader_id = None
                log.warning("stream hub read failed, retrying in %.1f s: %s", delay, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)
                continue
            for key, entries in reply or []:
                self._dispatch(key, entries)

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
