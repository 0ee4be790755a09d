"""Chaos: Redis away for longer than a lease while a run ends — the run is recorded once, not run
again. A module of its own, so that a parallel test run gives it a worker of its own."""

from __future__ import annotations

import time

import pytest
import redis.asyncio as aioredis

from protos import sentinel_pb2 as pb
from protos import sentinel_pb2_grpc as pb_grpc
from tests.chaos.conftest import DurableStack
from tests.chaos.test_chaos import KEYS, entries, quick
from tests.e2e.helpers import wait_state
from tests.support import start_redis, wait_for

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(360)]


async def test_a_run_that_ends_while_redis_is_down_is_recorded_once_redis_is_back_not_run_again(
    stack: DurableStack, api_stub: pb_grpc.TestExecutionStub, redis_of: aioredis.Redis
) -> None:
    """Redis (AOF) goes away while a job runs, and stays away for over two leases after the run ended.
    Every lease looks run out when Redis returns, but the run's holder kept trying to record the end
    all along, renews the lease and records it before any executor may take the run over: the job
    completes once, from its one run."""
    # A lease of 6 s (heartbeats every 2 s): once Redis answers, the holder has a lease to renew it,
    # room enough on a loaded machine; its retries to record the end outlast any number of leases.
    lease_ms = 6000
    env = {"QUEUE_LEASE_MS": str(lease_ms), "QUEUE_STALLED_INTERVAL_MS": "100"}
    executors = [stack.start("executor", **env) for _ in range(2)]
    reply = await api_stub.Submit(quick(stack.site, ms=500), timeout=10)
    await wait_state(api_stub, reply.job_id, pb.JOB_STATE_RUNNING, within=60)
    port, directory = stack.redis.port, stack.redis.directory
    stack.redis.stop(kill=True)

    # The run (0.5 s) ends while Redis is away: its holder says it cannot record the end yet.
    def ended_in_the_outage() -> float | None:
        logs = "".join(e.log.read_text(errors="replace") for e in executors)
        return time.monotonic() if f"job {reply.job_id}: recording its end failed" in logs else None

    ended = await wait_for(ended_in_the_outage, within=60, what="the run to end while Redis is away")

    # Redis stays away for over two leases past the run's end (its holder gave up after one, before):
    # the outage's length is the scenario, so a loaded machine only makes it longer.
    def two_leases_past_the_end() -> bool:
        return time.monotonic() - ended > 2 * lease_ms / 1000

    await wait_for(two_leases_past_the_end, within=60, what="two leases to pass since the run ended")
    stack.redis = start_redis(directory, port=port, aof=True)
    job = await wait_state(api_stub, reply.job_id, pb.JOB_STATE_COMPLETED, within=60)

    assert (job.attempt, job.runs) == (1, 1), "the job was run again"
    progress = await entries(redis_of, KEYS.progress(reply.job_id))
    claims = [f for _, f in progress if f.get("msg", "").startswith("Claimed by")]
    assert len(claims) == 1, f"the job was claimed more than once: {claims}"
    events = await entries(redis_of, KEYS.events)
    assert not [f for _, f in events if f.get("job") == reply.job_id and f.get("kind") == "stalled"]
    for executor in executors:
        assert executor.process.poll() is None
