"""Notifications as stored and shown: sealing with and without a key, and masked URLs sent back."""

from __future__ import annotations

from shared.alerts.urls import UNREADABLE
from shared.notifications import Notification, notification_violations
from shared.sealed import SEALED_PREFIX, Sealer, new_secret_key
from shared.stored_notifications import (
    notifications_from_json,
    notifications_to_json,
    resolve_shown,
    seal_notifications,
    shown_notifications,
)

HOOK = "https://hooks.example.test/services/T000/B000/XXXXXXXXXXXXXXXXXXXXq3z"
OTHER = "https://hooks.example.test/services/T111/B111/YYYYYYYYYYYYYYYYYYYXq3z"  # shown as HOOK is


def test_with_a_key_url_and_secret_are_sealed_and_a_url_given_again_keeps_its_secret() -> None:
    sealer = Sealer(new_secret_key())
    stored = seal_notifications([Notification(HOOK, secret="s1")], sealer, prefix="schedule.")
    assert stored[0].url.startswith(SEALED_PREFIX) and stored[0].secret.startswith(SEALED_PREFIX)
    assert notifications_from_json(notifications_to_json(stored)) == stored
    again = seal_notifications([Notification(HOOK), Notification(OTHER)], sealer, prefix="schedule.", stored=stored)
    assert [sealer.open(n.url, field="url") for n in again] == [HOOK, OTHER]
    assert sealer.open(again[0].secret, field="secret") == "s1" and again[1].secret == ""


def test_a_notifications_failure_count_is_stored_shown_and_checked() -> None:
    sealer = Sealer(new_secret_key())
    stored = seal_notifications([Notification(HOOK, after_failures=3), Notification(OTHER)], sealer, prefix="rule.")
    assert [n.after_failures for n in notifications_from_json(notifications_to_json(stored))] == [3, 1]
    assert '"after_failures"' not in notifications_to_json(stored[1:])  # the default is stored as before it
    assert [n.after_failures for n in shown_notifications(stored, sealer)] == [3, 1]
    bad = [Notification(HOOK, after_failures=0), Notification(HOOK, after_failures=101), Notification(HOOK, format="x")]
    found = notification_violations(bad, prefix="rule.")
    assert [(v.field, v.description) for v in found] == [
        ("rule.notifications[0].after_failures", "must be between 1 and 100 failures in a row, got 0"),
        ("rule.notifications[1].after_failures", "must be between 1 and 100 failures in a row, got 101"),
        ("rule.notifications[2].format", "must be one of sentinel, text, got 'x'"),
    ]
    text = seal_notifications([Notification(HOOK, format="text")], sealer, prefix="rule.")
    assert notifications_from_json(notifications_to_json(text))[0].format == "text"
    assert '"format"' not in notifications_to_json(stored)  # the default is stored as before it


def test_without_a_key_a_url_stays_plain_and_is_still_shown_masked() -> None:
    stored = seal_notifications([Notification(HOOK)], None, prefix="rule.")
    assert stored[0].url == HOOK
    assert [n.url for n in shown_notifications(stored, None)] == ["https://hooks.example.test/services/…Xq3z"]


def test_masked_urls_stand_for_the_stored_ones_shown_so_in_order() -> None:
    sealer = Sealer(new_secret_key())
    stored = seal_notifications([Notification(HOOK), Notification(OTHER)], sealer, prefix="schedule.")
    shown = [n.url for n in shown_notifications(stored, sealer)]
    assert shown[0] == shown[1]
    resolved = resolve_shown([Notification(shown[0]), Notification(shown[1]), Notification(shown[0])], stored, sealer)
    assert [n.url for n in resolved] == [HOOK, OTHER, shown[0]]  # a third stands for none: left as given
    assert [v.field for v in notification_violations(resolved, prefix="schedule.")] == ["schedule.notifications[2].url"]
    # A whole URL is taken as it is and does not use up a masked one's match.
    resolved = resolve_shown([Notification(OTHER), Notification(shown[0])], stored, sealer)
    assert [n.url for n in resolved] == [OTHER, HOOK]


def test_a_url_sealed_with_another_key_cannot_be_sent_back_as_shown() -> None:
    stored = seal_notifications([Notification(HOOK)], Sealer(new_secret_key()), prefix="schedule.")
    sealer = Sealer(new_secret_key())
    shown = shown_notifications(stored, sealer)
    assert shown[0].url == UNREADABLE
    resolved = resolve_shown(shown, stored, sealer)
    violations = notification_violations(resolved, prefix="schedule.")
    assert [(v.field, "key this server lacks" in v.description) for v in violations] == [
        ("schedule.notifications[0].url", True)
    ]
