"""Alert rules and deliveries between protobuf and the domain, part of the API's conversion layer.

A notification's secret only comes in (see `convert_notifications`); its URL goes out as the domain
gives it, masked (`shared.alerts.urls`). Nothing here may import grpc.
"""

from __future__ import annotations

from protos import sentinel_pb2 as pb
from shared.alerts.deliveries import Delivery, DeliveryState
from shared.alerts.rules import AlertRule
from shared.edge.convert_jobs import _u32, timestamp
from shared.edge.convert_notifications import notification_to_proto, notifications_from_proto

__all__ = ["DELIVERY_STATE_TO_PROTO", "delivery_to_proto", "rule_from_proto", "rule_to_proto"]

DELIVERY_STATE_TO_PROTO: dict[DeliveryState, pb.DeliveryState] = {
    DeliveryState.PENDING: pb.DELIVERY_STATE_PENDING,
    DeliveryState.DELIVERED: pb.DELIVERY_STATE_DELIVERED,
    DeliveryState.FAILED: pb.DELIVERY_STATE_FAILED,
}


def rule_from_proto(message: pb.AlertRule) -> AlertRule:
    """What a caller may set: the tag and the notifications (id, tenant and time are the server's)."""
    return AlertRule(
        rule_id="", tenant_id="", tag=message.tag.strip(), notifications=notifications_from_proto(message.notifications)
    )


def rule_to_proto(rule: AlertRule) -> pb.AlertRule:
    return pb.AlertRule(
        rule_id=rule.rule_id,
        tag=rule.tag,
        notifications=[notification_to_proto(n) for n in rule.notifications],
        tenant_id=rule.tenant_id,
        created_at=timestamp(rule.created_at_ms),
    )


def delivery_to_proto(delivery: Delivery) -> pb.Delivery:
    return pb.Delivery(
        delivery_id=delivery.delivery_id,
        event=delivery.event,
        url=delivery.url,
        job_id=delivery.job_id,
        schedule_id=delivery.schedule_id,
        rule_id=delivery.rule_id,
        state=DELIVERY_STATE_TO_PROTO[delivery.state],
        attempts=_u32(delivery.attempts),
        response_status=_u32(delivery.response_status),
        response_body=delivery.response_body,
        error=delivery.error,
        body=delivery.body,
        created_at=timestamp(delivery.created_at_ms),
        last_attempt_at=timestamp(delivery.last_attempt_at_ms),
        next_attempt_at=timestamp(delivery.next_attempt_at_ms),
    )
