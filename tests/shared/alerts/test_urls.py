"""Webhook URLs: masked in everything shown, sealed at rest when there is a key."""

from __future__ import annotations

import pytest

from shared.alerts.urls import UNREADABLE, mask_url, open_url, seal_url, shown_url
from shared.errors import SentinelError
from shared.sealed import SEALED_PREFIX, Sealer, new_secret_key


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        # The receivers whose URL is their token: the token's last 4 characters tell two apart.
        (
            "https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXq3z",
            "https://hooks.slack.com/services/…Xq3z",
        ),
        (
            "https://discord.com/api/webhooks/123456789012345678/abcdefghijklmnopqrstuvwxyz0123456789",
            "https://discord.com/api/…6789",
        ),
        # Credentials are dropped; a short remainder is hidden whole, never shown in part.
        ("http://user:hunter2@127.0.0.1:8099/hook/ok?token=abc", "http://127.0.0.1:8099/hook/…"),
        ("https://hooks.example.com/in?token=0123456789abcdefWXYZ#frag", "https://hooks.example.com/in?…WXYZ"),
        # A lone segment may be the token itself; so may a long first one (Telegram's bot<token>).
        ("http://127.0.0.1:8099/hook", "http://127.0.0.1:8099/…"),
        ("https://h.example.com/abcdefghijklmnopqrstuvwxyz", "https://h.example.com/…wxyz"),
        (
            "https://api.telegram.org/bot123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PA/sendMessage",
            "https://api.telegram.org/…sage",
        ),
        # Nothing to hide.
        ("https://h.example.com", "https://h.example.com"),
        ("https://h.example.com/", "https://h.example.com/"),
        ("http://[::1]:9000/a/", "http://[::1]:9000/a/"),
    ],
)
def test_a_url_is_shown_as_its_origin_first_segment_and_last_4_characters(url: str, shown: str) -> None:
    assert mask_url(url) == shown


def test_a_url_is_sealed_only_with_a_key_and_opened_only_with_it() -> None:
    sealer = Sealer(new_secret_key())
    url = "https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXq3z"
    sealed = seal_url(url, sealer)
    assert sealed.startswith(SEALED_PREFIX) and "hooks.slack.com" not in sealed
    assert open_url(sealed, sealer) == url
    assert shown_url(sealed, sealer) == "https://hooks.slack.com/services/…Xq3z"
    assert seal_url(url, None) == url and open_url(url, None) == url  # no key: stored plain, works as is
    with pytest.raises(SentinelError, match="no SENTINEL_SECRET_KEY"):
        open_url(sealed, None)
    assert shown_url(sealed, None) == UNREADABLE
    assert shown_url(sealed, Sealer(new_secret_key())) == UNREADABLE
