"""Runs: the tests of one suite submitted as one, followed as one, with one answer.

`submit_run` stores the run (its hash, its job list, a hash per test with the test's name and
file) and submits every test as a job carrying the run's id, all in one pipelined round trip, so a
run is never half stored. Beyond `max_parallel`, jobs are submitted held back (SCHEDULED, never
due: submit.lua `held`); run.lua, in the same script that ends a job for good, copies the job's
end into its test hash, counts it, releases the next held job and finishes the run when every
test has ended. A run's summary therefore outlives its jobs' retention; finished runs expire
after SENTINEL_RUN_RETENTION_DAYS.

Plain async functions over a `Queue`; no grpc here. Runs are tenant-scoped like jobs: another
tenant's run is `NotFoundError`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from typing import cast

from shared import codec, jobs
from shared.clock import now_ms
from shared.errors import ConflictError, DecodeError, FieldViolation, NotFoundError, ValidationError
from shared.model import (
    ErrorCategory,
    Job,
    JobError,
    JobOptions,
    JobState,
    ProgressEvent,
    Run,
    RunCommand,
    RunState,
    RunTestOutcome,
    RunTestSpec,
    SubmitCommand,
)
from shared.progress import follow_progress
from shared.queue import Queue
from shared.schema import JobField, RunField
from shared.streams import StreamHub
from shared.validation import (
    MAX_ID_CHARS,
    new_definition_violations,
    validate_definition,
    validate_options,
    validate_own_options,
)

__all__ = ["MAX_PARALLEL", "MAX_TESTS", "RunSubmitted", "cancel_run", "follow_run", "get_run", "submit_run"]

#: Most tests in one run, and the largest max_parallel.
MAX_TESTS = 1000
MAX_PARALLEL = 1000
MAX_NAME_CHARS = 200
#: The error of a run's test that never ran because its run was cancelled or refused.
NOT_RUN = JobError(None, "cancelled with its run before it ran")  # no category: nothing failed


@dataclass(frozen=True)
class RunSubmitted:
    run_id: str
    job_ids: tuple[str, ...]
    duplicate: bool = False


def validate_run(command: RunCommand) -> None:
    """Raise `ValidationError` with every problem of a SubmitRun, naming each field."""
    found: list[FieldViolation] = []
    if not command.tests:
        found.append(FieldViolation("tests", "must hold at least one test"))
    if len(command.tests) > MAX_TESTS:
        found.append(FieldViolation("tests", f"at most {MAX_TESTS} tests per run, got {len(command.tests)}"))
    if len(command.name) > MAX_NAME_CHARS:
        found.append(FieldViolation("name", f"at most {MAX_NAME_CHARS} characters, got {len(command.name)}"))
    if command.max_parallel > MAX_PARALLEL:
        found.append(FieldViolation("max_parallel", f"at most {MAX_PARALLEL}, got {command.max_parallel}"))
    for field, value in (("user_id", command.user_id), ("request_id", command.request_id)):
        if len(value) > MAX_ID_CHARS:
            found.append(FieldViolation(field, f"at most {MAX_ID_CHARS} characters, got {len(value)}"))
    # The run's options once, as `options`; each test's own by its own path (`tests[2].options`).
    found += validate_options(command.options, path="options")
    for i, test in enumerate(command.tests[:MAX_TESTS]):
        found += validate_definition(test.definition, path=f"tests[{i}].definition")
        found += new_definition_violations(test.definition, path=f"tests[{i}].definition")
        found += _own_option_violations(command.options, test, path=f"tests[{i}].options")
    if found:
        raise ValidationError(found)


def _own_option_violations(run: JobOptions, test: RunTestSpec, *, path: str) -> list[FieldViolation]:
    """What is wrong with a test's own options, checked before their merge with the run's: a bad
    value of the run's is the run's alone, not every test's."""
    own = test.own_options if test.own_options is not None else test.options
    if own is None:
        return []
    found = validate_own_options(own, run=run, merged=test.options or own, path=path)
    if own.idempotency_key:
        why = "a run's test has none of its own: the run's options carry the run's"
        found.append(FieldViolation(f"{path}.idempotency_key", why))
    return found


def _job_command(command: RunCommand, index: int) -> SubmitCommand:
    # The run's idempotency key is the run's: each job's own would make every test one job.
    test = command.tests[index]
    return SubmitCommand(
        definition=test.definition,
        options=replace(test.options or command.options, idempotency_key=""),
        user_id=command.user_id,
        request_id=command.request_id,
    )


