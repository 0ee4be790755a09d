"""Fair share between tenants: queue and running limits, and no starvation within a lane."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from bench.fair_share import command, measure
from executor_service.store import claim, finish, promote_due, release
from shared import dead_letters, jobs
from shared.errors import LimitError
from shared.model import JobState, Progress
from shared.queue import Queue
from shared.settings import QueueSettings
from shared.stats import get_stats
from tests.support import RedisProcess, wait_for


async def open_queue(client: aioredis.Redis, **settings: int) -> Queue:
    queue = Queue.open(client, dataclasses.replace(QueueSettings(), **settings))  # type: ignore[arg-type]
    await queue.ensure_groups()
    return queue


@pytest.fixture
async def queue(redis_client: aioredis.Redis) -> AsyncIterator[Queue]:
    yield await open_queue(redis_client)


async def test_a_flooding_tenant_does_not_starve_another_in_the_same_lane(redis_server: RedisProcess) -> None:
    # 1,000 of A's jobs are queued before B's one; two executors of 5 slots, 5 ms per job.
    fair = await measure(redis_server.url, window=10, queued=1000, executors=2, concurrency=5, job_ms=5)
    assert fair.a_started_before_b <= 2 * 10, fair  # at most A's window (plus a batch in flight) goes first
    assert fair.wait_ms < 5_000, fair  # generous: about 50 ms here


async def test_without_fair_share_the_flood_goes_first(redis_server: RedisProcess) -> None:
    unfair = await measure(redis_server.url, window=0, queued=200, executors=1, concurrency=10, job_ms=1)
    assert unfair.a_started_before_b == 200


async def test_past_the_queue_limit_a_tenant_is_refused_and_others_are_not(redis_client: aioredis.Redis) -> None:
    queue = await open_queue(redis_client, tenant_max_queued=3, tenant_window=2)
    for i in range(3):
        await jobs.submit(queue, command(f"a{i}"), tenant="a")
    with pytest.raises(LimitError, match="SENTINEL_TENANT_MAX_QUEUED"):
        await jobs.submit(queue, command("a3"), tenant="a")
    batch = await jobs.submit_many(queue, [command("a4"), command("a5")], tenant="a")
    assert all(s.limited and not s.job_id for s in batch)
    assert (await jobs.submit(queue, command("b"), tenant="b")).job_id
    assert len(await redis_client.keys(queue.keys.job("*"))) == 4  # nothing stored for the refused ones
    # Claiming frees room again.
    await claim(queue, consumer="c", worker_id="w", count=1)
    await jobs.submit(queue, command("a6"), tenant="a")


async def test_the_running_limit_holds_a_tenants_jobs_back_until_one_ends(redis_client: aioredis.Redis) -> None:
    queue = await open_queue(redis_client, tenant_max_running=2)
    a_ids = [(await jobs.submit(queue, command(f"a{i}"), tenant="a")).job_id for i in range(5)]
    b_id = (await jobs.submit(queue, command("b"), tenant="b")).job_id
    first = (await claim(queue, consumer="c", worker_id="w", count=10)).claims
    assert sorted(c.job_id for c in first) == sorted([*a_ids[:2], b_id])
    assert (await claim(queue, consumer="c", worker_id="w", count=10)).claims == []
    done = next(c for c in first if c.job_id == a_ids[0])
    assert await finish(queue, done, state=JobState.COMPLETED, progress=Progress(percentage=100))
    later = (await claim(queue, consumer="c", worker_id="w", count=10)).claims
    assert [c.job_id for c in later] == [a_ids[2]]


async def run_all(queue: Queue) -> int:
    """Claim and complete every job the lanes hand out until they hand out none; returns how many."""
    ran = 0
    while claims := (await claim(queue, consumer="c", worker_id="w", count=10)).claims:
        for c in claims:
            assert await finish(queue, c, state=JobState.COMPLETED, progress=Progress(percentage=100))
        ran += len(claims)
    return ran


async def test_without_a_running_limit_fair_share_keeps_no_record_of_runs(queue: Queue) -> None:
    for i in range(30):
        await jobs.submit(queue, command(f"a{i}"), tenant="a")
    assert await run_all(queue) == 30
    # Nothing reads a tenant's running set without a running limit, so none is kept: it would
    # hold the id of every job the tenant ever ran (retention removes the jobs, not their ids).
    assert [k async for k in queue.redis.scan_iter(match=queue.keys.fair_prefix + "running:*")] == []


async def test_with_a_running_limit_the_running_set_holds_only_running_jobs(redis_client: aioredis.Redis) -> None:
    queue = await open_queue(redis_client, tenant_max_running=2)
    for i in range(6):
        await jobs.submit(queue, command(f"a{i}"), tenant="a")
    assert await run_all(queue) == 6
    await jobs.submit(queue, command("a6"), tenant="a")  # looks at the set, and drops the ended
    assert await redis_client.scard(queue.keys.fair_prefix + "running:a") == 0


async def test_a_cancelled_backlogged_job_never_runs(queue: Queue) -> None:
    ids = [(await jobs.submit(queue, command(f"a{i}"), tenant="a")).job_id for i in range(12)]
    await jobs.cancel(queue, ids[11], tenant="a")  # still in A's backlog (window 10)
    claimed = []
    while batch := (await claim(queue, consumer="c", worker_id="w", count=5)).claims:
        claimed += [c.job_id for c in batch]
    assert claimed == ids[:11]


async def test_stats_count_the_jobs_fair_share_holds_back_as_waiting(queue: Queue) -> None:
    await jobs.submit_many(queue, [command(f"a{i}") for i in range(25)], tenant="a")
    assert (await get_stats(queue)).waiting == 25  # 10 in the lane, 15 in A's backlog
    await claim(queue, consumer="c", worker_id="w", count=5)
    stats = await get_stats(queue)
    assert (stats.waiting, stats.active) == (20, 5)


async def test_delayed_jobs_and_retries_enter_the_lane_through_fair_share(queue: Queue) -> None:
    delayed = dataclasses.replace(command("a"), options=dataclasses.replace(command("a").options, delay_ms=1))
    await jobs.submit_many(queue, [delayed] * 30, tenant="a")
    b_id = (await jobs.submit(queue, command("b"), tenant="b")).job_id

    async def promoted() -> bool:
        await promote_due(queue)
        return await queue.redis.zcard(queue.keys.delayed) == 0

    await wait_for(promoted, within=5, what="every delayed job to be promoted")
    claimed = []
    while b_id not in claimed:
        batch = (await claim(queue, consumer="c", worker_id="w", count=5)).claims
        assert batch, "B's job was never claimed"
        claimed += [c.job_id for c in batch]
    assert claimed.index(b_id) <= 10  # behind at most A's window, not all 30


async def _claim_until(queue: Queue, job_id: str) -> list[str]:
    claimed: list[str] = []
    while job_id not in claimed:
        batch = (await claim(queue, consumer="c", worker_id="w", count=5)).claims
        assert batch, f"{job_id} was never claimed"
        claimed += [c.job_id for c in batch]
    return claimed


async def test_reruns_go_through_fair_share(redis_client: aioredis.Redis) -> None:
    queue = await open_queue(redis_client, tenant_window=3)
    a_ids = [s.job_id for s in await jobs.submit_many(queue, [command(f"a{i}") for i in range(30)], tenant="a")]
    for c in (await claim(queue, consumer="c", worker_id="w", count=30)).claims:
        assert await finish(queue, c, state=JobState.FAILED, progress=Progress(percentage=100))
    # A reruns all 30 (Retry and RequeueDeadLetter share one script) before B submits one job.
    for job_id in a_ids:
        await dead_letters.retry_job(queue, job_id, tenant="a")
    b_id = (await jobs.submit(queue, command("b"), tenant="b")).job_id
    assert (await _claim_until(queue, b_id)).index(b_id) == 3  # behind A's window, not behind all 30 reruns


async def test_a_rerun_past_the_queue_limit_is_refused_and_changes_nothing(redis_client: aioredis.Redis) -> None:
    queue = await open_queue(redis_client, tenant_window=2, tenant_max_queued=3)
    job_id = (await jobs.submit(queue, command("a"), tenant="a")).job_id
    (run,) = (await claim(queue, consumer="c", worker_id="w", count=1)).claims
    assert await finish(queue, run, state=JobState.FAILED, progress=Progress(percentage=100))
    await jobs.submit_many(queue, [command(f"x{i}") for i in range(3)], tenant="a")  # A is at its limit
    with pytest.raises(LimitError, match="SENTINEL_TENANT_MAX_QUEUED"):
        await dead_letters.retry_job(queue, job_id, tenant="a")
    assert (await jobs.get_job(queue, job_id, tenant="a")).state is JobState.FAILED
    assert (await get_stats(queue, tenant="a")).waiting == 3


async def test_a_job_handed_back_waits_under_its_tenants_window_first_in_its_backlog(queue: Queue) -> None:
    a = [s.job_id for s in await jobs.submit_many(queue, [command(f"a{i}") for i in range(30)], tenant="a")]
    (first,) = (await claim(queue, consumer="c", worker_id="w", count=1)).claims
    assert first.job_id == a[0]
    assert await release(queue, first, reason="executor shutting down")  # A's window (10) is full again
    b_id = (await jobs.submit(queue, command("b"), tenant="b")).job_id
    claimed = await _claim_until(queue, a[11])
    # B is not behind the hand-back; the hand-back goes before the rest of A's backlog.
    assert claimed[:13] == [*a[1:11], b_id, a[0], a[11]]
