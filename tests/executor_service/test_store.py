"""The executor's queue operations (claim, progress, finish, promote) against a real redis-server."""

from __future__ import annotations

import asyncio
import dataclasses
import gc
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, cast

import pytest
import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError

from executor_service import ledger as ledger_module
from executor_service import recorder as recorder_module
from executor_service import store as store_module
from executor_service.ledger import QueueLedger
from executor_service.recorder import Recorder
from executor_service.store import (
    Claim,
    Reclaimed,
    Write,
    check_progress,
    claim,
    end_write,
    finish,
    heartbeat,
    next_due_ms,
    progress_write,
    promote_due,
    reclaim,
    record,
    release,
    write_progress,
)
from shared import codec, jobs, runs
from shared.clock import now_ms
from shared.errors import CancelRequested, LeaseLost
from shared.keys import GROUP
from shared.model import (
    Click,
    ErrorCategory,
    JobError,
    JobOptions,
    JobResult,
    JobState,
    Navigate,
    Priority,
    Progress,
    RunCommand,
    RunEnd,
    RunTestSpec,
    Step,
    StepResult,
    SubmitCommand,
    TestDefinition,
)
from shared.queue import Queue
from shared.settings import QueueSettings
from shared.streams import Entry
from tests.support import start_redis, wait_for

TENANT = "default"
CONSUMER = "consumer-1"
WORKER = "worker-1"


def command(*, priority: Priority = Priority.MEDIUM, delay_ms: int = 0, name: str = "t") -> SubmitCommand:
    definition = TestDefinition(
        name=name,
        steps=(Step(Navigate(url="http://example.test/")), Step(Click(selector="#go"))),
    )
    return SubmitCommand(definition=definition, options=JobOptions(priority=priority, delay_ms=delay_ms))


@pytest.fixture
async def queue(redis_client: aioredis.Redis) -> AsyncIterator[Queue]:
    q = Queue.open(redis_client, QueueSettings())
    await q.ensure_groups()
    yield q


async def submit(queue: Queue, *, priority: Priority = Priority.MEDIUM, delay_ms: int = 0) -> str:
    submitted = await jobs.submit(queue, command(priority=priority, delay_ms=delay_ms), tenant=TENANT)
    assert not submitted.duplicate
    return submitted.job_id


async def claim_one(queue: Queue) -> Claim:
    batch = await claim(queue, consumer=CONSUMER, worker_id=WORKER, count=1)
    assert len(batch.claims) == 1, batch
    return batch.claims[0]


async def job_hash(queue: Queue, job_id: str) -> dict[str, str]:
    return cast(dict[str, str], await queue.redis.hgetall(queue.keys.job(job_id)))


async def pending_count(queue: Queue, lane: Priority) -> int:
    info = await queue.redis.xpending(queue.keys.stream(lane), GROUP)
    return int(info["pending"])


async def entries(queue: Queue, key: str) -> list[Entry]:
    return cast(list[Entry], await queue.redis.xrange(key))


async def lane_job_ids(queue: Queue, lane: Priority) -> list[str]:
    return [fields["job"] for _, fields in await entries(queue, queue.keys.stream(lane))]


async def last_progress(queue: Queue, job_id: str) -> dict[str, str]:
    """The fields of the newest entry of the job's progress stream."""
    rows = cast(list[Entry], await queue.redis.xrevrange(queue.keys.progress(job_id), count=1))
    return rows[0][1]


def progress(pct: int, message: str = "working") -> Progress:
    return Progress(percentage=pct, current_step=1, total_steps=2, message=message, updated_at_ms=now_ms())


# --- claim -----------------------------------------------------------------------------------


async def test_claim_reads_high_before_medium_before_low(queue: Queue) -> None:
    low1 = await submit(queue, priority=Priority.LOW)
    low2 = await submit(queue, priority=Priority.LOW)
    high = await submit(queue, priority=Priority.HIGH)
    medium = await submit(queue, priority=Priority.MEDIUM)

    order = [await claim_one(queue) for _ in range(4)]

    assert [c.job_id for c in order] == [high, medium, low1, low2]
    assert [c.lane for c in order] == [Priority.HIGH, Priority.MEDIUM, Priority.LOW, Priority.LOW]
    for c in order:
        assert c.job.state is JobState.RUNNING
        assert c.job.attempt == 1
        assert c.job.worker_id == WORKER
        assert c.fence == "1"
    empty = await claim(queue, consumer=CONSUMER, worker_id=WORKER, count=1)
    assert empty.claims == []


async def test_claim_many_at_once_keeps_lane_order(queue: Queue) -> None:
    low = await submit(queue, priority=Priority.LOW)
    high = await submit(queue, priority=Priority.HIGH)
    batch = await claim(queue, consumer=CONSUMER, worker_id=WORKER, count=10)
    assert [c.job_id for c in batch.claims] == [high, low]
    # Fewer than asked for: every lane was read to its end, so the executor can block from there
    # without claiming again first.
    newest = {c.job_id: c.entry_id for c in batch.claims}
    assert batch.last_ids == {
        queue.keys.stream(Priority.HIGH): newest[high],
        queue.keys.stream(Priority.MEDIUM): "0-0",
        queue.keys.stream(Priority.LOW): newest[low],
    }


