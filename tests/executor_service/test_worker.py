"""The executor's claim loop outlives whatever one claim raises: a cluster's own errors, a bug."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from redis.exceptions import SlotNotCoveredError

from executor_service import store
from executor_service import worker as worker_module
from executor_service.browser import BrowserManager
from executor_service.job import RunState
from executor_service.ledger import QueueLedger
from executor_service.store import ClaimBatch
from executor_service.worker import Outage, Worker
from shared import jobs
from shared.model import JobOptions, Navigate, Step, SubmitCommand, TestDefinition
from shared.queue import Queue
from shared.redis_errors import REDIS_ERRORS
from shared.settings import ExecutorSettings, QueueSettings
from tests.support import RedisProcess, wait_for


def test_a_cluster_error_that_is_no_redis_error_is_one_of_redis_errors() -> None:
    assert isinstance(SlotNotCoveredError("slot 7 is not covered"), REDIS_ERRORS)


async def test_the_claim_loop_goes_on_after_a_slot_not_covered_an_unexpected_error_and_a_stray_cancel(
    redis_server: RedisProcess,
    redis_client: aioredis.Redis,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    calls: list[int] = []

    async def claim(queue: Queue, **_: Any) -> ClaimBatch:
        calls.append(len(calls))
        if len(calls) == 1:  # what redis-py's cluster client raises while a failover is under way
            raise SlotNotCoveredError("slot 7 is not covered by the cluster")
        if len(calls) == 2:
            raise KeyError("a bug")
        if len(calls) == 3:  # a cancellation let out of a client library: the loop's task was not cancelled
            raise asyncio.CancelledError
        return ClaimBatch(claims=[], last_ids={}, paused=True)  # paused: the loop rests, then claims again

    monkeypatch.setattr(worker_module, "claim", claim)
    async with running_worker(redis_server, redis_client, tmp_path, monkeypatch):
        await wait_for(lambda: len(calls) >= 4, within=20, what="a fourth claim, after the three errors")
    messages = [r.getMessage() for r in caplog.records if r.name == "executor_service.worker"]
    assert any(m.startswith("claim failed, trying again") and "not covered" in m for m in messages), messages
    assert any(m.startswith("claim failed unexpectedly") for m in messages), messages
    assert any(m.startswith("claim cut off by a cancellation") for m in messages), messages


async def test_lanes_lost_with_redis_data_are_made_again_by_the_claim_loop(
    redis_server: RedisProcess,
    redis_client: aioredis.Redis,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    queue = Queue.open(redis_client, QueueSettings())
    async with running_worker(redis_server, redis_client, tmp_path, monkeypatch):
        lane = queue.keys.lanes[0]
        assert await redis_client.xinfo_groups(lane)
        await redis_client.flushall()  # as a Redis restarted without persistence: claims now fail with NOGROUP

        async def lanes_made_again() -> bool:
            return bool(await redis_client.exists(lane)) and bool(await redis_client.xinfo_groups(lane))

        await wait_for(lanes_made_again, within=20, what="the claim loop to make the lanes and their group again")
    lost = [r for r in caplog.records if r.levelname == "ERROR" and "came back without Sentinel's data" in r.message]
    assert lost, "the loss of Redis's data was not reported"


async def test_a_claim_that_empties_the_lanes_is_followed_by_a_wait_not_another_claim(
    redis_server: RedisProcess, redis_client: aioredis.Redis, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    queue = Queue.open(redis_client, QueueSettings())
    await queue.ensure_groups()
    claims: list[int] = []  # how many jobs each claim call returned
    started: list[str] = []
    real_claim = store.claim

    async def counted(*args: Any, **kwargs: Any) -> ClaimBatch:
        batch = await real_claim(*args, **kwargs)
        claims.append(len(batch.claims))
        return batch

    monkeypatch.setattr(worker_module, "claim", counted)
    monkeypatch.setattr(Worker, "_start", lambda self, c: started.append(c.job_id))  # claimed, not run
    async with running_worker(redis_server, redis_client, tmp_path, monkeypatch, concurrency=5):
        await wait_for(lambda: claims == [0], within=20, what="the first claim, on empty lanes")
        first = await submit(queue)
        await wait_for(lambda: started == [first], within=20, what="the job to be claimed")
        await wait_for(blocked_on_the_lanes(redis_client), within=20, what="the claim loop to block on the lanes")
        # One job, five free slots: the claim read the lanes to their end, so the loop blocks on
        # them at once instead of claiming again to find nothing.
        assert claims == [0, 1]
        second = await submit(queue)
        await wait_for(lambda: started == [first, second], within=20, what="the next job, claimed once woken")
        assert claims == [0, 1, 1]


async def test_nothing_is_claimed_before_the_gate_opens(
    redis_server: RedisProcess, redis_client: aioredis.Redis, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The gate is the eviction watch's `checked`: set once Redis's policy was read and found safe."""
    queue = Queue.open(redis_client, QueueSettings())
    await queue.ensure_groups()
    claims: list[int] = []  # one entry per claim begun
    started: list[str] = []
    real_claim = store.claim

    async def counted(*args: Any, **kwargs: Any) -> ClaimBatch:
        claims.append(len(claims))
        return await real_claim(*args, **kwargs)

    monkeypatch.setattr(worker_module, "claim", counted)
    monkeypatch.setattr(Worker, "_start", lambda self, c: started.append(c.job_id))  # claimed, not run
    gate = asyncio.Event()
    job = await submit(queue)
    async with running_worker(redis_server, redis_client, tmp_path, monkeypatch, gate=gate) as worker:
        # Started, with a job waiting: an ungated claim loop begins its first claim in its first
        # turn, before anything it awaits; this one waits for the gate.
        assert worker.free == 1
        await asyncio.sleep(0)  # every loop task has had its first turn
        assert claims == [] and started == []
        gate.set()
        await wait_for(lambda: started == [job], within=20, what="the waiting job, claimed once the gate opened")


