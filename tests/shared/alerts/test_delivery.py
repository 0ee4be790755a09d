"""Deliveries through a real HTTP receiver: signed, retried with backoff, guarded, under leases."""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import pytest

from shared.alerts import rules
from shared.alerts.deliveries import Answer, Delivery, DeliveryState, claim_due, record_answer
from shared.alerts.dispatcher import Dispatcher
from shared.alerts.guard import webhook_policy
from shared.alerts.signing import sign, signature_header
from shared.metrics import AlertFigures, alert_figures
from shared.model import JobState
from shared.notifications import Notification
from shared.settings import AlertSettings
from tests.queue_helpers import TENANT
from tests.shared.alerts.conftest import Alerting, drain
from tests.support import closed_port, wait_for
from tests.webhook_receiver import Receiver, hmac_sha256, run_receiver, signature_holds


def test_the_signature_is_the_hmac_sha256_of_the_time_and_the_raw_body() -> None:
    body = b'{"event":"failed","job_id":"j-1"}'
    assert sign("whsec_test", 1767225600, body) == hmac_sha256(b"whsec_test", b"1767225600." + body)
    header = signature_header("whsec_test", 1767225600, body)
    assert header == f"t=1767225600,v1={hmac_sha256(b'whsec_test', b'1767225600.' + body)}"
    assert sign("whsec_test", 1767225601, body) != sign("whsec_test", 1767225600, body)
    assert sign("another", 1767225600, body) != sign("whsec_test", 1767225600, body)


@asynccontextmanager
async def dispatching(alerting: Alerting, settings: AlertSettings | None = None) -> AsyncIterator[Dispatcher]:
    settings = settings or alerting.settings
    dispatcher = Dispatcher(alerting.queue, settings=settings, sealer=alerting.sealer, policy=webhook_policy(settings))
    dispatcher.start()
    try:
        yield dispatcher
    finally:
        await dispatcher.stop()


async def failing_check(alerting: Alerting, receiver: Receiver, *, secret: str = "whsec_test") -> None:
    """A rule whose check fails once, handled: one `failed` delivery to the receiver is due."""
    consumer = await alerting.consumer()
    await alerting.rule(receiver.url, secret=secret)
    await alerting.end_job(JobState.FAILED)
    await drain(consumer)


async def test_a_500_is_tried_again_after_the_backoff_and_each_answer_is_recorded(alerting: Alerting) -> None:
    async with run_receiver() as receiver, dispatching(alerting):
        receiver.answers = [500]
        await failing_check(alerting, receiver)
        first = await wait_for(
            lambda: _only(alerting, lambda d: d.attempts == 1 and d.response_status == 500), what="the answer 500"
        )
        assert first.state is DeliveryState.PENDING and first.error == "the receiver answered HTTP 500"
        assert first.response_body == "answer 500 to request 1"
        assert first.next_attempt_at_ms == first.last_attempt_at_ms + alerting.settings.backoff_ms
        second = await wait_for(lambda: _only(alerting, lambda d: d.state is DeliveryState.DELIVERED))
    assert (second.attempts, second.response_status, second.error) == (2, 200, "")
    assert second.response_body == "answer 200 to request 2" and second.next_attempt_at_ms == 0
    assert [r.event for r in receiver.received] == ["failed", "failed"]
    assert receiver.received[1].at_ms >= first.next_attempt_at_ms  # not before the backoff ended
    for received in receiver.received:
        assert received.headers["Content-Type"] == "application/json"
        assert received.headers["Sentinel-Delivery"] == second.delivery_id
        assert received.body.decode() == second.body  # the same body each attempt, signed anew
        assert signature_holds(received, "whsec_test")
        assert not signature_holds(received, "another secret")
    assert json.loads(second.body)["delivery_id"] == second.delivery_id


async def test_an_owners_alerts_reach_a_receiver_in_order_while_an_earlier_one_is_retried(alerting: Alerting) -> None:
    """A receiver that was down while a check failed and then recovered gets `failed`, then
    `recovered`: the later alert waits behind the one being retried, though it was due at once."""
    settings = dataclasses.replace(alerting.settings, backoff_ms=1500)
    async with run_receiver() as receiver, dispatching(alerting, settings):
        receiver.answers = [500]
        consumer = await alerting.consumer()
        await alerting.rule(receiver.url)
        await alerting.end_job(JobState.FAILED)
        await drain(consumer)
        await wait_for(lambda: _only(alerting, lambda d: d.response_status == 500), what="the failure's first answer")
        await alerting.end_job(JobState.COMPLETED)  # the recovery, while the failure waits for its retry
        await drain(consumer)

        async def both_delivered() -> list[Delivery] | None:
            made = await alerting.deliveries()
            return made if len(made) == 2 and all(d.state is DeliveryState.DELIVERED for d in made) else None

        failed, recovered = await wait_for(both_delivered, what="both alerts delivered")
    assert [r.event for r in receiver.received] == ["failed", "failed", "recovered"]
    assert (failed.event, failed.attempts, recovered.event, recovered.attempts) == ("failed", 2, "recovered", 1)
    assert recovered.last_attempt_at_ms >= failed.last_attempt_at_ms