async def test_a_claim_that_gets_all_it_asked_for_has_nothing_to_block_from(queue: Queue) -> None:
    await submit(queue, priority=Priority.LOW)
    first = await submit(queue, priority=Priority.HIGH)
    batch = await claim(queue, consumer=CONSUMER, worker_id=WORKER, count=1)
    assert [c.job_id for c in batch.claims] == [first]
    assert batch.last_ids == {}  # more may wait: the executor claims again


async def test_claim_with_nothing_waiting_returns_last_ids_to_block_from(queue: Queue, redis_server: Any) -> None:
    # One entry already delivered and finished, so the lanes are not all at 0-0.
    await submit(queue, priority=Priority.HIGH)
    await claim_one(queue)

    idle = await claim(queue, consumer=CONSUMER, worker_id=WORKER, count=5)
    assert idle.claims == []
    assert set(idle.last_ids) == set(queue.keys.lanes)
    assert not idle.paused

    watcher = aioredis.Redis.from_url(redis_server.url, decode_responses=True)
    try:
        streams = cast(dict[Any, Any], idle.last_ids)
        read = asyncio.create_task(xread(watcher, streams, block_ms=10_000))

        async def blocked() -> bool:
            info = await queue.redis.info("clients")
            return int(info["blocked_clients"]) >= 1

        await wait_for(blocked, within=10, what="the XREAD to block")
        job_id = await submit(queue, priority=Priority.LOW)
        reply = await asyncio.wait_for(read, timeout=10)
    finally:
        await watcher.aclose()

    assert [key for key, _ in reply] == [queue.keys.stream(Priority.LOW)]
    entries = reply[0][1]
    assert [fields["job"] for _, fields in entries] == [job_id]
    # The woken executor then claims exactly that entry.
    assert (await claim_one(queue)).job_id == job_id


async def xread(client: aioredis.Redis, streams: dict[Any, Any], *, block_ms: int) -> list[tuple[str, list[Entry]]]:
    return cast(list[tuple[str, list[Entry]]], await client.xread(streams, block=block_ms, count=10))


async def test_last_ids_miss_nothing_submitted_before_the_block(queue: Queue) -> None:
    idle = await claim(queue, consumer=CONSUMER, worker_id=WORKER, count=1)
    assert idle.last_ids == dict.fromkeys(queue.keys.lanes, "0-0")
    job_id = await submit(queue, priority=Priority.MEDIUM)  # lands between claim and XREAD
    reply = await xread(queue.redis, cast(dict[Any, Any], idle.last_ids), block_ms=1000)
    assert [fields["job"] for _, entries in reply for _, fields in entries] == [job_id]


async def test_paused_queue_claims_nothing(queue: Queue) -> None:
    job_id = await submit(queue, priority=Priority.HIGH)
    await queue.redis.set(queue.keys.paused, "1")

    batch = await claim(queue, consumer=CONSUMER, worker_id=WORKER, count=5)

    assert batch.claims == []
    assert batch.paused
    assert (await job_hash(queue, job_id))["state"] == "pending"
    assert await queue.redis.xlen(queue.keys.stream(Priority.HIGH)) == 1
    assert await pending_count(queue, Priority.HIGH) == 0

    await queue.redis.delete(queue.keys.paused)
    assert (await claim_one(queue)).job_id == job_id


async def test_claim_drops_entries_of_jobs_no_longer_waiting(queue: Queue) -> None:
    cancelled = await submit(queue)
    kept = await submit(queue)
    await jobs.cancel(queue, cancelled, tenant=TENANT)

    batch = await claim(queue, consumer=CONSUMER, worker_id=WORKER, count=1)

    assert [c.job_id for c in batch.claims] == [kept]
    assert (await job_hash(queue, cancelled))["state"] == "cancelled"
    assert await lane_job_ids(queue, Priority.MEDIUM) == [kept]


# --- fencing ---------------------------------------------------------------------------------


async def test_finish_with_a_stale_fence_changes_nothing(queue: Queue) -> None:
    job_id = await submit(queue)
    run = await claim_one(queue)
    await queue.redis.hincrby(queue.keys.job(job_id), "fence", 1)  # another executor took it over
    before = await job_hash(queue, job_id)
    progress_len = await queue.redis.xlen(queue.keys.progress(job_id))

    done = await finish(queue, run, state=JobState.COMPLETED, progress=progress(100, "Completed"))

    assert done is False
    assert await job_hash(queue, job_id) == before
    assert await queue.redis.xlen(queue.keys.stream(Priority.MEDIUM)) == 1
    assert await pending_count(queue, Priority.MEDIUM) == 1
    assert await queue.redis.zcard(queue.keys.completed) == 0
    assert await queue.redis.xlen(queue.keys.progress(job_id)) == progress_len


