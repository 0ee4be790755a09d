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

from executor_service import worker as worker_module
from executor_service.browser import BrowserManager
from executor_service.store import ClaimBatch
from executor_service.worker import Worker
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
    assert any(m.startswith("claim failed, retrying") and "not covered" in m for m in messages), messages
    assert any(m.startswith("claim failed unexpectedly") for m in messages), messages
    assert any(m.startswith("claim cut off by a cancellation") for m in messages), messages


async def test_lanes_lost_with_redis_data_are_made_again_by_the_claim_loop(
    redis_server: RedisProcess, redis_client: aioredis.Redis, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    queue = Queue.open(redis_client, QueueSettings())
    async with running_worker(redis_server, redis_client, tmp_path, monkeypatch):
        lane = queue.keys.lanes[0]
        assert await redis_client.xinfo_groups(lane)
        await redis_client.flushall()  # as a Redis restarted without persistence: claims now fail with NOGROUP

        async def lanes_made_again() -> bool:
            return bool(await redis_client.exists(lane)) and bool(await redis_client.xinfo_groups(lane))

        await wait_for(lanes_made_again, within=20, what="the claim loop to make the lanes and their group again")


@contextlib.asynccontextmanager
async def running_worker(
    redis_server: RedisProcess, redis_client: aioredis.Redis, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
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
        concurrency=1,
    )
    await worker.start()
    try:
        yield worker
    finally:
        await worker.drain(1.0)
        await blocking.aclose()