async def test_only_a_lanes_head_is_due_so_a_receiver_that_is_down_holds_up_no_other(alerting: Alerting) -> None:
    """Alerts waiting behind a receiver's first one are not in the due set: the dispatcher never scans
    them, and another receiver's alert goes at once."""
    consumer = await alerting.consumer()
    down = await alerting.rule(f"http://127.0.0.1:{closed_port()}/hook", tag="checkout")
    async with run_receiver() as receiver:
        other = await alerting.rule(receiver.url, tag="search")
        for state in (JobState.FAILED, JobState.COMPLETED) * 3:  # six alerts for the dead receiver, in order
            await alerting.end_job(state, tags=("checkout",))
        await alerting.end_job(JobState.FAILED, tags=("search",))
        await drain(consumer)
        redis, keys = alerting.queue.redis, alerting.queue.keys
        waiting = await alerting.deliveries(rule_id=down.rule_id)
        assert [d.event for d in waiting] == ["failed", "recovered"] * 3
        [lane] = {str(await redis.hget(keys.alert_delivery(d.delivery_id), "lane")) for d in waiting}
        assert await redis.zrange(lane, 0, -1) == [d.delivery_id for d in waiting]  # in the order made
        [sent] = await alerting.deliveries(rule_id=other.rule_id)
        assert sorted(await redis.zrange(keys.alert_due, 0, -1)) == sorted([waiting[0].delivery_id, sent.delivery_id])
        settings = dataclasses.replace(alerting.settings, backoff_ms=60_000)
        async with dispatching(alerting, settings):
            await wait_for(
                lambda: [r.event for r in receiver.received] == ["failed"], what="the other receiver's alert"
            )


async def test_a_delivery_given_up_lets_the_next_one_of_its_receiver_go(alerting: Alerting) -> None:
    settings = dataclasses.replace(alerting.settings, max_attempts=2, backoff_ms=300)
    async with run_receiver() as receiver, dispatching(alerting, settings):
        receiver.answers = [503, 503]
        consumer = await alerting.consumer()
        await alerting.rule(receiver.url)
        await alerting.end_job(JobState.FAILED)
        await drain(consumer)
        await wait_for(lambda: _only(alerting, lambda d: d.attempts == 1), what="the failure's first attempt")
        await alerting.end_job(JobState.COMPLETED)
        await drain(consumer)

        async def settled() -> list[Delivery] | None:
            made = await alerting.deliveries()
            done = all(d.state is not DeliveryState.PENDING for d in made)
            return made if len(made) == 2 and done else None

        failed, recovered = await wait_for(settled, what="the failure given up and the recovery delivered")
    assert (failed.state, recovered.state) == (DeliveryState.FAILED, DeliveryState.DELIVERED)
    # /metrics counts both ends: a lost alert is what an operator alerts on.
    assert await alert_figures(alerting.queue) == AlertFigures(pending=0, delivered=1, failed=1)
    assert [r.event for r in receiver.received] == ["failed", "failed", "recovered"]  # 503, 503, then 200


async def test_a_delivery_is_given_up_after_the_last_attempt(
    alerting: Alerting, caplog: pytest.LogCaptureFixture
) -> None:
    settings = dataclasses.replace(alerting.settings, max_attempts=2, backoff_ms=50)
    caplog.set_level(logging.INFO, logger="shared.alerts.dispatcher")
    async with run_receiver() as receiver, dispatching(alerting, settings):
        receiver.answers = [503, 503, 503]
        await failing_check(alerting, receiver)
        failed = await wait_for(lambda: _only(alerting, lambda d: d.state is DeliveryState.FAILED))
    assert (failed.attempts, failed.response_status, failed.next_attempt_at_ms) == (2, 503, 0)
    assert len(receiver.received) == 2
    said = [(r.levelno, r.getMessage()) for r in caplog.records if r.name == "shared.alerts.dispatcher"]
    assert [level for level, message in said if message.endswith("-> failed")] == [logging.WARNING]  # lost: said so
    assert [level for level, message in said if message.endswith("-> pending")] == [logging.INFO]


