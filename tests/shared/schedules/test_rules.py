"""A schedule's notifications are checked as an alert rule's are: their form, then their targets by
the webhook policy (SENTINEL_WEBHOOK_ALLOW), when the schedule is created and when it is updated."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Awaitable
from typing import Any

import pytest
import redis.asyncio as aioredis

from shared.alerts import rules as alert_rules
from shared.alerts.guard import PUBLIC_ONLY, webhook_policy
from shared.errors import ValidationError
from shared.notifications import Notification
from shared.queue import Queue
from shared.schedules import store, timing
from shared.schedules.model import ScheduleSpec
from shared.schedules.rules import validate_spec
from shared.settings import AlertSettings, QueueSettings
from tests.shared.schedules.helpers import TENANT, spec

PRIVATE = "http://10.20.1.2:8080/hook"
ALLOWING = webhook_policy(AlertSettings(allow=("10.20.0.0/16",)))


@pytest.fixture
async def queue(redis_client: aioredis.Redis) -> AsyncIterator[Queue]:
    yield Queue.open(redis_client, QueueSettings())


def notifying(*urls: str) -> ScheduleSpec:
    return dataclasses.replace(spec(), notifications=tuple(Notification(url=u) for u in urls))


async def violations(call: Awaitable[object]) -> dict[str, str]:
    with pytest.raises(ValidationError) as info:
        await call
    return {v.field: v.description for v in info.value.violations}


async def test_a_private_target_is_refused_naming_the_field_unless_allowed() -> None:
    found = await violations(validate_spec(notifying("https://hooks.example.test/x", PRIVATE), policy=PUBLIC_ONLY))
    assert list(found) == ["schedule.notifications[1].url"]
    assert "non-public address" in found["schedule.notifications[1].url"]
    assert "SENTINEL_WEBHOOK_ALLOW" in found["schedule.notifications[1].url"]
    await validate_spec(notifying(PRIVATE), policy=ALLOWING)


async def test_a_schedule_and_an_alert_rule_are_refused_the_same_target_for_the_same_reason(queue: Queue) -> None:
    scheduled = await violations(validate_spec(notifying(PRIVATE), policy=PUBLIC_ONLY))
    rule = alert_rules.AlertRule(rule_id="", tenant_id="", tag="t", notifications=(Notification(url=PRIVATE),))
    ruled = await violations(alert_rules.create_rule(queue, rule, tenant=TENANT, sealer=None, policy=PUBLIC_ONLY))
    assert scheduled["schedule.notifications[0].url"] == ruled["rule.notifications[0].url"]


async def test_a_malformed_url_is_named_before_any_target_check() -> None:
    found = await violations(validate_spec(notifying("ftp://10.20.1.2/x"), policy=PUBLIC_ONLY))
    assert found == {"schedule.notifications[0].url": "an absolute http(s) URL"}


async def test_create_and_update_check_targets_with_the_policy_given(queue: Queue) -> None:
    found = await violations(store.create_schedule(queue, notifying(PRIVATE), tenant=TENANT, sealer=None))
    assert list(found) == ["schedule.notifications[0].url"]
    assert not (await store.list_schedules(queue, tenant=TENANT, page_size=10)).items

    made = await store.create_schedule(queue, notifying(PRIVATE), tenant=TENANT, sealer=None, policy=ALLOWING)
    assert [n.url for n in made.spec.notifications] == [PRIVATE]
    other = "http://192.168.7.7/hook"
    found = await violations(
        store.update_schedule(
            queue,
            made.schedule_id,
            notifying(other),
            paths=["notifications"],
            tenant=TENANT,
            sealer=None,
            policy=ALLOWING,
        )
    )
    assert list(found) == ["schedule.notifications[0].url"]
    kept = await store.get_schedule(queue, made.schedule_id, tenant=TENANT)
    assert [n.url for n in kept.spec.notifications] == [PRIVATE]


async def test_an_update_checks_a_timing_only_when_it_changes(queue: Queue, monkeypatch: pytest.MonkeyPatch) -> None:
    """A cron's shortest gap (what bounds its jitter) takes up to tens of ms to find: a rename, a pause
    note or new notifications do not look for it again; a new cron or jitter does, and is refused."""
    made = await store.create_schedule(queue, spec(cron="*/5 * * * *", jitter_ms=60_000), tenant=TENANT, sealer=None)
    searched: list[int] = []
    search = timing.shortest_gap_ms

    def counting(*args: Any, **kwargs: Any) -> int:
        searched.append(1)
        return search(*args, **kwargs)

    monkeypatch.setattr(timing, "shortest_gap_ms", counting)
    renamed = dataclasses.replace(made.spec, name="renamed")
    changed = await store.update_schedule(queue, made.schedule_id, renamed, paths=["name"], tenant=TENANT, sealer=None)
    assert changed.spec.name == "renamed" and not searched
    longer = dataclasses.replace(made.spec, timing=dataclasses.replace(made.spec.timing, jitter_ms=300_000))
    found = await violations(
        store.update_schedule(queue, made.schedule_id, longer, paths=["jitter_ms"], tenant=TENANT, sealer=None)
    )
    assert list(found) == ["schedule.jitter_ms"] and searched
