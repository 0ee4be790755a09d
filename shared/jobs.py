"""Producer-side job operations: submit, look up, list and cancel jobs.

Plain async functions over a `Queue`; no grpc and no protobuf here. Each state change is one
script call (see `shared/scripts/*.lua`); a batch of submits is one pipelined round trip (how new
jobs are written is `shared.submits`). With
shards (`shared.shards`) a job goes to its tenant's shard and is found by its id's shard.
"""

from __future__ import annotations

from typing import cast

from shared import codec
from shared.clock import now_ms
from shared.errors import ConflictError, LimitError, NotFoundError
from shared.model import Job, JobError, JobState, SubmitCommand
from shared.paging import Page, scan_index
from shared.queue import Queue
from shared.schema import JobField
from shared.settings import QueueSettings
from shared.submits import IDEMPOTENCY_TTL_S as IDEMPOTENCY_TTL_S
from shared.submits import NewJob, submit_each
from shared.submits import Submitted as Submitted
from shared.submits import new_job_record as new_job_record
from shared.submits import submit_call as submit_call
from shared.submits import submit_parts as submit_parts

#: The error of a job cancelled before it ran.
CANCELLED_WAITING = JobError(None, "cancelled before it ran")  # no category: nothing failed


def queue_limit_error(queue: Queue, tenant: str) -> LimitError:
    return tenant_limit_error(queue.settings, tenant)


def tenant_limit_error(settings: QueueSettings, tenant: str) -> LimitError:
    """The tenant has SENTINEL_TENANT_MAX_QUEUED jobs waiting already (queued, or direct ones not started)."""
    limit = settings.tenant_max_queued
    return LimitError(f"tenant {tenant!r} already has {limit} jobs queued (SENTINEL_TENANT_MAX_QUEUED); try later")


async def submit(queue: Queue, command: SubmitCommand, *, tenant: str, trace: str = "") -> Submitted:
    """Store a validated job and make it runnable (or scheduled) in one atomic step."""
    call_keys, args = submit_call(queue, command, tenant=tenant, trace=trace, now=now_ms())
    submitted = Submitted.from_reply(await queue.scripts.submit(keys=call_keys, args=args))
    if submitted.limited:
        raise queue_limit_error(queue, tenant)
    return submitted


async def submit_many(queue: Queue, commands: list[SubmitCommand], *, tenant: str, trace: str = "") -> list[Submitted]:
    """Submit validated jobs of one tenant in one pipelined round trip (`shared.submits.submit_each`);
    each job is atomic, and a job the tenant's queued-job limit refused is `limited`."""
    return await submit_each(queue, [NewJob(command, tenant, trace) for command in commands])


async def get_job(queue: Queue, job_id: str, *, tenant: str | None) -> Job:
    """The job with `job_id`; NotFoundError when it does not exist or is another tenant's."""
    queue = queue.for_job(job_id)
    raw = cast(dict[str, str], await queue.redis.hgetall(queue.keys.job(job_id))) if job_id else {}
    return job_of(raw, job_id, tenant=tenant)


def job_of(raw: dict[str, str], job_id: str, *, tenant: str | None) -> Job:
    """The job decoded from its hash `raw` (empty: none); NotFoundError when none or another tenant's."""
    if not raw or (tenant is not None and raw.get(JobField.TENANT) != tenant):
        raise NotFoundError(f"job {job_id!r} not found")
    return codec.job_from_hash(raw)


async def load_jobs(queue: Queue, job_ids: list[str]) -> list[Job | None]:
    """The jobs with these ids, in order, in one round trip (None where a job no longer exists)."""
    pipe = queue.redis.pipeline(transaction=False)
    for job_id in job_ids:
        pipe.hgetall(queue.for_job(job_id).keys.job(job_id))
    hashes = cast(list[dict[str, str]], await pipe.execute())
    return [codec.job_from_hash(raw) if raw else None for raw in hashes]


async def list_jobs(
    queue: Queue,
    *,
    tenant: str,
    state: JobState | None = None,
    tag: str = "",
    schedule_id: str = "",
    page_size: int = 50,
    page_token: str = "",
) -> Page[Job]:
    """A page of the tenant's jobs, newest first, optionally of one state, one tag and one schedule
    (the indexes of the tenant's shard, where its jobs and schedules are)."""
    queue = queue.for_tenant(tenant)
    keys = queue.keys
    if schedule_id:
        index = keys.schedule_jobs(schedule_id)
    else:
        index = keys.tenant_tag(tenant, tag) if tag else keys.tenant_jobs(tenant)

    def keep(job: Job) -> bool:
        if state is not None and job.state is not state:
            return False
        # A schedule's index holds one tenant's jobs; checked all the same.
        return not schedule_id or (job.metadata.tenant_id == tenant and (not tag or tag in job.options.tags))

    return await scan_index(
        queue.redis,
        index,
        load=lambda ids: load_jobs(queue, ids),
        keep=keep,
        page_size=page_size,
        page_token=page_token,
    )


async def cancel(queue: Queue, job_id: str, *, tenant: str | None) -> Job:
    """Cancel a job: waiting → CANCELLED now; running → its executor is told to stop it.

    Raises:
        NotFoundError: no such job for this tenant.
        ConflictError: the job already finished.
    """
    queue = queue.for_job(job_id)
    keys = queue.keys
    outcome, state = await queue.scripts.cancel(
        keys=[keys.job(job_id), keys.delayed, keys.progress(job_id), keys.events, keys.failed, *keys.lanes],
        args=[
            queue.context(only_tenant=tenant or "", error=codec.error_to_json(CANCELLED_WAITING), control=keys.control)
        ],
    )
    if outcome == "missing":
        raise NotFoundError(f"job {job_id!r} not found")
    if outcome == "finished":
        raise ConflictError(f"job {job_id!r} already finished ({state}); only waiting or running jobs can be cancelled")
    return await get_job(queue, job_id, tenant=tenant)
