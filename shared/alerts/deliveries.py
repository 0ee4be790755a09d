"""Webhook deliveries: one record per (event, notification), its attempts and the answers.

A delivery is a hash (`Keys.alert_delivery`, fields `shared.schema.DeliveryField`) made by
alert_outcome.lua, due in one zset (score = when its next attempt is due, ms), and listed in its
tenant's indexes — all, by schedule, by rule, by job — which ListDeliveries pages through newest
first. `claim_due` takes due deliveries under a lease (alert_claim.lua) and `record_answer` keeps
each answer (alert_record.lua): 2xx is DELIVERED; anything else is tried again after a backoff
(base × 1, 5, 30, 120, 600) until the last attempt, then FAILED. Deliveries, their indexes and
their answers expire after SENTINEL_WEBHOOK_RETENTION_DAYS. A delivery keeps its notification's URL
as stored (sealed when there is a key); ListDeliveries shows it masked (`shared.alerts.urls`).
"""

from __future__ import annotations

import dataclasses
import enum
import uuid
from dataclasses import dataclass
from typing import cast

from shared.alerts.storage import load_hashes, script
from shared.alerts.urls import shown_url
from shared.clock import now_ms
from shared.paging import Page, scan_index
from shared.queue import Queue
from shared.schema import DeliveryField
from shared.sealed import Sealer

__all__ = [
    "BACKOFF_STEPS",
    "ClaimedDelivery",
    "Delivery",
    "DeliveryState",
    "backoff_ms",
    "claim_due",
    "delivery_from_hash",
    "list_deliveries",
    "record_answer",
    "shown",
]

#: The retry delays as multiples of SENTINEL_WEBHOOK_BACKOFF_MS; later retries wait the last one.
BACKOFF_STEPS = (1, 5, 30, 120, 600)
#: The most of a receiver's answer kept.
MAX_RESPONSE_BYTES = 1024


