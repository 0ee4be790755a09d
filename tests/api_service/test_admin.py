"""QueueAdmin through a real grpc.aio server and a real redis-server: stats, health, pause/resume,
events, clean, the periodic cleaner and /metrics. Jobs are run by the test itself with
`executor_service.store` (tests/queue_helpers.py); no browser is involved.
"""

from __future__ import annotations

import asyncio
import dataclasses
import socket
import urllib.request
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import grpc
import pytest
import redis.asyncio as aioredis
from grpc_health.v1 import health_pb2, health_pb2_grpc

from api_service.server import ApiServer
from protos import sentinel_pb2 as pb
from protos import sentinel_pb2_grpc as pb_grpc
from shared.model import JobState, Priority
from shared.queue import Queue
from shared.settings import ApiSettings, QueueSettings, RedisSettings
from tests.queue_helpers import run_jobs, submit_jobs
from tests.support import RedisProcess, free_port, wait_for

SETTINGS = QueueSettings(remove_on_complete=1000, remove_on_fail=1000, clean_interval_ms=100)


@dataclass
class Admin:
    server: ApiServer
    stub: pb_grpc.QueueAdminStub
    jobs: pb_grpc.TestExecutionStub
    channel: grpc.aio.Channel
    queue: Queue  # the test's own view of the queue, playing the executor
    redis: RedisProcess


async def start_admin(redis_server: RedisProcess, client: aioredis.Redis, settings: QueueSettings, **api: Any) -> Admin:
    server = await ApiServer.start(
        redis=RedisSettings(url=redis_server.url, configured=True),
        queue_settings=settings,
        api=ApiSettings(host="127.0.0.1", port=0, **api),
    )
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{server.port}")
    return Admin(
        server=server,
        stub=pb_grpc.QueueAdminStub(channel),
        jobs=pb_grpc.TestExecutionStub(channel),
        channel=channel,
        queue=Queue.open(client, settings),
        redis=redis_server,
    )


@pytest.fixture
async def admin(redis_server: RedisProcess, redis_client: aioredis.Redis) -> AsyncIterator[Admin]:
    a = await start_admin(redis_server, redis_client, SETTINGS, metrics_port=free_port())
    try:
        yield a
    finally:
        await a.channel.close()
        await a.server.stop(0)


def lanes(stats: pb.QueueStats) -> dict[int, tuple[int, int]]:
    return {lane.priority: (lane.waiting, lane.active) for lane in stats.lanes}


async def test_get_stats_counts_lanes_outcomes_and_rate(admin: Admin) -> None:
    await submit_jobs(admin.queue, 2, priority=Priority.HIGH)
    await submit_jobs(admin.queue, 3, priority=Priority.LOW)
    await run_jobs(admin.queue, 1, execution_ms=200)
    await run_jobs(admin.queue, 1, state=JobState.FAILED, execution_ms=400)
    stats = await admin.stub.GetStats(pb.GetStatsRequest(), timeout=5)
    assert stats.queue == "default"
    assert lanes(stats) == {pb.PRIORITY_HIGH: (0, 0), pb.PRIORITY_MEDIUM: (0, 0), pb.PRIORITY_LOW: (3, 0)}
    assert (stats.waiting, stats.active, stats.completed, stats.failed, stats.dead_lettered) == (3, 0, 1, 1, 0)
    assert (stats.total_processed, stats.total_failed) == (2, 1)
    assert stats.avg_processing_time == pytest.approx(300)
    assert stats.processing_rate > 0
    assert stats.last_processed_at.seconds > 0
    assert stats.tenant == ""  # auth is off: one team, the whole queue
    high = stats.lanes[0]  # every figure per lane too, with the same meaning
    assert high.priority == pb.PRIORITY_HIGH
    assert (high.completed, high.failed, high.total_processed, high.total_failed) == (1, 1, 2, 1)
    assert high.avg_processing_time == pytest.approx(300) and high.processing_rate == stats.processing_rate
    assert high.last_processed_at == stats.last_processed_at and not high.paused
    assert (stats.lanes[2].total_processed, stats.lanes[2].last_processed_at.seconds) == (0, 0)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await admin.stub.GetStats(pb.GetStatsRequest(queue="other"), timeout=5)
    assert err.value.code() is grpc.StatusCode.NOT_FOUND


