"""Alerts through real processes: a check whose page the test flips from down to up — fired by a
schedule, or run under a tenant-wide rule's tag — sends one signed `failed` and one signed
`recovered` to a receiver on 127.0.0.1."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
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
from tests.webhook_receiver import Received, Receiver, run_receiver, signature_holds

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

SECRET = "whsec_e2e_status"
TERMINAL = (pb.JOB_STATE_COMPLETED, pb.JOB_STATE_FAILED, pb.JOB_STATE_TIMEOUT, pb.JOB_STATE_CANCELLED)
STEPS = [
    {"navigate": {"url": "/status.html"}},
    {"name": "status is up", "timeoutMs": 2000, "expectText": {"selector": "#status", "text": "up"}},
]


@dataclass
class Setup:
    base: str  # where the status page is served
    site: Path
    receiver: Receiver
    jobs: pb_grpc.TestExecutionStub
    alerts: pb_grpc.AlertsStub
    schedules: pb_grpc.SchedulesStub

    def set_status(self, status: str) -> None:
        (self.site / "status.html").write_text(f'<html><body><h1 id="status">{status}</h1></body></html>')


@asynccontextmanager
async def alerting_stack(stack: Stack, tmp_path: Path) -> AsyncIterator[Setup]:
    """The API (127.0.0.1 allowed for webhooks) and an executor, a status page saying "down", a receiver."""
    site = tmp_path / "site"
    site.mkdir()
    api = stack.start("api", SENTINEL_WEBHOOK_ALLOW="127.0.0.1")
    stack.start("executor")
    async with (
        run_receiver() as receiver,
        grpc.aio.insecure_channel(f"127.0.0.1:{api.port}") as channel,
    ):
        with serve_directory(site) as base:
            setup = Setup(
                base=base,
                site=site,
                receiver=receiver,
                jobs=pb_grpc.TestExecutionStub(channel),
                alerts=pb_grpc.AlertsStub(channel),
                schedules=pb_grpc.SchedulesStub(channel),
            )
            setup.set_status("down")
            yield setup


async def events_handled(redis: aioredis.Redis) -> bool:
    """Whether the API's alerts consumer has read and acknowledged every event written so far."""
    key = Keys().events
    groups: list[dict[str, Any]] = await redis.xinfo_groups(key)
    group = next((g for g in groups if g["name"] == ALERTS_GROUP), None)
    last = await redis.xrevrange(key, count=1)
    return bool(group and group["pending"] == 0 and last and group["last-delivered-id"] == last[0][0])


async def all_delivered(setup: Setup, redis: aioredis.Redis, **filters: str) -> tuple[Received, Received]:
    """Once every job's end is handled: the two deliveries, signed, both listed as delivered."""
    await wait_for(lambda: events_handled(redis), within=30, what="the alerts consumer to handle every event")
    await wait_for(lambda: len(setup.receiver.received) >= 2, within=30, what="two deliveries")
    listed = await setup.alerts.ListDeliveries(pb.ListDeliveriesRequest(**filters), timeout=10)  # type: ignore[arg-type]
    assert setup.receiver.events() == ["failed", "recovered"]
    for received in setup.receiver.received:
        assert signature_holds(received, SECRET)
        assert received.headers["Sentinel-Delivery"] == received.json["delivery_id"]
    assert sorted((d.event, d.state, d.response_status) for d in listed.deliveries) == [
        ("failed", pb.DELIVERY_STATE_DELIVERED, 200),
        ("recovered", pb.DELIVERY_STATE_DELIVERED, 200),
    ]
    failed, recovered = setup.receiver.received
    return failed, recovered


async def test_a_check_under_a_rule_that_fails_then_passes_alerts_once_each_way(
    stack: Stack, redis_of: aioredis.Redis, tmp_path: Path
) -> None:
    async with alerting_stack(stack, tmp_path) as setup:
        notification = pb.Notification(url=setup.receiver.url, secret=SECRET)
        rule = await setup.alerts.CreateAlertRule(
            pb.CreateAlertRuleRequest(rule=pb.AlertRule(tag="status", notifications=[notification])), timeout=10
        )
        check = request(setup.base, STEPS, name="status page", tags=["status"])
        ended = []
        for status, expected in (("down", pb.JOB_STATE_FAILED),) * 2 + (("up", pb.JOB_STATE_COMPLETED),) * 2:
            setup.set_status(status)
            job, _ = await run_to_end(setup.jobs, check, within=90)
            assert job.state == expected, job
            ended.append(job.job_id)
        failed, recovered = (r.json for r in await all_delivered(setup, redis_of, rule_id=rule.rule_id))
    assert (failed["job_id"], recovered["job_id"]) == (ended[0], ended[2])  # the first of each run of outcomes
    assert failed["state"] == "failed" and "#status" in failed["error"], failed
    assert failed["error_category"] == "assertion" and recovered["error"] == ""
    assert failed["test_name"] == recovered["test_name"] == "status page"
    assert failed["rule_id"] == rule.rule_id and failed["tags"] == ["status"] and failed["schedule_id"] == ""


async def test_a_scheduled_check_that_starts_failing_and_recovers_alerts_once_each_way(
    stack: Stack, redis_of: aioredis.Redis, tmp_path: Path
) -> None:
    async with alerting_stack(stack, tmp_path) as setup:
        schedule = await setup.schedules.CreateSchedule(
            pb.CreateScheduleRequest(
                schedule=pb.Schedule(
                    name="status page",
                    interval_ms=1000,
                    template=request(setup.base, STEPS, name="status page"),
                    notifications=[pb.Notification(url=setup.receiver.url, secret=SECRET)],
                )
            ),
            timeout=10,
        )

        async def fired() -> list[pb.Job]:
            """The jobs the schedule fired so far, oldest first."""
            reply = await setup.jobs.ListJobs(
                pb.ListJobsRequest(schedule_id=schedule.schedule_id, page_size=500), timeout=10
            )
            return list(reply.jobs)[::-1]

        async def ended(state: int, at_least: int, *, after: int = 0) -> list[pb.Job] | None:
            found = [j for j in (await fired())[after:] if j.state == state]
            return found if len(found) >= at_least else None

        async def all_ended() -> list[pb.Job] | None:
            jobs = await fired()
            return jobs if all(j.state in TERMINAL for j in jobs) else None

        await wait_for(lambda: ended(pb.JOB_STATE_FAILED, 2), within=60, what="two failing runs")
        setup.set_status("up")
        flipped = len(await fired())
        await wait_for(lambda: ended(pb.JOB_STATE_COMPLETED, 2, after=flipped), within=60, what="two passing runs")
        await setup.schedules.PauseSchedule(pb.PauseScheduleRequest(schedule_id=schedule.schedule_id), timeout=10)
        runs = await wait_for(all_ended, within=60, what="the schedule's last run to end")
        failed, recovered = (r.json for r in await all_delivered(setup, redis_of, schedule_id=schedule.schedule_id))
    first_pass = next(j for j in runs if j.state == pb.JOB_STATE_COMPLETED)
    assert failed["job_id"] == runs[0].job_id and recovered["job_id"] == first_pass.job_id
    assert failed["schedule_id"] == recovered["schedule_id"] == schedule.schedule_id
    assert failed["rule_id"] == "" and failed["state"] == "failed" and recovered["state"] == "completed"
