"""Retention: keep at most N finished jobs per outcome, none older than the retention age.

`QUEUE_REMOVE_ON_COMPLETE` completed and `QUEUE_REMOVE_ON_FAIL` failed (also timed-out and
cancelled) jobs are kept, the newest; none finished more than `QUEUE_RETENTION_DAYS` ago (0: no
age limit). Removing a job removes everything of it in Redis in one script (`clean.lua`): hash,
progress stream, tenant and tag index entries, idempotency key, dead-letter entry. Artifacts live
on the executors' disks; each executor deletes the directories of jobs that no longer exist
(`executor_service.artifacts`).

The periodic `Cleaner` runs in every API replica; a `SET NX PX` lock lets one of them do a pass
per interval, and since every removal is atomic, two passes racing (a lock that expired mid-pass)
still remove each job exactly once. Nothing here runs a job or touches a running one.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from redis.exceptions import RedisError

from shared.clock import now_ms
from shared.model import JobState
from shared.queue import Queue
from shared.tasks import Periodic

log = logging.getLogger(__name__)

#: Most jobs one clean.lua call looks at, so a pass never blocks Redis for long.
BATCH = 500
DAY_MS = 86_400_000


def _args(
    queue: Queue,
    *,
    mode: str,
    keep: int = 0,
    cutoff: int = 0,
    offset: int = 0,
    state: str = "",
    tenant: str = "",
    batch: int = BATCH,
) -> list[str]:
    keys = queue.keys
    context = queue.context(
        mode=mode,
        keep=keep,
        cutoff=cutoff,
        limit=batch,
        offset=offset,
        only_state=state,
        only_tenant=tenant,
        tenant_jobs_format=keys.tenant_jobs_format,
        tenant_tag_format=keys.tenant_tag_format,
        idempotency_format=keys.idempotency_format,
    )
    return [context]


async def _call(queue: Queue, zset: str, args: list[str]) -> tuple[int, int]:
    keys = queue.keys
    removed, examined = await queue.scripts.clean(keys=[zset, keys.completed, keys.failed, keys.dlq], args=args)
    return int(removed), int(examined)


async def trim_excess(queue: Queue, zset: str, *, keep: int) -> int:
    """Remove the oldest jobs of retention set `zset` beyond the newest `keep`."""
    removed = 0
    while True:
        done, examined = await _call(queue, zset, _args(queue, mode="excess", keep=keep))
        removed += done
        if examined < BATCH:
            break
    return removed


async def remove_older(
    queue: Queue,
    zset: str,
    *,
    cutoff_ms: int,
    state: JobState | None = None,
    tenant: str | None = None,
    limit: int = 0,
) -> int:
    """Remove jobs of `zset` finished at or before `cutoff_ms` (of one state / tenant), at most `limit` (0: all)."""
    removed = offset = 0
    while not limit or removed < limit:
        batch = min(BATCH, limit - removed) if limit else BATCH
        args = _args(
            queue,
            mode="age",
            cutoff=cutoff_ms,
            offset=offset,
            state=state.value if state else "",
            tenant=tenant or "",
            batch=batch,
        )
        done, examined = await _call(queue, zset, args)
        removed += done
        offset += examined - done  # members kept (other state or tenant) are stepped over next time
        if examined < batch:
            break
    return removed


async def clean(
    queue: Queue, *, state: JobState | None = None, older_than_ms: int = 0, limit: int = 0, tenant: str | None = None
) -> int:
    """The Clean RPC: remove finished jobs older than `older_than_ms`, of one state or all finished.

    Raises:
        ValueError: `state` is not a finished state.
    """
    if state is not None and not state.terminal:
        raise ValueError(f"only finished jobs can be cleaned, not {state.value}")
    cutoff = now_ms() - older_than_ms
    removed = 0
    sets = []
    if state in (None, JobState.COMPLETED):
        sets.append(queue.keys.completed)
    if state is None or state is not JobState.COMPLETED:
        sets.append(queue.keys.failed)
    for zset in sets:
        left = limit - removed if limit else 0
        removed += await remove_older(queue, zset, cutoff_ms=cutoff, state=state, tenant=tenant, limit=left)
        if limit and removed >= limit:
            break
    return removed


async def enforce(queue: Queue, *, now: int | None = None) -> int:
    """One retention pass under the queue's settings; returns how many jobs went."""
    s = queue.settings
    keys = queue.keys
    removed = await trim_excess(queue, keys.completed, keep=s.remove_on_complete)
    removed += await trim_excess(queue, keys.failed, keep=s.remove_on_fail)
    if s.retention_days > 0:
        cutoff = (now_ms() if now is None else now) - s.retention_days * DAY_MS
        removed += await remove_older(queue, keys.completed, cutoff_ms=cutoff)
        removed += await remove_older(queue, keys.failed, cutoff_ms=cutoff)
    return removed


class Cleaner:
    """Runs `enforce` every `QUEUE_CLEAN_INTERVAL_MS` in whichever replica takes the lock."""

    def __init__(self, queue: Queue) -> None:
        self._queue = queue
        self._token = uuid.uuid4().hex
        self._loop = Periodic(
            "retention-cleaner",
            self.run_once,
            interval_s=queue.settings.clean_interval_ms / 1000,
            tolerated=(RedisError,),
        )
        self.passes = 0
        self.removed = 0

    async def start(self) -> None:
        self._loop.start()

    async def stop(self) -> None:
        await self._loop.stop()

    async def run_once(self) -> int | None:
        """One pass if this replica gets the lock; None when another replica holds it."""
        interval = self._queue.settings.clean_interval_ms
        lock: Any = await self._queue.redis.set(self._queue.keys.cleaner_lock, self._token, nx=True, px=interval)
        if not lock:
            return None
        removed = await enforce(self._queue)
        self.passes += 1
        self.removed += removed
        if removed:
            log.info("retention removed %d finished job(s)", removed)
        return removed
