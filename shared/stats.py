"""Queue figures for GetStats, GetHealth and /metrics, from counters and O(1) Redis calls.

Never a scan over jobs: per lane one XLEN and one XINFO GROUPS (pending count, last delivered id),
one ZCARD per set, the flag, and the metrics hash that finish.lua keeps (totals, the time spent,
and a ring of one-minute buckets for the rate). A second round trip, only when work waits, reads
the oldest undelivered entry of each lane (XRANGE … COUNT 1) to date the backlog.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from redis.asyncio.client import Pipeline

from shared.clock import now_ms
from shared.keys import GROUP
from shared.model import PRIORITY_ORDER, Priority
from shared.queue import Queue
from shared.streams import parse_id

#: The processing rate is jobs finished per minute over this many minutes (the current one included).
RATE_WINDOW_MIN = 5
#: Failures counted for health: those of the last hour (the ring holds 60 one-minute buckets).
FAILURE_WINDOW_MIN = 60


@dataclass(frozen=True)
class LaneStats:
    priority: Priority
    waiting: int
    active: int
    oldest_waiting_at_ms: int = 0  # when the oldest undelivered entry was added; 0 = none waits


@dataclass(frozen=True)
class QueueStats:
    queue: str
    lanes: tuple[LaneStats, ...]
    delayed: int
    completed: int  # completed jobs still kept (retention)
    failed: int  # failed, timed-out and cancelled jobs still kept
    dead_lettered: int
    paused: bool
    total_processed: int  # every job that ended, ever (completed + failed)
    total_failed: int
    processing_rate: float  # jobs per minute
    avg_processing_time_ms: float
    last_processed_at_ms: int
    failed_last_hour: int

    @property
    def waiting(self) -> int:
        return sum(lane.waiting for lane in self.lanes)

    @property
    def active(self) -> int:
        return sum(lane.active for lane in self.lanes)

    @property
    def oldest_waiting_at_ms(self) -> int:
        stamps = [lane.oldest_waiting_at_ms for lane in self.lanes if lane.oldest_waiting_at_ms]
        return min(stamps) if stamps else 0


def _int(value: Any) -> int:
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0


def _group_info(reply: Any) -> tuple[int, str]:
    """(pending, last delivered id) of the executors' group in an XINFO GROUPS reply."""
    if isinstance(reply, list):
        for group in reply:
            if isinstance(group, dict) and group.get("name") == GROUP:
                return _int(group.get("pending")), str(group.get("last-delivered-id") or "0-0")
    return 0, "0-0"


def rate_figures(metrics: dict[str, str], now: int) -> tuple[float, int]:
    """(jobs finished per minute over the rate window, jobs failed in the last hour) from the ring."""
    minute = now // 60_000
    finished = failed = 0
    for slot in range(60):
        stamp = _int(metrics.get(f"rm:{slot}"))
        age = minute - stamp
        if stamp <= 0 or age < 0:
            continue
        if age < RATE_WINDOW_MIN:
            finished += _int(metrics.get(f"rp:{slot}"))
        if age < FAILURE_WINDOW_MIN:
            failed += _int(metrics.get(f"rf:{slot}"))
    # The window is the last whole minutes plus the part of this one gone by so far.
    window_min = (RATE_WINDOW_MIN - 1) + (now % 60_000) / 60_000
    return round(finished / window_min, 3), failed


async def get_stats(queue: Queue, *, now: int | None = None) -> QueueStats:
    """The queue's figures now, in two round trips at most."""
    now = now_ms() if now is None else now
    keys = queue.keys
    pipe: Pipeline = queue.redis.pipeline(transaction=False)
    for lane in keys.lanes:
        pipe.xlen(lane)
        pipe.xinfo_groups(lane)
    pipe.zcard(keys.delayed)
    pipe.zcard(keys.completed)
    pipe.zcard(keys.failed)
    pipe.zcard(keys.dlq)
    pipe.exists(keys.paused)
    pipe.hgetall(keys.metrics)
    for priority in PRIORITY_ORDER:  # jobs fair share holds back from each lane (shared/scripts/fair.lua)
        pipe.get(keys.lane_held(priority))
    # A lane stream does not exist before ensure_groups: its XINFO fails, and it holds nothing.
    replies: list[Any] = await pipe.execute(raise_on_error=False)
    lanes_raw = []
    for i in range(len(keys.lanes)):
        length, info = replies[2 * i], replies[2 * i + 1]
        pending, last_delivered = _group_info(info)
        length = length if isinstance(length, int) else 0
        held = replies[12 + i]
        held = int(held) if isinstance(held, str) and held.lstrip("-").isdigit() else 0
        lanes_raw.append((max(length - pending, 0) + max(held, 0), pending, last_delivered))
    delayed, completed, failed, dlq, paused, metrics = replies[6:12]
    metrics = metrics if isinstance(metrics, dict) else {}
    oldest = await _oldest_waiting(queue, [(lane, raw) for lane, raw in zip(keys.lanes, lanes_raw, strict=True)])
    lanes = tuple(
        LaneStats(priority=p, waiting=w, active=a, oldest_waiting_at_ms=o)
        for p, (w, a, _), o in zip(PRIORITY_ORDER, lanes_raw, oldest, strict=True)
    )
    processed = _int(metrics.get("processed"))
    rate, failed_recently = rate_figures(metrics, now)
    return QueueStats(
        queue=queue.settings.name,
        lanes=lanes,
        delayed=_int(delayed),
        completed=_int(completed),
        failed=_int(failed),
        dead_lettered=_int(dlq),
        paused=bool(_int(paused)),
        total_processed=processed,
        total_failed=_int(metrics.get("failed")),
        processing_rate=rate,
        avg_processing_time_ms=round(_int(metrics.get("processing_ms")) / processed, 1) if processed else 0.0,
        last_processed_at_ms=_int(metrics.get("last_processed")),
        failed_last_hour=failed_recently,
    )


async def _oldest_waiting(queue: Queue, lanes: list[tuple[str, tuple[int, int, str]]]) -> list[int]:
    """When each lane's oldest undelivered entry was added (its id's ms part); 0 where none waits."""
    asked = [(key, last) for key, (waiting, _, last) in lanes if waiting > 0]
    if not asked:
        return [0] * len(lanes)
    pipe: Pipeline = queue.redis.pipeline(transaction=False)
    for key, last in asked:
        pipe.xrange(key, min=f"({last}", max="+", count=1)
    replies: list[Any] = await pipe.execute(raise_on_error=False)
    found = dict(zip((k for k, _ in asked), replies, strict=True))
    out = []
    for key, _ in lanes:
        entries = found.get(key)
        out.append(parse_id(entries[0][0])[0] if isinstance(entries, list) and entries else 0)
    return out
