"""Retention: keep at most N finished jobs per outcome, none older than the retention age.

`QUEUE_REMOVE_ON_COMPLETE` completed and `QUEUE_REMOVE_ON_FAIL` failed (also timed-out and
cancelled) jobs are kept, the newest; none finished more than `QUEUE_RETENTION_DAYS` ago (0: no
age limit). Removing a job removes everything of it in Redis in one script (`clean.lua`): hash,
progress stream, tenant and tag index entries, idempotency key, dead-letter entry. The script
returns the removed ids, and their artifacts (`<job id>/…` in the artifact store) are deleted
right after it. The store is not Redis, so that cannot be atomic with the script: a store that
fails is logged and retention goes on. What it leaves behind, and anything else stored for a job
that no longer exists, the `OrphanSweeper` finds and deletes later.

Each `Cleaner` pass also deletes the consumers of the lanes' and the events stream's groups that hold
no entry and have read nothing for an hour (`forget_consumers`): every executor process and API
replica reads under a name of its own, and Redis would keep each one that ever ran.

The periodic `Cleaner` and `OrphanSweeper` run in every API replica; a `SET NX PX` lock each lets
one of them do a pass per interval, and since every removal is atomic, two passes racing (a lock
that expired mid-pass) still remove each job exactly once. Nothing here runs a job or touches a
running one, and the sweep only deletes under top-level names that are job ids (uuids) whose job
hash is gone and whose newest file is a day old (`SWEEP_GRACE_MS`: a hybrid API's direct job has
files before it has a record in Redis).
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from shared.artifact_store import ArtifactStore
from shared.clock import now_ms
from shared.errors import ArtifactStoreUnavailable
from shared.keys import ALERTS_GROUP, GROUP
from shared.model import JobState
from shared.queue import Queue
from shared.redis_errors import REDIS_ERRORS
from shared.tasks import Periodic

log = logging.getLogger(__name__)

#: Most jobs one clean.lua call looks at. Redis runs nothing else while a script runs, and removing a
#: job costs it ~14 µs (hash, progress stream, indexes), so a call of 100 holds every other client up
#: for ~1.5 ms at most; calls of 500 held them 6–7 ms, twice a pass at 200 jobs/s: the tail of every
#: submit, claim and progress write that arrived meanwhile.
BATCH = 100
#: Most job ids the orphan sweep looks up in one round trip (EXISTS each: cheap to Redis).
LOOKUP_BATCH = 500
DAY_MS = 86_400_000
#: Jobs whose artifacts are deleted from the store at once.
DELETE_CONCURRENCY = 8
#: How often one replica sweeps the artifact store for artifacts of jobs that no longer exist.
SWEEP_INTERVAL_MS = 600_000
#: A job's files written this recently are never swept, whatever Redis says: a hybrid API's direct
#: job writes its files before its record reaches Redis (its attempts run first, then the write-back),
#: and the job is in that API's memory only, which the replica sweeping cannot see.
SWEEP_GRACE_MS = 86_400_000
#: A consumer of the lanes' or the events stream's group that holds no entry is deleted after this
#: long without a read (forget.lua).
CONSUMER_IDLE_MS = 3_600_000


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
        schedule_jobs_format=keys.schedule_jobs_format,
    )
    return [context]


async def _call(queue: Queue, zset: str, args: list[str], store: ArtifactStore | None) -> tuple[int, int]:
    """One clean.lua call, then the removed jobs' artifacts; returns (removed, examined)."""
    keys = queue.keys
    removed, examined, ids = await queue.scripts.clean(keys=[zset, keys.completed, keys.failed, keys.dlq], args=args)
    if store is not None and ids:
        await delete_artifacts(store, [str(i) for i in ids])
    return int(removed), int(examined)


async def delete_artifacts(store: ArtifactStore, job_ids: Sequence[str]) -> int:
    """Delete every artifact of these jobs; returns how many objects went.

    Never raises for the store: a failure is logged, and the orphan sweep deletes what is left.
    Once the store proves unavailable, the jobs not tried yet are left to the sweep too, so a store
    that does not answer costs a pass one request timeout, not one per job.
    """
    limit = asyncio.Semaphore(DELETE_CONCURRENCY)
    failures: list[tuple[str, Exception]] = []
    down: ArtifactStoreUnavailable | None = None

    async def one(job_id: str) -> int:
        nonlocal down
        async with limit:
            if down is not None:
                failures.append((job_id, down))
                return 0
            try:
                return await store.delete_prefix(job_id)
            except Exception as exc:  # the store's trouble must never stop retention
                failures.append((job_id, exc))
                if isinstance(exc, ArtifactStoreUnavailable):
                    down = exc
                return 0

    deleted = sum(await asyncio.gather(*(one(j) for j in job_ids)))
    if failures:
        job_id, exc = failures[0]
        log.warning(
            "could not delete the artifacts of %d removed job(s) from %s (first: %s: %s); the orphan sweep will retry",
            len(failures),
            store.location,
            job_id,
            exc,
        )
    return deleted


