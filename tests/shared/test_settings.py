from __future__ import annotations

import pytest

from shared.errors import ConfigError
from shared.model import Priority
from shared.settings import ApiSettings, ExecutorSettings, QueueSettings, RedisSettings


def test_defaults_follow_the_original_design() -> None:
    q = QueueSettings.from_env({})
    assert (q.concurrency, q.default_attempts, q.backoff_delay_ms) == (5, 3, 2000)
    assert (q.remove_on_complete, q.remove_on_fail, q.retention_days) == (50, 20, 7)
    assert (q.max_waiting, q.max_active, q.max_failed) == (100, 50, 20)
    assert [q.default_timeout_ms(p) for p in Priority] == [300_000, 600_000, 1_200_000]
    assert ApiSettings.from_env({}).port == 50051
    assert ExecutorSettings.from_env({}).port == 50052


def test_redis_from_url_or_pieces() -> None:
    assert RedisSettings.from_env({}) == RedisSettings(url="redis://localhost:6379/0", configured=False)
    assert RedisSettings.from_env({"REDIS_URL": "redis://r:1/2"}).url == "redis://r:1/2"
    pieces = RedisSettings.from_env(
        {"REDIS_HOST": "r", "REDIS_PORT": "7000", "REDIS_PASSWORD": "p@ss", "REDIS_DB": "3"}
    )
    assert pieces == RedisSettings(url="redis://:p%40ss@r:7000/3", configured=True)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"QUEUE_CONCURRENCY": "x"}, "QUEUE_CONCURRENCY must be an integer ≥ 1, got 'x'"),
        ({"QUEUE_CONCURRENCY": "0"}, "QUEUE_CONCURRENCY must be an integer ≥ 1, got '0'"),
        ({"QUEUE_BACKOFF_DELAY": "-1"}, "QUEUE_BACKOFF_DELAY must be an integer ≥ 0"),
        ({"USE_QUEUE_SYSTEM": "false"}, "USE_QUEUE_SYSTEM=false is not supported"),
        ({"USE_QUEUE_SYSTEM": "maybe"}, "USE_QUEUE_SYSTEM must be true or false"),
        ({"SENTINEL_QUEUE": "a:b"}, "SENTINEL_QUEUE must not contain"),
    ],
)
def test_a_bad_value_names_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        QueueSettings.from_env(env)


def test_bad_ports_and_urls_are_refused() -> None:
    with pytest.raises(ConfigError, match="API_GRPC_PORT must be a port number"):
        ApiSettings.from_env({"API_GRPC_PORT": "70000"})
    with pytest.raises(ConfigError, match="REDIS_URL must start with"):
        RedisSettings.from_env({"REDIS_URL": "http://x"})
