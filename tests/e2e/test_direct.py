"""Execution modes through real processes: direct with no Redis at all, hybrid through a Redis outage.

Direct: `sentinel api` and `sentinel executor` in SENTINEL_EXECUTION=direct, pointed at a Redis
port where nothing listens: submit, follow, cancel (the page stops), status, list, then a restart
(which forgets every direct job) and a kill -9 of the API (its executor stops the run). Hybrid: jobs are
queued while Redis runs; Redis is killed (-9) while they run and more are submitted, which run
directly; Redis comes back (AOF) and every job completes exactly once and is listed from Redis.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, cast

import grpc
import pytest
import redis.asyncio as aioredis

from protos import sentinel_pb2 as pb
from protos import sentinel_pb2_grpc as pb_grpc
from shared.keys import Keys
from shared.schema import EventField, JobField
from tests.e2e.conftest import Service, Stack
from tests.e2e.helpers import events_of, pings, request, stays_quiet, wait_state
from tests.support import free_port, start_redis, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

STEPS: list[dict[str, Any]] = [
    {"navigate": {"url": "/index.html"}},
    {"expectTitle": {"text": "E2E Home"}},
    {"fill": {"selector": "#name", "value": "Ada"}},
    {"click": {"selector": "#greet"}},
    {"expectText": {"selector": "#out", "text": "Hi, Ada"}},
]


def visits(stack: Stack, marker: str) -> int:
    """How often a page was loaded with `?run=<marker>`: how often that job really ran."""
    return sum(p.endswith(f"?run={marker}") for p in stack.seen)


def marked(marker: str, wait_ms: int) -> list[dict[str, Any]]:
    return [{"navigate": {"url": f"/index.html?run={marker}"}}, {"wait": {"ms": wait_ms}}]


async def executor_idle(service: Service) -> None:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{service.port}") as channel:
        stub = pb_grpc.ExecutorStub(channel)

        async def idle() -> bool:
            status = await stub.GetWorkerStatus(pb.GetWorkerStatusRequest(), timeout=5)
            return not status.in_flight

        await wait_for(idle, within=20, what="the executor to have no job in flight")


async def test_direct_mode_runs_follows_cancels_and_lists_jobs_with_no_redis(stack: Stack) -> None:
    nowhere = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens: any Redis use would fail
    executor = stack.start("executor", SENTINEL_EXECUTION="direct", REDIS_URL=nowhere)
    api = stack.start(
        "api", SENTINEL_EXECUTION="direct", SENTINEL_EXECUTORS=f"127.0.0.1:{executor.port}", REDIS_URL=nowhere
    )
    async with grpc.aio.insecure_channel(f"127.0.0.1:{api.port}") as channel:
        stub = pb_grpc.TestExecutionStub(channel)
        reply = await stub.Submit(request(stack.site, STEPS, tags=["direct"]), timeout=10)
        events = await events_of(stub, reply.job_id)
        assert events[0].state == pb.JOB_STATE_PENDING
        assert events[-1].terminal and events[-1].state == pb.JOB_STATE_COMPLETED
        running = [e.progress.percentage for e in events if e.state == pb.JOB_STATE_RUNNING]
        assert running[:4] == [0, 0, 5, 10] and running[-1] == 95  # started, then the executor's scale
        assert [int(e.cursor) for e in events] == sorted({int(e.cursor) for e in events})
        resumed = await events_of(stub, reply.job_id, cursor=events[2].cursor)
        assert [e.cursor for e in resumed] == [e.cursor for e in events[3:]]

        job = await stub.Status(pb.StatusRequest(job_id=reply.job_id), timeout=10)
        assert job.state == pb.JOB_STATE_COMPLETED and job.attempt == 1 and job.progress.percentage == 100
        assert [s.success for s in job.result.steps] == [True] * len(STEPS)
        assert job.result.worker_id and job.tags == ["direct"] and job.tenant_id == "default"

        # Any step a queued job may have runs directly too: an API check, with no page at all.
        check = [{"request": {"url": "/index.html", "expectStatus": 200, "expectBodyContains": "E2E Home"}}]
        checked = await stub.Submit(request(stack.site, check), timeout=10)
        await wait_state(stub, checked.job_id, pb.JOB_STATE_COMPLETED)

        long = await stub.Submit(request(stack.site, [{"navigate": {"url": "/ping.html"}}, {"wait": {"ms": 60000}}]))
        await wait_state(stub, long.job_id, pb.JOB_STATE_RUNNING)
        await wait_for(lambda: pings(stack.seen) >= 3, within=20, what="the page pinging")
        cancelled = await stub.Cancel(pb.CancelRequest(job_id=long.job_id), timeout=10)
        assert cancelled.state == pb.JOB_STATE_CANCELLED
        await executor_idle(executor)  # its run ended: the context is closed before a run ends
        quiet = pings(stack.seen)
        followed = await events_of(stub, long.job_id)
        assert followed[-1].terminal and followed[-1].state == pb.JOB_STATE_CANCELLED
        with pytest.raises(grpc.aio.AioRpcError) as again:
            await stub.Cancel(pb.CancelRequest(job_id=long.job_id), timeout=10)
        assert again.value.code() == grpc.StatusCode.FAILED_PRECONDITION

        listed = await stub.ListJobs(pb.ListJobsRequest(), timeout=10)
        assert [j.job_id for j in listed.jobs] == [long.job_id, checked.job_id, reply.job_id]  # newest first
        tagged = await stub.ListJobs(pb.ListJobsRequest(tag="direct"), timeout=10)
        assert [j.job_id for j in tagged.jobs] == [reply.job_id]
        await stays_quiet(stack.seen, stack.site, stub, quiet, "the page kept running after its job was cancelled")

        admin = pb_grpc.QueueAdminStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as stats:
            await admin.GetStats(pb.GetStatsRequest(), timeout=10)
        assert stats.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "SENTINEL_EXECUTION=direct" in (stats.value.details() or "")

        doomed = await stub.Submit(request(stack.site, [{"wait": {"ms": 60000}}]), timeout=10)
        await wait_state(stub, doomed.job_id, pb.JOB_STATE_RUNNING)

    # A restart cancels the direct jobs still running (their executor stops them) and forgets them all.
    env = {"SENTINEL_EXECUTION": "direct", "SENTINEL_EXECUTORS": f"127.0.0.1:{executor.port}", "REDIS_URL": nowhere}
    api = stack.restart(api, **env)
    await executor_idle(executor)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{api.port}") as channel:
        stub = pb_grpc.TestExecutionStub(channel)
        for job_id in (reply.job_id, doomed.job_id):
            with pytest.raises(grpc.aio.AioRpcError) as forgotten:
                await stub.Status(pb.StatusRequest(job_id=job_id), timeout=10)
            assert forgotten.value.code() == grpc.StatusCode.NOT_FOUND

        # An API killed outright: its executor sees the call drop and stops the run it was doing.
        orphan = await stub.Submit(request(stack.site, [{"navigate": {"url": "/ping.html"}}, {"wait": {"ms": 60000}}]))
        await wait_state(stub, orphan.job_id, pb.JOB_STATE_RUNNING)
        before = pings(stack.seen)
        await wait_for(lambda: pings(stack.seen) >= before + 3, within=20, what="the page pinging")
    api.process.kill()
    api.process.wait(timeout=10)
    stack.services.remove(api)
    await executor_idle(executor)
    quiet = pings(stack.seen)
    witnessing = stack.start("api", **env)  # a new API, only to run the witness page
    async with grpc.aio.insecure_channel(f"127.0.0.1:{witnessing.port}") as channel:
        stub = pb_grpc.TestExecutionStub(channel)
        what = "the page kept running after the API that ran its job was killed"
        await stays_quiet(stack.seen, stack.site, stub, quiet, what)


async def test_hybrid_mode_runs_jobs_directly_through_a_redis_outage_and_records_them_after(
    stack: Stack,
) -> None:
    port, directory = stack.redis.port, stack.redis.directory
    stack.redis.stop()
    stack.redis = start_redis(directory, port=port, aof=True)  # queued jobs survive the kill
    # A lease longer than the outage: the queued runs record their ends once Redis is back.
    executor = stack.start("executor", SENTINEL_EXECUTION="hybrid", QUEUE_CONCURRENCY="6", QUEUE_LEASE_MS="120000")
    api = stack.start("api", SENTINEL_EXECUTION="hybrid", SENTINEL_EXECUTORS=f"127.0.0.1:{executor.port}")
    async with grpc.aio.insecure_channel(f"127.0.0.1:{api.port}") as channel:
        stub = pb_grpc.TestExecutionStub(channel)
        queued = [(await stub.Submit(request(stack.site, marked(f"q{i}", 4000)), timeout=10)).job_id for i in range(3)]
        for job_id in queued:
            await wait_state(stub, job_id, pb.JOB_STATE_RUNNING)

        stack.redis.stop(kill=True)
        direct = [(await stub.Submit(request(stack.site, marked(f"d{i}", 200)), timeout=30)).job_id for i in range(3)]
        for job_id in direct:
            await wait_state(stub, job_id, pb.JOB_STATE_COMPLETED, within=60)  # answered from the API's memory

        stack.redis = start_redis(directory, port=port, aof=True)
        for job_id in queued:
            await wait_state(stub, job_id, pb.JOB_STATE_COMPLETED, within=90)

        async def all_listed() -> bool:
            listed = await stub.ListJobs(pb.ListJobsRequest(page_size=50), timeout=10)
            return {j.job_id for j in listed.jobs} == {*queued, *direct}

        await wait_for(all_listed, within=30, what="ListJobs to show every job from Redis")

    client = aioredis.Redis.from_url(stack.redis.url, decode_responses=True)
    try:
        keys = Keys("default")
        states = [await client.hget(keys.job(j), JobField.STATE) for j in [*queued, *direct]]
        assert states == ["completed"] * 6
    finally:
        await client.aclose()
    ran = Counter({m: visits(stack, m) for m in ["q0", "q1", "q2", "d0", "d1", "d2"]})
    assert set(ran.values()) == {1}, f"every accepted job runs exactly once: {ran}"


async def test_queue_low_priority_only_queues_low_jobs_and_runs_the_rest_directly(
    stack: Stack, redis_of: aioredis.Redis
) -> None:
    executor = stack.start("executor", SENTINEL_EXECUTION="hybrid")
    api = stack.start("api", QUEUE_LOW_PRIORITY_ONLY="true", SENTINEL_EXECUTORS=f"127.0.0.1:{executor.port}")
    async with grpc.aio.insecure_channel(f"127.0.0.1:{api.port}") as channel:
        stub = pb_grpc.TestExecutionStub(channel)
        low = await stub.Submit(request(stack.site, STEPS, priority="PRIORITY_LOW"), timeout=10)
        high = await stub.Submit(request(stack.site, STEPS, priority="PRIORITY_HIGH"), timeout=10)
        for reply in (low, high):
            await wait_state(stub, reply.job_id, pb.JOB_STATE_COMPLETED, within=60)

        keys = Keys("default")

        async def written_back() -> bool:
            return bool(await redis_of.exists(keys.job(high.job_id)))

        await wait_for(written_back, within=20, what="the direct job to be written into Redis")
    # Only the queued job went through the queue (its submit and claim are events); the direct one
    # has only its end, written with it.
    events = cast(list[tuple[str, dict[str, str]]], await redis_of.xrange(keys.events))
    kinds = Counter((fields[EventField.JOB], fields[EventField.KIND]) for _, fields in events)
    assert kinds[(low.job_id, "waiting")] == 1 and kinds[(low.job_id, "active")] == 1
    assert {kind for job, kind in kinds if job == high.job_id} == {"completed"}
