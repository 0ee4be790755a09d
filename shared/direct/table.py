"""The API's in-memory table of direct jobs: state, progress events and result, bounded.

A direct job lives only here (and, in hybrid mode, in Redis once written back), so Status,
StreamProgress (replay from a cursor, then live), Cancel and ListJobs read this table. It holds at
most SENTINEL_DIRECT_MAX_JOBS jobs: a new one evicts the oldest finished; when none has finished,
the submit is refused (RESOURCE_EXHAUSTED); `on_evict` hears of each evicted job (its artifacts are
deleted then: `shared.direct.evictions`). A job's progress events are numbered 1, 2, … (its
cursors) and at most `max_events` are kept, the terminal one always. Tenancy is checked as for
queued jobs: another tenant's job is "not found". Nothing here does I/O.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import OrderedDict, deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, replace

from shared.errors import ConflictError, LimitError, NotFoundError, ShuttingDown
from shared.jobs import CANCELLED_WAITING
from shared.model import Job, JobError, JobState, Progress, ProgressEvent
from shared.paging import Page
from shared.progress import check_cursor
from shared.streams import parse_id

#: The error of a job cancelled while it ran on an executor.
CANCELLED_RUNNING = JobError(None, "cancelled by request")  # no category: nothing failed


@dataclass(eq=False)
class DirectJob:
    """One direct job: its current view, its record (the fields an executor decodes), its events."""

    job: Job
    record: dict[str, str]
    trace: str
    seq: int
    max_events: int
    events: deque[ProgressEvent] = field(default_factory=deque)
    task: asyncio.Task[None] | None = None
    written: bool = False  # hybrid: its record is in Redis now
    sent: bool = False  # hybrid: a write-back call carried it (Redis may hold it even if `written` is not set)
    _changed: asyncio.Event = field(default_factory=asyncio.Event)
    _numbers: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    @property
    def job_id(self) -> str:
        return self.job.job_id

    def record_event(self, *, terminal: bool = False) -> ProgressEvent:
        """Append the job's current state and progress as its next event and wake its followers."""
        event = ProgressEvent(
            job_id=self.job_id,
            cursor=str(next(self._numbers)),
            state=self.job.state,
            progress=self.job.progress,
            attempt=self.job.attempt,
            terminal=terminal,
        )
        self.events.append(event)
        while len(self.events) > self.max_events:
            self.events.popleft()
        self._wake()
        return event

    def _wake(self) -> None:
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()