async def trim_excess(queue: Queue, zset: str, *, keep: int, store: ArtifactStore | None = None) -> int:
    """Remove the oldest jobs of retention set `zset` beyond the newest `keep`."""
    removed = 0
    while True:
        done, examined = await _call(queue, zset, _args(queue, mode="excess", keep=keep), store)
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
    store: ArtifactStore | None = None,
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
        done, examined = await _call(queue, zset, args, store)
        removed += done
        offset += examined - done  # members kept (other state or tenant) are stepped over next time
        if examined < batch:
            break
    return removed


async def clean(
    queue: Queue,
    *,
    state: JobState | None = None,
    older_than_ms: int = 0,
    limit: int = 0,
    tenant: str | None = None,
    store: ArtifactStore | None = None,
) -> int:
    """The Clean RPC: remove finished jobs older than `older_than_ms`, of one state or all finished,
    with their artifacts in `store` (None: no store to clean).

    Raises:
        ValueError: `state` is not a finished state.
    """
    if state is not None and not state.terminal:
        raise ValueError(f"only finished jobs can be cleaned, not {state.value}")
    cutoff = now_ms() - older_than_ms
    removed = 0
    shards = queue.shards if tenant is None else (queue.for_tenant(tenant),)
    for shard in shards:
        sets = []
        if state in (None, JobState.COMPLETED):
            sets.append(shard.keys.completed)
        if state is None or state is not JobState.COMPLETED:
            sets.append(shard.keys.failed)
        for zset in sets:
            left = limit - removed if limit else 0
            removed += await remove_older(
                shard, zset, cutoff_ms=cutoff, state=state, tenant=tenant, limit=left, store=store
            )
            if limit and removed >= limit:
                return removed
    return removed


async def enforce(queue: Queue, *, now: int | None = None, store: ArtifactStore | None = None) -> int:
    """One retention pass under the queue's settings, on every shard; returns how many jobs went.

    The kept counts apply per shard (each shard keeps its newest N of each outcome)."""
    s = queue.settings
    removed = 0
    for shard in queue.shards:
        keys = shard.keys
        removed += await trim_excess(shard, keys.completed, keep=s.remove_on_complete, store=store)
        removed += await trim_excess(shard, keys.failed, keep=s.remove_on_fail, store=store)
        if s.retention_days > 0:
            cutoff = (now_ms() if now is None else now) - s.retention_days * DAY_MS
            removed += await remove_older(shard, keys.completed, cutoff_ms=cutoff, store=store)
            removed += await remove_older(shard, keys.failed, cutoff_ms=cutoff, store=store)
    return removed


async def forget_consumers(queue: Queue, *, idle_ms: int | None = None) -> int:
    """Delete, on every shard, the consumers of the executors' group on the lanes and of the alerts
    group on the events stream that hold no entry and have read nothing for `idle_ms` (default
    `CONSUMER_IDLE_MS`; forget.lua); returns how many went. Each executor process and API replica
    reads under a name of its own, so without this every one that ever ran would stay in its group."""
    idle_ms = CONSUMER_IDLE_MS if idle_ms is None else idle_ms
    forgotten = 0
    for shard in queue.shards:  # one call a shard: its lanes and its events stream share its slot
        keys = shard.keys
        context = shard.context(groups=[GROUP] * len(keys.lanes) + [ALERTS_GROUP], idle_ms=idle_ms)
        forgotten += int(await shard.scripts.forget(keys=[*keys.lanes, keys.events], args=[context]))
    return forgotten


def is_job_id(name: str) -> bool:
    """Whether `name` is a job id as Sentinel makes them (a uuid in its canonical text form)."""
    try:
        return str(uuid.UUID(name)) == name
    except ValueError:
        return False


