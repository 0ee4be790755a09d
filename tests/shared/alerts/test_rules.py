"""Rules and their settings: secrets need a key, targets are checked when stored, settings name their variables."""

from __future__ import annotations

import pytest

from shared.alerts import rules
from shared.alerts.guard import target_violations, webhook_policy
from shared.errors import ConfigError, ValidationError
from shared.notifications import Notification
from shared.settings import AlertSettings
from tests.queue_helpers import TENANT
from tests.shared.alerts.conftest import Alerting


async def test_a_secret_without_a_key_to_seal_it_is_refused(alerting: Alerting) -> None:
    wanted = rules.AlertRule(
        rule_id="", tenant_id="", tag="t", notifications=(Notification(url="https://h.example.com/", secret="s"),)
    )
    with pytest.raises(ValidationError) as info:
        await rules.create_rule(
            alerting.queue, wanted, tenant=TENANT, sealer=None, policy=webhook_policy(AlertSettings())
        )
    assert [v.field for v in info.value.violations] == ["rule.notifications[0].secret"]
    assert await alerting.queue.redis.zcard(alerting.queue.keys.alert_rules(TENANT)) == 0


async def test_addresses_written_in_a_url_are_checked_when_stored_and_names_are_not() -> None:
    closed = webhook_policy(AlertSettings())
    opened = webhook_policy(AlertSettings(allow=("10.20.0.0/16", "[::1]:9000")))
    urls = [
        "http://10.20.1.2/hook",  # private
        "http://[::1]:9000/hook",  # loopback, IPv6
        "http://169.254.169.254/latest",  # link-local: cloud metadata
        "https://93.184.215.14/hook",  # public
        "https://hooks.internal.test/hook",  # a name: resolved at each delivery
        # What the system's resolver reads as 127.0.0.1 without DNS: inet_aton's forms, localhost.
        "http://127.1:9000/hook",
        "http://2130706433:9000/hook",
        "http://0x7f000001:9000/hook",
        "http://017700000001:9000/hook",
        "http://localhost.:9000/hook",
    ]
    notifications = [Notification(url=u) for u in urls]
    refused = await target_violations(notifications, closed, prefix="rule.")
    assert [v.field for v in refused] == [f"rule.notifications[{i}].url" for i in (0, 1, 2, 5, 6, 7, 8, 9)]
    assert all("SENTINEL_WEBHOOK_ALLOW" in v.description for v in refused)
    allowed = await target_violations(notifications[:5], opened, prefix="rule.")
    assert [v.field for v in allowed] == ["rule.notifications[2].url"]


def test_settings_come_from_their_variables_and_name_them_when_bad() -> None:
    settings = AlertSettings.from_env(
        {
            "SENTINEL_WEBHOOK_ALLOW": "alerts.internal, 10.0.0.0/8",
            "SENTINEL_WEBHOOK_MAX_ATTEMPTS": "3",
            "SENTINEL_WEBHOOK_BACKOFF_MS": "250",
            "SENTINEL_WEBHOOK_TIMEOUT_MS": "2000",
            "SENTINEL_WEBHOOK_RETENTION_DAYS": "2",
            "SENTINEL_PUBLIC_URL": "https://sentinel.example.com/",
        }
    )
    assert settings.public_url == "https://sentinel.example.com"
    for bad in ("sentinel.example.com", "ftp://sentinel.example.com", "https://"):
        with pytest.raises(ConfigError, match="SENTINEL_PUBLIC_URL must be an absolute http"):
            AlertSettings.from_env({"SENTINEL_PUBLIC_URL": bad})
    assert settings.allow == ("alerts.internal", "10.0.0.0/8")
    assert (settings.max_attempts, settings.backoff_ms, settings.timeout_ms) == (3, 250, 2000)
    assert settings.retention_ms == 2 * 86_400_000
    assert AlertSettings.from_env({}) == AlertSettings()
    with pytest.raises(ConfigError, match="SENTINEL_WEBHOOK_ALLOW"):
        AlertSettings.from_env({"SENTINEL_WEBHOOK_ALLOW": "not a host!"})
    with pytest.raises(ConfigError, match="SENTINEL_WEBHOOK_MAX_ATTEMPTS"):
        AlertSettings.from_env({"SENTINEL_WEBHOOK_MAX_ATTEMPTS": "0"})
