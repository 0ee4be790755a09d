"""Alerts in the SDK: the alert-rule and delivery calls (as `_ops` describes RPCs), their replies as
`models.AlertRule` and `models.Delivery`.

Both clients run these descriptions, so a rule is built and read the same way whichever client
asks. A rule's notifications are the dicts a schedule's are (`{"url", "events", "secret"}`); a
secret goes to the API and never comes back (`Notification.secret_set` says one is set).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from protos import sentinel_pb2 as pb
from sentinel_client._convert import alert_rule, delivery
from sentinel_client._ops import Unary
from sentinel_client._requests import set_scalar, with_scalars
from sentinel_client._schedules import notification_messages
from sentinel_client.models import AlertRule, Delivery, Page

_ALERTS = "/sentinel.v1.Alerts/"


def create_rule(tag: str, notifications: Sequence[Mapping[str, Any]]) -> Unary[AlertRule]:
    # Not safe to repeat: a CreateAlertRule sent twice makes two rules (and two alerts per change).
    rule = pb.AlertRule(notifications=notification_messages(notifications, prefix="rule."))
    set_scalar(rule, "tag", tag, "rule.tag")
    request = pb.CreateAlertRuleRequest(rule=rule)
    return Unary(_ALERTS + "CreateAlertRule", request, pb.AlertRule, alert_rule, safe=False)


def _rule_page(reply: pb.ListAlertRulesResponse) -> Page[AlertRule]:
    return Page(tuple(alert_rule(r) for r in reply.rules), reply.next_page_token)


def list_rules(page_size: int, page_token: str) -> Unary[Page[AlertRule]]:
    request = with_scalars(pb.ListAlertRulesRequest(page_token=page_token), page_size=page_size)
    return Unary(_ALERTS + "ListAlertRules", request, pb.ListAlertRulesResponse, _rule_page, safe=True)


def delete_rule(rule_id: str) -> Unary[bool]:
    # Not safe to repeat: a second DeleteAlertRule answers NOT_FOUND.
    request = pb.DeleteAlertRuleRequest(rule_id=rule_id)
    return Unary(_ALERTS + "DeleteAlertRule", request, pb.DeleteAlertRuleResponse, lambda r: bool(r.deleted), False)


def _delivery_page(reply: pb.ListDeliveriesResponse) -> Page[Delivery]:
    return Page(tuple(delivery(d) for d in reply.deliveries), reply.next_page_token)


def list_deliveries(
    *, schedule_id: str, rule_id: str, job_id: str, page_size: int, page_token: str
) -> Unary[Page[Delivery]]:
    request = with_scalars(
        pb.ListDeliveriesRequest(schedule_id=schedule_id, rule_id=rule_id, job_id=job_id, page_token=page_token),
        page_size=page_size,
    )
    return Unary(_ALERTS + "ListDeliveries", request, pb.ListDeliveriesResponse, _delivery_page, safe=True)
