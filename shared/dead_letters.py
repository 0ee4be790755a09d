"""Dead letters and reruns: list, requeue and purge dead-lettered jobs; retry finished jobs.

A job that ran out of attempts (or stalled too often) is FAILED or TIMEOUT and its id sits in the
queue's dead-letter set, written in the same script that acked its last run. Its record (error,
result, artifacts) stays in its job hash until retention removes it.
"""

from __future__ import annotations

from shared.clock import now_ms
from shared.errors import ConflictError, NotFoundError
from shared.jobs import get_job, load_jobs, queue_limit_error
from shared.model import ErrorCategory, Job, Priority
from shared.paging import Page, scan_index
from shared.queue import Queue
from shared.shards import merge_pages


async def list_dead_letters(
    queue: Queue,
    *,
    tenant: str | None,
    category: ErrorCategory | None = None,
    tag: str = "",
    page_size: int = 50,
    page_token: str = "",
) -> Page[Job]:
    """Dead-lettered jobs, newest first, optionally of one error category and one tag.

    A tenant's are on its shard; the whole queue's are merged over the shards (`merge_pages`).
    """

    def keep(job: Job) -> bool:
        return (
            (tenant is None or job.metadata.tenant_id == tenant)
            and (category is None or (job.error is not None and job.error.category is category))
            and (not tag or tag in job.options.tags)
            and bool(job.dead_lettered_at_ms)
        )

    async def fetch(shard: Queue, token: str, size: int) -> Page[Job]:
        return await scan_index(
            shard.redis,
            shard.keys.dlq,
            load=lambda ids: load_jobs(shard, ids),
            keep=keep,
            page_size=size,
            page_token=token,
        )

    if tenant is not None:
        return await fetch(queue.for_tenant(tenant), page_token, page_size)
    return await merge_pages(
        queue,
        fetch,
        position=lambda job: f"{job.dead_lettered_at_ms}|{job.job_id}",
        order=lambda job: (job.dead_lettered_at_ms, job.job_id),
        page_size=page_size,
        page_token=page_token,
    )


async def _requeue(queue: Queue, job_id: str, *, tenant: str | None, priority: Priority, dead_only: bool) -> Job:
    queue = queue.for_job(job_id)
    keys = queue.keys
    outcome, detail = await queue.scripts.requeue(
        keys=[
            keys.job(job_id),
            keys.stream(priority),
            keys.dlq,
            keys.failed,
            keys.completed,
            keys.progress(job_id),
            keys.events,
        ],
        args=[queue.context(lane=priority.value, only_tenant=tenant or "", dead_only=dead_only)],
    )
    if outcome == "missing":
        what = "dead letter" if dead_only else "job"
        raise NotFoundError(f"{what} {job_id!r} not found")
    if outcome == "limited":
        raise queue_limit_error(queue, str(detail))
    if outcome == "conflict":
        raise ConflictError(f"job {job_id!r} is {detail}; only failed, timed-out or cancelled jobs can run again")
    return await get_job(queue, job_id, tenant=tenant)


async def requeue_dead_letter(
    queue: Queue, job_id: str, *, tenant: str | None, priority: Priority | None = None
) -> Job:
    """Run a dead-lettered job again, attempts reset, in the LOW lane unless told otherwise."""
    return await _requeue(queue, job_id, tenant=tenant, priority=priority or Priority.LOW, dead_only=True)


async def retry_job(queue: Queue, job_id: str, *, tenant: str | None, priority: Priority | None = None) -> Job:
    """Run a FAILED, TIMEOUT or CANCELLED job again, attempts reset, in its own lane by default."""
    if priority is None:
        priority = (await get_job(queue, job_id, tenant=tenant)).priority
    return await _requeue(queue, job_id, tenant=tenant, priority=priority, dead_only=False)


async def purge_dead_letters(queue: Queue, *, tenant: str | None, older_than_ms: int = 0) -> int:
    """Drop dead letters older than `older_than_ms` (all when 0); returns how many were dropped.

    The jobs' records stay until retention removes them; they just leave the dead-letter queue.
    """
    cutoff = now_ms() - older_than_ms
    shards = queue.shards if tenant is None else (queue.for_tenant(tenant),)
    return sum([await _purge_shard(shard, tenant=tenant, cutoff=cutoff) for shard in shards])


async def _purge_shard(queue: Queue, *, tenant: str | None, cutoff: int) -> int:
    removed = 0
    token = ""
    while True:
        page = await scan_index(
            queue.redis,
            queue.keys.dlq,
            load=lambda ids: load_jobs(queue, ids),
            keep=lambda job: (tenant is None or job.metadata.tenant_id == tenant) and job.dead_lettered_at_ms <= cutoff,
            page_size=500,
            page_token=token,
        )
        if page.items:
            ids = [job.job_id for job in page.items]
            removed += int(
                await queue.scripts.purge(
                    keys=[queue.keys.dlq, *(queue.keys.job(job_id) for job_id in ids)],
                    args=[queue.context(ids=ids)],
                )
            )
        if not page.next_token:
            return removed
        token = page.next_token
