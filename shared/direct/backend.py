"""The jobs backends below the TestExecution servicer: queue, direct, and hybrid (both).

The servicer validates and seals a submit, takes the tenant from the caller, then calls one backend
whatever the mode (SENTINEL_EXECUTION), so auth, tenancy, validation and limits are the same in
every mode:

- `QueueBackend`: today's path through Redis (`shared.jobs`, `shared.progress`).
- `DirectBackend`: the job runs on an executor over its Run call (`DirectRunner`) and lives in the
  API's memory (`JobTable`); no Redis.
- `HybridBackend`: queues while Redis answers and runs directly when it does not (a connection
  error, never a validation or limit error); with QUEUE_LOW_PRIORITY_ONLY only LOW jobs are
  queued. Reads look in memory first, then in Redis, where `WriteBack` records direct jobs.

A submit the direct backend took answers `DirectSubmitted`, which says why the job was not queued
(hybrid mode), so a front door can tell its caller the job runs directly.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, replace
from typing import Protocol

from shared import codec, jobs
from shared.clock import now_ms
from shared.direct.runner import DirectRunner
from shared.direct.table import JobTable
from shared.errors import LimitError
from shared.jobs import Submitted
from shared.model import Job, JobState, Priority, ProgressEvent, SubmitCommand
from shared.paging import Page
from shared.progress import follow_progress
from shared.queue import Queue
from shared.redis_errors import REDIS_UNREACHABLE
from shared.settings import QueueSettings
from shared.shards import new_id, shard_of
from shared.streams import StreamHub
from shared.submits import Submitter

log = logging.getLogger(__name__)

#: Why hybrid mode ran a job directly.
QUEUE_UNREACHABLE = "the queue is unreachable"
#: Why a listing holds only the jobs in the API's memory.
PARTIAL_LISTING = "the queue (Redis) does not answer: only the jobs this API ran directly are listed"
NOT_LOW_PRIORITY = "QUEUE_LOW_PRIORITY_ONLY queues only low-priority tests"


@dataclass(frozen=True)
class DirectSubmitted(Submitted):
    """A submit the direct backend took: the job runs on an executor over its Run call, not queued."""

    reason: str = ""  # why it was not queued (hybrid mode); "" in direct mode, which has no queue


class JobsBackend(Protocol):
    async def submit(self, command: SubmitCommand, *, tenant: str, trace: str) -> Submitted: ...

    async def submit_many(self, commands: list[SubmitCommand], *, tenant: str, trace: str) -> Sequence[Submitted]:
        """Each command's outcome, in order; a job the limits refused has `limited` set."""

    def limit_error(self, tenant: str) -> LimitError:
        """The error of a submit `submit_many` marked `limited`."""

    async def get_job(self, job_id: str, *, tenant: str | None) -> Job: ...

    def follow(self, job_id: str, *, tenant: str | None, cursor: str) -> AsyncIterator[ProgressEvent]: ...

    async def cancel(self, job_id: str, *, tenant: str | None) -> Job: ...

    async def list_jobs(
        self,
        *,
        tenant: str,
        state: JobState | None,
        tag: str,
        page_size: int,
        page_token: str,
        schedule_id: str = "",
    ) -> Page[Job]: ...


class QueueBackend:
    def __init__(self, queue: Queue, hub: StreamHub) -> None:
        self.queue = queue
        self._hub = hub
        # Concurrent submits share script calls (one round trip for those waiting), as a batch does.
        self._submitter = Submitter(queue)

    async def submit(self, command: SubmitCommand, *, tenant: str, trace: str) -> Submitted:
        submitted = await self._submitter.submit(command, tenant=tenant, trace=trace)
        if submitted.limited:
            raise jobs.queue_limit_error(self.queue, tenant)
        return submitted

    async def submit_many(self, commands: list[SubmitCommand], *, tenant: str, trace: str) -> list[Submitted]:
        return await jobs.submit_many(self.queue, commands, tenant=tenant, trace=trace)

    def limit_error(self, tenant: str) -> LimitError:
        return jobs.queue_limit_error(self.queue, tenant)

    async def get_job(self, job_id: str, *, tenant: str | None) -> Job:
        return await jobs.get_job(self.queue, job_id, tenant=tenant)

    def follow(self, job_id: str, *, tenant: str | None, cursor: str) -> AsyncIterator[ProgressEvent]:
        return follow_progress(self.queue, self._hub, job_id, tenant=tenant, cursor=cursor)

    async def cancel(self, job_id: str, *, tenant: str | None) -> Job:
        return await jobs.cancel(self.queue, job_id, tenant=tenant)

    async def list_jobs(
        self,
        *,
        tenant: str,
        state: JobState | None,
        tag: str,
        page_size: int,
        page_token: str,
        schedule_id: str = "",
    ) -> Page[Job]:
        return await jobs.list_jobs(
            self.queue,
            tenant=tenant,
            state=state,
            tag=tag,
            schedule_id=schedule_id,
            page_size=page_size,
            page_token=page_token,
        )


