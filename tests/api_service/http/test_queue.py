"""The queue over HTTP: stats, health (200 healthy or degraded, 503 unhealthy), pause/resume, dead
letters, and 503 for every call while Redis is unreachable."""

from __future__ import annotations

import json
import logging

import grpc
import pytest

from protos import sentinel_pb2 as pb
from protos import sentinel_pb2_grpc as pb_grpc
from shared import queue_health
from shared.model import JobState, Priority
from tests.api_service.http.conftest import Http, submit
from tests.queue_helpers import run_jobs, submit_jobs
from tests.support import RedisProcess, start_redis, wait_for


async def test_stats_count_the_lanes_and_outcomes(http: Http) -> None:
    await submit_jobs(http.queue, 2, priority=Priority.HIGH)
    await submit_jobs(http.queue, 1, priority=Priority.LOW)
    await submit_jobs(http.queue, 1, priority=Priority.LOW)
    await run_jobs(http.queue, 1, execution_ms=200)
    await run_jobs(http.queue, 1, state=JobState.CANCELLED, execution_ms=200)  # the second high one
    stats = (await http.call("GET", "/queue/stats")).data
    assert (stats["queue"], stats["waiting"], stats["completed"], stats["totalProcessed"]) == ("default", 2, 1, 2)
    assert (stats["failed"], stats["cancelled"], stats["totalFailed"], stats["totalCancelled"]) == (0, 1, 0, 1)
    assert stats["avgProcessingTime"] == 200 and stats["lastProcessedAt"].endswith("Z") and stats["tenant"] is None
    assert [lane["priority"] for lane in stats["lanes"]] == ["high", "medium", "low"]
    assert [lane["waiting"] for lane in stats["lanes"]] == [0, 0, 2]
    assert [lane["cancelled"] for lane in stats["lanes"]] == [1, 0, 0]


async def test_pause_and_resume_show_in_health_as_degraded_with_200(http: Http) -> None:
    healthy = await http.call("GET", "/queue/health")
    assert healthy.status == 200 and healthy.data["status"] == "healthy" and healthy.data["reasons"] == []
    paused = await http.call("POST", "/queue/pause")
    assert paused.data == {"queue": "default", "paused": True}
    await submit(http)
    degraded = await http.call("GET", "/queue/health")
    assert degraded.status == 200 and degraded.data["status"] == "degraded"
    assert any("paused" in r for r in degraded.data["reasons"]) and degraded.data["stats"]["paused"] is True
    assert "paused" in degraded.body["message"]
    assert (await http.call("POST", "/queue/resume")).data == {"queue": "default", "paused": False}


async def test_redis_gone_health_is_503_with_the_reason_and_calls_are_503(
    http: Http, redis_server: RedisProcess, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=queue_health.__name__)
    redis_server.stop()
    health = await http.call("GET", "/queue/health")
    assert health.status == 503 and health.body["success"] is False and health.code == "UNAVAILABLE"
    assert health.body["data"]["status"] == "unhealthy" and health.body["data"]["stats"] is None
    assert health.body["data"]["reasons"] == [queue_health.UNREACHABLE_REASON]
    assert health.body["message"] == f"queue unhealthy: {queue_health.UNREACHABLE_REASON}"
    assert health.headers["Retry-After"] == "5"
    # Any viewer reads this: no address, port or driver error (those are the operator's, in the log).
    for secret in (str(redis_server.port), "127.0.0.1", "Error", "refused"):
        assert secret not in json.dumps(health.body), secret
    async with grpc.aio.insecure_channel(f"127.0.0.1:{http.server.port}") as channel:  # the other front door
        verdict = await pb_grpc.QueueAdminStub(channel).GetHealth(pb.GetHealthRequest(), timeout=20)
    assert list(verdict.reasons) == [queue_health.UNREACHABLE_REASON]
    assert (await http.call("GET", "/queue/health")).status == 503
    logged = [r.getMessage() for r in caplog.records if r.name == queue_health.__name__]
    assert len(logged) == 1 and str(redis_server.port) in logged[0], logged  # once, with the detail
    for method, path in (
        ("GET", "/tests/x/status"),
        ("GET", "/queue/stats"),
        ("GET", "/tests"),
        ("POST", "/queue/pause"),
    ):
        reply = await http.call(method, path)
        assert reply.status == 503 and reply.code == "UNAVAILABLE", path
        assert "Redis" in reply.body["message"] and "Traceback" not in reply.body["message"]
        assert reply.headers["Retry-After"] == "5", path
    async with http.session.get(f"{http.base}/api/v1/tests/x/events") as resp:
        assert resp.status == 503

    revived = start_redis(redis_server.directory, port=redis_server.port)
    try:

        async def answers() -> bool:
            return (await http.call("GET", "/queue/health")).status == 200

        await wait_for(answers, within=15, interval=0.2, what="health to answer 200 again")
        logged = [r.getMessage() for r in caplog.records if r.name == queue_health.__name__]
        assert logged[1:] == ["queue health: Redis answers again"], logged
    finally:
        revived.stop()


async def test_dead_letters_are_listed_requeued_and_purged(http: Http) -> None:
    [kept] = await submit_jobs(http.queue, 1, tags=("nightly",))
    await run_jobs(http.queue, 1, state=JobState.FAILED, dead_letter_reason="out of attempts")
    [other] = await submit_jobs(http.queue, 1)
    await run_jobs(http.queue, 1, state=JobState.FAILED, dead_letter_reason="out of attempts")
    page = (await http.call("GET", "/queue/dead-letters?pageSize=1")).data
    assert [d["jobId"] for d in page["deadLetters"]] == [other] and page["nextPageToken"]
    tagged = (await http.call("GET", "/queue/dead-letters?tag=nightly")).data["deadLetters"]
    assert [d["jobId"] for d in tagged] == [kept]
    letter = tagged[0]
    assert letter["reason"] == "out of attempts" and letter["tags"] == ["nightly"] and letter["attempts"] == 1
    assert letter["deadLetteredAt"].endswith("Z") and letter["name"] == "t"
    bad = await http.call("GET", "/queue/dead-letters?category=oops")
    assert bad.status == 400 and bad.body["error"]["violations"][0]["field"] == "category"

    requeued = await http.call("POST", f"/queue/dead-letters/{kept}/requeue")
    assert requeued.status == 200 and requeued.data["id"] == kept and requeued.data["status"] == "pending"
    assert (await http.call("POST", f"/queue/dead-letters/{kept}/requeue")).status == 404  # no longer a dead letter

    assert (await http.call("POST", "/queue/dead-letters/purge", body={"olderThanMs": 3_600_000})).data == {"purged": 0}
    assert (await http.call("POST", "/queue/dead-letters/purge")).data == {"purged": 1}
    refused = await http.call("POST", "/queue/dead-letters/purge", body={"olderThanMs": -1})
    assert refused.status == 400 and refused.body["error"]["violations"][0]["field"] == "olderThanMs"
    assert (await http.call("GET", "/queue/dead-letters")).data == {"deadLetters": [], "nextPageToken": None}
