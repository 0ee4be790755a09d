"""A queue's health from its figures: healthy, degraded or unhealthy, and why.

The thresholds are the original design's (`QUEUE_MAX_WAITING` 100, `QUEUE_MAX_ACTIVE` 50,
`QUEUE_MAX_FAILED` 20 — failures in the last hour), plus the processing rate and staleness:

- **unhealthy**: Redis does not answer, or the queue is stale — work waits, the queue is not
  paused, and for `QUEUE_STALE_AFTER_MS` (5 min) no job was claimed or finished while work waited
  all that time (no executor is taking work);
- **degraded**: paused while work waits; more waiting, running or recently failed jobs than the
  thresholds; a backlog the current rate will not clear within `BACKLOG_LIMIT_MIN` minutes; or a
  Redis whose `maxmemory-policy` lets it evict keys (`shared.redis_policy`).

The same judgement serves the whole queue and one tenant's share of it (GetHealth answers a
tenant about its own jobs). `evaluate` is a pure function over `QueueStats`; `assess` reads the
figures and the eviction policy (one round trip each) and is what GetHealth and the HTTP health
route call. No grpc.

The verdict goes to tenants (any viewer key), so it must never carry internals: when Redis does
not answer, its reason is generic (`UNREACHABLE_REASON`); the driver's error, which names Redis's
host and port, goes to this module's log, once when Redis stops answering and once when it
answers again (not per request), and `/metrics` says the same with `sentinel_queue_up`.
"""

from __future__ import annotations

import enum
import logging
import weakref
from dataclasses import dataclass

import redis.asyncio as aioredis

from shared.clock import now_ms
from shared.queue import Queue
from shared.redis_errors import REDIS_UNREACHABLE
from shared.redis_policy import EvictionPolicy, read_policy
from shared.settings import QueueSettings
from shared.stats import QueueStats, get_stats

log = logging.getLogger(__name__)

#: A backlog that needs longer than this at the current rate makes the queue degraded.
BACKLOG_LIMIT_MIN = 30
#: The reason of an unhealthy verdict when Redis does not answer: what every other call says, no
#: address or driver error (those are logged).
UNREACHABLE_REASON = "redis unreachable: the queue store does not answer; try again shortly"


class HealthStatus(enum.StrEnum):
    HEALTHY = "healthy"
    DEGRADED = "degraded"
    UNHEALTHY = "unhealthy"


@dataclass(frozen=True)
class QueueHealth:
    status: HealthStatus
    reasons: tuple[str, ...]
    stats: QueueStats | None


def unreachable() -> QueueHealth:
    """The health of a queue whose Redis does not answer (the reason names no internals)."""
    return QueueHealth(status=HealthStatus.UNHEALTHY, reasons=(UNREACHABLE_REASON,), stats=None)


#: The Redis clients whose last assessment found them unreachable: a change either way is logged
#: once, not on every health request (a dashboard polls it).
_UNREACHABLE: weakref.WeakSet[aioredis.Redis] = weakref.WeakSet()


def _note_reachable(redis: aioredis.Redis, error: BaseException | None) -> None:
    if error is not None and redis not in _UNREACHABLE:
        _UNREACHABLE.add(redis)
        log.warning("queue health: Redis unreachable: %s", str(error) or type(error).__name__)
    elif error is None and redis in _UNREACHABLE:
        _UNREACHABLE.discard(redis)
        log.info("queue health: Redis answers again")


def _seconds(ms: int) -> str:
    return f"{ms // 1000} s" if ms < 120_000 else f"{ms // 60_000} min"


async def assess(queue: Queue, *, tenant: str | None = None) -> QueueHealth:
    """The health of the queue (`tenant` None) or of one tenant's jobs, now.

    Answers even when Redis does not (unhealthy: unreachable): that is the most important verdict
    it gives.
    """
    try:
        stats = await get_stats(queue, tenant=tenant)
        policy = await read_policy(queue.redis)
    except REDIS_UNREACHABLE as exc:
        _note_reachable(queue.redis, exc)
        return unreachable()
    _note_reachable(queue.redis, None)
    return evaluate(stats, queue.settings, now=now_ms(), eviction=policy)


def evaluate(
    stats: QueueStats, settings: QueueSettings, *, now: int, eviction: EvictionPolicy | None = None
) -> QueueHealth:
    """Judge `stats` against the queue's thresholds; reasons name each figure and its limit.

    Args:
        eviction: Redis's eviction policy; one that evicts makes the queue degraded.
    """
    unhealthy: list[str] = []
    degraded: list[str] = []
    evicting = eviction.health_reason() if eviction is not None else None
    if evicting:
        degraded.append(evicting)
    waiting = stats.waiting
    if waiting and not stats.paused:
        quiet_for = now - max(stats.last_processed_at_ms, stats.last_claimed_at_ms, stats.waiting_since_ms)
        if stats.waiting_since_ms and quiet_for >= settings.stale_after_ms:
            unhealthy.append(f"stale: no job claimed or finished for {_seconds(quiet_for)} while {waiting} wait")
        elif stats.processing_rate > 0 and waiting / stats.processing_rate > BACKLOG_LIMIT_MIN:
            minutes = round(waiting / stats.processing_rate)
            degraded.append(
                f"backlog: {waiting} waiting at {stats.processing_rate:g} jobs/min needs ~{minutes} min "
                f"(limit {BACKLOG_LIMIT_MIN} min)"
            )
    if stats.paused:
        degraded.append(f"paused: claiming nothing new ({waiting} waiting)")
    if waiting > settings.max_waiting:
        degraded.append(f"waiting: {waiting} > QUEUE_MAX_WAITING {settings.max_waiting}")
    if stats.active > settings.max_active:
        degraded.append(f"active: {stats.active} > QUEUE_MAX_ACTIVE {settings.max_active}")
    if stats.failed_last_hour > settings.max_failed:
        degraded.append(f"failed: {stats.failed_last_hour} in the last hour > QUEUE_MAX_FAILED {settings.max_failed}")
    if unhealthy:
        status = HealthStatus.UNHEALTHY
    elif degraded:
        status = HealthStatus.DEGRADED
    else:
        status = HealthStatus.HEALTHY
    return QueueHealth(status=status, reasons=tuple(unhealthy + degraded), stats=stats)