async def submit_run(queue: Queue, command: RunCommand, *, tenant: str, trace: str = "") -> RunSubmitted:
    """Store a validated run and submit its tests, all in one pipelined round trip.

    An idempotency key in the run's options makes a repeated SubmitRun (within 24 h) return the
    first run. Raises `LimitError` when the tenant's queue limit refuses a test (the run is then
    cancelled: none of it runs).
    """
    queue = queue.for_tenant(tenant)  # a run and its jobs live on its tenant's shard
    keys = queue.keys
    run_id = queue.new_id()
    idem = command.options.idempotency_key
    if idem:
        earlier = await queue.redis.set(
            keys.run_idempotency(tenant, idem), run_id, nx=True, get=True, ex=jobs.IDEMPOTENCY_TTL_S
        )
        if earlier:
            run = await get_run(queue, str(earlier), tenant=tenant)
            return RunSubmitted(str(earlier), tuple(t.job_id for t in run.tests), duplicate=True)
    now = now_ms()
    job_ids = [queue.new_id() for _ in command.tests]
    job_commands = [_job_command(command, i) for i in range(len(job_ids))]
    limit = command.max_parallel or len(job_ids)
    await queue.scripts.preload(queue.redis, "submit")
    pipe = queue.redis.pipeline(transaction=False)
    pipe.hset(
        keys.run(run_id),
        mapping={
            RunField.ID: run_id,
            RunField.NAME: command.name,
            RunField.TENANT: tenant,
            RunField.CREATED: now,
            RunField.MAX_PARALLEL: command.max_parallel,
            RunField.TOTAL: len(job_ids),
            RunField.DONE: 0,
            RunField.STATE: "running",
        },
    )
    pipe.rpush(keys.run_jobs(run_id), *job_ids)
    if len(job_ids) > limit:
        pipe.rpush(keys.run_held(run_id), *job_ids[limit:])
    for job_id, test, job_command in zip(job_ids, command.tests, job_commands, strict=True):
        # The job's tags too: they are reported with its end, after the job is gone.
        pipe.hset(
            keys.run_test(run_id, job_id),
            mapping={
                JobField.ID: job_id,
                JobField.NAME: test.definition.name,
                RunField.FILE: test.file,
                JobField.TAGS: codec.dumps(list(job_command.options.tags)),
            },
        )
    for i, (job_id, job_command) in enumerate(zip(job_ids, job_commands, strict=True)):
        call_keys, args = jobs.submit_call(
            queue,
            job_command,
            tenant=tenant,
            trace=trace,
            now=now,
            job_id=job_id,
            run_id=run_id,
            held=i >= limit,
        )
        await queue.scripts.submit(keys=call_keys, args=args, client=pipe)
    replies = await pipe.execute()
    submitted = [jobs.Submitted.from_reply(r) for r in replies[-len(job_ids) :]]
    refused = [job_id for job_id, s in zip(job_ids, submitted, strict=True) if s.limited]
    if refused:
        await _cancel(queue, run_id, tenant=tenant, never_stored=frozenset(refused))
        raise jobs.queue_limit_error(queue, tenant)
    return RunSubmitted(run_id, tuple(job_ids))


async def _run_hash(queue: Queue, run_id: str, tenant: str | None) -> tuple[dict[str, str], list[str]]:
    """The run's hash and its job ids, in one round trip; NotFoundError for another tenant's run."""
    raw: dict[str, str] = {}
    job_ids: list[str] = []
    queue = queue.for_job(run_id)
    if run_id:
        pipe = queue.redis.pipeline(transaction=False)
        pipe.hgetall(queue.keys.run(run_id))
        pipe.lrange(queue.keys.run_jobs(run_id), 0, -1)
        raw, job_ids = await pipe.execute()
    if not raw or (tenant is not None and raw.get(RunField.TENANT) != tenant):
        raise NotFoundError(f"run {run_id!r} not found")
    return raw, job_ids


def _recorded(job_id: str, test: dict[str, str]) -> RunTestOutcome:
    """A test as its run recorded it (its job ended, or is gone)."""
    try:
        result = codec.result_from_json(test[JobField.RESULT]) if test.get(JobField.RESULT) else None
        error = codec.error_from_json(test[JobField.ERROR]) if test.get(JobField.ERROR) else None
    except (DecodeError, ValueError):
        result, error = None, JobError(ErrorCategory.UNKNOWN, "the test's recorded end is unreadable")
    try:
        # A run stored before its tests' tags were kept has none: its tests show no tags.
        tags = tuple(str(tag) for tag in json.loads(test.get(JobField.TAGS) or "[]"))
    except (ValueError, TypeError):
        tags = ()
    return RunTestOutcome(
        job_id=job_id,
        name=test.get(JobField.NAME, ""),
        file=test.get(RunField.FILE, ""),
        state=JobState(test.get(JobField.STATE) or JobState.CANCELLED),
        attempt=int(test.get(JobField.ATTEMPT) or 0),
        started_at_ms=int(test.get(JobField.STARTED) or 0),
        finished_at_ms=int(test.get(JobField.FINISHED) or 0),
        result=result,
        error=error,
        tags=tags,
    )


def _live(job: Job, test: dict[str, str]) -> RunTestOutcome:
    return RunTestOutcome(
        job_id=job.job_id,
        name=job.definition.name,
        file=test.get(RunField.FILE, ""),
        state=job.state,
        attempt=job.attempt,
        started_at_ms=job.started_at_ms,
        finished_at_ms=job.finished_at_ms,
        result=job.result,
        error=job.error,
        tags=job.options.tags,
    )