async def test_write_progress_with_a_stale_fence_raises_lease_lost(queue: Queue) -> None:
    job_id = await submit(queue)
    run = await claim_one(queue)
    await write_progress(queue, run, progress(10))  # still ours
    await queue.redis.hincrby(queue.keys.job(job_id), "fence", 1)
    progress_len = await queue.redis.xlen(queue.keys.progress(job_id))

    with pytest.raises(LeaseLost):
        await write_progress(queue, run, progress(50))

    assert (await job_hash(queue, job_id))["pct"] == "10"
    assert await queue.redis.xlen(queue.keys.progress(job_id)) == progress_len


async def test_write_progress_records_the_progress(queue: Queue) -> None:
    job_id = await submit(queue)
    run = await claim_one(queue)
    await write_progress(queue, run, progress(40, "step one"))
    raw = await job_hash(queue, job_id)
    assert (raw["pct"], raw["cur"], raw["total"], raw["msg"]) == ("40", "1", "2", "step one")
    last = await last_progress(queue, job_id)
    assert last["state"] == "running"
    assert last["pct"] == "40"
    assert last["attempt"] == "1"


# --- finish ----------------------------------------------------------------------------------


async def test_completed_finish_acks_deletes_records_and_retains(queue: Queue) -> None:
    job_id = await submit(queue, priority=Priority.HIGH)
    run = await claim_one(queue)
    assert await pending_count(queue, Priority.HIGH) == 1
    result = JobResult(
        success=True,
        steps=(StepResult(index=0, name="navigate", success=True, duration_ms=5),),
        execution_time_ms=12,
        worker_id=WORKER,
        attempt=1,
        total_attempts=3,
    )

    done = await finish(
        queue,
        run,
        state=JobState.COMPLETED,
        progress=Progress(percentage=100, current_step=2, total_steps=2, message="Completed"),
        result=result,
        execution_ms=12,
    )

    assert done is True
    lane = queue.keys.stream(Priority.HIGH)
    assert await pending_count(queue, Priority.HIGH) == 0
    assert await queue.redis.xlen(lane) == 0
    raw = await job_hash(queue, job_id)
    job = codec.job_from_hash(raw)
    assert job.state is JobState.COMPLETED
    assert job.result == result
    assert job.finished_at_ms > 0
    assert await queue.redis.zscore(queue.keys.completed, job_id) is not None
    assert await queue.redis.zcard(queue.keys.failed) == 0
    last = await last_progress(queue, job_id)
    assert last["state"] == "completed"
    assert last["terminal"] == "1"
    # A second finish of the same run (a duplicate delivery) is refused, and so is late progress.
    assert await finish(queue, run, state=JobState.FAILED, progress=progress(100)) is False
    with pytest.raises(LeaseLost):
        await write_progress(queue, run, progress(100))
    assert (await job_hash(queue, job_id))["state"] == "completed"


async def test_a_job_that_passes_on_retry_keeps_its_failed_attempts_error(queue: Queue) -> None:
    """What a client calls flaky (`Job.flaky`): completed on attempt 2, with attempt 1's error."""
    job_id = await submit(queue)
    first = await claim_one(queue)
    failed = JobError(ErrorCategory.ASSERTION, "expected '#s' to contain 'good', got 'bad'", step_index=1)
    assert await finish(queue, first, state=JobState.SCHEDULED, progress=progress(50), error=failed, due_ms=now_ms())
    assert await promote_due(queue) == 1
    second = await claim_one(queue)
    assert await finish(queue, second, state=JobState.COMPLETED, progress=progress(100))

    job = await jobs.get_job(queue, job_id, tenant=None)
    assert (job.state, job.attempt, job.error) == (JobState.COMPLETED, 2, failed)


async def test_scheduled_finish_waits_in_delayed_until_promoted(queue: Queue) -> None:
    job_id = await submit(queue, priority=Priority.LOW)
    run = await claim_one(queue)
    due = now_ms()

    done = await finish(queue, run, state=JobState.SCHEDULED, progress=progress(50, "retrying"), due_ms=due)

    assert done is True
    lane = queue.keys.stream(Priority.LOW)
    assert await queue.redis.xlen(lane) == 0
    assert await pending_count(queue, Priority.LOW) == 0
    assert await queue.redis.zscore(queue.keys.delayed, job_id) == due
    raw = await job_hash(queue, job_id)
    assert raw["state"] == "scheduled"
    assert "finished" not in raw
    last = await last_progress(queue, job_id)
    assert last["terminal"] == "0"

    assert await promote_due(queue) == 1

    assert await queue.redis.zcard(queue.keys.delayed) == 0
    assert (await job_hash(queue, job_id))["state"] == "pending"
    assert await lane_job_ids(queue, Priority.LOW) == [job_id]
    again = await claim_one(queue)
    assert again.job_id == job_id
    assert again.job.attempt == 2
    assert again.fence == "2"
    assert await promote_due(queue) == 0


