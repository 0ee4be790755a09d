"""Notifications as stored and as shown, for schedules and alert rules alike.

Stored: a JSON list, every signing secret sealed and, when the server has a key, every URL too
(`shared.alerts.urls`: many receivers' URLs are bearer tokens). Shown: each URL masked, the secret
never (the edge says only whether one is set). An update sends notifications back as it was shown
them; `resolve_shown` turns each masked URL back into the stored one it stands for, so a client
that reads, edits and writes a schedule keeps its receivers without ever seeing their URLs.

No Redis, no protobuf.
"""

from __future__ import annotations

import dataclasses
import json
from collections import deque
from collections.abc import Iterable, Sequence
from typing import Any, cast

from shared import codec
from shared.alerts.urls import mask_url, open_url, seal_url, shown_url
from shared.errors import DecodeError, FieldViolation, SentinelError, ValidationError
from shared.notifications import Notification
from shared.sealed import Sealer

__all__ = [
    "notifications_from_json",
    "notifications_to_json",
    "opened_urls",
    "resolve_shown",
    "seal_notifications",
    "shown_notifications",
]


def notifications_to_json(notifications: Iterable[Notification]) -> str:
    return codec.dumps([_stored(n) for n in notifications])


def _stored(n: Notification) -> dict[str, object]:
    row: dict[str, object] = {"url": n.url, "events": list(n.events), "secret": n.secret}
    if n.after_failures != 1:  # absent otherwise: notifications stored before it read back the same
        row["after_failures"] = n.after_failures
    if n.format != "sentinel":
        row["format"] = n.format
    return row


def notifications_from_json(raw: str) -> tuple[Notification, ...]:
    """Raises DecodeError when `raw` is not what `notifications_to_json` writes ("" is none)."""
    try:
        rows = cast(list[dict[str, Any]], json.loads(raw or "[]"))
        return tuple(
            Notification(
                url=str(r["url"]),
                events=tuple(str(e) for e in r["events"]),
                secret=str(r.get("secret", "")),
                after_failures=int(r.get("after_failures", 1)),
                format=str(r.get("format", "sentinel")),
            )
            for r in rows
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise DecodeError(f"notifications are malformed: {raw[:80]!r}") from exc


def opened_urls(stored: Sequence[Notification], sealer: Sealer | None) -> list[str | None]:
    """Each stored notification's URL as sent to (None: sealed with a key this server lacks)."""
    opened: list[str | None] = []
    for notification in stored:
        try:
            opened.append(open_url(notification.url, sealer))
        except SentinelError:
            opened.append(None)
    return opened


def seal_notifications(
    notifications: Sequence[Notification],
    sealer: Sealer | None,
    *,
    prefix: str,
    stored: Sequence[Notification] = (),
) -> tuple[Notification, ...]:
    """`notifications` ready to store: every secret sealed, and every URL too when there is a key.

    `stored`: the owner's notifications as stored; one given with a URL of theirs and no secret keeps
    the stored secret, since secrets are never handed back to be sent again.

    Raises:
        ValidationError: a secret is given but this server has no SENTINEL_SECRET_KEY to seal it.
    """
    kept = {
        url: notification.secret
        for url, notification in zip(opened_urls(stored, sealer), stored, strict=True)
        if url is not None and notification.secret
    }
    sealed = []
    for index, notification in enumerate(notifications):
        secret = notification.secret
        if secret:
            if sealer is None:
                field = f"{prefix}notifications[{index}].secret"
                raise ValidationError([FieldViolation(field, "this server has no SENTINEL_SECRET_KEY to seal it")])
            secret = sealer.seal(secret)
        else:
            secret = kept.get(notification.url, "")
        sealed.append(dataclasses.replace(notification, url=seal_url(notification.url, sealer), secret=secret))
    return tuple(sealed)


def shown_notifications(stored: Iterable[Notification], sealer: Sealer | None) -> tuple[Notification, ...]:
    """What a caller sees of stored notifications: each URL masked (the secret stays sealed)."""
    return tuple(dataclasses.replace(n, url=shown_url(n.url, sealer)) for n in stored)


def resolve_shown(
    given: Sequence[Notification], stored: Sequence[Notification], sealer: Sealer | None
) -> tuple[Notification, ...]:
    """`given` with each URL sent back as it is shown (masked) replaced by the stored URL it stands for.

    A URL given whole is taken as it is. The n-th notification given with a masked URL stands for the
    n-th stored notification shown with that mask, so two receivers whose URLs mask alike keep their
    order. A masked URL that stands for none is left as it is, for validation to refuse by name.
    """
    opened = [url for url in opened_urls(stored, sealer) if url is not None]
    whole = set(opened)
    by_mask: dict[str, deque[str]] = {}
    for url in opened:
        by_mask.setdefault(mask_url(url), deque()).append(url)
    resolved = []
    for notification in given:
        standing_for = by_mask.get(notification.url) if notification.url not in whole else None
        if standing_for:
            notification = dataclasses.replace(notification, url=standing_for.popleft())
        resolved.append(notification)
    return tuple(resolved)
