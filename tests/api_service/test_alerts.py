"""The Alerts service through a real grpc.aio server with API keys, on a real redis-server: rules
and deliveries are the caller's tenant's, viewers read, submitters write."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
import redis.asyncio as aioredis
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from api_service.server import ApiServer
from protos import sentinel_pb2 as pb
from protos import sentinel_pb2_grpc as pb_grpc
from shared.model import JobState
from shared.queue import Queue
from shared.sealed import new_secret_key
from shared.settings import AlertSettings, ApiSettings, QueueSettings, RedisSettings, SecuritySettings
from tests.queue_helpers import run_jobs, submit_jobs
from tests.support import RedisProcess, stored_text, wait_for, write_keys
from tests.webhook_receiver import Receiver, run_receiver

Code = grpc.StatusCode


@dataclass
class Api:
    stub: pb_grpc.AlertsStub
    keys: dict[str, str]
    queue: Queue
    receiver: Receiver

    def md(self, who: str) -> tuple[tuple[str, str], ...]:
        return (("authorization", f"Bearer {self.keys[who]}"),)

    async def rule(self, who: str, tag: str, *, url: str = "", secret: str = "whsec_1") -> pb.AlertRule:
        notification = pb.Notification(url=url or self.receiver.url, secret=secret)
        request = pb.CreateAlertRuleRequest(rule=pb.AlertRule(tag=tag, notifications=[notification]))
        return await self.stub.CreateAlertRule(request, metadata=self.md(who))

    async def deliveries(self, who: str, **filters: object) -> list[pb.Delivery]:
        reply = await self.stub.ListDeliveries(pb.ListDeliveriesRequest(**filters), metadata=self.md(who))  # type: ignore[arg-type]
        return list(reply.deliveries)


@pytest.fixture
async def api(redis_server: RedisProcess, redis_client: aioredis.Redis, tmp_path: Path) -> AsyncIterator[Api]:
    keys_file = tmp_path / "keys.json"
    made = write_keys(keys_file)
    security = SecuritySettings(auth_disabled=False, keys_file=str(keys_file), secret_key=new_secret_key())
    alerts = AlertSettings(allow=("127.0.0.1",), poll_ms=50)
    server = await ApiServer.start(
        redis=RedisSettings(url=redis_server.url, configured=True),
        queue_settings=QueueSettings(),
        api=ApiSettings(host="127.0.0.1", port=0, alerts=alerts),
        security=security,
    )
    try:
        async with (
            grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel,
            run_receiver() as receiver,
        ):
            queue = Queue.open(redis_client, QueueSettings())
            await queue.ensure_groups()
            yield Api(stub=pb_grpc.AlertsStub(channel), keys=made, queue=queue, receiver=receiver)
    finally:
        await server.stop(0)


async def failure(call: Awaitable[object]) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call
    return info.value


def violations(error: grpc.aio.AioRpcError) -> dict[str, str]:
    status = rpc_status.from_call(error)
    assert status is not None
    found = {}
    for detail in status.details:
        bad = error_details_pb2.BadRequest()
        detail.Unpack(bad)
        found.update({v.field: v.description for v in bad.field_violations})
    return found


async def test_a_rule_is_stored_with_its_secret_sealed_and_never_returned(
    api: Api, redis_client: aioredis.Redis
) -> None:
    rule = await api.rule("acme-submitter", "checkout", secret="whsec_top_secret")
    assert rule.rule_id and rule.tag == "checkout" and rule.tenant_id == "acme" and rule.created_at.seconds
    (notification,) = rule.notifications
    assert notification.secret == "" and notification.secret_set
    assert list(notification.events) == ["failed", "recovered"]  # none asked for: the defaults
    stored = str(await redis_client.hget(api.queue.keys.alert_rule(rule.rule_id), "notifications"))
    assert "sealed:v1:" in stored and "whsec_top_secret" not in stored
    listed = await api.stub.ListAlertRules(pb.ListAlertRulesRequest(), metadata=api.md("acme-viewer"))
    assert [r.rule_id for r in listed.rules] == [rule.rule_id]
    assert listed.rules[0].notifications[0].secret == ""


async def test_rules_are_the_tenants_own_and_viewers_only_read(api: Api) -> None:
    rule = await api.rule("acme-submitter", "checkout")
    assert (await failure(api.rule("acme-viewer", "checkout"))).code() is Code.PERMISSION_DENIED
    other = await api.stub.ListAlertRules(pb.ListAlertRulesRequest(), metadata=api.md("globex-admin"))
    assert list(other.rules) == []
    delete = pb.DeleteAlertRuleRequest(rule_id=rule.rule_id)
    assert (await failure(api.stub.DeleteAlertRule(delete, metadata=api.md("globex-admin")))).code() is Code.NOT_FOUND
    assert (
        await failure(api.stub.DeleteAlertRule(delete, metadata=api.md("acme-viewer")))
    ).code() is Code.PERMISSION_DENIED
    assert (await api.stub.DeleteAlertRule(delete, metadata=api.md("acme-submitter"))).deleted
    assert (await failure(api.stub.DeleteAlertRule(delete, metadata=api.md("acme-submitter")))).code() is Code.NOT_FOUND
    mine = await api.stub.ListAlertRules(pb.ListAlertRulesRequest(), metadata=api.md("acme-viewer"))
    assert list(mine.rules) == []


async def test_a_bad_rule_names_each_bad_field(api: Api) -> None:
    notifications = [
        pb.Notification(url="ftp://hooks.example.com/x"),
        pb.Notification(url="https://hooks.example.com/x", events=["failed", "exploded"]),
    ]
    request = pb.CreateAlertRuleRequest(rule=pb.AlertRule(tag="bad tag", notifications=notifications))
    error = await failure(api.stub.CreateAlertRule(request, metadata=api.md("acme-submitter")))
    assert error.code() is Code.INVALID_ARGUMENT
    assert set(violations(error)) == {"rule.tag", "rule.notifications[0].url", "rule.notifications[1].events"}
    empty = pb.CreateAlertRuleRequest(rule=pb.AlertRule(tag="checkout"))
    error = await failure(api.stub.CreateAlertRule(empty, metadata=api.md("acme-submitter")))
    assert set(violations(error)) == {"rule.notifications"}


async def test_a_private_target_not_allowed_is_refused_when_the_rule_is_made(api: Api) -> None:
    error = await failure(api.rule("acme-submitter", "checkout", url="http://10.1.2.3:8080/hook"))
    assert error.code() is Code.INVALID_ARGUMENT
    reason = violations(error)["rule.notifications[0].url"]
    assert "non-public address" in reason and "SENTINEL_WEBHOOK_ALLOW" in reason
    assert (await api.rule("acme-submitter", "checkout")).rule_id  # 127.0.0.1 is allowed by this API


async def fail_job(api: Api, tenant: str, tags: tuple[str, ...]) -> str:
    (job_id,) = await submit_jobs(api.queue, 1, tenant=tenant, tags=tags)
    assert await run_jobs(api.queue, 1, state=JobState.FAILED) == [job_id]
    return job_id


async def test_deliveries_are_listed_by_rule_and_job_for_their_tenant_only(api: Api) -> None:
    rule_a = await api.rule("acme-submitter", "a")
    rule_b = await api.rule("acme-submitter", "b")
    globex_rule = await api.rule("globex-submitter", "a")
    job_a = await fail_job(api, "acme", ("a",))
    job_b = await fail_job(api, "acme", ("b",))
    job_g = await fail_job(api, "globex", ("a",))
    await wait_for(lambda: len(api.receiver.received) == 3, within=30, what="three deliveries")

    async def delivered(who: str) -> list[pb.Delivery] | None:
        found = await api.deliveries(who)
        return found if found and all(d.state == pb.DELIVERY_STATE_DELIVERED for d in found) else None

    acme = await wait_for(lambda: delivered("acme-viewer"), what="acme's deliveries recorded")
    assert sorted((d.job_id, d.rule_id) for d in acme) == sorted([(job_a, rule_a.rule_id), (job_b, rule_b.rule_id)])
    one = next(d for d in acme if d.job_id == job_a)
    masked = api.receiver.url.removesuffix("/hook") + "/…"  # the URL is never answered whole
    assert (one.event, one.url, one.attempts, one.response_status) == ("failed", masked, 1, 200)
    assert one.created_at.seconds and one.last_attempt_at.seconds and not one.next_attempt_at.seconds
    assert '"event":"failed"' in one.body and one.response_body.startswith("answer 200 to request")
    assert [d.job_id for d in await api.deliveries("acme-viewer", rule_id=rule_a.rule_id)] == [job_a]
    assert [d.rule_id for d in await api.deliveries("acme-viewer", job_id=job_b)] == [rule_b.rule_id]
    assert await api.deliveries("acme-viewer", job_id=job_a, rule_id=rule_b.rule_id) == []
    assert await api.deliveries("acme-viewer", schedule_id="no-such-schedule") == []
    assert await api.deliveries("acme-viewer", job_id=job_g) == []  # globex's job
    assert [d.job_id for d in await api.deliveries("globex-viewer")] == [job_g]
    assert await api.deliveries("globex-viewer", rule_id=rule_a.rule_id) == []
    assert [d.rule_id for d in await api.deliveries("globex-viewer")] == [globex_rule.rule_id]
    first = await api.stub.ListDeliveries(pb.ListDeliveriesRequest(page_size=1), metadata=api.md("acme-viewer"))
    assert len(first.deliveries) == 1 and first.next_page_token
    rest = await api.stub.ListDeliveries(
        pb.ListDeliveriesRequest(page_size=1, page_token=first.next_page_token), metadata=api.md("acme-viewer")
    )
    assert {first.deliveries[0].job_id, rest.deliveries[0].job_id} == {job_a, job_b}


async def test_a_webhook_url_is_answered_only_masked_and_stored_sealed(api: Api, redis_client: aioredis.Redis) -> None:
    """Its credentials and token reach the receiver, and nobody else: not a viewer, not Redis."""
    token = "tok_0123456789abcdefWXYZ"
    url = api.receiver.url.replace("http://", "http://user:hunter2@") + f"?token={token}"
    masked = api.receiver.url + "?…WXYZ"  # http://127.0.0.1:<port>/hook?…WXYZ
    made = await api.rule("acme-submitter", "checkout", url=url)
    assert made.notifications[0].url == masked
    listed = await api.stub.ListAlertRules(pb.ListAlertRulesRequest(), metadata=api.md("acme-viewer"))
    assert [n.url for r in listed.rules for n in r.notifications] == [masked]

    job_id = await fail_job(api, "acme", ("checkout",))
    (received,) = await wait_for(lambda: api.receiver.received, within=30, what="the delivery")
    assert received.headers["Authorization"] == "Basic " + base64.b64encode(b"user:hunter2").decode()

    async def delivered() -> pb.Delivery | None:
        found = await api.deliveries("acme-viewer", job_id=job_id)
        return found[0] if found and found[0].state == pb.DELIVERY_STATE_DELIVERED else None

    delivery = await wait_for(delivered, what="the delivery recorded")
    assert delivery.url == masked
    stored = await stored_text(redis_client)
    assert job_id in stored and "sealed:v1:" in stored
    assert "hunter2" not in stored and token not in stored and "user:" not in stored
