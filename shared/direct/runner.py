"""Running one direct job to its end on the executors: attempts, retries, the choice of executor.

Each attempt is one Run call on the least busy executor; the executor runs it exactly as a claimed
job (job timeout, retry decision) and streams progress, then the end. An executor that refuses the
call before the run started (`ExecutorRefused`: full, draining or unreachable) is skipped and the
next one tried; when every one refused, the runner waits (backing off, within the job's timeout)
and tries them all again. A run lost mid-way (`ExecutorLost`) is a SYSTEM error, retried as the
job's retry policy allows (`shared.retry`), on whichever executor is least busy then, passing over
the ones that lost this job's earlier attempts while another can take it (an executor stopping
may still answer a call for a moment, then cut that run off too). Cancelling
the runner's task cancels the Run call: the executor then closes the job's browser context. The
calls themselves are `shared.edge.executors`'; nothing here speaks gRPC.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import replace

from shared import retry
from shared.clock import now_ms
from shared.direct.pool import Executor, least_busy
from shared.direct.table import DirectJob, JobTable
from shared.errors import ExecutorLost, ExecutorRefused
from shared.model import ErrorCategory, Job, JobError, JobResult, JobState, RunEnd
from shared.schema import JobField
from shared.settings import QueueSettings

log = logging.getLogger(__name__)


class DirectRunner:
    def __init__(self, executors: Sequence[Executor], table: JobTable, settings: QueueSettings) -> None:
        self._executors = executors
        self._table = table
        self._settings = settings
        self._running: Counter[str] = Counter()  # runs in flight per tenant (SENTINEL_TENANT_MAX_RUNNING)

    def start(self, entry: DirectJob) -> None:
        entry.task = asyncio.create_task(self._run(entry), name=f"direct-{entry.job_id}")

    async def _run(self, entry: DirectJob) -> None:
        job = entry.job
        try:
            if job.scheduled_for_ms:
                await asyncio.sleep(max(job.scheduled_for_ms - now_ms(), 0) / 1000)
            attempt = 1
            lost_on: set[str] = set()  # the executors that lost this job's earlier attempts
            while True:
                end = await self._attempt(entry, attempt, lost_on)
                self._table.update(entry, _ended(entry.job, end))
                if end.state is not JobState.SCHEDULED:
                    return
                await asyncio.sleep(max(end.due_ms - now_ms(), 0) / 1000)
                attempt += 1
        except asyncio.CancelledError:
            raise  # a cancel: the table has marked the job already
        except Exception as exc:  # a bug or a malformed reply: end the job rather than leave it running
            log.exception("direct job %s failed outside its run", job.job_id)
            error = JobError(ErrorCategory.SYSTEM, f"{type(exc).__name__}: {exc}")
            self._table.update(entry, _ended(entry.job, RunEnd(JobState.FAILED, entry.job.progress, error=error)))

    async def _attempt(self, entry: DirectJob, attempt: int, lost_on: set[str]) -> RunEnd:
        job = entry.job
        loop = asyncio.get_running_loop()
        deadline = loop.time() + job.timeout_ms / 1000
        record = {**entry.record, JobField.ATTEMPT: str(attempt), JobField.TRIES: str(attempt)}
        refused: set[str] = set()
        delay = 0.1
        tenant, limit = job.metadata.tenant_id, self._settings.tenant_max_running
        while True:
            held = bool(limit) and self._running[tenant] >= limit
            executor = None if held else least_busy(self._executors, exclude=refused, avoid=lost_on)
            if executor is None:
                if loop.time() + delay > deadline:
                    reason = (
                        f"tenant {tenant!r} had {limit} jobs running (SENTINEL_TENANT_MAX_RUNNING) "
                        if held
                        else "no executor took the job "
                    ) + f"within the job's timeout ({job.timeout_ms} ms)"
                    return _lost(entry.job, attempt, JobError(ErrorCategory.TIMEOUT, reason), self._settings)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)
                refused.clear()
                continue
            try:
                return await self._call(entry, attempt, executor, record)
            except ExecutorRefused as exc:
                log.info("job %s: executor %s refused the run (%s); trying another", job.job_id, executor.address, exc)
                refused.add(executor.address)
            except ExecutorLost as exc:
                log.warning("job %s: %s", job.job_id, exc)
                lost_on.add(executor.address)
                return _lost(entry.job, attempt, JobError(ErrorCategory.SYSTEM, str(exc)), self._settings)

    async def _call(self, entry: DirectJob, attempt: int, executor: Executor, record: dict[str, str]) -> RunEnd:
        started = False
        tenant = entry.job.metadata.tenant_id
        executor.in_flight += 1
        self._running[tenant] += 1
        try:
            async with contextlib.aclosing(executor.run(record, entry.trace)) as updates:
                async for update in updates:
                    if isinstance(update, RunEnd):
                        return update
                    if not started:
                        started = True
                        self._table.update(entry, _running(entry.job, attempt, executor.address))
                    self._table.progress(entry, update)
        finally:
            executor.in_flight -= 1
            self._running[tenant] -= 1
        raise ExecutorLost(f"executor {executor.address} lost the run (no end)")


def _running(job: Job, attempt: int, address: str) -> Job:
    now = now_ms()
    return replace(job, state=JobState.RUNNING, attempt=attempt, tries=attempt, started_at_ms=now, worker_id=address)


def _lost(job: Job, attempt: int, error: JobError, settings: QueueSettings) -> RunEnd:
    """The end of an attempt no executor recorded: retried as the job's policy allows."""
    decision = retry.decide(attempt, error, job.options, settings)
    now = now_ms()
    error = replace(error, retryable=decision.retry)
    progress = replace(job.progress, message=error.message[:1000], updated_at_ms=now)
    if decision.retry:
        return RunEnd(JobState.SCHEDULED, progress, error=error, due_ms=now + decision.delay_ms)
    result = JobResult(success=False, attempt=attempt, total_attempts=job.max_attempts, error=error)
    return RunEnd(JobState.FAILED, progress, result=result, error=error)


def _ended(job: Job, end: RunEnd) -> Job:
    """The job after an attempt's end: finished, or SCHEDULED for its next attempt."""
    return replace(
        job,
        state=end.state,
        progress=end.progress,
        result=end.result or job.result,
        # A completed attempt after a failed one keeps that failure (`Job.flaky`), as the queue does.
        error=end.error if end.error is not None or end.state is not JobState.COMPLETED else job.error,
        finished_at_ms=now_ms() if end.state.terminal else 0,
        scheduled_for_ms=end.due_ms,
        worker_id=end.worker_id or job.worker_id,
    )
