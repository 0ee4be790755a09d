"""The counters GetStats reads (tally.lua) agree with the jobs themselves after any mix of moves.

A seeded random workload drives every script that moves a job — submit (now and delayed), claim,
finish in every way, retry backoff, promote, cancel, hand-back, reclaim, Retry, RequeueDeadLetter,
purge and retention — for two tenants in all lanes with fair share on. Then every lane's and every
tenant's figures must equal a count over all job hashes, and every waiting job must sit exactly
once in its lane or its tenant's backlog (nothing lost, nothing doubled).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import random
from collections import Counter
from collections.abc import AsyncIterator
from typing import cast

import pytest
import redis.asyncio as aioredis

from executor_service import store
from shared import dead_letters, jobs, retention
from shared.clock import now_ms
from shared.errors import SentinelError
from shared.model import PRIORITY_ORDER, JobState, Progress
from shared.queue import Queue
from shared.settings import QueueSettings, RateLimit, RateLimitSettings
from shared.stats import get_stats
from tests.queue_helpers import command, waiting_places

TENANTS = ("acme", "globex")
FINISHES = ("completed", "failed", "dead", "timeout", "cancelled", "retry")
#: What the workload does, drawn at random (submit, claim and finish twice as often).
OPERATIONS = (
    *("submit", "claim", "finish") * 2,
    *("release", "promote", "cancel", "retry", "requeue", "purge", "clean", "reclaim"),
)


@pytest.fixture
async def queue(redis_client: aioredis.Redis) -> AsyncIterator[Queue]:
    # A tiny window so fair share holds jobs back; a 1 ms lease so reclaim takes over at once.
    settings = dataclasses.replace(QueueSettings(), tenant_window=2, lease_ms=1, max_stalled_count=2)
    q = Queue.open(redis_client, settings)
    await q.ensure_groups()
    yield q


async def _finish(queue: Queue, claim: store.Claim, how: str) -> None:
    now = now_ms()
    state = {"completed": JobState.COMPLETED, "timeout": JobState.TIMEOUT, "cancelled": JobState.CANCELLED}.get(
        how, JobState.SCHEDULED if how == "retry" else JobState.FAILED
    )
    await store.finish(
        queue,
        claim,
        state=state,
        progress=Progress(total_steps=1, message=how, updated_at_ms=now),
        due_ms=now if how == "retry" else 0,
        dead_letter_reason="attempts exhausted" if how == "dead" else "",
        execution_ms=10,
    )


async def _step(queue: Queue, rng: random.Random, running: list[store.Claim], ids: list[str]) -> None:
    op = rng.choice(OPERATIONS)
    tenant = rng.choice(TENANTS)
    if op == "submit":
        delay = rng.choice([0, 0, 0, 1])
        made = await jobs.submit_many(
            queue,
            [command(priority=rng.choice(PRIORITY_ORDER), delay_ms=delay) for _ in range(rng.randint(1, 4))],
            tenant=tenant,
        )
        ids.extend(m.job_id for m in made)
    elif op == "claim":
        running.extend((await store.claim(queue, consumer="c", worker_id="w", count=rng.randint(1, 3))).claims)
    elif op == "finish" and running:
        await _finish(queue, running.pop(rng.randrange(len(running))), rng.choice(FINISHES))
    elif op == "release" and running:
        await store.release(queue, running.pop(rng.randrange(len(running))), reason="handed back")
    elif op == "promote":
        await store.promote_due(queue)
    elif op == "reclaim":
        running.extend((await store.reclaim(queue, consumer="d", worker_id="w2", count=2)).claims)
    elif op == "purge":
        await dead_letters.purge_dead_letters(queue, tenant=rng.choice([None, tenant]))
    elif op == "clean":
        zset = rng.choice([queue.keys.completed, queue.keys.failed])
        await retention.trim_excess(queue, zset, keep=rng.randint(0, 4))
    elif op in ("cancel", "retry", "requeue") and ids:
        job_id = rng.choice(ids)
        action = {"cancel": jobs.cancel, "retry": dead_letters.retry_job, "requeue": dead_letters.requeue_dead_letter}
        # Not in a state for it, or removed by retention: the scripts say no and change nothing.
        with contextlib.suppress(SentinelError):
            await action[op](queue, job_id, tenant=None)


async def _hash(queue: Queue, key: str) -> dict[str, str]:
    return cast(dict[str, str], await queue.redis.hgetall(key))


async def _truth(queue: Queue) -> tuple[Counter[tuple[str, str, str]], Counter[tuple[str, str]]]:
    """(jobs by lane, tenant and state; dead letters by lane and tenant), counted from the jobs."""
    states: Counter[tuple[str, str, str]] = Counter()
    async for key in queue.redis.scan_iter(match=queue.keys.job("*"), count=500):
        raw = await _hash(queue, key)
        states[raw["priority"], raw["tenant"], raw["state"]] += 1
    dead: Counter[tuple[str, str]] = Counter()
    for job_id in cast(list[str], await queue.redis.zrange(queue.keys.dlq, 0, -1)):
        raw = await _hash(queue, queue.keys.job(job_id))
        dead[raw["priority"], raw["tenant"]] += 1
    return states, dead


async def _check_figures(queue: Queue) -> None:
    states, dead = await _truth(queue)
    failed = ("failed", "timeout")  # a cancel is no failure: counted on its own
    for tenant in (None, *TENANTS):
        stats = await get_stats(queue, tenant=tenant)
        for lane in stats.lanes:

            def count(state: str, tenants: tuple[str, ...]) -> int:
                return sum(states[lane.priority.value, t, state] for t in tenants)  # noqa: B023

            who = TENANTS if tenant is None else (tenant,)
            expected = (
                count("pending", who),
                count("running", who),
                count("scheduled", who),
                count("completed", who),
                sum(count(s, who) for s in failed),
                count("cancelled", who),
                sum(dead[lane.priority.value, t] for t in who),
            )
            seen = (
                lane.waiting,
                lane.active,
                lane.delayed,
                lane.completed,
                lane.failed,
                lane.cancelled,
                lane.dead_lettered,
            )
            assert seen == expected, (tenant, lane.priority)


async def _check_waiting_jobs_are_queued_once(queue: Queue) -> None:
    """Every PENDING job has exactly one undelivered lane entry or backlog place."""
    places = await waiting_places(queue, TENANTS)
    pending = set()
    async for key in queue.redis.scan_iter(match=queue.keys.job("*"), count=500):
        raw = await _hash(queue, key)
        if raw["state"] == JobState.PENDING.value:
            pending.add(raw["id"])
    # (A cancel takes a waiting job's place away; an entry of a job removed meanwhile may stay: the
    # claim that reaches it drops it.)
    assert pending and {job_id: places[job_id] for job_id in pending if places[job_id] != 1} == {}


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_figures_match_the_jobs_after_a_random_workload(queue: Queue, seed: int) -> None:
    await _random_workload_then_drain(queue, seed)


async def test_figures_match_the_jobs_with_rate_limits_holding_jobs_back(queue: Queue) -> None:
    # Short windows, so the workload's claims and reclaims run into both limiters again and again.
    limits = RateLimitSettings(queue=RateLimit(max=3, duration_ms=30), tenant=RateLimit(max=2, duration_ms=30))
    limited = Queue.open(queue.redis, dataclasses.replace(queue.settings, rate_limits=limits))
    await _random_workload_then_drain(limited, 4)


async def _random_workload_then_drain(queue: Queue, seed: int) -> None:
    rng = random.Random(seed)
    running: list[store.Claim] = []
    ids: list[str] = []
    for _ in range(250):
        await _step(queue, rng, running, ids)
    await _check_figures(queue)
    await _check_waiting_jobs_are_queued_once(queue)

    # Then run everything to an end: no job is stuck, and the figures still agree.
    for _ in range(200):
        await store.promote_due(queue)
        batch = await store.claim(queue, consumer="c", worker_id="w", count=10)
        for claim in running + batch.claims:
            await _finish(queue, claim, "completed")
        running = []
        stats = await get_stats(queue)
        if stats.waiting == stats.active == stats.delayed == 0:
            break
        if not batch.claims and batch.wait_ms:
            await asyncio.sleep(batch.wait_ms / 1000)  # as an executor rests, for the limiter's window
    await _check_figures(queue)
    stats = await get_stats(queue)
    assert (stats.waiting, stats.active, stats.delayed) == (0, 0, 0)
    assert stats.completed > 0