async def test_submit_with_delay_is_scheduled_then_promoted(queue: Queue) -> None:
    job_id = await submit(queue, priority=Priority.HIGH, delay_ms=200)

    raw = await job_hash(queue, job_id)
    assert raw["state"] == "scheduled"
    due = await queue.redis.zscore(queue.keys.delayed, job_id)
    assert due is not None and int(due) == int(raw["due"]) > 0
    assert await queue.redis.xlen(queue.keys.stream(Priority.HIGH)) == 0
    assert (await claim(queue, consumer=CONSUMER, worker_id=WORKER, count=1)).claims == []
    if now_ms() < due:
        assert await promote_due(queue) == 0  # not due yet

    await wait_for(lambda: promote_due(queue), within=10, what="the delayed job to be promoted")

    assert (await job_hash(queue, job_id))["state"] == "pending"
    assert await queue.redis.zcard(queue.keys.delayed) == 0
    assert (await claim_one(queue)).job_id == job_id


# --- cancel ----------------------------------------------------------------------------------


async def test_cancel_of_a_running_job_makes_write_progress_raise(queue: Queue) -> None:
    job_id = await submit(queue)
    run = await claim_one(queue)
    pubsub = queue.redis.pubsub()
    try:
        await pubsub.subscribe(queue.keys.control)
        job = await jobs.cancel(queue, job_id, tenant=TENANT)
        assert job.state is JobState.RUNNING  # it is running: the executor is told to stop it

        async def control_message() -> dict[str, Any] | None:
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.1)
            return cast(dict[str, Any] | None, message)

        message = await wait_for(control_message, within=10, what="the cancel on the control channel")
        assert message["data"] == f"cancel {job_id}"
    finally:
        await pubsub.aclose()

    with pytest.raises(CancelRequested):
        await write_progress(queue, run, progress(20))

    assert await finish(queue, run, state=JobState.CANCELLED, progress=progress(20, "Cancelled")) is True
    assert (await job_hash(queue, job_id))["state"] == "cancelled"
    assert await queue.redis.zscore(queue.keys.failed, job_id) is not None
    assert await queue.redis.xlen(queue.keys.stream(Priority.MEDIUM)) == 0


# --- leases: heartbeat, reclaim, release ------------------------------------------------------


#: The lease tests' lease. A check that must find a lease still held comes within HELD_S of the claim or
#: heartbeat (a tenth of the lease: a stall of 0.9 s is ridden out); a wait for a lease to run out sleeps
#: EXPIRED_S, past the lease, and cannot race it (a sleep never ends early; Redis counts the idle time).
LEASE_MS = 1000
HELD_S = LEASE_MS / 1000 / 10
EXPIRED_S = LEASE_MS / 1000 * 1.25


async def short_lease_queue(redis_client: aioredis.Redis, **overrides: Any) -> Queue:
    q = Queue.open(redis_client, QueueSettings(lease_ms=LEASE_MS, **overrides))
    await q.ensure_groups()
    return q


async def test_an_expired_lease_is_reclaimed_with_a_new_fence_and_the_old_run_is_fenced_off(
    redis_client: aioredis.Redis,
) -> None:
    queue = await short_lease_queue(redis_client, max_stalled_count=5)
    job_id = await submit(queue)
    dead = await claim_one(queue)
    assert await reclaim(queue, consumer="other", worker_id="other", count=5) == Reclaimed([], 0, [])
    await asyncio.sleep(EXPIRED_S)  # let the lease run out: no heartbeat comes

    found = await reclaim(queue, consumer="other", worker_id="other", count=5)
    assert [c.job_id for c in found.claims] == [job_id]
    taken = found.claims[0]
    assert taken.fence != dead.fence and taken.job.worker_id == "other"
    # The same attempt run again (a take-over is bounded by the stalled count), a new run.
    assert (taken.job.attempt, taken.job.tries, taken.job.runs) == (1, 2, 2)
    assert not await finish(queue, dead, state=JobState.COMPLETED, progress=Progress(percentage=100))
    with pytest.raises(LeaseLost):
        await write_progress(queue, dead, Progress(percentage=50))
    assert await finish(queue, taken, state=JobState.COMPLETED, progress=Progress(percentage=100))
    assert (await job_hash(queue, job_id))["state"] == "completed"


async def test_a_heartbeat_keeps_the_lease_and_reports_runs_it_lost(redis_client: aioredis.Redis) -> None:
    queue = await short_lease_queue(redis_client)
    job_id = await submit(queue)
    held = await claim_one(queue)
    for _ in range(12):  # twelve heartbeats over more than a lease
        await asyncio.sleep(HELD_S)
        assert await heartbeat(queue, consumer=CONSUMER, claims=[held]) == []
    await asyncio.sleep(HELD_S)
    assert (await reclaim(queue, consumer="other", worker_id="other", count=5)).claims == []
    await redis_client.hincrby(queue.keys.job(job_id), "fence", 1)  # someone else took it
    assert await heartbeat(queue, consumer=CONSUMER, claims=[held]) == [job_id]


async def test_a_job_stalling_too_often_fails_and_is_dead_lettered(redis_client: aioredis.Redis) -> None:
    queue = await short_lease_queue(redis_client, max_stalled_count=1)
    job_id = await submit(queue)
    await claim_one(queue)
    await asyncio.sleep(EXPIRED_S)
    first = await reclaim(queue, consumer="b", worker_id="b", count=5)
    assert [c.job_id for c in first.claims] == [job_id]
    await asyncio.sleep(EXPIRED_S)
    second = await reclaim(queue, consumer="c", worker_id="c", count=5)
    assert second.claims == [] and second.stalled == [job_id]
    raw = await job_hash(queue, job_id)
    assert raw["state"] == "failed" and raw["dlq_reason"] == "stalled"
    assert await redis_client.zscore(queue.keys.dlq, job_id) is not None
    assert await redis_client.xlen(queue.keys.stream(Priority.MEDIUM)) == 0
    assert await pending_count(queue, Priority.MEDIUM) == 0


