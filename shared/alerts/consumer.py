"""Reading the queue's events stream for alerts: each entry handled by one API replica, at least once.

Every replica reads the events stream through the consumer group `alerts` (`keys.ALERTS_GROUP`),
so each entry goes to one of them. An entry is acknowledged (XACK) only after `apply_entry` made
its deliveries; a replica that dies in between leaves it pending, and another replica (or itself,
restarted) takes it over with XAUTOCLAIM once it has been idle `claim_idle_ms`. Applying an entry
twice alerts once (alert_outcome.lua). The group starts at the stream's end when it is first made:
jobs that ended before any replica ran alerts are not alerted on.

The stream is capped (`SENTINEL_EVENTS_MAXLEN`, approximately): entries trimmed before any replica
read them — all replicas down while that many events were written — are lost for alerts, and
XAUTOCLAIM's deleted ids (pending entries trimmed) are logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import cast

import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from shared.alerts.outcomes import NotificationLookup, apply_entry, unowned_ends
from shared.errors import SentinelError
from shared.failures import Failures
from shared.keys import ALERTS_GROUP
from shared.queue import Queue
from shared.redis_errors import REDIS_OR_OS_ERRORS
from shared.schedules.store import schedule_notifications
from shared.settings import AlertSettings
from shared.streams import Entry
from shared.tasks import stop_tasks, watched

__all__ = ["EventConsumer"]

log = logging.getLogger(__name__)

#: Most entries one read takes.
BATCH = 100
#: How long one XREADGROUP blocks: the longest a stop waits for a read to return.
BLOCK_MS = 1000
#: After a read that took less than a full batch, the consumer waits this long before the next, so
#: that one read takes what came meanwhile. The stream carries every progress write of every job
#: (about seven entries a job) and only job ends matter here: read as they came, one XREADGROUP and
#: one XACK an entry cost the API ~15% of its CPU while it streamed 500 progress writes a second.
#: An alert is made at most this much later; a webhook's own delivery takes longer.
READ_PAUSE_S = 0.1
#: Most XAUTOCLAIM pages one take-over pass walks.
MAX_RECLAIM_PAGES = 20


class EventConsumer:
    """One replica's reader of the events stream for alerts."""

    def __init__(
        self,
        queue: Queue,
        reader: aioredis.Redis,
        *,
        consumer: str,
        settings: AlertSettings,
        lookup: NotificationLookup = schedule_notifications,
        on_made: Callable[[list[str]], None] | None = None,
        read_pause_s: float = READ_PAUSE_S,
    ) -> None:
        """Args:
        reader: a connection of its own for the blocking reads (`shared.queue.connect_blocking`).
        consumer: this replica's name in the group (unique among replicas).
        lookup: a schedule's notifications (the schedule store's), by tenant and schedule id.
        on_made: told the ids of the deliveries each entry made (the dispatcher is woken with them).
        read_pause_s: the wait after a read short of a full batch (`READ_PAUSE_S`).
        """
        self._queue = queue
        self._reader = reader
        self.consumer = consumer
        self._settings = settings
        self._lookup = lookup
        self._on_made = on_made
        self._read_pause_s = read_pause_s
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._failures = Failures(log, "alerts: reading the events stream")
        self._last_reclaim = 0.0
        self.applied = 0  # entries handled (read and acknowledged), for tests and logs
        self.reads = 0  # XREADGROUP calls made, for tests

    async def ensure_group(self) -> None:
        try:
            await self._queue.redis.xgroup_create(self._queue.keys.events, ALERTS_GROUP, id="$", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    def start(self) -> None:
        self._stopping.clear()
        # The first take-over comes one period after the start, not with it.
        self._last_reclaim = asyncio.get_running_loop().time()
        self._task = watched(self._run(), name=f"alerts-consumer-{self.consumer}")

    async def stop(self) -> None:
        self._stopping.set()
        await stop_tasks([self._task])
        self._task = None

    async def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                await self.ensure_group()
                while not self._stopping.is_set():
                    handled = await self.round()
                    self._failures.worked()
                    if handled < BATCH:
                        await self._stopped_within(self._read_pause_s)
            except REDIS_OR_OS_ERRORS as exc:
                self._failures.failed(exc, again_in_s=1.0)
                with contextlib.suppress(*REDIS_OR_OS_ERRORS):
                    await self._reader.aclose()  # the next read connects anew (a cluster: asks for its slots)
            except Exception:  # a bug must not end alerting: the entry stays pending, to be taken over
                log.exception("alerts: handling the events stream failed, again in 1 s")
            await self._stopped_within(1.0)

    async def _stopped_within(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), timeout=seconds)

    async def round(self, *, block_ms: int = BLOCK_MS) -> int:
        """Take over stale entries when it is time, then read and handle new ones; how many were handled."""
        handled = 0
        loop = asyncio.get_running_loop()
        if loop.time() - self._last_reclaim >= min(self._settings.claim_idle_ms / 2000, 30.0):
            self._last_reclaim = loop.time()
            handled += await self.take_over()
        key = self._queue.keys.events
        self.reads += 1
        reply = await self._reader.xreadgroup(
            ALERTS_GROUP, self.consumer, {key: ">"}, count=BATCH, block=block_ms or None
        )
        for _, entries in cast(list[tuple[str, list[Entry]]], reply or []):
            handled += await self._handle(entries)
        return handled

    async def take_over(self) -> int:
        """Handle the entries other consumers read but never acknowledged for `claim_idle_ms`."""
        key = self._queue.keys.events
        start = "0-0"
        handled = 0
        for _ in range(MAX_RECLAIM_PAGES):
            reply = await self._queue.redis.xautoclaim(
                key, ALERTS_GROUP, self.consumer, self._settings.claim_idle_ms, start_id=start, count=BATCH
            )
            start = str(reply[0])
            deleted = reply[2] if len(reply) > 2 else []
            if deleted:
                log.warning("alerts: %d pending event(s) were trimmed from the stream before handled", len(deleted))
            handled += await self._handle(cast(list[Entry], reply[1]))
            if start == "0-0":
                break
        return handled

    async def _handle(self, entries: list[Entry]) -> int:
        """Apply each entry in order and acknowledge those handled; a Redis error leaves the rest
        pending (a take-over reads them again) and is raised."""
        done: list[str] = []
        try:
            unowned = await unowned_ends(self._queue, entries)
            for entry_id, fields in entries:
                made: list[str] = []
                if fields is not None and entry_id not in unowned:  # None: an entry trimmed while pending
                    try:
                        made = await apply_entry(
                            self._queue, entry_id, fields, lookup=self._lookup, settings=self._settings
                        )
                    except SentinelError as exc:  # a job that cannot be decoded: no alert, no retrying forever
                        log.warning("alerts: cannot handle event %s: %s", entry_id, exc)
                done.append(entry_id)
                if made and self._on_made is not None:
                    self._on_made(made)
        finally:
            if done:
                await self._queue.redis.xack(self._queue.keys.events, ALERTS_GROUP, *done)
                self.applied += len(done)
        return len(done)
