"""Chaos: executors killed, Redis killed and restarted, executors stopped — every job still ends
in exactly one terminal state, none lost, none completed twice."""

from __future__ import annotations

import asyncio
import functools
import signal
import time
from collections import Counter
from typing import Any, cast

import grpc
import pytest
import redis.asyncio as aioredis

from protos import sentinel_pb2 as pb
from protos import sentinel_pb2_grpc as pb_grpc
from shared.keys import Keys
from tests.chaos.conftest import DurableStack
from tests.e2e.conftest import Service
from tests.e2e.helpers import request, wait_state
from tests.support import closed_port, wait_for

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(360)]

#: Seconds to drain a batch of a few hundred jobs. On a loaded 2-core machine a page takes seconds
#: instead of a fraction of one; the bound only matters when a job is really stuck.
DRAIN_S = 240

KEYS = Keys("default")
TERMINAL = {pb.JOB_STATE_COMPLETED, pb.JOB_STATE_FAILED, pb.JOB_STATE_TIMEOUT, pb.JOB_STATE_CANCELLED}
FAST_LEASES = {"QUEUE_LEASE_MS": "1500", "QUEUE_STALLED_INTERVAL_MS": "300", "QUEUE_MAX_STALLED_COUNT": "50"}


async def terminal_counts(client: aioredis.Redis, job_ids: list[str]) -> dict[str, int]:
    """How many terminal events each job's progress stream holds."""
    pipe = client.pipeline(transaction=False)
    for job_id in job_ids:
        pipe.xrange(KEYS.progress(job_id))
    streams: list[list[tuple[str, dict[str, str]]]] = await pipe.execute()
    return {j: sum(f.get("terminal") == "1" for _, f in s) for j, s in zip(job_ids, streams, strict=True)}


async def entries(client: aioredis.Redis, key: str) -> list[tuple[str, dict[str, str]]]:
    return cast(list[tuple[str, dict[str, str]]], await client.xrange(key))


async def completions(client: aioredis.Redis) -> Counter[str]:
    """How many `completed` queue events each job has."""
    events = await entries(client, KEYS.events)
    return Counter(f["job"] for _, f in events if f.get("kind") == "completed")


async def wait_all_terminal(stub: pb_grpc.TestExecutionStub, job_ids: list[str], *, within: float) -> dict[str, pb.Job]:
    done: dict[str, pb.Job] = {}

    async def all_terminal() -> bool:
        for job_id in job_ids:
            if job_id in done:
                continue
            try:
                job = await stub.Status(pb.StatusRequest(job_id=job_id), timeout=5)
            except grpc.aio.AioRpcError as exc:
                if exc.code() == grpc.StatusCode.NOT_FOUND:
                    raise AssertionError(f"job {job_id} was lost (NOT_FOUND)") from exc
                if exc.code() != grpc.StatusCode.UNAVAILABLE:
                    raise
                return False  # the API is riding out the outage: ask again
            if job.state in TERMINAL:
                done[job_id] = job
        return len(done) == len(job_ids)

    def missing() -> str:
        left = [j for j in job_ids if j not in done]
        return f"every job to finish ({len(left)} of {len(job_ids)} not finished, e.g. {left[:3]})"

    await wait_for(all_terminal, within=within, interval=0.2, what=missing)
    return done


async def running_a_job(executor: Service) -> bool:
    """Whether an executor has a job in flight, by its own Executor.GetWorkerStatus."""
    async with grpc.aio.insecure_channel(f"127.0.0.1:{executor.port}") as channel:
        status = await pb_grpc.ExecutorStub(channel).GetWorkerStatus(pb.GetWorkerStatusRequest(), timeout=5)
    return bool(status.in_flight)


def quick(site: str, *, ms: int = 100, **options: Any) -> pb.SubmitRequest:
    return request(site, [{"wait": {"ms": ms}}], **options)