async def test_a_cancelled_job_whose_executor_stopped_ends_cancelled_with_no_error_category(
    redis_client: aioredis.Redis,
) -> None:
    queue = await short_lease_queue(redis_client)
    job_id = await submit(queue)
    await claim_one(queue)
    await jobs.cancel(queue, job_id, tenant=TENANT)  # running: flagged, its executor never answers
    await asyncio.sleep(EXPIRED_S)

    found = await reclaim(queue, consumer="other", worker_id="other", count=5)

    assert found.claims == [] and found.stalled == []
    raw = await job_hash(queue, job_id)
    assert raw["state"] == "cancelled"
    # Nothing failed: no category (SYSTEM or UNKNOWN would send a reader looking for a fault).
    assert codec.error_from_json(raw["error"]) == JobError(None, "Cancelled (its executor stopped)")


async def test_reclaim_reports_pending_ids_whose_entries_were_deleted(redis_client: aioredis.Redis) -> None:
    queue = await short_lease_queue(redis_client)
    await submit(queue)
    held = await claim_one(queue)
    await redis_client.xdel(queue.keys.stream(held.lane), held.entry_id)  # gone, but still pending
    await asyncio.sleep(EXPIRED_S)
    found = await reclaim(queue, consumer="other", worker_id="other", count=5)
    assert found.claims == [] and found.deleted == 1
    assert await pending_count(queue, held.lane) == 0


async def test_release_hands_a_running_job_back_at_once(redis_client: aioredis.Redis) -> None:
    queue = await short_lease_queue(redis_client)
    job_id = await submit(queue)
    held = await claim_one(queue)
    assert await release(queue, held, reason="shutting down")
    raw = await job_hash(queue, job_id)
    assert raw["state"] == "pending" and raw["attempt"] == "0"
    again = await claim(queue, consumer="other", worker_id="other", count=1)
    assert [c.job_id for c in again.claims] == [job_id] and again.claims[0].job.attempt == 1
    assert not await finish(queue, held, state=JobState.COMPLETED, progress=Progress())
    assert not await release(queue, held, reason="twice")


async def test_a_run_test_that_stalls_too_often_ends_in_its_run_and_lets_the_next_one_in(
    redis_client: aioredis.Redis,
) -> None:
    queue = await short_lease_queue(redis_client, max_stalled_count=0)
    definition = TestDefinition(name="t", steps=(Step(Navigate("https://example.test/")),))
    command = RunCommand(
        name="r", tests=(RunTestSpec(definition), RunTestSpec(definition)), options=JobOptions(), max_parallel=1
    )
    submitted = await runs.submit_run(queue, command, tenant="default")
    first = await claim_one(queue)
    await asyncio.sleep(EXPIRED_S)  # its executor died: no heartbeat

    found = await reclaim(queue, consumer="b", worker_id="b", count=5)

    assert found.stalled == [first.job_id]
    run = await runs.get_run(queue, submitted.run_id, tenant="default")
    assert [t.state for t in run.tests] == [JobState.FAILED, JobState.SCHEDULED]
    assert await promote_due(queue) == 1, "the stalled test's end released the next one"


async def test_a_job_held_back_by_its_run_is_never_the_next_one_due(redis_client: aioredis.Redis) -> None:
    queue = await short_lease_queue(redis_client)
    definition = TestDefinition(name="t", steps=(Step(Navigate("https://example.test/")),))
    command = RunCommand(name="r", tests=(RunTestSpec(definition),) * 2, options=JobOptions(), max_parallel=1)
    await runs.submit_run(queue, command, tenant="default")
    assert await next_due_ms(queue) is None, "only the held job is in the delayed set, and it is never due"
    later = now_ms() + 60_000
    await jobs.submit(queue, SubmitCommand(definition, JobOptions(delay_ms=60_000)), tenant="default")
    due = await next_due_ms(queue)
    assert due is not None and due >= later - 1000


# --- several runs' writes in one call (record.lua, executor_service/recorder.py) -------------