async def sweep_orphans(queue: Queue, store: ArtifactStore, *, grace_ms: int = SWEEP_GRACE_MS) -> int:
    """Delete the artifacts of jobs that no longer exist; returns how many jobs' artifacts went.

    Only top-level names that are job ids are looked at; anything else in the store is left alone,
    and so is a job without a record whose newest file is younger than `grace_ms` (`SWEEP_GRACE_MS`).
    """
    names = [name for name in await store.top_level() if is_job_id(name)]
    unknown: list[str] = []
    for start in range(0, len(names), LOOKUP_BATCH):
        chunk = names[start : start + LOOKUP_BATCH]
        pipe = queue.redis.pipeline(transaction=False)
        for job_id in chunk:
            pipe.exists(queue.for_job(job_id).keys.job(job_id))
        exists = await pipe.execute()
        unknown += [job_id for job_id, found in zip(chunk, exists, strict=True) if not int(found)]
    since = datetime.datetime.fromtimestamp((now_ms() - grace_ms) / 1000, datetime.UTC)
    limit = asyncio.Semaphore(DELETE_CONCURRENCY)

    async def old_enough(job_id: str) -> bool:
        async with limit:
            return all(info.last_modified < since for info in await store.list(f"{job_id}/"))

    aged = await asyncio.gather(*(old_enough(job_id) for job_id in unknown)) if grace_ms else [True] * len(unknown)
    orphans = [job_id for job_id, old in zip(unknown, aged, strict=True) if old]
    if orphans:
        await delete_artifacts(store, orphans)
    return len(orphans)


class _OnePerInterval:
    """Runs `work` every `interval_ms` in whichever replica takes `lock` (SET NX PX) for that interval."""

    def __init__(
        self,
        queue: Queue,
        work: Callable[[], Awaitable[int]],
        *,
        name: str,
        lock: str,
        interval_ms: int,
        first_now: bool = True,
        tolerated: tuple[type[BaseException], ...] = REDIS_ERRORS,
    ) -> None:
        self._queue = queue
        self._work = work
        self._lock = lock
        self._interval_ms = interval_ms
        self._token = uuid.uuid4().hex
        self._loop = Periodic(
            name, self.run_once, interval_s=interval_ms / 1000, first_now=first_now, tolerated=tolerated
        )

    async def start(self) -> None:
        self._loop.start()

    async def stop(self) -> None:
        await self._loop.stop()

    async def run_once(self) -> int | None:
        """One pass if this replica gets the lock; None when another replica holds it."""
        lock: Any = await self._queue.redis.set(self._lock, self._token, nx=True, px=self._interval_ms)
        if not lock:
            return None
        return await self._work()


class Cleaner(_OnePerInterval):
    """Runs `enforce` every `QUEUE_CLEAN_INTERVAL_MS` in whichever replica takes the lock."""

    def __init__(self, queue: Queue, *, store: ArtifactStore | None = None) -> None:
        super().__init__(
            queue,
            self._pass,
            name="retention-cleaner",
            lock=queue.keys.cleaner_lock,
            interval_ms=queue.settings.clean_interval_ms,
        )
        self._store = store
        self.passes = 0
        self.removed = 0

    async def _pass(self) -> int:
        removed = await enforce(self._queue, store=self._store)
        self.passes += 1
        self.removed += removed
        if removed:
            log.info("retention removed %d finished job(s)", removed)
        if forgotten := await forget_consumers(self._queue):
            log.info("forgot %d idle stream consumer(s) that held no entry", forgotten)
        return removed


class OrphanSweeper(_OnePerInterval):
    """Runs `sweep_orphans` every `interval_ms` (first after one interval) in whichever replica
    takes the lock."""

    def __init__(
        self,
        queue: Queue,
        store: ArtifactStore,
        *,
        interval_ms: int = SWEEP_INTERVAL_MS,
        grace_ms: int = SWEEP_GRACE_MS,
    ) -> None:
        super().__init__(
            queue,
            self._pass,
            name="artifact-sweeper",
            lock=queue.keys.artifact_sweep_lock,
            interval_ms=interval_ms,
            first_now=False,
            tolerated=(*REDIS_ERRORS, ArtifactStoreUnavailable),
        )
        self._store = store
        self._grace_ms = grace_ms

    async def _pass(self) -> int:
        swept = await sweep_orphans(self._queue, self._store, grace_ms=self._grace_ms)
        if swept:
            log.info("deleted the artifacts of %d job(s) that no longer exist", swept)
        return swept