async def test_executors_killed_again_and_again_lose_no_job_and_finish_none_twice(
    stack: DurableStack, api_stub: pb_grpc.TestExecutionStub, redis_of: aioredis.Redis
) -> None:
    env = {**FAST_LEASES, "QUEUE_CONCURRENCY": "4"}
    executors = [stack.start("executor", **env) for _ in range(2)]
    jobs = 120
    # Enough jobs that the queue outlasts six kill-and-restart turns, even on a fast machine.
    batch = pb.SubmitBatchRequest(requests=[quick(stack.site, ms=300) for _ in range(jobs)])
    reply = await api_stub.SubmitBatch(batch, timeout=30)
    job_ids = [item.job_id for item in reply.items]
    assert len(job_ids) == jobs and all(job_ids)

    for _ in range(6):  # kill -9 a busy executor mid-job, start a fresh one
        victim = executors.pop(0)
        await wait_for(
            functools.partial(running_a_job, victim), within=60, what=f"executor :{victim.port} to run a job"
        )
        victim.stop(sig=signal.SIGKILL)
        executors.append(stack.start("executor", **env))

    finished = await wait_all_terminal(api_stub, job_ids, within=DRAIN_S)
    assert Counter(pb.JobState.Name(j.state) for j in finished.values()) == Counter({"JOB_STATE_COMPLETED": jobs})
    assert set((await terminal_counts(redis_of, job_ids)).values()) == {1}
    done = await completions(redis_of)
    assert all(done[j] == 1 for j in job_ids), "a job was completed twice (or never)"
    reruns = sum(j.runs > 1 for j in finished.values())
    assert reruns > 0, "the kills hit no running job: the test proved nothing"