async def test_one_call_ends_each_run_under_its_own_fence(queue: Queue) -> None:
    ids = [await submit(queue) for _ in range(3)]
    runs_ = (await claim(queue, consumer=CONSUMER, worker_id=WORKER, count=3)).claims
    assert [c.job_id for c in runs_] == ids
    stale = runs_[1]
    await queue.redis.hincrby(queue.keys.job(stale.job_id), "fence", 1)  # another executor took it over
    before = await job_hash(queue, stale.job_id)
    done = Progress(percentage=100, current_step=2, total_steps=2, message="Complete", updated_at_ms=now_ms())

    deletes = await command_calls(queue, "xdel")
    statuses = await record(queue, [end_write(c, state=JobState.COMPLETED, progress=done) for c in runs_])

    assert statuses == [1, 0, 1]
    assert await command_calls(queue, "xdel") == deletes + 1  # the lane's two entries, deleted together
    assert await queue.redis.xlen(queue.keys.stream(Priority.MEDIUM)) == 1  # the fenced-off run's is left
    assert await job_hash(queue, stale.job_id) == before  # fenced off: nothing changed
    for c in (runs_[0], runs_[2]):
        assert (await job_hash(queue, c.job_id))["state"] == "completed"
        assert (await last_progress(queue, c.job_id))["terminal"] == "1"
    assert sorted(await queue.redis.zrange(queue.keys.completed, 0, -1)) == sorted([runs_[0].job_id, runs_[2].job_id])
    assert await pending_count(queue, Priority.MEDIUM) == 1  # only the fenced-off run's entry is still held


async def test_one_call_mixes_progress_and_ends_and_reports_a_cancel_per_run(queue: Queue) -> None:
    for _ in range(3):
        await submit(queue)
    first, second, third = (await claim(queue, consumer=CONSUMER, worker_id=WORKER, count=3)).claims
    await queue.redis.hset(queue.keys.job(second.job_id), "cancel", "1")  # a cancel asked for the second
    failed = Progress(percentage=40, current_step=1, total_steps=2, message="Failed", updated_at_ms=now_ms())

    statuses = await record(
        queue,
        [
            progress_write(first, progress(40, "step one")),
            progress_write(second, progress(50, "step two")),
            end_write(third, state=JobState.FAILED, progress=failed, dead_letter_reason="assertion"),
        ],
    )

    assert statuses == [1, 2, 1]
    assert (await job_hash(queue, first.job_id))["pct"] == "40"
    assert (await last_progress(queue, second.job_id))["msg"] == "step two"  # written, then told to stop
    assert (await job_hash(queue, third.job_id))["state"] == "failed"
    assert await queue.redis.zscore(queue.keys.dlq, third.job_id) is not None
    kinds = [fields["kind"] for _, fields in await entries(queue, queue.keys.events)]
    assert kinds[-4:] == ["progress", "progress", "failed", "dead_lettered"]


async def command_calls(queue: Queue, name: str) -> int:
    stats = await queue.redis.info("commandstats")
    return int(stats.get(f"cmdstat_{name}", {}).get("calls", 0))


async def test_a_runs_writes_in_one_call_read_its_hash_once_and_set_its_progress_fields_once(queue: Queue) -> None:
    """Reports handed over together (0 and 5; 95 and the end) go in one call: each is in the job's
    progress stream and the events, in order, but the hash is read and its progress set once: the
    call costs the hash reads and writes of the end alone."""
    _, alone_id, job_id = [await submit(queue) for _ in range(3)]
    first, alone, run = (await claim(queue, consumer=CONSUMER, worker_id=WORKER, count=3)).claims
    done = Progress(percentage=100, current_step=2, total_steps=2, message="Complete", updated_at_ms=now_ms())
    await record(queue, [end_write(first, state=JobState.COMPLETED, progress=done)])  # the figures' first writes

    async def hash_calls(writes: list[Write]) -> tuple[list[int], int, int]:
        reads, sets = await command_calls(queue, "hmget"), await command_calls(queue, "hset")
        statuses = await record(queue, writes)
        return statuses, await command_calls(queue, "hmget") - reads, await command_calls(queue, "hset") - sets

    end_alone = await hash_calls([end_write(alone, state=JobState.COMPLETED, progress=done)])
    together = await hash_calls(
        [
            progress_write(run, progress(0, "Initializing")),
            progress_write(run, progress(5, "Validation complete")),
            end_write(run, state=JobState.COMPLETED, progress=done),
        ]
    )

    assert end_alone[0] == [1] and together[0] == [1, 1, 1]
    assert together[1:] == end_alone[1:]
    for job in (alone_id, job_id):
        written = await job_hash(queue, job)
        assert (written["state"], written["pct"], written["msg"]) == ("completed", "100", "Complete")
    stream = [(f["pct"], f["msg"], f["terminal"]) for _, f in await entries(queue, queue.keys.progress(job_id))]
    assert stream[-3:] == [("0", "Initializing", "0"), ("5", "Validation complete", "0"), ("100", "Complete", "1")]
    kinds = [f["kind"] for _, f in await entries(queue, queue.keys.events) if f["job"] == job_id]
    assert kinds[-3:] == ["progress", "progress", "completed"]


async def test_a_stale_runs_write_beside_the_new_runs_in_one_call_changes_nothing_either_way_round(
    queue: Queue,
) -> None:
    job_id = await submit(queue)
    stale = await claim_one(queue)
    await queue.redis.hincrby(queue.keys.job(job_id), "fence", 1)  # taken over: the new run's fence
    new = dataclasses.replace(stale, fence=str(int(stale.fence) + 1))

    assert await record(
        queue, [progress_write(stale, progress(30, "old")), progress_write(new, progress(40, "new"))]
    ) == [0, 1]
    assert (await job_hash(queue, job_id))["msg"] == "new"
    # The new run's write first: the stale one after it does not stand in for it.
    assert await record(
        queue, [progress_write(new, progress(50, "newer")), progress_write(stale, progress(60, "old"))]
    ) == [1, 0]
    assert ((await job_hash(queue, job_id))["pct"], (await last_progress(queue, job_id))["msg"]) == ("50", "newer")


