"""Rate limits (limit.lua): jobs started per interval, queue-wide and per tenant, through the real
claim and reclaim scripts on a real redis-server.

The guarantee under test is the sliding window's: no window of `duration` ms, wherever it begins,
holds more than `max` starts (a job's `started` is the limiter's own stamp), every job starts
once, and a held job waits in Redis, counted as waiting.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections import Counter
from collections.abc import Iterable
from typing import cast

import redis.asyncio as aioredis

from executor_service.store import Claim, ClaimBatch, claim, finish, reclaim
from shared import jobs
from shared.dead_letters import retry_job
from shared.keys import GROUP
from shared.model import JobState, Priority, Progress
from shared.queue import Queue
from shared.schema import JobField
from shared.settings import QueueSettings, RateLimit, RateLimitSettings
from shared.stats import get_stats
from tests.queue_helpers import most_in_any_window, submit_jobs, waiting_places
from tests.support import wait_for

LANE = Priority.MEDIUM
NO_LIMIT = RateLimit()


async def open_queue(
    client: aioredis.Redis, *, queue: RateLimit = NO_LIMIT, tenant: RateLimit = NO_LIMIT, **settings: int
) -> Queue:
    limits = RateLimitSettings(queue=queue, tenant=tenant)
    opened = Queue.open(client, dataclasses.replace(QueueSettings(), rate_limits=limits, **settings))  # type: ignore[arg-type]
    await opened.ensure_groups()
    return opened


async def end(queue: Queue, c: Claim) -> None:
    assert await finish(queue, c, state=JobState.COMPLETED, progress=Progress(percentage=100))


async def starts(queue: Queue, ids: Iterable[str]) -> dict[str, tuple[int, int]]:
    """Each job's (started ms, runs ever), from its hash."""
    found = {}
    for job_id in ids:
        started, tries = await queue.redis.hmget(queue.keys.job(job_id), [JobField.STARTED, JobField.TRIES])
        found[job_id] = (int(started or 0), int(tries or 0))
    return found


async def claim_until_all_started(
    queue: Queue, name: str, started: list[str], total: int, *, count: int, within: float = 60
) -> list[ClaimBatch]:
    """Claim (and end at once) as an executor would, resting as long as a refused claim says."""
    refused = []
    deadline = time.monotonic() + within
    while len(started) < total:
        assert time.monotonic() < deadline, f"{len(started)} of {total} jobs started in {within} s"
        batch = await claim(queue, consumer=name, worker_id=name, count=count)
        started.extend(c.job_id for c in batch.claims)
        for c in batch.claims:
            await end(queue, c)
        if not batch.claims:
            if batch.wait_ms:
                refused.append(batch)
            # The executor's rest: the limiter's wait, or a moment for another claimer's jobs.
            await asyncio.sleep(max(batch.wait_ms, 5) / 1000)
    return refused


async def test_a_burst_never_starts_more_than_the_queue_limit_in_any_window(redis_client: aioredis.Redis) -> None:
    limit = RateLimit(max=10, duration_ms=1000)
    queue = await open_queue(redis_client, queue=limit)
    ids = await submit_jobs(queue, 40)
    started: list[str] = []
    claimers = [claim_until_all_started(queue, f"c{i}", started, len(ids), count=3) for i in range(4)]
    refused = [b for batches in await asyncio.gather(*claimers) for b in batches]

    assert sorted(started) == sorted(ids)  # every job started, none twice
    found = await starts(queue, ids)
    assert {tries for _, tries in found.values()} == {1}
    assert most_in_any_window((s for s, _ in found.values()), limit.duration_ms) <= limit.max
    # The limit did hold claimers back, and told them to rest rather than block on the lanes.
    assert refused and all(b.budget_spent and 0 < b.wait_ms <= limit.duration_ms for b in refused)


async def test_a_spent_queue_budget_claims_nothing_and_the_rest_counts_as_waiting(
    redis_client: aioredis.Redis,
) -> None:
    queue = await open_queue(redis_client, queue=RateLimit(max=5, duration_ms=60_000))
    await submit_jobs(queue, 8)
    first = await claim(queue, consumer="c", worker_id="w", count=20)
    assert len(first.claims) == 5
    second = await claim(queue, consumer="c", worker_id="w", count=20)
    assert second.claims == [] and second.budget_spent and second.last_ids == {}
    assert 0 < second.wait_ms <= 60_000
    stats = await get_stats(queue)
    assert (stats.waiting, stats.active) == (3, 5)
    # Ending runs frees no budget: the limit counts starts, not running jobs.
    for c in first.claims:
        await end(queue, c)
    assert (await claim(queue, consumer="c", worker_id="w", count=20)).claims == []


