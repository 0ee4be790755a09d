from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest

from shared import eventloop
from shared.errors import ConfigError
from shared.model import Priority
from shared.settings import (
    ApiSettings,
    EventLoopSettings,
    ExecutorSettings,
    QueueSettings,
    RedisSettings,
    SecuritySettings,
    TraceMode,
)
from tests.support import closed_port

SENTINEL = str(Path(sys.executable).with_name("sentinel"))


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
    # redis-py would take `/abc` for database 0, silently; a port past 65535 failed at the first call.
    with pytest.raises(ConfigError, match=r"REDIS_URL's path must be a database number") as bad_path:
        RedisSettings.from_env({"REDIS_URL": "redis://r:6379/abc"})
    with pytest.raises(ConfigError) as cut_password:  # an unescaped '/' in a password ends the host part
        RedisSettings.from_env({"REDIS_URL": "redis://:pa/ss-w0rd@r:6379/0"})
    assert "ss-w0rd" not in str(cut_password.value) and "abc" not in str(bad_path.value)
    with pytest.raises(ConfigError, match=r"^REDIS_URL's port must be a number from 0 to 65535$"):
        RedisSettings.from_env({"REDIS_URL": "redis://:secret-pw@r:99999/0"})  # the password is not shown
    with pytest.raises(ConfigError, match="a Redis Cluster has database 0 only; REDIS_URL names database 1"):
        RedisSettings.from_env({"REDIS_URL": "redis://r:7000/1", "REDIS_CLUSTER": "true"})
    with pytest.raises(ConfigError, match="REDIS_DB names database 2"):
        RedisSettings.from_env({"REDIS_HOST": "r", "REDIS_DB": "2", "REDIS_CLUSTER": "true"})
    assert RedisSettings.from_env({"REDIS_URL": "redis://r:7000", "REDIS_CLUSTER": "true"}).cluster
    assert RedisSettings.from_env({"REDIS_URL": "unix:///run/redis.sock?db=3"}).url.endswith("?db=3")


def test_the_http_front_door_defaults_to_8080_on_the_grpc_host_and_0_turns_it_off() -> None:
    default = ApiSettings.from_env({"API_GRPC_HOST": "10.0.0.5"})
    assert (default.http_port, default.http_host, default.http_listen_host) == (8080, "", "10.0.0.5")
    assert default.http_cors_origins == ()
    assert ApiSettings.from_env({"API_HTTP_PORT": "0"}).http_port == 0
    assert ApiSettings().http_port == 0  # the bare constructor (tests, embedding) serves no HTTP
    chosen = ApiSettings.from_env(
        {
            "API_HTTP_HOST": "127.0.0.1",
            "API_HTTP_PORT": "9090",
            "API_HTTP_CORS_ORIGINS": " https://dash.example.com , http://localhost:5173/ ,",
        }
    )
    assert (chosen.http_listen_host, chosen.http_port) == ("127.0.0.1", 9090)
    assert chosen.http_cors_origins == ("https://dash.example.com", "http://localhost:5173")


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"API_HTTP_PORT": "http"}, "API_HTTP_PORT must be an integer ≥ 0, got 'http'"),
        ({"API_HTTP_PORT": "65536"}, "API_HTTP_PORT must be a port number 0..65535"),
        ({"API_HTTP_CORS_ORIGINS": "dash.example.com"}, "API_HTTP_CORS_ORIGINS must list origins like"),
        ({"API_HTTP_CORS_ORIGINS": "https://a.example/app"}, "API_HTTP_CORS_ORIGINS must list origins like"),
        ({"API_HTTP_CORS_ORIGINS": "*"}, "API_HTTP_CORS_ORIGINS must list origins like"),
    ],
)
def test_bad_http_settings_name_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        ApiSettings.from_env(env)


def test_the_event_loop_is_uvloop_unless_asyncio_is_asked_for() -> None:
    assert EventLoopSettings.from_env({}).uvloop
    assert EventLoopSettings.from_env({"SENTINEL_EVENT_LOOP": "uvloop"}).uvloop
    assert not EventLoopSettings.from_env({"SENTINEL_EVENT_LOOP": "asyncio"}).uvloop
    with pytest.raises(ConfigError, match="SENTINEL_EVENT_LOOP must be uvloop or asyncio"):
        EventLoopSettings.from_env({"SENTINEL_EVENT_LOOP": "trio"})


def test_a_malformed_navigation_allow_entry_stops_the_api_too() -> None:
    with pytest.raises(ConfigError, match="SENTINEL_NAVIGATION_ALLOW"):
        SecuritySettings.from_env({"SENTINEL_AUTH": "disabled", "SENTINEL_NAVIGATION_ALLOW": "ok.test,999.1.1.1/99"})
    allowed = SecuritySettings.from_env(
        {"SENTINEL_AUTH": "disabled", "SENTINEL_NAVIGATION_ALLOW": "a.test, 10.0.0.0/8"}
    )
    assert allowed.navigation_allow == ("a.test", "10.0.0.0/8")


def test_a_service_given_a_bad_event_loop_says_only_that() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SENTINEL_", "REDIS_", "API_"))}
    env |= {
        "SENTINEL_EVENT_LOOP": "trio",
        "SENTINEL_AUTH": "disabled",
        "REDIS_URL": f"redis://127.0.0.1:{closed_port()}/0",
        # Had the check gone, the API would start: on loopback ports of its own, not 50051 and 8080.
        "API_GRPC_HOST": "127.0.0.1",
        "API_GRPC_PORT": "0",
        "API_HTTP_PORT": "0",
        "API_METRICS_PORT": "0",
    }
    done = subprocess.run([SENTINEL, "api"], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2  # and no "coroutine … was never awaited" warning before the message
    assert done.stderr == "sentinel: configuration error: SENTINEL_EVENT_LOOP must be uvloop or asyncio, got 'trio'\n"


def test_the_services_run_on_the_loop_chosen() -> None:
    async def kind() -> str:
        return type(asyncio.get_running_loop()).__module__

    assert eventloop.run(kind(), EventLoopSettings(uvloop=True)).startswith("uvloop")
    assert eventloop.run(kind(), EventLoopSettings(uvloop=False)).startswith("asyncio")


def test_which_attempts_record_a_trace_follows_playwrights_modes() -> None:
    assert ExecutorSettings.from_env({}).trace is TraceMode.RETAIN_ON_FAILURE
    traced = {
        mode: [n for n in (1, 2, 3) if TraceMode.from_env({"SENTINEL_TRACE": f" {mode.upper()} "}).skips(n) is None]
        for mode in ("retain-on-failure", "on-first-retry", "on-all-retries", "off")
    }
    assert traced == {"retain-on-failure": [1, 2, 3], "on-first-retry": [2], "on-all-retries": [2, 3], "off": []}
    assert "SENTINEL_TRACE=off" in (TraceMode.OFF.skips(1) or "")
    with pytest.raises(ConfigError, match=r"SENTINEL_TRACE must be one of retain-on-failure, .*got 'always'"):
        ExecutorSettings.from_env({"SENTINEL_TRACE": "always"})


def test_a_trace_records_screencast_frames_unless_turned_off() -> None:
    assert ExecutorSettings.from_env({}).trace_screenshots is True
    assert ExecutorSettings.from_env({"SENTINEL_TRACE_SCREENSHOTS": "off"}).trace_screenshots is False
    with pytest.raises(ConfigError, match=r"SENTINEL_TRACE_SCREENSHOTS must be true or false, got 'some'"):
        ExecutorSettings.from_env({"SENTINEL_TRACE_SCREENSHOTS": "some"})
