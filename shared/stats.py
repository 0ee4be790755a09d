"""Queue figures for GetStats, GetHealth and /metrics, from counters and O(1) Redis calls.

Never a scan over jobs: every script that moves a job between states keeps the counts of its lane
and of its tenant's share of that lane (shared/scripts/tally.lua). The figures of a lane are one
HGETALL; those of the whole queue, or of one tenant, are the sums over the three lanes. One round
trip: three HGETALLs and the paused flag (per shard, with shards: `shared.shards`).
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from shared.clock import now_ms
from shared.model import PRIORITY_ORDER, JobState, Priority
from shared.queue import Queue
from shared.schema import Figure, FigurePrefix

#: The processing rate is jobs finished per minute over this many minutes (the current one included).
RATE_WINDOW_MIN = 5
#: Failures counted for health: those of the last hour (the ring holds 60 one-minute buckets).
FAILURE_WINDOW_MIN = 60
#: Unsuccessful ends, counted as `failed` (kept in the failed retention set with the cancelled jobs).
_UNSUCCESSFUL = (JobState.FAILED, JobState.TIMEOUT)


@dataclass(frozen=True, kw_only=True)
class Figures:
    """The figures of one lane, or the sum of several."""

    waiting: int = 0
    active: int = 0
    delayed: int = 0
    completed: int = 0  # completed jobs still kept (retention)
    failed: int = 0  # failed and timed-out jobs still kept
    cancelled: int = 0  # cancelled jobs still kept (a cancel is no failure)
    dead_lettered: int = 0
    total_processed: int = 0  # every run that ended, ever (completed + failed + cancelled)
    total_failed: int = 0
    total_cancelled: int = 0
    processing_rate: float = 0.0  # jobs per minute
    timed: int = 0  # ended runs whose processing time is known
    processing_ms: int = 0  # their time, summed
    last_processed_at_ms: int = 0
    last_claimed_at_ms: int = 0
    waiting_since_ms: int = 0  # when the waiting count last rose from zero; 0 while none waits
    failed_last_hour: int = 0
    paused: bool = False  # the queue claims nothing new (pause is queue-wide: every lane shows it)

    @property
    def avg_processing_time_ms(self) -> float:
        return round(self.processing_ms / self.timed, 1) if self.timed else 0.0

    @classmethod
    def from_hash(cls, raw: Mapping[str, str], *, now: int) -> Figures:
        """The figures in one tally hash (the fields documented in tally.lua)."""

        def count(state: JobState) -> int:
            return max(_int(raw.get(FigurePrefix.COUNT.of(state.value))), 0)

        waiting = count(JobState.PENDING)
        rate, failed_recently = rate_figures(raw, now)
        return cls(
            waiting=waiting,
            active=count(JobState.RUNNING),
            delayed=count(JobState.SCHEDULED),
            completed=count(JobState.COMPLETED),
            failed=sum(count(s) for s in _UNSUCCESSFUL),
            cancelled=count(JobState.CANCELLED),
            dead_lettered=max(_int(raw.get(Figure.DEAD_LETTERED)), 0),
            total_processed=_int(raw.get(Figure.PROCESSED)),
            total_failed=_int(raw.get(Figure.FAILED)),
            total_cancelled=_int(raw.get(Figure.CANCELLED)),
            processing_rate=rate,
            timed=_int(raw.get(Figure.TIMED)),
            processing_ms=_int(raw.get(Figure.PROCESSING_MS)),
            last_processed_at_ms=_int(raw.get(Figure.LAST_PROCESSED)),
            last_claimed_at_ms=_int(raw.get(Figure.LAST_CLAIMED)),
            waiting_since_ms=_int(raw.get(Figure.WAITING_SINCE)) if waiting else 0,
            failed_last_hour=failed_recently,
        )

    def plus(self, other: Figures) -> Figures:
        """The figures of both together: counts add up, the latest stamps win, work waits since the earliest."""
        since = [s for s in (self.waiting_since_ms, other.waiting_since_ms) if s]
        return Figures(
            waiting=self.waiting + other.waiting,
            active=self.active + other.active,
            delayed=self.delayed + other.delayed,
            completed=self.completed + other.completed,
            failed=self.failed + other.failed,
            cancelled=self.cancelled + other.cancelled,
            dead_lettered=self.dead_lettered + other.dead_lettered,
            total_processed=self.total_processed + other.total_processed,
            total_failed=self.total_failed + other.total_failed,
            total_cancelled=self.total_cancelled + other.total_cancelled,
            processing_rate=round(self.processing_rate + other.processing_rate, 3),
            timed=self.timed + other.timed,
            processing_ms=self.processing_ms + other.processing_ms,
            last_processed_at_ms=max(self.last_processed_at_ms, other.last_processed_at_ms),
            last_claimed_at_ms=max(self.last_claimed_at_ms, other.last_claimed_at_ms),
            waiting_since_ms=min(since) if since else 0,
            failed_last_hour=self.failed_last_hour + other.failed_last_hour,
            paused=self.paused or other.paused,
        )


@dataclass(frozen=True, kw_only=True)
class LaneStats(Figures):
    priority: Priority


@dataclass(frozen=True, kw_only=True)
class QueueStats(Figures):
    """The queue's figures (tenant "") or one tenant's, summed over `lanes` (high first)."""

    queue: str
    tenant: str = ""
    lanes: tuple[LaneStats, ...] = ()

    @classmethod
    def of_lanes(cls, queue: str, lanes: tuple[LaneStats, ...], *, tenant: str = "") -> QueueStats:
        total = Figures()
        for lane in lanes:
            total = total.plus(lane)
        return cls(queue=queue, tenant=tenant, lanes=lanes, **_fields(total))


def _fields(figures: Figures) -> dict[str, Any]:
    return {f.name: getattr(figures, f.name) for f in dataclasses.fields(Figures)}


def _int(value: Any) -> int:
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0


def rate_figures(metrics: Mapping[str, str], now: int) -> tuple[float, int]:
    """(jobs finished per minute over the rate window, jobs failed in the last hour) from the ring."""
    minute = now // 60_000
    finished = failed = 0
    for slot in range(60):
        stamp = _int(metrics.get(FigurePrefix.RING_MINUTE.of(slot)))
        age = minute - stamp
        if stamp <= 0 or age < 0:
            continue
        if age < RATE_WINDOW_MIN:
            finished += _int(metrics.get(FigurePrefix.RING_PROCESSED.of(slot)))
        if age < FAILURE_WINDOW_MIN:
            failed += _int(metrics.get(FigurePrefix.RING_FAILED.of(slot)))
    # The window is the last whole minutes plus the part of this one gone by so far.
    window_min = (RATE_WINDOW_MIN - 1) + (now % 60_000) / 60_000
    return round(finished / window_min, 3), failed


async def _shard_lanes(queue: Queue, *, tenant: str | None, now: int) -> list[Figures]:
    """One shard's figures per lane (high first), paused or not, in one round trip."""
    keys = queue.keys
    pipe = queue.redis.pipeline(transaction=False)
    for priority in PRIORITY_ORDER:
        pipe.hgetall(keys.lane_stats(priority) if tenant is None else keys.tenant_stats(tenant, priority))
    pipe.exists(keys.paused)
    *hashes, paused = await pipe.execute()
    return [dataclasses.replace(Figures.from_hash(raw, now=now), paused=bool(paused)) for raw in hashes]