async def test_a_limited_tenant_waits_in_its_backlog_while_others_start(redis_client: aioredis.Redis) -> None:
    limit = RateLimit(max=3, duration_ms=1000)
    queue = await open_queue(redis_client, tenant=limit)
    a_ids = await submit_jobs(queue, 9, tenant="a")
    b_ids = await submit_jobs(queue, 2, tenant="b")  # B has a limiter of its own, not yet spent
    # Only what A's limiter allows enters the lane: B's jobs are not behind A's held ones.
    assert await queue.redis.lrange(queue.keys.backlog(LANE, "a"), 0, -1) == a_ids[3:]

    first = await claim(queue, consumer="c", worker_id="w", count=20)
    assert sorted(c.job_id for c in first.claims) == sorted(a_ids[:3] + b_ids)
    a_stats, stats = await get_stats(queue, tenant="a"), await get_stats(queue)
    assert (a_stats.waiting, a_stats.active) == (6, 3)
    assert (stats.waiting, stats.active) == (6, 5)

    # Nothing more of A now; the claim says when A's next job may start and still blocks on the lanes.
    held = await claim(queue, consumer="c", worker_id="w", count=20)
    assert held.claims == [] and not held.budget_spent and held.last_ids and 0 < held.wait_ms <= 1000
    # B goes on starting meanwhile.
    more_b = await submit_jobs(queue, 1, tenant="b")
    assert [c.job_id for c in (await claim(queue, consumer="c", worker_id="w", count=20)).claims] == more_b

    started = [c.job_id for c in first.claims]
    started += more_b
    await claim_until_all_started(queue, "c", started, len(a_ids) + len(b_ids) + len(more_b), count=20)
    found = await starts(queue, a_ids)
    assert {tries for _, tries in found.values()} == {1}
    assert most_in_any_window((s for s, _ in found.values()), limit.duration_ms) <= limit.max
    # A's jobs started in the order they were submitted.
    assert sorted(a_ids, key=lambda i: found[i][0]) == a_ids


async def test_entries_already_in_the_lane_past_the_tenant_limit_are_held_not_stranded(
    redis_client: aioredis.Redis,
) -> None:
    unlimited = await open_queue(redis_client)
    a_ids = await submit_jobs(unlimited, 6, tenant="a")  # all six enter the lane (window 10)
    queue = await open_queue(redis_client, tenant=RateLimit(max=2, duration_ms=60_000))
    b_ids = await submit_jobs(queue, 1, tenant="b")

    batch = await claim(queue, consumer="c", worker_id="w", count=10)
    assert [c.job_id for c in batch.claims] == [*a_ids[:2], *b_ids]
    # The four over the limit left the lane and its pending entries list for A's backlog, in order.
    assert await queue.redis.lrange(queue.keys.backlog(LANE, "a"), 0, -1) == a_ids[2:]
    pending = cast(dict[str, int], await queue.redis.xpending(queue.keys.stream(LANE), GROUP))
    assert pending["pending"] == 3
    assert await queue.redis.xlen(queue.keys.stream(LANE)) == 3
    states = {await queue.redis.hget(queue.keys.job(i), JobField.STATE) for i in a_ids[2:]}
    assert states == {JobState.PENDING.value}
    assert (await get_stats(queue, tenant="a")).waiting == 4