async def test_pause_stops_claims_keeps_submits_and_shows_in_health(admin: Admin) -> None:
    assert (await admin.stub.GetHealth(pb.GetHealthRequest(), timeout=5)).status == pb.HEALTH_STATUS_HEALTHY
    state = await admin.stub.Pause(pb.PauseRequest(), timeout=5)
    assert state.paused and state.queue == "default"
    await submit_jobs(admin.queue, 2)  # submits are still accepted
    assert await run_jobs(admin.queue, 5) == []  # … but nothing is claimed
    health = await admin.stub.GetHealth(pb.GetHealthRequest(), timeout=5)
    assert health.status == pb.HEALTH_STATUS_DEGRADED
    assert health.stats.paused and health.stats.waiting == 2
    assert any("paused" in r for r in health.reasons)
    assert not (await admin.stub.Resume(pb.ResumeRequest(), timeout=5)).paused
    assert len(await run_jobs(admin.queue, 5)) == 2


async def test_health_is_unhealthy_when_redis_is_gone(admin: Admin) -> None:
    health_stub = health_pb2_grpc.HealthStub(admin.channel)
    serving = health_pb2.HealthCheckResponse.SERVING
    assert (await health_stub.Check(health_pb2.HealthCheckRequest(), timeout=5)).status == serving
    admin.redis.stop()
    health = await admin.stub.GetHealth(pb.GetHealthRequest(), timeout=20)
    assert health.status == pb.HEALTH_STATUS_UNHEALTHY
    assert health.reasons[0].startswith("redis unreachable")

    async def not_serving() -> bool:
        reply = await health_stub.Check(health_pb2.HealthCheckRequest(), timeout=5)
        return bool(reply.status == health_pb2.HealthCheckResponse.NOT_SERVING)

    await wait_for(not_serving, within=15, what="grpc.health.v1 NOT_SERVING")


async def collect(
    stream: grpc.aio.UnaryStreamCall[pb.WatchEventsRequest, pb.QueueEvent], n: int, *, within: float = 10
) -> list[pb.QueueEvent]:
    out: list[pb.QueueEvent] = []
    async with asyncio.timeout(within):
        async for event in stream:
            out.append(event)
            if len(out) == n:
                break
    stream.cancel()
    return out


async def test_watch_events_live_filtered_and_resumed_by_cursor(admin: Admin) -> None:
    everything = admin.stub.WatchEvents(pb.WatchEventsRequest())
    smoke_done = admin.stub.WatchEvents(pb.WatchEventsRequest(tag="smoke", states=[pb.JOB_STATE_COMPLETED]))
    failed_only = admin.stub.WatchEvents(pb.WatchEventsRequest(states=[pb.JOB_STATE_FAILED]))
    starts_and_failures = admin.stub.WatchEvents(pb.WatchEventsRequest(kinds=["active", "failed"]))

    async def subscribed() -> bool:
        return admin.server.hub.subscriber_count == 4

    await wait_for(subscribed, what="four watchers")
    await admin.stub.Pause(pb.PauseRequest(), timeout=5)
    await admin.stub.Resume(pb.ResumeRequest(), timeout=5)
    smoke = await submit_jobs(admin.queue, 1, tags=("smoke",))
    plain = await submit_jobs(admin.queue, 1)
    await run_jobs(admin.queue, 1)  # the smoke job completes
    await run_jobs(admin.queue, 1, state=JobState.FAILED)  # the plain one fails

    seen = await collect(everything, 8)
    kinds = [(e.kind, e.job_id) for e in seen]
    assert kinds == [
        ("paused", ""),
        ("resumed", ""),
        ("waiting", smoke[0]),
        ("waiting", plain[0]),
        ("active", smoke[0]),
        ("completed", smoke[0]),
        ("active", plain[0]),
        ("failed", plain[0]),
    ]
    assert seen[2].tags == ["smoke"] and seen[2].state == pb.JOB_STATE_PENDING
    assert seen[4].tags == ["smoke"]  # not carried by claim's entry: looked up
    assert seen[0].message == "queue paused" and seen[0].time.seconds > 0

    [done] = await collect(smoke_done, 1)
    assert (done.kind, done.job_id, done.state) == ("completed", smoke[0], pb.JOB_STATE_COMPLETED)
    [failed] = await collect(failed_only, 1)
    assert (failed.kind, failed.job_id) == ("failed", plain[0])
    picked = await collect(starts_and_failures, 3)
    assert [(e.kind, e.job_id) for e in picked] == [("active", smoke[0]), ("active", plain[0]), ("failed", plain[0])]

    # Resume after the 4th event: exactly the rest, in order; then live.
    resumed = admin.stub.WatchEvents(pb.WatchEventsRequest(cursor=seen[3].cursor))
    rest = await collect(resumed, 4)
    assert [e.cursor for e in rest] == [e.cursor for e in seen[4:]]

    with pytest.raises(grpc.aio.AioRpcError) as err:
        await collect(admin.stub.WatchEvents(pb.WatchEventsRequest(cursor="nope")), 1)
    assert err.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await collect(admin.stub.WatchEvents(pb.WatchEventsRequest(kinds=["completed", "done"])), 1)
    assert err.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "kinds: must be event kinds" in str(err.value.details()) and "'done'" in str(err.value.details())


