"""The queue-wide rate limit through real processes: a burst submitted to `sentinel api` starts on a
real `sentinel executor` no faster than QUEUE_RATE_LIMIT_MAX per QUEUE_RATE_LIMIT_DURATION_MS."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as aioredis

from protos import sentinel_pb2 as pb
from protos import sentinel_pb2_grpc as pb_grpc
from shared.keys import Keys
from shared.schema import JobField
from tests.e2e.conftest import Stack
from tests.e2e.helpers import request, wait_state
from tests.queue_helpers import most_in_any_window

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

MAX, DURATION_MS = 3, 1500


async def test_a_burst_starts_no_faster_than_the_queue_rate_limit(
    stack: Stack, api_stub: pb_grpc.TestExecutionStub, redis_of: aioredis.Redis
) -> None:
    executor = stack.start("executor", QUEUE_RATE_LIMIT_MAX=str(MAX), QUEUE_RATE_LIMIT_DURATION_MS=str(DURATION_MS))
    burst = [request(stack.site, [{"wait": {"ms": 1}}], name=f"burst {i}") for i in range(9)]
    replies = await asyncio.gather(*(api_stub.Submit(r, timeout=10) for r in burst))

    for reply in replies:
        job = await wait_state(api_stub, reply.job_id, pb.JOB_STATE_COMPLETED, within=90)
        assert job.attempt == 1
    keys = Keys()
    started = [int(await redis_of.hget(keys.job(r.job_id), JobField.STARTED) or 0) for r in replies]
    assert all(started)
    # No window of the limit's duration, wherever it begins, saw more than MAX of the burst start.
    assert most_in_any_window(started, DURATION_MS) <= MAX
    # The executor rested while the budget was spent: its claims never failed (nothing to block on).
    assert "claim failed" not in executor.log.read_text()