async def test_the_recorder_sends_writes_of_one_loop_turn_in_one_call(queue: Queue, redis_server: Any) -> None:
    ids = [await submit(queue) for _ in range(4)]
    runs_ = (await claim(queue, consumer=CONSUMER, worker_id=WORKER, count=4)).claims
    await queue.redis.hincrby(queue.keys.job(runs_[3].job_id), "fence", 1)  # the last run lost its job
    recorder = Recorder(queue)
    await queue.redis.script_load(queue.scripts.record.script)  # no NOSCRIPT round to count
    calls_before = await record_calls(queue)

    statuses = await asyncio.gather(*(recorder.write(progress_write(c, progress(20))) for c in runs_))

    assert statuses == [1, 1, 1, 0]
    assert await record_calls(queue) == calls_before + 1
    assert [(await job_hash(queue, i)).get("pct") for i in ids[:3]] == ["20", "20", "20"]
    with pytest.raises(LeaseLost):
        check_progress(runs_[3], statuses[3])


async def test_the_recorder_sends_one_call_at_a_time_in_hand_over_order_and_splits_long_batches(
    queue: Queue, monkeypatch: pytest.MonkeyPatch
) -> None:
    await submit(queue)
    run = await claim_one(queue)
    monkeypatch.setattr(recorder_module, "MAX_BATCH", 2)
    calls: list[list[int]] = []  # each record call: the percentages it carried
    real_record = store_module.record

    async def logged(q: Queue, writes: Any) -> list[int]:
        calls.append([int(cast(dict[str, Any], w.members["progress"])["pct"]) for w in writes])
        return await real_record(q, writes)

    monkeypatch.setattr(recorder_module, "record", logged)
    recorder = Recorder(queue)
    first = [recorder.submit(progress_write(run, progress(pct))) for pct in (10, 20, 30)]
    await asyncio.sleep(0)  # the sender starts: its first call (10, 20) is in flight
    later = [recorder.submit(progress_write(run, progress(pct))) for pct in (40, 50)]

    assert await asyncio.gather(*first, *later) == [1, 1, 1, 1, 1]
    # At most two a call, in the order handed over; what came during a call went in the next ones.
    assert calls == [[10, 20], [30, 40], [50]]
    assert (await job_hash(queue, run.job_id))["pct"] == "50"


async def test_the_recorder_hands_each_writer_the_failure_of_its_call(queue: Queue) -> None:
    await submit(queue)
    run = await claim_one(queue)
    await queue.redis.delete(queue.keys.job(run.job_id))
    await queue.redis.set(queue.keys.job(run.job_id), "not a hash")  # every call on it fails (WRONGTYPE)
    recorder = Recorder(queue)

    results = await asyncio.gather(
        recorder.write(progress_write(run, progress(20))),
        recorder.write(progress_write(run, progress(30))),
        return_exceptions=True,
    )

    assert all(isinstance(r, ResponseError) for r in results)


async def record_calls(queue: Queue) -> int:
    stats = await queue.redis.info("commandstats")
    return int(stats.get("cmdstat_evalsha", {}).get("calls", 0))


async def test_reports_handed_over_in_one_loop_turn_go_in_one_call_in_order(queue: Queue) -> None:
    """A run's first two reports (Initializing, Validation complete) are handed over together and
    written by one call, in order; a cancel requested before them is raised once both are written."""
    job_id = await submit(queue)
    run = await claim_one(queue)
    ledger = QueueLedger(queue)
    await queue.redis.script_load(queue.scripts.record.script)  # no NOSCRIPT round to count
    await jobs.cancel(queue, job_id, tenant=TENANT)  # running: only flagged, the executor is told
    calls_before = await record_calls(queue)

    initializing = ledger.progress_soon(run, progress(0, "Initializing"))
    validated = ledger.progress_soon(run, progress(5, "Validation complete"))
    for report in (initializing, validated):
        with pytest.raises(CancelRequested):
            await report

    assert await record_calls(queue) == calls_before + 1
    entries = cast(list[tuple[str, dict[str, str]]], await queue.redis.xrange(queue.keys.progress(job_id)))
    assert [(f["pct"], f["msg"]) for _, f in entries[-2:]] == [("0", "Initializing"), ("5", "Validation complete")]


async def test_a_record_call_cut_off_by_a_cancellation_fails_its_writers_instead_of_leaving_them_waiting(
    queue: Queue, monkeypatch: pytest.MonkeyPatch
) -> None:
    await submit(queue)
    run = await claim_one(queue)

    async def cut_off(*_: object) -> list[int]:
        raise asyncio.CancelledError

    monkeypatch.setattr("executor_service.recorder.record", cut_off)
    recorder = Recorder(queue)
    with pytest.raises(RedisConnectionError, match="cut off"):
        await asyncio.wait_for(recorder.write(progress_write(run, progress(20))), timeout=10)


