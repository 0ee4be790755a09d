"""Rate-limit settings from the environment: off by default, and a bad value names its variable."""

from __future__ import annotations

import pytest

from shared.errors import ConfigError
from shared.settings import QueueSettings, RateLimit, RateLimitSettings


def test_rate_limits_are_off_unless_a_max_is_set() -> None:
    assert QueueSettings.from_env({}).rate_limits == RateLimitSettings()
    assert not RateLimitSettings().queue.enabled and not RateLimitSettings().tenant.enabled
    # A duration alone, or a max of 0, limits nothing.
    off = QueueSettings.from_env({"QUEUE_RATE_LIMIT_MAX": "0", "QUEUE_RATE_LIMIT_DURATION_MS": "1000"})
    assert off.rate_limits.queue == RateLimit()


def test_queue_wide_and_per_tenant_limits_are_read() -> None:
    env = {
        "QUEUE_RATE_LIMIT_MAX": "100",
        "QUEUE_RATE_LIMIT_DURATION_MS": "1000",
        "TENANT_RATE_LIMIT_MAX": "10",
        "TENANT_RATE_LIMIT_DURATION_MS": "60000",
    }
    limits = QueueSettings.from_env(env).rate_limits
    assert limits == RateLimitSettings(queue=RateLimit(100, 1000), tenant=RateLimit(10, 60_000))


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"QUEUE_RATE_LIMIT_MAX": "x"}, "QUEUE_RATE_LIMIT_MAX must be an integer ≥ 0, got 'x'"),
        ({"QUEUE_RATE_LIMIT_MAX": "-1"}, "QUEUE_RATE_LIMIT_MAX must be an integer ≥ 0"),
        ({"QUEUE_RATE_LIMIT_MAX": "5"}, "QUEUE_RATE_LIMIT_DURATION_MS must be an integer ≥ 1 when"),
        (
            {"QUEUE_RATE_LIMIT_MAX": "5", "QUEUE_RATE_LIMIT_DURATION_MS": "0"},
            "QUEUE_RATE_LIMIT_DURATION_MS must be an integer ≥ 1 when QUEUE_RATE_LIMIT_MAX is set, got '0'",
        ),
        ({"TENANT_RATE_LIMIT_MAX": "5", "TENANT_RATE_LIMIT_DURATION_MS": "soon"}, "TENANT_RATE_LIMIT_DURATION_MS"),
        (
            {"TENANT_RATE_LIMIT_MAX": "5", "TENANT_RATE_LIMIT_DURATION_MS": "1000", "SENTINEL_TENANT_WINDOW": "0"},
            "TENANT_RATE_LIMIT_MAX needs fair share",
        ),
    ],
)
def test_a_bad_rate_limit_names_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        QueueSettings.from_env(env)
