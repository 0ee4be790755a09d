"""The SDK's alert calls, on both clients, against a real API server (grpc.aio on port 0) and
redis-server, with webhooks delivered to a receiver on 127.0.0.1 (allowed by this API's policy).

Jobs are ended as an executor ends them (`tests.queue_helpers.run_jobs`): what matters here is what
the SDK reads back, not the browser.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import grpc
import pytest
import redis.asyncio as aioredis

from api_service.server import ApiServer
from sentinel_client import AlertRule, AsyncClient, Delivery, DeliveryState, InvalidArgumentError, NotFoundError
from shared.model import JobState
from shared.queue import Queue
from shared.sealed import new_secret_key
from shared.settings import AlertSettings, ApiSettings, QueueSettings, RedisSettings, SecuritySettings
from tests.queue_helpers import run_jobs, submit_jobs
from tests.sentinel_client.twins import connect
from tests.support import RedisProcess, wait_for
from tests.webhook_receiver import Receiver, run_receiver, signature_holds


@dataclass
class Alerting:
    client: AsyncClient
    queue: Queue
    receiver: Receiver

    async def fail_job(self, tag: str) -> str:
        """A job tagged `tag` that failed (its first outcome: a `failed` alert)."""
        (job_id,) = await submit_jobs(self.queue, 1, tags=(tag,))
        assert await run_jobs(self.queue, 1, state=JobState.FAILED) == [job_id]
        return job_id


@pytest.fixture
async def alerting(flavor: str, redis_server: RedisProcess, redis_client: aioredis.Redis) -> AsyncIterator[Alerting]:
    server = await ApiServer.start(
        redis=RedisSettings(url=redis_server.url, configured=True),
        queue_settings=QueueSettings(),
        api=ApiSettings(host="127.0.0.1", port=0, alerts=AlertSettings(allow=("127.0.0.1",), poll_ms=50)),
        security=SecuritySettings(secret_key=new_secret_key()),
    )
    try:
        async with run_receiver() as receiver, connect(flavor, f"127.0.0.1:{server.port}") as client:
            queue = Queue.open(redis_client, QueueSettings())
            await queue.ensure_groups()
            yield Alerting(client=client, queue=queue, receiver=receiver)
    finally:
        await server.stop(0)


async def test_rules_are_made_listed_and_deleted(alerting: Alerting) -> None:
    client = alerting.client
    made = await client.create_alert_rule(
        "checkout",
        [{"url": alerting.receiver.url, "events": ["failed", "recovered"], "secret": "whsec_sdk"}],
    )
    assert isinstance(made, AlertRule) and made.id and made.tag == "checkout" and made.created_at is not None
    (notification,) = made.notifications
    masked = alerting.receiver.url.removesuffix("/hook") + "/…"  # a URL is answered masked, like a secret
    assert (notification.url, notification.events, notification.secret_set) == (
        masked,
        ("failed", "recovered"),
        True,
    )
    other = await client.create_alert_rule("search", [{"url": alerting.receiver.url}])
    assert other.notifications[0].events == ("failed", "recovered") and not other.notifications[0].secret_set

    assert [r.id async for r in client.alert_rules(page_size=1)] == [other.id, made.id]  # newest first, two pages
    first = await client.list_alert_rules(page_size=1)
    assert [r.id for r in first.items] == [other.id] and first.next_page_token
    rest = await client.list_alert_rules(page_size=1, page_token=first.next_page_token)
    assert [r.id for r in rest.items] == [made.id]

    assert await client.delete_alert_rule(other.id) is True
    with pytest.raises(NotFoundError):
        await client.delete_alert_rule(other.id)
    assert [r.id async for r in client.alert_rules()] == [made.id]


async def test_a_bad_rule_names_its_fields(alerting: Alerting) -> None:
    with pytest.raises(InvalidArgumentError) as info:
        await alerting.client.create_alert_rule("bad tag", [{"url": "http://10.1.2.3/hook", "events": ["exploded"]}])
    assert {v.field for v in info.value.violations} == {"rule.tag", "rule.notifications[0].events"}
    with pytest.raises(InvalidArgumentError) as info:
        await alerting.client.create_alert_rule("checkout", [{"url": "http://10.1.2.3/hook"}])
    (violation,) = info.value.violations
    assert violation.field == "rule.notifications[0].url" and "SENTINEL_WEBHOOK_ALLOW" in violation.description
    with pytest.raises(InvalidArgumentError) as info:  # found by the SDK before any call
        await alerting.client.create_alert_rule("checkout", [{"url": alerting.receiver.url, "colour": "red"}])
    # Named as the API names it, with the same code.
    assert info.value.violations[0].field == "rule.notifications[0]"
    assert info.value.code is grpc.StatusCode.INVALID_ARGUMENT


async def test_deliveries_are_read_back_filtered_and_page_by_page(alerting: Alerting) -> None:
    client = alerting.client
    rule_a = await client.create_alert_rule("a", [{"url": alerting.receiver.url, "secret": "whsec_a"}])
    rule_b = await client.create_alert_rule("b", [{"url": alerting.receiver.url}])
    job_a = await alerting.fail_job("a")
    job_b = await alerting.fail_job("b")
    await wait_for(lambda: len(alerting.receiver.received) == 2, within=30, what="two webhooks")
    signed = next(r for r in alerting.receiver.received if r.json["job_id"] == job_a)
    assert signature_holds(signed, "whsec_a")

    async def delivered() -> list[Delivery] | None:
        found = [d async for d in client.deliveries()]
        return found if len(found) == 2 and all(d.state is DeliveryState.DELIVERED for d in found) else None

    both = await wait_for(delivered, within=30, what="both deliveries recorded as delivered")
    assert {(d.job_id, d.rule_id) for d in both} == {(job_a, rule_a.id), (job_b, rule_b.id)}
    one = next(d for d in both if d.job_id == job_a)
    assert (one.event, one.url, one.attempts, one.response_status, one.error) == (
        "failed",
        alerting.receiver.url.removesuffix("/hook") + "/…",
        1,
        200,
        "",
    )
    assert one.created_at is not None and one.last_attempt_at is not None and one.next_attempt_at is None
    assert '"event":"failed"' in one.body and one.response_body.startswith("answer 200")

    assert [d.job_id for d in (await client.list_deliveries(rule_id=rule_b.id)).items] == [job_b]
    assert [d.rule_id async for d in client.deliveries(job_id=job_a)] == [rule_a.id]
    assert (await client.list_deliveries(job_id=job_a, rule_id=rule_b.id)).items == ()
    assert [d async for d in client.deliveries(schedule_id="no-such-schedule")] == []
    first = await client.list_deliveries(page_size=1)
    assert len(first.items) == 1 and first.next_page_token
    assert [d.id async for d in client.deliveries(page_size=1)] == [d.id for d in both]