class DirectBackend:
    def __init__(self, table: JobTable, runner: DirectRunner, settings: QueueSettings) -> None:
        self.table = table
        self._runner = runner
        self._settings = settings

    async def submit(self, command: SubmitCommand, *, tenant: str, trace: str) -> DirectSubmitted:
        duplicate = self.table.duplicate_of(tenant, command.options.idempotency_key)
        if duplicate:
            return DirectSubmitted(job_id=duplicate, duplicate=True)
        limit = self._settings.tenant_max_queued
        if limit and self.table.waiting(tenant) >= limit:
            raise jobs.tenant_limit_error(self._settings, tenant)
        # An id of the tenant's shard, so the job is found there once written back (hybrid mode).
        job_id = new_id(shard_of(tenant, self._settings.shards), self._settings.shards)
        record = jobs.new_job_record(self._settings, command, job_id=job_id, tenant=tenant, trace=trace, now=now_ms())
        entry = self.table.add(codec.job_from_hash(record), record, trace)
        self._runner.start(entry)
        return DirectSubmitted(job_id=job_id, duplicate=False)

    async def submit_many(self, commands: list[SubmitCommand], *, tenant: str, trace: str) -> list[DirectSubmitted]:
        done = []
        for command in commands:
            try:
                done.append(await self.submit(command, tenant=tenant, trace=trace))
            except LimitError:
                done.append(DirectSubmitted(job_id="", duplicate=False, limited=True))
        return done

    def limit_error(self, tenant: str) -> LimitError:
        return self.table.full_error() if self.table.full else jobs.tenant_limit_error(self._settings, tenant)

    async def get_job(self, job_id: str, *, tenant: str | None) -> Job:
        return self.table.get(job_id, tenant=tenant).job

    def follow(self, job_id: str, *, tenant: str | None, cursor: str) -> AsyncIterator[ProgressEvent]:
        return self.table.follow(job_id, tenant=tenant, cursor=cursor)

    async def cancel(self, job_id: str, *, tenant: str | None) -> Job:
        return self.table.cancel(job_id, tenant=tenant, now=now_ms()).job

    async def list_jobs(
        self,
        *,
        tenant: str,
        state: JobState | None,
        tag: str,
        page_size: int,
        page_token: str,
        schedule_id: str = "",
    ) -> Page[Job]:
        return self.table.page(
            tenant=tenant, state=state, tag=tag, schedule_id=schedule_id, page_size=page_size, page_token=page_token
        )


class HybridBackend:
    def __init__(self, queued: QueueBackend, direct: DirectBackend, *, low_priority_only: bool = False) -> None:
        self._queued = queued
        self._direct = direct
        self._low_priority_only = low_priority_only

    def _queues(self, command: SubmitCommand) -> bool:
        return not self._low_priority_only or command.options.priority is Priority.LOW

    async def submit(self, command: SubmitCommand, *, tenant: str, trace: str) -> Submitted:
        reason = NOT_LOW_PRIORITY
        if self._queues(command):
            try:
                return await self._queued.submit(command, tenant=tenant, trace=trace)
            except REDIS_UNREACHABLE as exc:  # Redis does not answer (not: it refused the request)
                log.warning("queue unreachable (%s): running the job directly", exc)
                reason = QUEUE_UNREACHABLE
        return replace(await self._direct.submit(command, tenant=tenant, trace=trace), reason=reason)

    async def submit_many(self, commands: list[SubmitCommand], *, tenant: str, trace: str) -> list[Submitted]:
        queued = [c for c in commands if self._queues(c)]
        try:
            answers = iter(await self._queued.submit_many(queued, tenant=tenant, trace=trace))
        except REDIS_UNREACHABLE as exc:
            log.warning("queue unreachable (%s): running %d job(s) directly", exc, len(queued))
            ran = await self._direct.submit_many(commands, tenant=tenant, trace=trace)
            return [
                replace(d, reason=QUEUE_UNREACHABLE if self._queues(c) else NOT_LOW_PRIORITY)
                for c, d in zip(commands, ran, strict=True)
            ]
        done: list[Submitted] = []
        for command in commands:
            if self._queues(command):
                done.append(next(answers))
            else:
                ran = await self._direct.submit_many([command], tenant=tenant, trace=trace)
                done.extend(replace(d, reason=NOT_LOW_PRIORITY) for d in ran)
        return done

    def limit_error(self, tenant: str) -> LimitError:
        return self._queued.limit_error(tenant)

    async def get_job(self, job_id: str, *, tenant: str | None) -> Job:
        entry = self._direct.table.find(job_id, tenant=tenant)
        return entry.job if entry is not None else await self._queued.get_job(job_id, tenant=tenant)

    async def follow(self, job_id: str, *, tenant: str | None, cursor: str) -> AsyncIterator[ProgressEvent]:
        source = self._direct if self._direct.table.find(job_id, tenant=tenant) is not None else self._queued
        async for event in source.follow(job_id, tenant=tenant, cursor=cursor):
            yield event

    async def cancel(self, job_id: str, *, tenant: str | None) -> Job:
        if self._direct.table.find(job_id, tenant=tenant) is not None:
            return await self._direct.cancel(job_id, tenant=tenant)
        return await self._queued.cancel(job_id, tenant=tenant)

    async def list_jobs(
        self,
        *,
        tenant: str,
        state: JobState | None,
        tag: str,
        page_size: int,
        page_token: str,
        schedule_id: str = "",
    ) -> Page[Job]:
        try:
            return await self._queued.list_jobs(
                tenant=tenant, state=state, tag=tag, schedule_id=schedule_id, page_size=page_size, page_token=page_token
            )
        except REDIS_UNREACHABLE as exc:
            log.warning("queue unreachable (%s): listing the direct jobs in memory", exc)
            page = await self._direct.list_jobs(
                tenant=tenant, state=state, tag=tag, schedule_id=schedule_id, page_size=page_size, page_token=page_token
            )
            return replace(page, partial=PARTIAL_LISTING)