class DeliveryState(enum.StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"


@dataclass(frozen=True)
class Delivery:
    delivery_id: str
    tenant_id: str
    event: str
    #: As stored (sealed when there is a key), or masked in what `list_deliveries` gives.
    url: str
    body: str
    state: DeliveryState = DeliveryState.PENDING
    job_id: str = ""
    schedule_id: str = ""
    rule_id: str = ""
    attempts: int = 0
    response_status: int = 0
    response_body: str = ""
    error: str = ""
    created_at_ms: int = 0
    last_attempt_at_ms: int = 0
    next_attempt_at_ms: int = 0


@dataclass(frozen=True)
class ClaimedDelivery:
    """A delivery taken for one attempt: what to send, and the lease to record the answer with."""

    delivery: Delivery
    sealed_secret: str
    token: str


def backoff_ms(attempts: int, base_ms: int) -> int:
    """How long to wait after the `attempts`-th failed attempt (1-based)."""
    return base_ms * BACKOFF_STEPS[min(max(attempts, 1), len(BACKOFF_STEPS)) - 1]


def _int(raw: dict[str, str], name: DeliveryField) -> int:
    value = raw.get(name, "")
    return int(value) if value.isdigit() else 0


def delivery_from_hash(raw: dict[str, str]) -> Delivery:
    try:
        state = DeliveryState(raw.get(DeliveryField.STATE, ""))
    except ValueError:
        state = DeliveryState.PENDING
    return Delivery(
        delivery_id=raw.get(DeliveryField.ID, ""),
        tenant_id=raw.get(DeliveryField.TENANT, ""),
        event=raw.get(DeliveryField.EVENT, ""),
        url=raw.get(DeliveryField.URL, ""),
        body=raw.get(DeliveryField.BODY, ""),
        state=state,
        job_id=raw.get(DeliveryField.JOB, ""),
        schedule_id=raw.get(DeliveryField.SCHEDULE, ""),
        rule_id=raw.get(DeliveryField.RULE, ""),
        attempts=_int(raw, DeliveryField.ATTEMPTS),
        response_status=_int(raw, DeliveryField.STATUS),
        response_body=raw.get(DeliveryField.RESPONSE, ""),
        error=raw.get(DeliveryField.ERROR, ""),
        created_at_ms=_int(raw, DeliveryField.CREATED),
        last_attempt_at_ms=_int(raw, DeliveryField.LAST_AT),
        next_attempt_at_ms=_int(raw, DeliveryField.NEXT_AT) if state is DeliveryState.PENDING else 0,
    )


def shown(delivery: Delivery, sealer: Sealer | None) -> Delivery:
    """`delivery` as a caller sees it: its URL masked."""
    return dataclasses.replace(delivery, url=shown_url(delivery.url, sealer))


async def list_deliveries(
    queue: Queue,
    *,
    tenant: str,
    sealer: Sealer | None,
    schedule_id: str = "",
    rule_id: str = "",
    job_id: str = "",
    page_size: int,
    page_token: str = "",
) -> Page[Delivery]:
    """A page of the tenant's deliveries as a caller sees them (`shown`), newest first, of one
    schedule, rule and/or job when named.

    The narrowest index named is read (job, then schedule, then rule); the other filters are applied
    to what it holds. A tenant's deliveries are on its shard, where its jobs' events are.
    """
    queue = queue.for_tenant(tenant)
    keys = queue.keys
    if job_id:
        index = keys.alert_deliveries(tenant, "job", job_id)
    elif schedule_id:
        index = keys.alert_deliveries(tenant, "schedule", schedule_id)
    elif rule_id:
        index = keys.alert_deliveries(tenant, "rule", rule_id)
    else:
        index = keys.alert_deliveries(tenant)

    def keep(d: Delivery) -> bool:
        return (
            d.tenant_id == tenant
            and (not job_id or d.job_id == job_id)
            and (not schedule_id or d.schedule_id == schedule_id)
            and (not rule_id or d.rule_id == rule_id)
        )

    page = await scan_index(
        queue.redis,
        index,
        load=lambda ids: load_hashes(queue, [keys.alert_delivery(i) for i in ids], delivery_from_hash),
        keep=keep,
        page_size=page_size,
        page_token=page_token,
    )
    return Page([shown(d, sealer) for d in page.items], page.next_token)


async def claim_due(queue: Queue, *, count: int, lease_ms: int) -> list[ClaimedDelivery]:
    """Take up to `count` due deliveries for one attempt each, under a lease of `lease_ms`."""
    token = uuid.uuid4().hex
    context = queue.context(count=count, lease_ms=lease_ms, token=token, delivery_prefix=queue.keys.alert_delivery(""))
    keys = [queue.keys.alert_due, queue.keys.alert_figures]
    rows = cast(list[list[object]], await script(queue, "alert_claim")(keys=keys, args=[context]))
    claimed = []
    for _, flat in rows:
        pairs = cast(list[str], flat)
        raw = dict(zip(pairs[::2], pairs[1::2], strict=True))
        claimed.append(
            ClaimedDelivery(delivery_from_hash(raw), sealed_secret=raw.get(DeliveryField.SECRET, ""), token=token)
        )
    return claimed


@dataclass(frozen=True)
class Answer:
    """How one attempt went: the receiver's status and body, or why there was none."""

    status: int = 0
    body: str = ""
    error: str = ""
    #: No point in trying again (the guard refused the target).
    final: bool = False

    @property
    def delivered(self) -> bool:
        return 200 <= self.status < 300


async def record_answer(
    queue: Queue, claimed: ClaimedDelivery, answer: Answer, *, max_attempts: int, backoff_base_ms: int
) -> DeliveryState | None:
    """Keep `answer` and decide what comes next; None when the lease was lost meanwhile."""
    attempts = claimed.delivery.attempts
    now = now_ms()
    give_up = answer.final or attempts >= max_attempts
    next_at = 0 if give_up else now + backoff_ms(attempts, backoff_base_ms)
    context = queue.context(
        now=now,
        id=claimed.delivery.delivery_id,
        token=claimed.token,
        delivered="1" if answer.delivered else "0",
        status=str(answer.status),
        response=answer.body[:MAX_RESPONSE_BYTES],
        error=answer.error[:1000],
        next_at=str(next_at),
        delivery_prefix=queue.keys.alert_delivery(""),
    )
    keys = queue.keys
    state = await script(queue, "alert_record")(
        keys=[keys.alert_delivery(claimed.delivery.delivery_id), keys.alert_due, keys.alert_figures], args=[context]
    )
    return DeliveryState(state) if state else None