async def test_an_end_redis_refuses_for_a_whole_lease_is_left_to_the_take_over_with_one_warning(
    redis_client: aioredis.Redis, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """What the lease is for: Redis answers, but with an error, for longer than the run's end is tried
    for; the end is not this run's to record any more (False, as for a stale fence), said as a
    warning, with no traceback and no "unexpected error"."""
    queue = await short_lease_queue(redis_client)
    await submit(queue)
    run = await claim_one(queue)
    monkeypatch.setattr(ledger_module, "MIN_END_WINDOW_S", 0.5)

    async def refused(*_: object) -> list[int]:
        raise ResponseError("BUSY Redis is busy running a script")

    monkeypatch.setattr(recorder_module, "record", refused)
    end = RunEnd(state=JobState.COMPLETED, progress=progress(100))
    with caplog.at_level("WARNING", logger="executor_service.ledger"):
        assert await asyncio.wait_for(QueueLedger(queue).finish(run, end), timeout=60) is False
    last = caplog.records[-1]
    assert last.levelname == "WARNING" and "could not record its end within its lease" in last.getMessage()
    assert not any(r.exc_info for r in caplog.records)


async def test_an_end_is_tried_for_as_long_as_redis_cannot_be_reached_and_recorded_once_it_can(
    redis_client: aioredis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While Redis does not answer no lease runs out (nothing is taken over while it is away, nor for
    a lease after): a run that ended in an outage longer than the end's window still records it."""
    queue = await short_lease_queue(redis_client)
    await submit(queue)
    run = await claim_one(queue)
    monkeypatch.setattr(ledger_module, "MIN_END_WINDOW_S", 0.2)
    real = store_module.record
    loop = asyncio.get_running_loop()
    away_until = loop.time() + 1.5  # Redis away for over seven of the end's windows

    async def away_then_back(*args: Any, **kwargs: Any) -> Any:
        if loop.time() < away_until:
            raise RedisConnectionError("Connection refused")
        return await real(*args, **kwargs)

    monkeypatch.setattr(recorder_module, "record", away_then_back)
    end = RunEnd(state=JobState.COMPLETED, progress=progress(100))
    assert await asyncio.wait_for(QueueLedger(queue).finish(run, end), timeout=30) is True
    assert (await job_hash(queue, run.job_id))["state"] == "completed"


async def test_a_progress_write_nobody_waits_for_any_more_leaves_no_unread_error(
    queue: Queue, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run that stopped waiting for its report (cancelled) while Redis failed the write: the
    failure is read all the same, so asyncio never logs "Future exception was never retrieved"."""
    await submit(queue)
    run = await claim_one(queue)
    calls: list[int] = []

    async def refused(*_: object) -> list[int]:
        calls.append(1)
        raise RedisConnectionError("Connection refused")

    monkeypatch.setattr(recorder_module, "record", refused)
    unread: list[dict[str, Any]] = []
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(lambda _, context: unread.append(context))
    try:
        ledger = QueueLedger(queue)
        report = ledger.progress_soon(run, progress(20))
        report.cancel()  # the run stopped waiting before the write failed
        del report
        # The write was sent and failed: its sender is gone (its future holds the failure, or would).
        await wait_for(lambda: bool(calls) and not ledger._recorder._senders, within=10, what="the write to fail")
        gc.collect()
        await asyncio.sleep(0)
    finally:
        loop.set_exception_handler(None)
    assert calls == [1]
    assert [c.get("message") for c in unread] == []


async def test_a_restarted_redis_lets_no_lease_be_taken_over_until_it_has_been_up_for_a_lease(tmp_path: Path) -> None:
    """After an outage every lease looks run out (Redis kept when each was last renewed): their
    holders get a lease to renew them before any other executor may take a run over. A lease of 4 s,
    longer than a restart takes on a loaded machine (the guard counts whole seconds of uptime)."""
    lease_ms = 4000
    data = tmp_path / "redis"
    data.mkdir()
    first = start_redis(data, aof=True)
    port = first.port
    client = aioredis.Redis.from_url(first.url, decode_responses=True)
    try:
        queue = Queue.open(client, QueueSettings(lease_ms=lease_ms))
        await queue.ensure_groups()
        job_id = await submit(queue)
        await claim_one(queue)
        await asyncio.sleep(lease_ms / 1000 * 1.25)  # its lease ran out while Redis was up: it could be taken over
        first.stop()
        again = start_redis(data, port=port, aof=True)
        try:
            # The client's connection went with the old server: the first command reconnects.
            await wait_for(client.ping, within=10, ignoring=(RedisConnectionError,), what="Redis back")
            assert (await reclaim(queue, consumer="other", worker_id="other", count=5)).claims == []

            async def up_for_a_lease() -> bool:
                return int((await client.info("server"))["uptime_in_seconds"]) * 1000 >= lease_ms

            await wait_for(up_for_a_lease, within=10, what="Redis to be up for a lease")
            found = await reclaim(queue, consumer="other", worker_id="other", count=5)
            assert [c.job_id for c in found.claims] == [job_id]
        finally:
            again.stop()
    finally:
        await client.aclose()
