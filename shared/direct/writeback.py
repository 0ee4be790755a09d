"""Hybrid mode: direct jobs written into Redis once it answers, so Status and ListJobs find them there.

Every second, each finished direct job not yet written is recorded by adopt.lua (job hash, tenant
and tag indexes, retention zset, a terminal progress entry, its terminal event) in one pipelined round trip; a job
whose hash exists already is left as it is, so none is written twice. While Redis does not answer
the jobs wait in the API's memory (`JobTable`) and the next pass tries again. A job written back is
Redis's from then on: its retention removes it and deletes its artifacts, so its eviction from
memory must not (`in_redis` tells, once a pass that may be writing it is over). A pass that breaks
part way (the connection lost after Redis ran some of its calls) marks none of its jobs written;
the next pass writes them again (adopt.lua leaves one already there as it is), and `in_redis` asks
Redis about a job a broken pass carried.
"""

from __future__ import annotations

import asyncio
import logging

from shared import codec
from shared.direct.table import DirectJob, JobTable
from shared.model import JobState
from shared.queue import Queue
from shared.redis_errors import REDIS_OR_OS_ERRORS
from shared.script_calls import Call, call_each
from shared.tasks import Periodic

log = logging.getLogger(__name__)


async def write_back(queue: Queue, entries: list[DirectJob]) -> int:
    """Record finished direct jobs in Redis; returns how many were new there. RedisError passes."""
    if not entries:
        return 0
    calls: list[Call] = []
    for entry in entries:
        job = entry.job
        tenant = job.metadata.tenant_id
        shard = queue.for_tenant(tenant)  # with shards: the tenant's, which the job's id names too
        keys = shard.keys
        retention = keys.completed if job.state is JobState.COMPLETED else keys.failed
        call_keys = [
            keys.job(job.job_id),
            keys.tenant_jobs(tenant),
            retention,
            keys.progress(job.job_id),
            keys.events,
            *(keys.tenant_tag(tenant, tag) for tag in dict.fromkeys(job.options.tags)),
        ]
        args = [
            shard.context(
                id=job.job_id,
                job=codec.job_fields(job, trace=entry.trace),
                created=job.metadata.created_at_ms,
                finished=job.finished_at_ms,
            )
        ]
        calls.append((call_keys, args))
    for entry in entries:
        entry.sent = True  # from here Redis may hold it, whatever comes back
    replies = await call_each(queue.redis, queue.scripts.adopt, calls)
    for entry in entries:
        entry.written = True
    return sum(int(r) for r in replies)


class WriteBack:
    def __init__(self, queue: Queue, table: JobTable, *, interval_s: float = 1.0) -> None:
        self._queue = queue
        self._table = table
        self._task = Periodic("direct-write-back", self.run_once, interval_s=interval_s, first_now=False)
        self._passing = asyncio.Lock()  # held by a pass from choosing its jobs to marking them written

    def start(self) -> None:
        self._task.start()

    async def stop(self) -> None:
        await self._task.stop()
        await self.run_once()  # a last pass: jobs that ended during the shutdown

    async def in_redis(self, entry: DirectJob) -> bool:
        """Whether Redis holds the job's record now (and cleans it), once a pass in flight is over.

        Asks Redis only about a job a pass carried without seeing it written (a pass that broke part
        way). Raises RedisError / OSError when Redis cannot tell.
        """
        async with self._passing:
            if entry.written or not entry.sent:
                return entry.written
            shard = self._queue.for_tenant(entry.job.metadata.tenant_id)
            return bool(await shard.redis.exists(shard.keys.job(entry.job_id)))

    async def run_once(self) -> None:
        async with self._passing:
            pending = [e for e in self._table.entries() if e.job.state.terminal and not e.written]
            if not pending:
                return
            try:
                written = await write_back(self._queue, pending)
            except REDIS_OR_OS_ERRORS as exc:
                log.debug("direct jobs not written back yet (%s)", exc)
                return
        log.info("wrote %d direct job(s) into Redis (%d new there)", len(pending), written)