async def get_run(queue: Queue, run_id: str, *, tenant: str | None) -> Run:
    """The run and every test's state: live from its job while it runs, as recorded once it ended."""
    raw, job_ids = await _run_hash(queue, run_id, tenant)
    queue = queue.for_job(run_id)
    keys = queue.keys
    pipe = queue.redis.pipeline(transaction=False)
    for job_id in job_ids:
        pipe.hgetall(keys.run_test(run_id, job_id))
        pipe.hgetall(keys.job(job_id))
    replies = cast(list[dict[str, str]], await pipe.execute())
    tests = []
    for i, job_id in enumerate(job_ids):
        test, job = replies[2 * i], replies[2 * i + 1]
        ended = test.get(RunField.ENDED) == "1"
        tests.append(_recorded(job_id, test) if ended or not job else _live(codec.job_from_hash(job), test))
    state = raw.get(RunField.STATE, "running")
    if state == "cancelled":
        run_state = RunState.CANCELLED
    elif state == "finished":
        run_state = RunState.PASSED if all(t.state is JobState.COMPLETED for t in tests) else RunState.FAILED
    else:
        run_state = RunState.RUNNING
    return Run(
        run_id=run_id,
        name=raw.get(RunField.NAME, ""),
        tenant_id=raw.get(RunField.TENANT, ""),
        state=run_state,
        created_at_ms=int(raw.get(RunField.CREATED) or 0),
        finished_at_ms=int(raw.get(RunField.FINISHED) or 0),
        max_parallel=int(raw.get(RunField.MAX_PARALLEL) or 0),
        tests=tuple(tests),
    )


async def _cancel(queue: Queue, run_id: str, *, tenant: str | None, never_stored: frozenset[str] = frozenset()) -> None:
    queue = queue.for_job(run_id)
    keys = queue.keys
    # Nothing held back is released from now on; then every test that has not ended is cancelled.
    pipe = queue.redis.pipeline(transaction=True)
    pipe.hset(keys.run(run_id), RunField.STATE, "cancelled")
    pipe.delete(keys.run_held(run_id))
    pipe.lrange(keys.run_jobs(run_id), 0, -1)
    *_, job_ids = await pipe.execute()
    for job_id in cast(list[str], job_ids):
        if job_id in never_stored:
            await _record_not_run(queue, run_id, job_id)
            continue
        with contextlib.suppress(ConflictError, NotFoundError):  # ended already, or gone
            await jobs.cancel(queue, job_id, tenant=tenant)


async def _record_not_run(queue: Queue, run_id: str, job_id: str) -> None:
    """A test whose job was never stored (its submit was refused) ends as cancelled, counted once."""
    queue = queue.for_job(run_id)
    keys = queue.keys
    test = keys.run_test(run_id, job_id)
    if await queue.redis.hsetnx(test, RunField.ENDED, "1"):
        await queue.redis.hset(
            test, mapping={JobField.STATE: JobState.CANCELLED.value, JobField.ERROR: codec.error_to_json(NOT_RUN)}
        )
        await queue.redis.hincrby(keys.run(run_id), RunField.DONE, 1)


async def cancel_run(queue: Queue, run_id: str, *, tenant: str | None) -> Run:
    """Cancel every test of the run that has not ended: waiting ones at once, running ones by their
    executors. Raises `ConflictError` when the run has already finished."""
    raw, _ = await _run_hash(queue, run_id, tenant)
    if raw.get(RunField.STATE) == "finished":
        raise ConflictError(f"run {run_id!r} already finished; only a running run can be cancelled")
    await _cancel(queue, run_id, tenant=tenant)
    return await get_run(queue, run_id, tenant=tenant)


async def follow_run(
    queue: Queue, hub: StreamHub, run_id: str, *, tenant: str | None
) -> AsyncIterator[ProgressEvent | Run]:
    """Every test's progress events (each from its start), as they come, then the run once all ended."""
    run = await get_run(queue, run_id, tenant=tenant)
    # Unbounded: a follower never waits on a slow reader (a run's events are a few dozen a test).
    events: asyncio.Queue[ProgressEvent | None] = asyncio.Queue()

    async def follow(job_id: str) -> None:
        try:
            async for event in follow_progress(queue, hub, job_id, tenant=tenant):
                events.put_nowait(event)
        except NotFoundError:
            pass  # its job is gone (retention); the run's record has its end
        finally:
            events.put_nowait(None)

    tasks = [asyncio.create_task(follow(t.job_id), name=f"run-{run_id}-{t.job_id}") for t in run.tests]
    try:
        open_ = len(tasks)
        while open_:
            event = await events.get()
            if event is None:
                open_ -= 1
            else:
                yield event
        for task in tasks:
            await task  # re-raise what a follower could not get past (a Redis outage, a shutdown)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    yield await get_run(queue, run_id, tenant=tenant)
