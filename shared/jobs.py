"""Producer-side job operations: submit, look up, list and cancel jobs.

Plain async functions over a `Queue`; no grpc and no protobuf here. Each state change is one
script call (see `shared/scripts/*.lua`); a batch of submits is one pipelined round trip. With
shards (`shared.shards`) a job goes to its tenant's shard and is found by its id's shard.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

from redis.asyncio.client import Pipeline

from shared import codec
from shared.clock import now_ms
from shared.errors import ConflictError, LimitError, NotFoundError
from shared.model import (
    ErrorCategory,
    Job,
    JobError,
    JobMetadata,
    JobState,
    Progress,
    SubmitCommand,
)
from shared.paging import Page, scan_index
from shared.queue import Queue
from shared.schema import JobField
from shared.settings import QueueSettings

#: How long an idempotency key maps to its job.
IDEMPOTENCY_TTL_S = 24 * 3600
#: The error of a job cancelled before it ran.
CANCELLED_WAITING = JobError(ErrorCategory.UNKNOWN, "cancelled before it ran")


@dataclass(frozen=True)
class Submitted:
    job_id: str
    duplicate: bool
    limited: bool = False  # refused: the tenant already has its maximum of queued jobs

    @classmethod
    def from_reply(cls, reply: list[object]) -> Submitted:
        code = int(str(reply[1]))
        return cls(job_id=str(reply[0]), duplicate=code == 1, limited=code == -1)


def queue_limit_error(queue: Queue, tenant: str) -> LimitError:
    return tenant_limit_error(queue.settings, tenant)


def tenant_limit_error(settings: QueueSettings, tenant: str) -> LimitError:
    """The tenant has SENTINEL_TENANT_MAX_QUEUED jobs waiting already (queued, or direct ones not started)."""
    limit = settings.tenant_max_queued
    return LimitError(f"tenant {tenant!r} already has {limit} jobs queued (SENTINEL_TENANT_MAX_QUEUED); try later")


def submit_call(
    queue: Queue,
    command: SubmitCommand,
    *,
    tenant: str,
    trace: str,
    now: int,
    job_id: str = "",
    run_id: str = "",
    held: bool = False,
) -> tuple[list[str], list[str]]:
    """KEYS and ARGV of submit.lua for one command (on the tenant's shard); `held`: a run's job its
    max_parallel holds back. A `job_id` given must be one of the tenant's shard (`Queue.new_id`)."""
    queue = queue.for_tenant(tenant)
    call_keys, members = submit_parts(
        queue, command, tenant=tenant, trace=trace, now=now, job_id=job_id, run_id=run_id, held=held
    )
    return call_keys, [queue.context(**members)]


def submit_parts(
    queue: Queue,
    command: SubmitCommand,
    *,
    tenant: str,
    trace: str,
    now: int,
    job_id: str = "",
    run_id: str = "",
    held: bool = False,
) -> tuple[list[str], dict[str, object]]:
    """The keys and the context members of a submit (submit_job.lua), for a script that submits a job
    as one of its steps (submit.lua, a schedule's fire). The keys are those of the tenant's shard: a
    script submitting a job must be called on that shard (with that shard's context)."""
    queue = queue.for_tenant(tenant)
    options = command.options
    keys = queue.keys
    job_id = job_id or queue.new_id()
    due = now + options.delay_ms if options.delay_ms > 0 else 0
    fields = new_job_record(
        queue.settings, command, job_id=job_id, tenant=tenant, trace=trace, now=now, run_id=run_id, held=held
    )
    idem = options.idempotency_key
    call_keys = [
        keys.job(job_id),
        keys.stream(options.priority),
        keys.delayed,
        keys.idempotency(tenant, idem) if idem else keys.idempotency(tenant, ""),
        keys.tenant_jobs(tenant),
        keys.events,
        keys.progress(job_id),
        *(keys.tenant_tag(tenant, tag) for tag in dict.fromkeys(options.tags)),
    ]
    members: dict[str, object] = {
        "now": now,
        "id": job_id,
        "lane": options.priority.value,
        "tenant": tenant,
        "trace": trace,
        "due": due,
        "idempotency_ttl": IDEMPOTENCY_TTL_S if idem else 0,
        "job": fields,
        "held": held,
    }
    return call_keys, members


def new_job_record(
    settings: QueueSettings,
    command: SubmitCommand,
    *,
    job_id: str,
    tenant: str,
    trace: str,
    now: int,
    run_id: str = "",
    held: bool = False,
) -> dict[str, str]:
    """A new job's record (its hash fields), with the queue's defaults for attempts and timeout.

    Queued jobs store it in Redis; direct ones (`shared.direct`) hand it to an executor as it is."""
    options = command.options
    due = now + options.delay_ms if options.delay_ms > 0 else 0
    return codec.new_job_fields(
        job_id=job_id,
        state=JobState.SCHEDULED if due or held else JobState.PENDING,
        definition=command.definition,
        options=options,
        metadata=JobMetadata(
            tenant_id=tenant,
            user_id=command.user_id,
            request_id=command.request_id,
            source=command.source,
            created_at_ms=now,
            run_id=run_id,
            schedule_id=command.schedule_id,
            fire_time_ms=command.fire_time_ms,
        ),
        max_attempts=options.max_attempts or settings.default_attempts,
        timeout_ms=options.timeout_ms or settings.default_timeout_ms(options.priority),
        scheduled_for_ms=due,
        progress=Progress(total_steps=len(command.definition.steps), message="Queued", updated_at_ms=now),
        trace=trace,
    )


async def submit(queue: Queue, command: SubmitCommand, *, tenant: str, trace: str = "") -> Submitted:
    """Store a validated job and make it runnable (or scheduled) in one atomic step."""
    call_keys, args = submit_call(queue, command, tenant=tenant, trace=trace, now=now_ms())
    submitted = Submitted.from_reply(await queue.scripts.submit(keys=call_keys, args=args))
    if submitted.limited:
        raise queue_limit_error(queue, tenant)
    return submitted


async def submit_many(queue: Queue, commands: list[SubmitCommand], *, tenant: str, trace: str = "") -> list[Submitted]:
    """Submit validated jobs in one pipelined round trip; each job is still atomic on its own."""
    if not commands:
        return []
    now = now_ms()
    await queue.scripts.preload(queue.redis, "submit")
    pipe: Pipeline = queue.redis.pipeline(transaction=False)
    for command in commands:
        call_keys, args = submit_call(queue, command, tenant=tenant, trace=trace, now=now)
        await queue.scripts.submit(keys=call_keys, args=args, client=pipe)
    replies = await pipe.execute()
    return [Submitted.from_reply(r) for r in replies]


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