async def test_a_job_cancelled_while_held_back_then_retried_waits_in_one_place_and_starts_once(
    redis_client: aioredis.Redis,
) -> None:
    unlimited = await open_queue(redis_client)
    queue = await open_queue(redis_client, tenant=RateLimit(max=1, duration_ms=60_000))
    a_ids = await submit_jobs(unlimited, 3, tenant="a")  # all three enter the lane
    first = await claim(queue, consumer="c", worker_id="w", count=10)
    assert [c.job_id for c in first.claims] == a_ids[:1]  # A's budget is spent; the other two are held
    assert await queue.redis.lrange(queue.keys.backlog(LANE, "a"), 0, -1) == a_ids[1:]
    (b_job,) = await submit_jobs(queue, 1, tenant="b")  # B's limiter lets it into the lane

    # Cancelled where they wait (A's backlog, the lane), then run again.
    for job_id in (a_ids[1], b_job):
        await jobs.cancel(queue, job_id, tenant=None)
    # The cancelled entry no longer takes B's start budget: B's next job enters the lane.
    (b_next,) = await submit_jobs(queue, 1, tenant="b")
    assert await queue.redis.llen(queue.keys.backlog(LANE, "b")) == 0
    await jobs.cancel(queue, b_next, tenant=None)
    for job_id in (a_ids[1], b_job):
        await retry_job(queue, job_id, tenant=None)

    # Each waiting job waits in exactly one place: the one its rerun gave it, none left by its cancel.
    waiting = {*a_ids[1:], b_job}
    places = await waiting_places(queue, ["a", "b"])
    assert {job_id: places[job_id] for job_id in waiting} == dict.fromkeys(waiting, 1)
    assert set(places) == waiting
    assert (await get_stats(queue)).waiting == 3

    # And each starts once: B now, A's two once nothing limits them.
    assert [c.job_id for c in (await claim(queue, consumer="c", worker_id="w", count=10)).claims] == [b_job]
    rest = await claim(unlimited, consumer="c", worker_id="w", count=10)
    assert sorted(c.job_id for c in rest.claims) == sorted(a_ids[1:])
    assert {tries for _, tries in (await starts(queue, [*a_ids, b_job])).values()} == {1}
    assert await waiting_places(queue, ["a", "b"]) == Counter()


async def test_a_run_started_again_after_its_executor_died_counts_against_the_limits(
    redis_client: aioredis.Redis,
) -> None:
    limit = RateLimit(max=2, duration_ms=800)
    queue = await open_queue(redis_client, queue=limit, lease_ms=1)
    ids = await submit_jobs(queue, 2)
    crashed = await claim(queue, consumer="dead", worker_id="dead", count=2)
    assert len(crashed.claims) == 2
    # The executor died; its runs' leases ran out at once, but the queue's budget is spent.
    assert (await reclaim(queue, consumer="c", worker_id="w", count=5)).claims == []
    assert {await queue.redis.hget(queue.keys.job(i), JobField.STALLED) for i in ids} == {None}

    async def taken_over() -> list[Claim]:
        return (await reclaim(queue, consumer="c", worker_id="w", count=5)).claims

    again = await wait_for(taken_over, within=30, what="a stalled run to be started again")
    rest = [] if len(again) == 2 else await wait_for(taken_over, within=30, what="the other stalled run")
    assert sorted(c.job_id for c in again + rest) == sorted(ids)
    found = await starts(queue, ids)
    assert {tries for _, tries in found.values()} == {2}
    stamps = [int(c.job.started_at_ms) for c in crashed.claims] + [s for s, _ in found.values()]
    assert most_in_any_window(stamps, limit.duration_ms) <= limit.max


async def test_a_tenant_over_its_limit_is_not_taken_over_and_not_counted_as_stalling(
    redis_client: aioredis.Redis,
) -> None:
    queue = await open_queue(redis_client, tenant=RateLimit(max=1, duration_ms=60_000), lease_ms=1)
    (job_id,) = await submit_jobs(queue, 1, tenant="a")
    assert len((await claim(queue, consumer="dead", worker_id="dead", count=1)).claims) == 1
    assert (await reclaim(queue, consumer="c", worker_id="w", count=5)).claims == []
    assert await queue.redis.hget(queue.keys.job(job_id), JobField.STALLED) is None
    pending = cast(dict[str, int], await queue.redis.xpending(queue.keys.stream(LANE), GROUP))
    assert pending["pending"] == 1  # still in Redis, for a later pass


async def test_limiter_logs_expire_when_idle(redis_client: aioredis.Redis) -> None:
    queue = await open_queue(redis_client, queue=RateLimit(max=5, duration_ms=300), tenant=RateLimit(5, 300))
    await submit_jobs(queue, 2)
    assert len((await claim(queue, consumer="c", worker_id="w", count=5)).claims) == 2

    async def gone() -> bool:
        return not await queue.redis.exists(queue.keys.rate_log(), queue.keys.rate_log("default"))

    await wait_for(gone, within=30, what="the limiters' logs to expire")
