"""Alerts through real processes: a check whose page the test flips from down to up — fired by a
schedule, or run under a tenant-wide rule's tag — sends one signed `failed` and one signed
`recovered` to a receiver on 127.0.0.1."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import grpc
import pytest
import redis.asyncio as aioredis

from protos import sentinel_pb2 as pb
from protos import sentinel_pb2_grpc as pb_grpc
from shared.keys import ALERTS_GROUP, Keys
from tests.e2e.conftest import Stack
from tests.e2e.helpers import request, run_to_end
from tests.support import serve_directory, wait_for
from tests.webhook_receiver import run_receiver, signature_holds

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

SECRET = "whsec_e2e_status"
TERMINAL = (pb.JOB_STATE_COMPLETED, pb.JOB_STATE_FAILED, pb.JOB_STATE_TIMEOUT, pb.JOB_STATE_CANCELLED)
STEPS = [
    {"navigate": {"url": "/status.html"}},
    {"name": "status is up", "timeoutMs": 2000, "expectText": {"selector": "#status", "text": "up"}},
]


def set_status(site: Path, status: str) -> None:
    (site / "status.html").write_text(f'<html><body><h1 id="status">{status}</h1></body></html>')


async def events_handled(redis: aioredis.Redis) -> bool:
    """Whether the API's alerts consumer has read and acknowledged every event written so far."""
    key = Keys().events
    groups: list[dict[str, Any]] = await redis.xinfo_groups(key)
    group = next((g for g in groups if g["name"] == ALERTS_GROUP), None)
    last = await redis.xrevrange(key, count=1)
    return bool(group and group["pending"] == 0 and last and group["last-delivered-id"] == last[0][0])


async def test_a_failing_check_sends_one_signed_failed_and_one_recovered(
    stack: Stack, redis_of: aioredis.Redis, tmp_path: Path
) -> None:
    site = tmp_path / "site"
    site.mkdir()
    api = stack.start("api", SENTINEL_WEBHOOK_ALLOW="127.0.0.1")
    stack.start("executor")
    async with (
        run_receiver() as receiver,
        grpc.aio.insecure_channel(f"127.0.0.1:{api.port}") as channel,
    ):
        alerts = pb_grpc.AlertsStub(channel)
        jobs = pb_grpc.TestExecutionStub(channel)
        notification = pb.Notification(url=receiver.url, secret=SECRET)
        rule = await alerts.CreateAlertRule(
            pb.CreateAlertRuleRequest(rule=pb.AlertRule(tag="status", notifications=[notification])), timeout=10
        )
        with serve_directory(site) as base:
            check = request(base, STEPS, name="status page", tags=["status"])
            ended = []
            for status, expected in (("down", pb.JOB_STATE_FAILED),) * 2 + (("up", pb.JOB_STATE_COMPLETED),) * 2:
                set_status(site, status)
                job, _ = await run_to_end(jobs, check, within=90)
                assert job.state == expected, job
                ended.append(job.job_id)
        await wait_for(lambda: events_handled(redis_of), within=30, what="the alerts consumer to handle every event")
        await wait_for(lambda: len(receiver.received) >= 2, within=30, what="two deliveries")
        listed = await alerts.ListDeliveries(pb.ListDeliveriesRequest(rule_id=rule.rule_id), timeout=10)

    assert receiver.events() == ["failed", "recovered"]
    failed, recovered = (r.json for r in receiver.received)
    assert (failed["job_id"], recovered["job_id"]) == (ended[0], ended[2])  # the first of each run of outcomes
    assert failed["state"] == "failed" and "#status" in failed["error"], failed
    assert failed["error_category"] == "assertion" and recovered["error"] == ""
    assert failed["test_name"] == recovered["test_name"] == "status page"
    assert failed["rule_id"] == rule.rule_id and failed["tags"] == ["status"] and failed["schedule_id"] == ""
    for received in receiver.received:
        assert signature_holds(received, SECRET)
        assert received.headers["Sentinel-Delivery"] == received.json["delivery_id"]
    assert sorted((d.event, d.state, d.response_status) for d in listed.deliveries) == [
        ("failed", pb.DELIVERY_STATE_DELIVERED, 200),
        ("recovered", pb.DELIVERY_STATE_DELIVERED, 200),
    ]