async def test_a_redirect_is_an_answer_not_followed(alerting: Alerting) -> None:
    settings = dataclasses.replace(alerting.settings, max_attempts=1)
    async with run_receiver() as receiver, dispatching(alerting, settings):
        receiver.answers = [302]
        await failing_check(alerting, receiver)
        failed = await wait_for(lambda: _only(alerting, lambda d: d.state is DeliveryState.FAILED))
    assert failed.response_status == 302 and len(receiver.received) == 1


async def test_a_private_target_not_allowed_is_refused_at_delivery(alerting: Alerting) -> None:
    """`localhost` is a name, so the rule was stored; resolved at delivery, it is loopback."""
    closed = dataclasses.replace(alerting.settings, allow=())
    async with run_receiver() as receiver, dispatching(alerting, closed):
        local = receiver.url.replace("127.0.0.1", "localhost")
        await failing_check(alerting, dataclasses.replace(receiver, url=local))
        failed = await wait_for(lambda: _only(alerting, lambda d: d.state is DeliveryState.FAILED))
    assert failed.attempts == 1 and failed.response_status == 0
    assert "refused by the webhook guard" in failed.error and "SENTINEL_WEBHOOK_ALLOW" in failed.error
    assert receiver.received == []


async def test_a_refused_connection_is_worded_as_a_request_step_words_it(alerting: Alerting) -> None:
    settings = dataclasses.replace(alerting.settings, max_attempts=1)
    port = closed_port()
    async with dispatching(alerting, settings):
        await failing_check(alerting, Receiver(url=f"http://127.0.0.1:{port}/hook"))
        failed = await wait_for(lambda: _only(alerting, lambda d: d.state is DeliveryState.FAILED))
    assert failed.error.startswith(f"no answer (cannot connect to 127.0.0.1:{port}: "), failed.error
    assert "ClientConnectorError" not in failed.error and "ssl:" not in failed.error


async def test_a_url_stored_sealed_is_sent_to_and_one_stored_without_a_key_too(alerting: Alerting) -> None:
    async with run_receiver() as receiver, dispatching(alerting):
        consumer = await alerting.consumer()
        sealed = await alerting.rule(receiver.url, tag="sealed")
        plain = rules.AlertRule(rule_id="", tenant_id="", tag="plain", notifications=(Notification(url=receiver.url),))
        policy = webhook_policy(alerting.settings)
        unsealed = await rules.create_rule(alerting.queue, plain, tenant=TENANT, sealer=None, policy=policy)
        stored = {
            rule.tag: str(
                await alerting.queue.redis.hget(alerting.queue.keys.alert_rule(rule.rule_id), "notifications")
            )
            for rule in (sealed, unsealed)
        }
        assert "sealed:v1:" in stored["sealed"] and "127.0.0.1" not in stored["sealed"]
        assert receiver.url in stored["plain"]  # no key to seal it with: kept as given, and it works
        await alerting.end_job(JobState.FAILED, tags=("sealed", "plain"))
        await drain(consumer)
        await wait_for(lambda: len(receiver.received) == 2, what="both deliveries")
    (made,) = {d.url for d in await alerting.deliveries()}
    assert made == receiver.url.removesuffix("/hook") + "/…"  # listed masked, sealed or not


async def test_an_unsigned_notification_sends_no_signature(alerting: Alerting) -> None:
    async with run_receiver() as receiver, dispatching(alerting):
        await failing_check(alerting, receiver, secret="")
        await wait_for(lambda: _only(alerting, lambda d: d.state is DeliveryState.DELIVERED))
    assert "Sentinel-Signature" not in receiver.received[0].headers


async def test_an_attempt_whose_lease_ran_out_cannot_record_over_the_next(alerting: Alerting) -> None:
    await failing_check(alerting, Receiver(url="https://hooks.example.com/a"))
    (slow,) = await claim_due(alerting.queue, count=10, lease_ms=1)
    (taken_over,) = await wait_for(lambda: claim_due(alerting.queue, count=10, lease_ms=60_000))
    assert taken_over.delivery.attempts == 2
    late = await record_answer(alerting.queue, slow, Answer(status=200), max_attempts=5, backoff_base_ms=10)
    assert late is None
    assert (await alerting.deliveries())[0].state is DeliveryState.PENDING
    done = await record_answer(alerting.queue, taken_over, Answer(status=204), max_attempts=5, backoff_base_ms=10)
    assert done is DeliveryState.DELIVERED
    assert await claim_due(alerting.queue, count=10, lease_ms=1) == []


async def _only(alerting: Alerting, test: Callable[[Delivery], bool]) -> Delivery | None:
    """The one delivery there is, once `test` holds for it."""
    made = await alerting.deliveries()
    assert len(made) <= 1, made
    return made[0] if made and test(made[0]) else None