async def test_a_job_running_five_leases_while_heartbeating_is_never_redelivered(
    stack: DurableStack, api_stub: pb_grpc.TestExecutionStub, redis_of: aioredis.Redis
) -> None:
    # Executors heartbeat every third of the lease: a 2 s lease rides out a stall of over a second.
    lease_ms = 2000
    env = {"QUEUE_LEASE_MS": str(lease_ms), "QUEUE_STALLED_INTERVAL_MS": "200"}
    stack.start("executor", **env)
    stack.start("executor", **env)
    reply = await api_stub.Submit(quick(stack.site, ms=5 * lease_ms + lease_ms // 2), timeout=10)
    job = await wait_state(api_stub, reply.job_id, pb.JOB_STATE_COMPLETED, within=90)

    assert job.attempt == 1
    progress = await entries(redis_of, KEYS.progress(reply.job_id))
    claims = [f for _, f in progress if f.get("msg", "").startswith("Claimed by")]
    assert len(claims) == 1, "the job was claimed more than once"
    events = await entries(redis_of, KEYS.events)
    assert not [f for _, f in events if f.get("job") == reply.job_id and f.get("kind") == "stalled"]


async def test_a_poison_job_is_dead_lettered_after_exactly_its_attempts_on_schedule(
    stack: DurableStack, api_stub: pb_grpc.TestExecutionStub, redis_of: aioredis.Redis
) -> None:
    stack.start("executor")
    closed = f"http://127.0.0.1:{closed_port()}/"
    req = request(stack.site, [{"navigate": {"url": closed}}], maxAttempts=4, backoffMs=1000)
    reply = await api_stub.Submit(req, timeout=10)
    job = await wait_state(api_stub, reply.job_id, pb.JOB_STATE_FAILED, within=60)

    assert job.attempt == 4 and job.error.category == pb.ERROR_CATEGORY_NETWORK
    progress = await entries(redis_of, KEYS.progress(reply.job_id))
    scheduled = [int(f["ts"]) for _, f in progress if f["state"] == "scheduled"]
    claimed = [int(f["ts"]) for _, f in progress if f.get("msg", "").startswith("Claimed by")]
    assert len(scheduled) == 3 and len(claimed) == 4
    for n, (retry_at, next_claim) in enumerate(zip(scheduled, claimed[1:], strict=True)):
        expected = 1000 * 2**n
        # ±10 % jitter; on a loaded machine the claim can come late (promote, wake, claim), never early.
        assert 0.8 * expected <= next_claim - retry_at <= 1.1 * expected + 500, (n, next_claim - retry_at)
    assert await redis_of.zscore(KEYS.dlq, reply.job_id) is not None
    assert "out of attempts (4 of 4)" in (await redis_of.hget(KEYS.job(reply.job_id), "dlq_reason") or "")


async def test_redis_killed_during_submits_loses_no_acknowledged_job(
    stack: DurableStack, api_stub: pb_grpc.TestExecutionStub
) -> None:
    stack.start("executor", QUEUE_CONCURRENCY="4")
    acknowledged: list[str] = []
    refused = 0

    async def submit_many(count: int) -> None:
        nonlocal refused
        for _ in range(count):
            try:
                acknowledged.append((await api_stub.Submit(quick(stack.site, ms=20), timeout=5)).job_id)
            except grpc.aio.AioRpcError as exc:
                assert exc.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED), exc
                refused += 1
                await asyncio.sleep(0.05)

    # Jobs acknowledged before the kill, during it and after it; each a browser job the executor runs.
    writer = asyncio.create_task(submit_many(90))
    await wait_for(lambda: len(acknowledged) >= 30, within=30, what="30 acknowledged submits")
    stack.restart_redis(kill=True)
    await writer
    assert len(acknowledged) > 30
    finished = await wait_all_terminal(api_stub, acknowledged, within=DRAIN_S)
    assert {j.state for j in finished.values()} == {pb.JOB_STATE_COMPLETED}


async def test_sigterm_hands_in_flight_jobs_to_another_executor_at_once(
    stack: DurableStack, api_stub: pb_grpc.TestExecutionStub, redis_of: aioredis.Redis
) -> None:
    # A lease far longer than the hand-over takes (about the 4 s jobs): finishing within half of it
    # proves the jobs were handed back, not reclaimed after it ran out, with room for a slow machine.
    lease = {"QUEUE_LEASE_MS": "120000"}
    first = stack.start("executor", QUEUE_CONCURRENCY="3", EXECUTOR_SHUTDOWN_GRACE_MS="300", **lease)
    job_ids = [(await api_stub.Submit(quick(stack.site, ms=4000), timeout=10)).job_id for _ in range(3)]
    for job_id in job_ids:
        await wait_state(api_stub, job_id, pb.JOB_STATE_RUNNING, within=30)
    stack.start("executor", QUEUE_CONCURRENCY="3", **lease)
    started = time.monotonic()
    assert first.stop() == 0
    finished = await wait_all_terminal(api_stub, job_ids, within=60)
    assert time.monotonic() - started < 60
    assert {j.state for j in finished.values()} == {pb.JOB_STATE_COMPLETED}
    assert set((await terminal_counts(redis_of, job_ids)).values()) == {1}


async def test_a_stack_recovers_from_a_redis_restart_and_drains_the_queue(
    stack: DurableStack, api_stub: pb_grpc.TestExecutionStub
) -> None:
    stack.start("executor", QUEUE_CONCURRENCY="3")
    batch = pb.SubmitBatchRequest(requests=[quick(stack.site, ms=200) for _ in range(40)])
    job_ids = [i.job_id for i in (await api_stub.SubmitBatch(batch, timeout=30)).items]
    await wait_state(api_stub, job_ids[0], pb.JOB_STATE_COMPLETED, within=60)  # Redis restarts mid-queue
    stack.restart_redis(kill=False)
    finished = await wait_all_terminal(api_stub, job_ids, within=120)
    assert {j.state for j in finished.values()} == {pb.JOB_STATE_COMPLETED}
    for service in stack.services:
        assert service.process.poll() is None, f"{service.name} died with the Redis restart"