async def schedule_jobs(jobs: pb_grpc.TestExecutionStub, schedule_id: str) -> list[pb.Job]:
    """The jobs the schedule fired so far, oldest first."""
    reply = await jobs.ListJobs(pb.ListJobsRequest(schedule_id=schedule_id, page_size=500), timeout=10)
    return list(reply.jobs)[::-1]


async def test_a_scheduled_check_that_starts_failing_and_recovers_alerts_once_each_way(
    stack: Stack, redis_of: aioredis.Redis, tmp_path: Path
) -> None:
    site = tmp_path / "site"
    site.mkdir()
    set_status(site, "down")
    api = stack.start("api", SENTINEL_WEBHOOK_ALLOW="127.0.0.1")
    stack.start("executor")
    async with (
        run_receiver() as receiver,
        grpc.aio.insecure_channel(f"127.0.0.1:{api.port}") as channel,
    ):
        schedules = pb_grpc.SchedulesStub(channel)
        jobs = pb_grpc.TestExecutionStub(channel)
        alerts = pb_grpc.AlertsStub(channel)

        async def ended(state: int, at_least: int, *, after: int = 0) -> list[pb.Job] | None:
            found = [j for j in (await schedule_jobs(jobs, schedule.schedule_id))[after:] if j.state == state]
            return found if len(found) >= at_least else None

        with serve_directory(site) as base:
            schedule = await schedules.CreateSchedule(
                pb.CreateScheduleRequest(
                    schedule=pb.Schedule(
                        name="status page",
                        interval_ms=1000,
                        template=request(base, STEPS, name="status page"),
                        notifications=[pb.Notification(url=receiver.url, secret=SECRET)],
                    )
                ),
                timeout=10,
            )
            await wait_for(lambda: ended(pb.JOB_STATE_FAILED, 2), within=60, what="two failing runs")
            set_status(site, "up")
            flipped = len(await schedule_jobs(jobs, schedule.schedule_id))
            await wait_for(lambda: ended(pb.JOB_STATE_COMPLETED, 2, after=flipped), within=60, what="two passing runs")
            await schedules.PauseSchedule(pb.PauseScheduleRequest(schedule_id=schedule.schedule_id), timeout=10)

            async def all_ended() -> list[pb.Job] | None:
                fired = await schedule_jobs(jobs, schedule.schedule_id)
                return fired if all(j.state in TERMINAL for j in fired) else None

            fired = await wait_for(all_ended, within=60, what="the schedule's last run to end")
        await wait_for(lambda: events_handled(redis_of), within=30, what="the alerts consumer to handle every event")
        await wait_for(lambda: len(receiver.received) >= 2, within=30, what="two deliveries")
        listed = await alerts.ListDeliveries(pb.ListDeliveriesRequest(schedule_id=schedule.schedule_id), timeout=10)

    assert receiver.events() == ["failed", "recovered"]
    failed, recovered = (r.json for r in receiver.received)
    first_pass = next(j for j in fired if j.state == pb.JOB_STATE_COMPLETED)
    assert failed["job_id"] == fired[0].job_id and recovered["job_id"] == first_pass.job_id
    assert failed["schedule_id"] == recovered["schedule_id"] == schedule.schedule_id
    assert failed["rule_id"] == "" and failed["state"] == "failed" and recovered["state"] == "completed"
    for received in receiver.received:
        assert signature_holds(received, SECRET)
    assert sorted((d.event, d.state) for d in listed.deliveries) == [
        ("failed", pb.DELIVERY_STATE_DELIVERED),
        ("recovered", pb.DELIVERY_STATE_DELIVERED),
    ]