async def test_clean_removes_finished_jobs_by_state_and_age(admin: Admin) -> None:
    await submit_jobs(admin.queue, 3)
    done = await run_jobs(admin.queue, 2)
    await run_jobs(admin.queue, 1, state=JobState.FAILED)
    reply = await admin.stub.Clean(pb.CleanRequest(state=pb.JOB_STATE_COMPLETED, older_than_ms=3_600_000), timeout=5)
    assert reply.removed == 0
    reply = await admin.stub.Clean(pb.CleanRequest(state=pb.JOB_STATE_COMPLETED), timeout=5)
    assert reply.removed == 2
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await admin.jobs.Status(pb.StatusRequest(job_id=done[0]), timeout=5)
    assert err.value.code() is grpc.StatusCode.NOT_FOUND
    assert (await admin.stub.GetStats(pb.GetStatsRequest(), timeout=5)).failed == 1
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await admin.stub.Clean(pb.CleanRequest(state=pb.JOB_STATE_RUNNING), timeout=5)
    assert err.value.code() is grpc.StatusCode.INVALID_ARGUMENT


async def test_the_periodic_cleaner_applies_retention(redis_server: RedisProcess, redis_client: aioredis.Redis) -> None:
    settings = dataclasses.replace(SETTINGS, remove_on_complete=2, remove_on_fail=0)
    a = await start_admin(redis_server, redis_client, settings)
    try:
        await submit_jobs(a.queue, 6)
        await run_jobs(a.queue, 5)
        await run_jobs(a.queue, 1, state=JobState.FAILED)

        async def trimmed() -> bool:
            stats = await a.stub.GetStats(pb.GetStatsRequest(), timeout=5)
            return bool((stats.completed, stats.failed) == (2, 0))

        await wait_for(trimmed, what="retention down to 2 completed, 0 failed")
        assert await redis_client.zcard(a.queue.keys.tenant_jobs("default")) == 2
    finally:
        await a.channel.close()
        await a.server.stop(0)


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as reply:
        return str(reply.read().decode())


async def test_metrics_show_queue_depth_and_rpcs_by_code(admin: Admin) -> None:
    await submit_jobs(admin.queue, 2, priority=Priority.HIGH)
    await run_jobs(admin.queue, 1, state=JobState.FAILED)
    await admin.stub.GetStats(pb.GetStatsRequest(), timeout=5)
    with pytest.raises(grpc.aio.AioRpcError):
        await admin.jobs.Status(pb.StatusRequest(job_id="missing"), timeout=5)
    assert admin.server.metrics is not None
    port = admin.server.metrics.port
    failed_call = (
        'sentinel_rpc_requests_total{code="NOT_FOUND",method="Status",service="sentinel.v1.TestExecution"} 1.0'
    )

    async def scraped_with_the_failed_call() -> str:
        text = await asyncio.to_thread(scrape, port)
        return text if failed_call in text else ""

    # grpc.aio sends an aborted call's status at once, and the server counts the call just after:
    # a scrape made the moment the client saw the error can come before the count.
    text = await wait_for(scraped_with_the_failed_call, within=10, what="the failed Status call to be counted")
    assert 'sentinel_queue_jobs{lane="high",queue="default",state="waiting"} 1.0' in text
    assert 'sentinel_queue_jobs_finished_total{outcome="failed",queue="default"} 1.0' in text
    assert "sentinel_queue_up 1.0" in text
    assert 'sentinel_alert_deliveries_pending{queue="default"} 0.0' in text
    assert 'sentinel_alert_deliveries_finished_total{outcome="failed",queue="default"} 0.0' in text
    assert 'sentinel_rpc_requests_total{code="OK",method="GetStats",service="sentinel.v1.QueueAdmin"} 1.0' in text
    assert 'sentinel_rpc_duration_seconds_count{method="Status",service="sentinel.v1.TestExecution"} 1.0' in text


async def test_a_taken_metrics_port_leaves_the_service_up_without_metrics(
    redis_server: RedisProcess, redis_client: aioredis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        a = await start_admin(redis_server, redis_client, SETTINGS, metrics_port=port)
        try:
            assert a.server.metrics is None
            assert "API_METRICS_PORT" in caplog.text
            assert (await a.stub.GetStats(pb.GetStatsRequest(), timeout=5)).queue == "default"
        finally:
            await a.channel.close()
            await a.server.stop(0)
