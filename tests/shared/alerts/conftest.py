"""Alerts against a real redis-server: jobs end as an executor would end them, the events stream is
read by real consumers, rules are stored as the API stores them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from typing import cast

import pytest
import redis.asyncio as aioredis

from shared.alerts import rules
from shared.alerts.consumer import READ_PAUSE_S, EventConsumer
from shared.alerts.deliveries import Delivery, list_deliveries
from shared.alerts.guard import webhook_policy
from shared.model import JobState
from shared.notifications import Notification
from shared.queue import Queue
from shared.sealed import Sealer, new_secret_key
from shared.settings import AlertSettings, QueueSettings
from shared.streams import Entry
from tests.queue_helpers import TENANT, run_jobs, submit_jobs
from tests.support import RedisProcess

#: Fast enough for tests: backoff base 200 ms, stale events taken over after 300 ms idle.
SETTINGS = AlertSettings(allow=("127.0.0.1",), backoff_ms=200, timeout_ms=5000, poll_ms=50, claim_idle_ms=300)
#: As SETTINGS, but no entry is taken over within a test: on a loaded machine a replica can hold an
#: entry past 300 ms, and the other then handles it again (alerting once, by design), so a test that
#: counts each entry handled exactly once runs its replicas with these.
NO_TAKE_OVER = replace(SETTINGS, claim_idle_ms=600_000)


@dataclass
class Alerting:
    queue: Queue
    redis_url: str
    sealer: Sealer
    settings: AlertSettings
    readers: list[aioredis.Redis]
    ended: list[str]  # the ids of the jobs end_job ended, in order

    async def rule(
        self,
        url: str,
        *,
        tag: str = "checkout",
        events: tuple[str, ...] = ("failed", "recovered"),
        secret: str = "",
        after_failures: int = 1,
        format: str = "sentinel",
    ) -> rules.AlertRule:
        notification = Notification(url=url, events=events, secret=secret, after_failures=after_failures, format=format)
        wanted = rules.AlertRule(rule_id="", tenant_id="", tag=tag, notifications=(notification,))
        return await rules.create_rule(
            self.queue, wanted, tenant=TENANT, sealer=self.sealer, policy=webhook_policy(self.settings)
        )

    async def end_job(
        self,
        state: JobState,
        *,
        tags: tuple[str, ...] = ("checkout",),
        name: str = "t",
        schedule_id: str = "",
        **kw: str,
    ) -> str:
        """Submit one job (fired by `schedule_id`, if any) and end it in `state` as an executor would; its id."""
        (job_id,) = await submit_jobs(self.queue, 1, tags=tags, name=name, schedule_id=schedule_id)
        (ran,) = await run_jobs(self.queue, 1, state=state, **kw)  # type: ignore[arg-type]
        assert ran == job_id
        self.ended.append(job_id)
        return job_id

    async def consumer(
        self, name: str = "replica-1", *, read_pause_s: float = READ_PAUSE_S, settings: AlertSettings | None = None
    ) -> EventConsumer:
        """A replica's consumer, its group made (at the stream's end) before any job ends."""
        reader = aioredis.Redis.from_url(self.redis_url, decode_responses=True, single_connection_client=True)
        self.readers.append(reader)
        consumer = EventConsumer(
            self.queue, reader, consumer=name, settings=settings or self.settings, read_pause_s=read_pause_s
        )
        await consumer.ensure_group()
        return consumer

    async def deliveries(self, **filters: str) -> list[Delivery]:
        """Every delivery of the tenant, filtered as ListDeliveries filters, in the order their jobs
        ended (deliveries made within one millisecond have no order of their own); one job's by event."""
        page = await list_deliveries(self.queue, tenant=TENANT, sealer=self.sealer, page_size=500, **filters)
        order = {job_id: i for i, job_id in enumerate(self.ended)}
        return sorted(page.items, key=lambda d: (order.get(d.job_id, -1), d.event))


async def entries(alerting: Alerting, *kinds: str) -> list[Entry]:
    """The events-stream entries of these kinds, oldest first."""
    found = cast(list[Entry], await alerting.queue.redis.xrange(alerting.queue.keys.events))
    return [(entry_id, fields) for entry_id, fields in found if fields["kind"] in kinds]


async def drain(consumer: EventConsumer) -> int:
    """Read until the consumer finds nothing new; how many entries it handled."""
    total = 0
    for _ in range(100):
        handled = await consumer.round(block_ms=1)
        total += handled
        if not handled:
            return total
    raise AssertionError("the events stream never ran dry")


@pytest.fixture
async def alerting(redis_server: RedisProcess, redis_client: aioredis.Redis) -> AsyncIterator[Alerting]:
    queue = Queue.open(redis_client, QueueSettings())
    await queue.ensure_groups()
    made = Alerting(
        queue=queue,
        redis_url=redis_server.url,
        sealer=Sealer(new_secret_key()),
        settings=SETTINGS,
        readers=[],
        ended=[],
    )
    try:
        yield made
    finally:
        for reader in made.readers:
            await reader.aclose()
