"""Webhook notifications between protobuf and the domain, part of the API's conversion layer.

A notification's secret travels in one direction only: in from a request, never out (the proto's
`secret_set` says one is stored). Nothing here may import grpc.
"""

from __future__ import annotations

from collections.abc import Iterable

from protos import sentinel_pb2 as pb
from shared.notifications import DEFAULT_EVENTS, Notification

__all__ = ["notification_from_proto", "notification_to_proto", "notifications_from_proto"]


def notification_from_proto(message: pb.Notification) -> Notification:
    """An empty event list means the defaults (failed and recovered)."""
    events = tuple(dict.fromkeys(e.strip() for e in message.events)) or DEFAULT_EVENTS
    return Notification(
        url=message.url.strip(),
        events=events,
        secret=message.secret,
        after_failures=message.after_failures or 1,
        format=message.format.strip() or "sentinel",
    )


def notifications_from_proto(messages: Iterable[pb.Notification]) -> tuple[Notification, ...]:
    return tuple(notification_from_proto(m) for m in messages)


def notification_to_proto(notification: Notification) -> pb.Notification:
    """Without the secret: only whether one is set."""
    return pb.Notification(
        url=notification.url,
        events=notification.events,
        secret_set=bool(notification.secret),
        after_failures=notification.after_failures,
        format=notification.format,
    )