class JobTable:
    def __init__(self, *, max_jobs: int, max_events: int = 1000) -> None:
        self._max_jobs = max_jobs
        self._max_events = max_events
        #: Called with each job the table evicted, right after; it must not block or raise.
        self.on_evict: Callable[[DirectJob], None] | None = None
        self._jobs: dict[str, DirectJob] = {}
        self._finished: OrderedDict[str, None] = OrderedDict()  # oldest finished first
        self._idempotency: dict[tuple[str, str], str] = {}
        self._seq = itertools.count(1)
        self._closed = False

    def __len__(self) -> int:
        return len(self._jobs)

    def entries(self) -> list[DirectJob]:
        return list(self._jobs.values())

    @property
    def full(self) -> bool:
        """Whether a new job would be refused: the table holds its maximum and none has finished."""
        return len(self._jobs) >= self._max_jobs and not self._finished

    def waiting(self, tenant: str) -> int:
        """The tenant's jobs not started yet (PENDING, or SCHEDULED for a delay or a retry)."""
        return sum(
            1
            for e in self._jobs.values()
            if e.job.metadata.tenant_id == tenant and e.job.state in (JobState.PENDING, JobState.SCHEDULED)
        )

    def duplicate_of(self, tenant: str, key: str) -> str:
        """The job id an earlier submit with idempotency key `key` got ("" for none)."""
        return self._idempotency.get((tenant, key), "") if key else ""

    def add(self, job: Job, record: dict[str, str], trace: str) -> DirectJob:
        """Hold a new job (evicting the oldest finished one when full) and record its first event.

        Raises:
            LimitError: the table is full of unfinished jobs.
        """
        if self.full:
            raise self.full_error()
        if len(self._jobs) >= self._max_jobs:
            self._evict(next(iter(self._finished)))
        entry = DirectJob(job=job, record=record, trace=trace, seq=next(self._seq), max_events=self._max_events)
        self._jobs[job.job_id] = entry
        if job.options.idempotency_key:
            self._idempotency[(job.metadata.tenant_id, job.options.idempotency_key)] = job.job_id
        entry.record_event()
        return entry

    def full_error(self) -> LimitError:
        return LimitError(f"the API already runs {len(self._jobs)} direct jobs (SENTINEL_DIRECT_MAX_JOBS); try later")

    def _evict(self, job_id: str) -> None:
        entry = self._jobs.pop(job_id)
        self._finished.pop(job_id, None)
        key = (entry.job.metadata.tenant_id, entry.job.options.idempotency_key)
        if self._idempotency.get(key) == job_id:
            del self._idempotency[key]
        if self.on_evict is not None:
            self.on_evict(entry)

    def find(self, job_id: str, *, tenant: str | None) -> DirectJob | None:
        """The tenant's job with this id (any tenant's for None), or None."""
        entry = self._jobs.get(job_id)
        if entry is None or (tenant is not None and entry.job.metadata.tenant_id != tenant):
            return None
        return entry

    def get(self, job_id: str, *, tenant: str | None) -> DirectJob:
        entry = self.find(job_id, tenant=tenant)
        if entry is None:
            raise NotFoundError(f"job {job_id!r} not found")
        return entry

    def update(self, entry: DirectJob, job: Job) -> None:
        """Set the job's new view and record it as an event (terminal when it finished)."""
        if entry.job.state.terminal:
            return  # a late update (a cancelled run's last report) changes nothing
        entry.job = job
        entry.record_event(terminal=job.state.terminal)
        if job.state.terminal:
            self._finished[job.job_id] = None

    def progress(self, entry: DirectJob, progress: Progress) -> None:
        self.update(entry, replace(entry.job, progress=progress))

    def cancel(self, job_id: str, *, tenant: str | None, now: int) -> DirectJob:
        """Mark a waiting or running job CANCELLED and stop its run task.

        Raises:
            NotFoundError: no such job for this tenant.
            ConflictError: the job already finished.
        """
        entry = self.get(job_id, tenant=tenant)
        job = entry.job
        if job.state.terminal:
            raise ConflictError(
                f"job {job_id!r} already finished ({job.state.value}); only waiting or running jobs can be cancelled"
            )
        if entry.task is not None:
            entry.task.cancel()
        self.update(entry, cancelled(job, now))
        return entry

    def page(
        self,
        *,
        tenant: str,
        state: JobState | None,
        tag: str,
        page_size: int,
        page_token: str,
        schedule_id: str = "",
    ) -> Page[Job]:
        """A page of the tenant's direct jobs, newest first (the token is the last one's number)."""
        before = int(page_token) if page_token.isdigit() else None
        found = [
            e
            for e in sorted(self._jobs.values(), key=lambda e: e.seq, reverse=True)
            if e.job.metadata.tenant_id == tenant
            and (before is None or e.seq < before)
            and (state is None or e.job.state is state)
            and (not tag or tag in e.job.options.tags)
            and (not schedule_id or e.job.metadata.schedule_id == schedule_id)
        ]
        items = found[:page_size]
        token = str(items[-1].seq) if len(found) > page_size else ""
        return Page(items=[e.job for e in items], next_token=token)

    async def follow(self, job_id: str, *, tenant: str | None, cursor: str = "") -> AsyncIterator[ProgressEvent]:
        """The job's events after `cursor`, then live ones, ending after the terminal event.

        Raises:
            NotFoundError: no such job for this tenant.
            ValidationError: a malformed cursor.
            ShuttingDown: the API is stopping; the client should reconnect with its cursor.
        """
        after = parse_id(check_cursor(cursor))[0]
        entry = self.get(job_id, tenant=tenant)
        while True:
            if self._closed:
                raise ShuttingDown
            changed = entry._changed
            for event in list(entry.events):
                number = int(event.cursor)
                if number > after:
                    after = number
                    yield event
                    if event.terminal:
                        return
            await changed.wait()

    def close(self) -> None:
        """End every follower with ShuttingDown (the API is stopping)."""
        self._closed = True
        for entry in self._jobs.values():
            entry._wake()


def cancelled(job: Job, now: int) -> Job:
    """The job as its cancel leaves it."""
    running = job.state is JobState.RUNNING
    return replace(
        job,
        state=JobState.CANCELLED,
        finished_at_ms=now,
        error=CANCELLED_RUNNING if running else CANCELLED_WAITING,
        progress=replace(job.progress, message="Cancelled", updated_at_ms=now),
    )
