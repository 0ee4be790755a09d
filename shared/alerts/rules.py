"""Tenant-wide alert rules: the notifications of every job carrying a tag.

A rule is a hash (`Keys.alert_rule`) listed in its tenant's zset (newest first) and in the set of
its tenant's rules for its tag, which the consumer reads to find the rules a job answers to.
Secrets are sealed (`shared.sealed`) before anything is stored and leave only to sign a delivery;
URLs are sealed too when there is a key, and leave only to be sent to: what a caller is given of a
rule (`create_rule`, `list_rules`) shows each URL masked (`shared.alerts.urls`).
Rules are tenant-scoped: another tenant's rule is `NotFoundError`, like an unknown one.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

from shared.alerts.guard import webhook_violations
from shared.alerts.storage import load_hashes
from shared.clock import now_ms
from shared.errors import FieldViolation, LimitError, NotFoundError, ValidationError
from shared.navigation_policy import NavigationPolicy
from shared.notifications import Notification
from shared.paging import Page, scan_index
from shared.queue import Queue
from shared.schema import AlertRuleField
from shared.sealed import Sealer
from shared.stored_notifications import (
    notifications_from_json,
    notifications_to_json,
    seal_notifications,
    shown_notifications,
)
from shared.validation import MAX_TAG_CHARS, TAG_RE

__all__ = [
    "MAX_RULES",
    "AlertRule",
    "create_rule",
    "delete_rule",
    "list_rules",
    "rules_for_tags",
    "shown",
]

#: Most rules one tenant may have.
MAX_RULES = 100


@dataclass(frozen=True)
class AlertRule:
    rule_id: str
    tenant_id: str
    tag: str
    notifications: tuple[Notification, ...]
    created_at_ms: int = 0


def shown(rule: AlertRule, sealer: Sealer | None) -> AlertRule:
    """`rule` as a caller sees it: each URL masked (its secret stays sealed: only whether one is set shows)."""
    return dataclasses.replace(rule, notifications=shown_notifications(rule.notifications, sealer))


async def _validate(rule: AlertRule, policy: NavigationPolicy) -> None:
    found: list[FieldViolation] = []
    if not TAG_RE.fullmatch(rule.tag):
        found.append(FieldViolation("rule.tag", f"must be 1 to {MAX_TAG_CHARS} letters, digits, '.', '_', ':' or '-'"))
    if not rule.notifications:
        found.append(FieldViolation("rule.notifications", "at least one notification"))
    found += await webhook_violations(rule.notifications, policy, prefix="rule.")
    if found:
        raise ValidationError(found)


def _rule_from_hash(raw: dict[str, str]) -> AlertRule:
    return AlertRule(
        rule_id=raw[AlertRuleField.ID],
        tenant_id=raw.get(AlertRuleField.TENANT, ""),
        tag=raw.get(AlertRuleField.TAG, ""),
        notifications=notifications_from_json(raw.get(AlertRuleField.NOTIFICATIONS, "[]")),
        created_at_ms=int(raw.get(AlertRuleField.CREATED, "0") or 0),
    )


async def create_rule(
    queue: Queue, rule: AlertRule, *, tenant: str, sealer: Sealer | None, policy: NavigationPolicy
) -> AlertRule:
    """Validate and store a new rule for `tenant` (its id and creation time are the server's); the
    rule as a caller sees it (`shown`).

    Raises:
        ValidationError: a malformed tag or notification, a refused target, or a secret without a key.
        LimitError: the tenant has MAX_RULES rules already.
    """
    await _validate(rule, policy)
    queue = queue.for_tenant(tenant)  # a tenant's rules live on its shard, with its jobs
    keys = queue.keys
    if int(await queue.redis.zcard(keys.alert_rules(tenant))) >= MAX_RULES:
        raise LimitError(f"a tenant may have at most {MAX_RULES} alert rules")
    stored = dataclasses.replace(
        rule,
        rule_id=str(uuid.uuid4()),
        tenant_id=tenant,
        notifications=seal_notifications(rule.notifications, sealer, prefix="rule."),
        created_at_ms=now_ms(),
    )
    pipe = queue.redis.pipeline(transaction=True)
    pipe.hset(
        keys.alert_rule(stored.rule_id),
        mapping={
            AlertRuleField.ID: stored.rule_id,
            AlertRuleField.TENANT: tenant,
            AlertRuleField.TAG: stored.tag,
            AlertRuleField.NOTIFICATIONS: notifications_to_json(stored.notifications),
            AlertRuleField.CREATED: stored.created_at_ms,
        },
    )
    pipe.zadd(keys.alert_rules(tenant), {stored.rule_id: stored.created_at_ms})
    pipe.sadd(keys.alert_tag(tenant, stored.tag), stored.rule_id)
    await pipe.execute()
    return shown(stored, sealer)


async def _load(queue: Queue, rule_ids: Sequence[str]) -> list[AlertRule | None]:
    return await load_hashes(queue, [queue.keys.alert_rule(i) for i in rule_ids], _rule_from_hash)


async def list_rules(
    queue: Queue, *, tenant: str, sealer: Sealer | None, page_size: int, page_token: str = ""
) -> Page[AlertRule]:
    """A page of the tenant's rules as a caller sees them (`shown`), newest first."""
    queue = queue.for_tenant(tenant)
    page = await scan_index(
        queue.redis,
        queue.keys.alert_rules(tenant),
        load=lambda ids: _load(queue, ids),
        keep=lambda rule: rule.tenant_id == tenant,
        page_size=page_size,
        page_token=page_token,
    )
    return Page([shown(rule, sealer) for rule in page.items], page.next_token)


async def _tenants_rule(queue: Queue, rule_id: str, *, tenant: str) -> AlertRule:
    """The tenant's rule as stored; NotFoundError for an unknown one or another tenant's."""
    found = (await _load(queue, [rule_id]))[0] if rule_id else None
    if found is None or found.tenant_id != tenant:
        raise NotFoundError(f"alert rule {rule_id!r} not found")
    return found


async def get_rule(queue: Queue, rule_id: str, *, tenant: str, sealer: Sealer | None) -> AlertRule:
    """One of the tenant's rules as a caller sees it (`shown`).

    Raises:
        NotFoundError: no such rule for this tenant.
    """
    return shown(await _tenants_rule(queue.for_tenant(tenant), rule_id, tenant=tenant), sealer)


async def delete_rule(queue: Queue, rule_id: str, *, tenant: str) -> None:
    """Delete one of the tenant's rules; its deliveries already made are kept (and still sent).

    Raises:
        NotFoundError: no such rule for this tenant.
    """
    queue = queue.for_tenant(tenant)
    keys = queue.keys
    found = await _tenants_rule(queue, rule_id, tenant=tenant)
    pipe = queue.redis.pipeline(transaction=True)
    pipe.delete(keys.alert_rule(rule_id))
    pipe.zrem(keys.alert_rules(tenant), rule_id)
    pipe.srem(keys.alert_tag(tenant, found.tag), rule_id)
    await pipe.execute()


async def rules_for_tags(queue: Queue, *, tenant: str, tags: Sequence[str]) -> list[AlertRule]:
    """The tenant's rules for any of `tags`, each once, oldest first, as stored (URLs and secrets sealed)."""
    if not tags:
        return []
    queue = queue.for_tenant(tenant)
    ids = cast(set[str], await queue.redis.sunion([queue.keys.alert_tag(tenant, t) for t in tags]))
    rules = [r for r in await _load(queue, sorted(ids)) if r is not None and r.tenant_id == tenant]
    return sorted(rules, key=lambda r: (r.created_at_ms, r.rule_id))
