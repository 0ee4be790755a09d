"""Alerts through real processes: a check whose page the test flips from down to up, watched by a
tenant-wide rule, sends one signed `failed` and one signed `recovered` to a receiver on 127.0.0.1."""

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
