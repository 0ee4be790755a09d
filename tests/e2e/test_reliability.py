"""Reliability through real processes: cancel, retry and dead letters, API shutdown, Redis outage."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from grpc_health.v1 import health_pb2

from protos import sentinel_pb2 as pb
from protos import sentinel_pb2_grpc as pb_grpc
from tests.e2e.conftest import Stack
from tests.e2e.helpers import events_of, health_becomes, pings, request, stays_quiet, wait_state
from tests.support import closed_port, start_redis, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]


async def test_cancelling_a_running_job_closes_its_page_at_once(
    stack: Stack, api_stub: pb_grpc.TestExecutionStub
) -> None:
    """The cancel interrupts the running step (a 60 s wait): the job ends cancelled well before the
    step would, and the page stops. (Usually within a second; a loaded CI machine took 2 s to close
    the context, so the bound is the step's length, not a speed.)"""
    stack.start("executor")
    steps = [{"navigate": {"url": "/ping.html"}}, {"wait": {"ms": 60000}}]
    reply = await api_stub.Submit(request(stack.site, steps), timeout=10)
    await wait_state(api_stub, reply.job_id, pb.JOB_STATE_RUNNING)
    await wait_for(lambda: pings(stack.seen) >= 3, within=10, what="the page pinging")

    async def waiting() -> bool:  # the page pings from before its load: the wait step must have begun
        job = await api_stub.Status(pb.StatusRequest(job_id=reply.job_id), timeout=10)
        return job.progress.current_step == 2

    await wait_for(waiting, within=20, what="the job to reach its wait step")
    loop = asyncio.get_running_loop()
    asked = loop.time()
    await api_stub.Cancel(pb.CancelRequest(job_id=reply.job_id), timeout=10)
    job = await wait_state(api_stub, reply.job_id, pb.JOB_STATE_CANCELLED, within=20)
    assert loop.time() - asked < 20.0  # the wait step had 60 s to go
    quiet = pings(stack.seen)
    await stays_quiet(stack.seen, stack.site, api_stub, quiet, "the page kept running after its job was cancelled")
    assert job.result.steps[1].error == "cancelled"
    events = await events_of(api_stub, reply.job_id)
    assert events[-1].terminal and events[-1].state == pb.JOB_STATE_CANCELLED

    with pytest.raises(grpc.aio.AioRpcError) as again:
        await api_stub.Cancel(pb.CancelRequest(job_id=reply.job_id), timeout=10)
    assert again.value.code() == grpc.StatusCode.FAILED_PRECONDITION


async def test_a_cancelled_waiting_job_never_runs(stack: Stack, api_stub: pb_grpc.TestExecutionStub) -> None:
    reply = await api_stub.Submit(request(stack.site, [{"navigate": {"url": "/ping.html"}}]), timeout=10)
    job = await api_stub.Cancel(pb.CancelRequest(job_id=reply.job_id), timeout=10)
    assert job.state == pb.JOB_STATE_CANCELLED
    stack.start("executor")
    marker = await api_stub.Submit(request(stack.site, [{"wait": {"ms": 10}}]), timeout=10)
    await wait_state(api_stub, marker.job_id, pb.JOB_STATE_COMPLETED)  # the executor got past it
    assert pings(stack.seen) == 0 and not any("ping.html" in p for p in stack.seen)
    assert (await api_stub.Status(pb.StatusRequest(job_id=reply.job_id))).state == pb.JOB_STATE_CANCELLED


async def test_dead_letters_can_be_listed_requeued_and_purged(
    stack: Stack, api_stub: pb_grpc.TestExecutionStub
) -> None:
    api = next(s for s in stack.services if s.name == "api")
    stack.start("executor")
    closed = f"http://127.0.0.1:{closed_port()}/"
    poison = request(stack.site, [{"navigate": {"url": closed}}], maxAttempts=2, backoffMs=50, tags=["poison"])
    dead = (await api_stub.Submit(poison, timeout=10)).job_id
    await wait_state(api_stub, dead, pb.JOB_STATE_FAILED, within=30)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{api.port}") as channel:
        admin = pb_grpc.QueueAdminStub(channel)
        listed = await admin.ListDeadLetters(pb.ListDeadLettersRequest(), timeout=10)
        assert [d.job_id for d in listed.dead_letters] == [dead]
        letter = listed.dead_letters[0]
        assert letter.attempts == 2 and letter.error.category == pb.ERROR_CATEGORY_NETWORK
        assert "out of attempts" in letter.reason and list(letter.tags) == ["poison"]
        by_category = await admin.ListDeadLetters(pb.ListDeadLettersRequest(category=pb.ERROR_CATEGORY_ASSERTION))
        assert not by_category.dead_letters
        by_tag = await admin.ListDeadLetters(pb.ListDeadLettersRequest(tag="poison"))
        assert [d.job_id for d in by_tag.dead_letters] == [dead]

        requeued = await admin.RequeueDeadLetter(pb.RequeueDeadLetterRequest(job_id=dead), timeout=10)
        assert requeued.priority == pb.PRIORITY_LOW
        assert requeued.state in (pb.JOB_STATE_PENDING, pb.JOB_STATE_RUNNING)  # the executor may be on it already
        assert requeued.attempt <= 1
        job = await wait_state(api_stub, dead, pb.JOB_STATE_FAILED, within=30)
        assert job.attempt == 2  # attempts were reset, and used up again
        assert (await admin.PurgeDeadLetters(pb.PurgeDeadLettersRequest(), timeout=10)).purged == 1
        assert not (await admin.ListDeadLetters(pb.ListDeadLettersRequest())).dead_letters


async def test_retry_reruns_a_finished_job_and_refuses_a_waiting_one(
    stack: Stack, api_stub: pb_grpc.TestExecutionStub
) -> None:
    steps = [{"navigate": {"url": "/index.html"}}, {"timeoutMs": 500, "expectTitle": {"text": "Nope"}}]
    failing = request(stack.site, steps)
    job_id = (await api_stub.Submit(failing, timeout=10)).job_id
    with pytest.raises(grpc.aio.AioRpcError) as waiting:
        await api_stub.Retry(pb.RetryRequest(job_id=job_id), timeout=10)
    assert waiting.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    stack.start("executor")
    await wait_state(api_stub, job_id, pb.JOB_STATE_FAILED, within=30)
    rerun = await api_stub.Retry(pb.RetryRequest(job_id=job_id, priority=pb.PRIORITY_HIGH), timeout=10)
    # The idle executor may have claimed it already.
    assert rerun.state in (pb.JOB_STATE_PENDING, pb.JOB_STATE_RUNNING) and rerun.priority == pb.PRIORITY_HIGH
    events = await events_of(api_stub, job_id)
    assert events[0].state == pb.JOB_STATE_PENDING and events[-1].state == pb.JOB_STATE_FAILED
    assert sum(e.terminal for e in events) == 1
    with pytest.raises(grpc.aio.AioRpcError) as unknown:
        await api_stub.Retry(pb.RetryRequest(job_id="nope"), timeout=10)
    assert unknown.value.code() == grpc.StatusCode.NOT_FOUND


async def test_an_api_shutdown_ends_streams_unavailable_and_a_resume_elsewhere_misses_nothing(
    stack: Stack,
) -> None:
    first = stack.start("api")
    second = stack.start("api")
    stack.start("executor")
    steps = [{"wait": {"ms": 200}} for _ in range(10)]
    async with (
        grpc.aio.insecure_channel(f"127.0.0.1:{first.port}") as one,
        grpc.aio.insecure_channel(f"127.0.0.1:{second.port}") as two,
    ):
        stub_one, stub_two = pb_grpc.TestExecutionStub(one), pb_grpc.TestExecutionStub(two)
        job_id = (await stub_one.Submit(request(stack.site, steps), timeout=10)).job_id
        seen: list[pb.ProgressEvent] = []
        with pytest.raises(grpc.aio.AioRpcError) as ended:
            async for event in stub_one.StreamProgress(pb.StreamProgressRequest(job_id=job_id)):
                seen.append(event)
                if event.progress.current_step == 3 and first.process.poll() is None:
                    await asyncio.to_thread(first.stop)
        assert ended.value.code() == grpc.StatusCode.UNAVAILABLE
        rest = await events_of(stub_two, job_id, cursor=seen[-1].cursor)
        whole = await events_of(stub_two, job_id)
    assert [e.cursor for e in seen + rest] == [e.cursor for e in whole]
    assert whole[-1].state == pb.JOB_STATE_COMPLETED


async def test_services_ride_out_a_redis_outage(stack: Stack, api_stub: pb_grpc.TestExecutionStub) -> None:
    api = next(s for s in stack.services if s.name == "api")
    executor = stack.start("executor")
    port, directory = stack.redis.port, stack.redis.directory
    stack.redis.stop()
    with pytest.raises(grpc.aio.AioRpcError) as down:
        await api_stub.Submit(request(stack.site, [{"wait": {"ms": 10}}]), timeout=10)
    assert down.value.code() == grpc.StatusCode.UNAVAILABLE
    await health_becomes(api.port, health_pb2.HealthCheckResponse.NOT_SERVING, within=10)
    await health_becomes(executor.port, health_pb2.HealthCheckResponse.NOT_SERVING, within=10)

    stack.redis = start_redis(directory, port=port)
    await health_becomes(api.port, health_pb2.HealthCheckResponse.SERVING, within=20)
    await health_becomes(executor.port, health_pb2.HealthCheckResponse.SERVING, within=20)
    reply = await api_stub.Submit(request(stack.site, [{"wait": {"ms": 10}}]), timeout=10)
    await wait_state(api_stub, reply.job_id, pb.JOB_STATE_COMPLETED, within=30)
    assert api.process.poll() is None and executor.process.poll() is None
