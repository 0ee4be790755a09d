"""Retention against a real redis-server: counts, age, Clean, and several cleaners at once."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from shared import jobs, retention
from shared.clock import now_ms
from shared.model import JobState
from shared.queue import Queue
from shared.settings import QueueSettings
from tests.queue_helpers import TENANT, command, run_jobs, submit_jobs


@pytest.fixture
async def queue(redis_client: aioredis.Redis) -> AsyncIterator[Queue]:
    q = Queue.open(redis_client, QueueSettings(remove_on_complete=3, remove_on_fail=2, retention_days=7))
    await q.ensure_groups()
    yield q


async def keys_of(queue: Queue, job_id: str) -> list[str]:
    found = [str(k) async for k in queue.redis.scan_iter(match=f"*{job_id}*")]
    for index in (queue.keys.tenant_jobs(TENANT), queue.keys.tenant_tag(TENANT, "smoke")):
        if await queue.redis.zscore(index, job_id) is not None:
            found.append(index)
    for zset in (queue.keys.completed, queue.keys.failed, queue.keys.dlq):
        if await queue.redis.zscore(zset, job_id) is not None:
            found.append(zset)
    return found


async def test_keeps_the_newest_n_per_outcome_and_removes_everything_of_the_rest(queue: Queue) -> None:
    ids = await submit_jobs(queue, 6, tags=("smoke",))
    done = await run_jobs(queue, 5)
    failed = await run_jobs(queue, 1, state=JobState.FAILED)
    assert done + failed == ids
    # Jobs finished in one millisecond tie; give them distinct finish times, oldest first.
    base = now_ms()
    await queue.redis.zadd(queue.keys.completed, {job_id: base + i for i, job_id in enumerate(done)})
    assert await keys_of(queue, ids[0])  # hash, progress stream, indexes

    assert await retention.enforce(queue) == 2
    for gone in done[:2]:
        assert await keys_of(queue, gone) == []
    for kept in [*done[2:], *failed]:
        assert (await jobs.get_job(queue, kept, tenant=TENANT)).state.terminal
    assert await queue.redis.zcard(queue.keys.completed) == 3
    assert await retention.enforce(queue) == 0


async def test_jobs_older_than_the_retention_age_go(queue: Queue) -> None:
    await submit_jobs(queue, 2)
    await run_jobs(queue, 2)
    assert await retention.enforce(queue) == 0
    later = now_ms() + 7 * retention.DAY_MS + 1
    assert await retention.enforce(queue, now=later) == 2
    assert await queue.redis.zcard(queue.keys.completed) == 0


async def test_idempotency_key_goes_with_its_job(queue: Queue) -> None:
    first = await jobs.submit(queue, command(idempotency_key="k1"), tenant=TENANT)
    await run_jobs(queue, 1)
    assert await queue.redis.get(queue.keys.idempotency(TENANT, "k1")) == first.job_id
    assert await retention.clean(queue) == 1
    assert await queue.redis.get(queue.keys.idempotency(TENANT, "k1")) is None
    again = await jobs.submit(queue, command(idempotency_key="k1"), tenant=TENANT)
    assert not again.duplicate and again.job_id != first.job_id


async def test_clean_by_state_age_and_limit(queue: Queue) -> None:
    await submit_jobs(queue, 6)
    completed = await run_jobs(queue, 3)
    failed = await run_jobs(queue, 2, state=JobState.FAILED)
    timed_out = await run_jobs(queue, 1, state=JobState.TIMEOUT)
    assert await retention.clean(queue, older_than_ms=3_600_000) == 0  # all are younger than an hour
    assert await retention.clean(queue, state=JobState.TIMEOUT) == 1
    assert await keys_of(queue, timed_out[0]) == []
    assert await retention.clean(queue, state=JobState.COMPLETED, limit=2) == 2
    assert await queue.redis.zcard(queue.keys.completed) == 1
    assert await retention.clean(queue) == 3
    for job_id in [*completed, *failed]:
        assert await queue.redis.exists(queue.keys.job(job_id)) == 0
    with pytest.raises(ValueError, match="only finished"):
        await retention.clean(queue, state=JobState.RUNNING)


async def test_clean_for_one_tenant_leaves_the_others(queue: Queue) -> None:
    await submit_jobs(queue, 2)
    other = await jobs.submit(queue, command(), tenant="other")
    await run_jobs(queue, 3)
    assert await retention.clean(queue, tenant="other") == 1
    assert await queue.redis.exists(queue.keys.job(other.job_id)) == 0
    assert await queue.redis.zcard(queue.keys.completed) == 2


async def test_several_cleaners_at_once_remove_each_job_once(queue: Queue, redis_client: aioredis.Redis) -> None:
    settings = dataclasses.replace(queue.settings, remove_on_complete=10, clean_interval_ms=60_000)
    await submit_jobs(queue, 1200)
    while await run_jobs(queue, 500):
        pass
    replicas = [retention.Cleaner(Queue.open(redis_client, settings)) for _ in range(3)]
    # The lock lets one replica per interval do the pass …
    outcomes = await asyncio.gather(*(r.run_once() for r in replicas))
    assert sorted(outcomes, key=lambda x: -1 if x is None else x) == [None, None, 1190]
    # … and passes racing without it (an expired lock) still remove each job exactly once.
    await submit_jobs(queue, 600)
    while await run_jobs(queue, 500):
        pass
    removed = await asyncio.gather(
        *(retention.enforce(r_queue) for r_queue in [Queue.open(redis_client, settings)] * 3)
    )
    assert sum(removed) == 600
    assert await queue.redis.zcard(queue.keys.completed) == 10
    assert await queue.redis.zcard(queue.keys.tenant_jobs(TENANT)) == 10


class SwallowingCleaner(retention.Cleaner):
    """A pass that swallows its cancellation, as redis-py can when a cancel lands mid-command."""

    def __init__(self, queue: Queue) -> None:
        super().__init__(queue)
        self.started = asyncio.Event()

    async def run_once(self) -> int | None:
        if self.started.is_set():
            return None
        self.started.set()
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:  # once: a broken test then fails in bounded time
            task = asyncio.current_task()
            if task is not None:
                task.uncancel()
        return None


async def test_stop_ends_the_cleaner_even_when_a_pass_swallows_the_cancel(queue: Queue) -> None:
    cleaner = SwallowingCleaner(queue)
    await cleaner.start()
    await asyncio.wait_for(cleaner.started.wait(), timeout=5)
    started = time.monotonic()
    await asyncio.wait_for(cleaner.stop(), timeout=10)
    assert time.monotonic() - started < 2, "stop waited for the next pass instead of ending the loop"