async def get_stats(queue: Queue, *, tenant: str | None = None, now: int | None = None) -> QueueStats:
    """The figures of the whole queue (`tenant` None) or of one tenant's jobs, in one round trip.

    With shards: a tenant's figures are its shard's; the queue's are the sum over every shard
    (one round trip each, at once), paused when any shard is.
    """
    now = now_ms() if now is None else now
    shards = queue.shards if tenant is None else (queue.for_tenant(tenant),)
    per_shard = await asyncio.gather(*(_shard_lanes(s, tenant=tenant, now=now) for s in shards))
    totals = [Figures() for _ in PRIORITY_ORDER]
    for figures in per_shard:
        totals = [total.plus(lane) for total, lane in zip(totals, figures, strict=True)]
    lanes = tuple(
        LaneStats(priority=priority, **_fields(total)) for priority, total in zip(PRIORITY_ORDER, totals, strict=True)
    )
    return QueueStats.of_lanes(queue.settings.name, lanes, tenant=tenant or "")


async def due_delayed(queue: Queue, *, now: int | None = None) -> int:
    """Delayed jobs (and retries) whose time has come but that no executor has promoted yet.

    Only executors promote due jobs into their lanes, so with none running these wait in the
    delayed set: a figure that scales executors up from zero must count them (`shared.metrics`).
    Summed over every shard.
    """
    now = now_ms() if now is None else now
    counts = await asyncio.gather(*(s.redis.zcount(s.keys.delayed, "-inf", now) for s in queue.shards))
    return sum(int(n) for n in counts)
