"""Webhook notifications: where a schedule or an alert rule sends word of a change of outcome.

One shape for both owners (a schedule's `notifications`, a tenant-wide alert rule's): a URL, the
events it wants and a signing secret. The secret is sealed (`shared.sealed`) before it is stored and
opened only to sign a delivery; it is never returned to a caller (`secret_set` says one is there).
Targets are checked again by the navigation guard's policy when a delivery is made.

Pure domain code: no protobuf, no grpc, no Redis.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from shared.alerts.urls import MASK, UNREADABLE
from shared.errors import FieldViolation

__all__ = [
    "DEFAULT_EVENTS",
    "EVENTS",
    "FORMATS",
    "MAX_NOTIFICATIONS",
    "Notification",
    "notification_violations",
]

#: What a notification may ask for. `failed`: the first failure after a pass (or the first run
#: failing; with `after_failures` N, the N-th failure in a row); `recovered`: the first pass after
#: failures (after a run of N); `dead_lettered`: a job out of attempts;
#: `timeout` and `cancelled`: a run that ended so; `completed`: every pass (not only a change).
EVENTS = ("failed", "recovered", "dead_lettered", "timeout", "cancelled", "completed")
#: What an empty `events` list means.
DEFAULT_EVENTS = ("failed", "recovered")
MAX_NOTIFICATIONS = 10
#: The bodies a notification may send: Sentinel's JSON, or {"text": ...} for chat incoming webhooks.
FORMATS = ("sentinel", "text")
#: The most failures in a row a notification may wait for before it sends `failed`.
MAX_AFTER_FAILURES = 100
MAX_URL_CHARS = 2048
MAX_SECRET_CHARS = 512


@dataclass(frozen=True)
class Notification:
    url: str
    events: tuple[str, ...] = DEFAULT_EVENTS
    #: The signing secret: sealed once stored ("" = deliveries are not signed).
    secret: str = ""
    #: `failed` at this many failures in a row (not the first), `recovered` only after such a run.
    after_failures: int = 1
    #: The body: "sentinel" (its JSON) or "text" ({"text": ...}, as chat incoming webhooks take it).
    format: str = "sentinel"

    def wants(self, event: str) -> bool:
        return event in self.events


def notification_violations(notifications: Sequence[Notification], *, prefix: str) -> list[FieldViolation]:
    """Every problem of `notifications`, each naming its field (`<prefix>notifications[2].url`)."""
    violations: list[FieldViolation] = []
    if len(notifications) > MAX_NOTIFICATIONS:
        violations.append(
            FieldViolation(f"{prefix}notifications", f"at most {MAX_NOTIFICATIONS}, got {len(notifications)}")
        )
    for index, notification in enumerate(notifications):
        at = f"{prefix}notifications[{index}]"
        url = urlsplit(notification.url)
        if len(notification.url) > MAX_URL_CHARS:
            violations.append(FieldViolation(f"{at}.url", f"at most {MAX_URL_CHARS} characters"))
        elif notification.url == UNREADABLE:
            violations.append(FieldViolation(f"{at}.url", "sealed with a key this server lacks: send the whole URL"))
        elif MASK in notification.url:
            stands_for_none = f"masked ('{MASK}') and stands for none of the URLs stored: send the whole URL"
            violations.append(FieldViolation(f"{at}.url", stands_for_none))
        elif url.scheme not in ("http", "https") or not url.hostname:
            violations.append(FieldViolation(f"{at}.url", "an absolute http(s) URL"))
        unknown = [event for event in notification.events if event not in EVENTS]
        if unknown:
            violations.append(
                FieldViolation(f"{at}.events", f"unknown event {unknown[0]!r}; one of {', '.join(EVENTS)}")
            )
        if not notification.events:
            violations.append(FieldViolation(f"{at}.events", "at least one event"))
        if len(notification.secret) > MAX_SECRET_CHARS:
            violations.append(FieldViolation(f"{at}.secret", f"at most {MAX_SECRET_CHARS} characters"))
        if notification.format not in FORMATS:
            why = f"must be one of {', '.join(FORMATS)}, got {notification.format!r}"
            violations.append(FieldViolation(f"{at}.format", why))
        if not 1 <= notification.after_failures <= MAX_AFTER_FAILURES:
            why = f"must be between 1 and {MAX_AFTER_FAILURES} failures in a row, got {notification.after_failures}"
            violations.append(FieldViolation(f"{at}.after_failures", why))
    return violations