async def test_a_cancel_that_reaches_a_run_before_its_task_began_ends_the_job_cancelled_and_frees_the_slot(
    redis_server: RedisProcess, redis_client: aioredis.Redis, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    queue = Queue.open(redis_client, QueueSettings())
    await queue.ensure_groups()
    job_id = await submit(queue)
    (claimed,) = (await store.claim(queue, consumer="w-1", worker_id="w-1", count=1)).claims
    async with running_worker(redis_server, redis_client, tmp_path, monkeypatch) as worker:
        # The control channel's message handled in the same loop turn as the claim: the run's task
        # has not begun when it is told to stop.
        worker.launch(RunState(claim=claimed, ledger=QueueLedger(queue)))
        worker._on_control(f"cancel {job_id}")

        async def cancelled() -> bool:
            return await redis_client.hget(queue.keys.job(job_id), "state") == "cancelled"

        await wait_for(cancelled, within=20, what="the job to end cancelled")
        await wait_for(lambda: not worker.in_flight, within=20, what="the run's slot to be free again")
    job = await jobs.get_job(queue, job_id, tenant="default")
    # A cancel is no failure: its error has no category (not UNKNOWN), and says what happened.
    assert job.error is not None and job.result is not None and job.result.error == job.error
    assert (job.error.category, job.error.message) == (None, "cancelled by request")


def blocked_on_the_lanes(client: aioredis.Redis) -> Any:
    async def blocked() -> bool:
        return int((await client.info("clients"))["blocked_clients"]) >= 1

    return blocked


async def submit(queue: Queue) -> str:
    definition = TestDefinition(name="t", steps=(Step(Navigate(url="http://example.test/")),))
    return (
        await jobs.submit(queue, SubmitCommand(definition=definition, options=JobOptions()), tenant="default")
    ).job_id


@contextlib.asynccontextmanager
async def running_worker(
    redis_server: RedisProcess,
    redis_client: aioredis.Redis,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    *,
    concurrency: int = 1,
    gate: asyncio.Event | None = None,
) -> AsyncIterator[Worker]:
    """A started Worker on the test's Redis, without a browser (its claim loop is what is under test)."""
    browser = BrowserManager(executable_path="")

    async def launch_nothing() -> None:
        return None

    monkeypatch.setattr(browser, "start", launch_nothing)
    blocking = aioredis.Redis.from_url(redis_server.url, decode_responses=True)
    worker = Worker(
        Queue.open(redis_client, QueueSettings()),
        browser,
        settings=ExecutorSettings(spool_dir=str(tmp_path)),
        blocking=blocking,
        worker_id="w-1",
        concurrency=concurrency,
        gate=gate,
    )
    await worker.start()
    try:
        yield worker
    finally:
        await worker.drain(1.0)
        await blocking.aclose()


def test_no_run_is_taken_over_while_a_shard_is_away_nor_for_a_lease_after_it_answers_again() -> None:
    now = [100.0]
    outage = Outage(lease_s=15, clock=lambda: now[0])
    assert not outage.settled("a")  # an executor's own first lease: it knows nothing of what was
    now[0] += 15
    assert outage.settled("a") and outage.settled("b")
    outage.answered("a")  # answering without an outage changes nothing
    assert outage.settled("a")
    outage.failed("a")
    assert outage.down("a") and not outage.settled("a")
    assert outage.settled("b")  # one shard away holds up no other's take-overs
    now[0] += 60
    outage.answered("a")
    assert not outage.down("a") and not outage.settled("a")  # every lease looks run out: holders renew first
    now[0] += 14.9
    assert not outage.settled("a")
    now[0] += 0.1
    assert outage.settled("a")
