"""A Redis that may evict keys is refused at start, shown in health, and noticed after an outage.

Against real redis-servers started with `--maxmemory-policy allkeys-lru` (and one with CONFIG and
INFO renamed away, as managed Redis services do), and the real `sentinel api` / `sentinel executor`
processes for the start-up refusal.
"""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import grpc
import pytest
import redis.asyncio as aioredis
from grpc_health.v1 import health_pb2, health_pb2_grpc

from protos import sentinel_pb2 as pb
from protos import sentinel_pb2_grpc as pb_grpc
from shared.errors import ConfigError
from shared.redis_policy import ALLOW_VARIABLE, EvictionWatch, read_policy
from shared.settings import RedisSettings
from tests.support import RedisProcess, ended_once_redis_answers, free_port, start_redis, wait_for, wait_for_blocking

SENTINEL = str(Path(sys.executable).with_name("sentinel"))
EVICTING = ("--maxmemory", "100mb", "--maxmemory-policy", "allkeys-lru")


@pytest.fixture
def evicting_redis(tmp_path: Path) -> Iterator[RedisProcess]:
    server = start_redis(tmp_path, options=EVICTING)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
async def evicting_client(evicting_redis: RedisProcess) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(evicting_redis.url, decode_responses=True)
    try:
        yield client
    finally:
        await client.aclose()


def test_allow_eviction_is_a_redis_setting_off_by_default() -> None:
    assert not RedisSettings.from_env({}).allow_eviction
    assert RedisSettings.from_env({ALLOW_VARIABLE: "true"}).allow_eviction
    assert RedisSettings.from_env({ALLOW_VARIABLE: "yes", "REDIS_URL": "redis://r:6379/0"}).allow_eviction
    with pytest.raises(ConfigError, match=ALLOW_VARIABLE):
        RedisSettings.from_env({ALLOW_VARIABLE: "sometimes"})


async def test_the_private_redis_servers_never_evict(redis_client: aioredis.Redis) -> None:
    """The tests' servers and `sentinel dev`'s (both `start_redis`) run with noeviction."""
    policy = await read_policy(redis_client)
    assert (policy.policy, policy.source, policy.evicts) == ("noeviction", "INFO memory", False)
    assert policy.health_reason() is None


async def test_an_evicting_policy_is_read_and_refused(evicting_client: aioredis.Redis) -> None:
    policy = await read_policy(evicting_client)
    assert (policy.policy, policy.evicts) == ("allkeys-lru", True)
    assert "allkeys-lru" in (policy.health_reason() or "")
    with pytest.raises(ConfigError, match=rf"maxmemory-policy is 'allkeys-lru'.*{ALLOW_VARIABLE}=true"):
        await EvictionWatch(evicting_client, allow=False).start()
    allowed = EvictionWatch(evicting_client, allow=True)
    await allowed.start()  # SENTINEL_ALLOW_EVICTION=true: runs, and says so
    await allowed.stop()


async def test_managed_redis_without_config_is_read_from_info_or_reported_unknown(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with contextlib.ExitStack() as servers:
        no_config = start_redis(directory(tmp_path / "a"), options=(*EVICTING, "--rename-command", "CONFIG", ""))
        servers.callback(no_config.stop)
        disabled = ("--rename-command", "CONFIG", "", "--rename-command", "INFO", "")
        no_info = start_redis(directory(tmp_path / "b"), options=disabled)
        servers.callback(no_info.stop)
        async with (
            aioredis.Redis.from_url(no_config.url, decode_responses=True) as without_config,
            aioredis.Redis.from_url(no_info.url, decode_responses=True) as without_either,
        ):
            assert (await read_policy(without_config)).policy == "allkeys-lru"  # INFO answers without CONFIG
            unknown = await read_policy(without_either)
            assert not unknown.known and not unknown.evicts
            assert "INFO memory refused" in unknown.detail and "CONFIG GET refused" in unknown.detail
            watch = EvictionWatch(without_either, allow=False)
            with caplog.at_level(logging.WARNING, logger="shared.redis_policy"):
                await watch.start()  # cannot tell: a warning, not a refusal
            await watch.stop()
    assert any("could not check Redis maxmemory-policy" in r.getMessage() for r in caplog.records)


async def test_a_redis_that_comes_back_evicting_is_logged_as_an_error(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    first = start_redis(directory(tmp_path / "first"))
    client = aioredis.Redis.from_url(first.url, decode_responses=True)
    watch = EvictionWatch(client, allow=False, interval_s=0.1)
    try:
        with caplog.at_level(logging.INFO, logger="shared.redis_policy"):
            await watch.start()
            first.stop()

            async def noticed_outage() -> bool:
                return any("Redis does not answer" in r.getMessage() for r in caplog.records)

            await wait_for(noticed_outage, within=20, what="the watch to notice Redis is gone")
            # Another server on the same address, as after a failover: this one evicts.
            second = start_redis(directory(tmp_path / "second"), port=first.port, options=EVICTING)
            try:

                async def error_logged() -> bool:
                    return any(
                        r.levelno == logging.ERROR
                        and "allkeys-lru" in r.getMessage()
                        and "answers again" in r.getMessage()
                        for r in caplog.records
                    )

                await wait_for(error_logged, within=30, what="an error about the evicting Redis after the outage")
                assert watch.policy is not None and watch.policy.evicts
            finally:
                second.stop()
    finally:
        await watch.stop()
        await client.aclose()


def directory(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def service_env(redis_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REDIS_", "QUEUE_", "SENTINEL_", "OTEL_"))}
    env.update(
        REDIS_URL=redis_url,
        SENTINEL_AUTH="disabled",
        API_METRICS_PORT="0",
        API_HTTP_PORT="0",
        EXECUTOR_METRICS_PORT="0",
        API_GRPC_HOST="127.0.0.1",
        EXECUTOR_GRPC_HOST="127.0.0.1",
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


@pytest.mark.parametrize("kind", ["api", "executor"])
def test_the_services_refuse_to_start_on_an_evicting_redis(kind: str, evicting_redis: RedisProcess) -> None:
    port_variable = "API_GRPC_PORT" if kind == "api" else "EXECUTOR_GRPC_PORT"
    env = service_env(evicting_redis.url, **{port_variable: str(free_port())})
    result = subprocess.run([SENTINEL, kind], env=env, capture_output=True, text=True, timeout=90, check=False)
    assert result.returncode == 2, result.stderr
    assert "maxmemory-policy is 'allkeys-lru'" in result.stderr
    assert f"{ALLOW_VARIABLE}=true" in result.stderr
    assert "ERROR" in result.stderr  # logged as an error, then refused


class RunningApi:
    def __init__(self, redis_url: str, directory: Path, **extra: str) -> None:
        self.port = free_port()
        self.log = directory / "api.log"
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                [SENTINEL, "api"],
                env=service_env(redis_url, API_GRPC_PORT=str(self.port), **extra),
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def wait_serving(self) -> None:
        with grpc.insecure_channel(f"127.0.0.1:{self.port}") as channel:
            stub = health_pb2_grpc.HealthStub(channel)

            def serving() -> bool:
                assert self.process.poll() is None, self.log.read_text()
                reply = stub.Check(health_pb2.HealthCheckRequest(), timeout=1)
                return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)

            wait_for_blocking(
                serving, within=90, interval=0.1, what=lambda: self.log.read_text(), ignoring=(grpc.RpcError,)
            )

    def stop(self) -> int:
        self.process.terminate()
        return self.process.wait(timeout=30)


@pytest.mark.parametrize("evicting", [True, False], ids=["allkeys-lru allowed", "noeviction"])
async def test_health_names_an_evicting_redis_when_the_api_is_allowed_to_run(evicting: bool, tmp_path: Path) -> None:
    server = start_redis(directory(tmp_path / "redis"), options=EVICTING if evicting else ())
    api = RunningApi(server.url, tmp_path, **({ALLOW_VARIABLE: "true"} if evicting else {}))
    try:
        api.wait_serving()
        async with grpc.aio.insecure_channel(f"127.0.0.1:{api.port}") as channel:
            health = await pb_grpc.QueueAdminStub(channel).GetHealth(pb.GetHealthRequest(), timeout=10)
        if evicting:
            assert health.status == pb.HEALTH_STATUS_DEGRADED
            assert [r for r in health.reasons if "maxmemory-policy is allkeys-lru" in r], health.reasons
            assert "running anyway" in api.log.read_text()
        else:
            assert (health.status, list(health.reasons)) == (pb.HEALTH_STATUS_HEALTHY, [])
    finally:
        code = api.stop()
        server.stop()
    assert code == 0, api.log.read_text()


@pytest.mark.parametrize("evicting", [True, False], ids=["allkeys-lru", "noeviction"])
async def test_a_redis_that_first_answers_after_the_start_gets_the_starts_check(
    tmp_path: Path, evicting: bool, caplog: pytest.LogCaptureFixture
) -> None:
    """Redis started after the service (a Kubernetes rollout): the first read of its policy is the
    start's check, made late; an evicting Redis is refused then (`refused`), and only a Redis found
    safe opens the gate the executor claims behind (`checked`)."""
    port = free_port()
    client = aioredis.Redis.from_url(f"redis://127.0.0.1:{port}/0", decode_responses=True)
    watch = EvictionWatch(client, allow=False, interval_s=0.1, retry_s=0.1)
    try:
        await watch.start()  # nothing answers yet: the service starts, unchecked
        assert not watch.checked.is_set() and not watch.refused.is_set()
        late = start_redis(directory(tmp_path), port=port, options=EVICTING if evicting else ())
        try:
            decided = watch.refused if evicting else watch.checked
            with caplog.at_level(logging.INFO, logger="shared.redis_policy"):
                await wait_for(decided.is_set, within=30, what="the late check of the policy")
            assert watch.checked.is_set() is not evicting
            if evicting:
                assert watch.refusal is not None and "maxmemory-policy is 'allkeys-lru'" in str(watch.refusal)
            said = [r.getMessage() for r in caplog.records if "maxmemory-policy is" in r.getMessage()]
            assert said and not any("answers again" in line for line in said), said  # it never answered before
            await wait_for(lambda: watch._late is not None and watch._late.done(), within=10, what="the retries to end")
        finally:
            late.stop()
    finally:
        await watch.stop()
        await client.aclose()


@pytest.mark.parametrize("kind", ["api", "executor"])
def test_a_service_started_before_an_evicting_redis_stops_when_it_answers(kind: str, tmp_path: Path) -> None:
    redis_port = free_port()
    port_variable = "API_GRPC_PORT" if kind == "api" else "EXECUTOR_GRPC_PORT"
    env = service_env(f"redis://127.0.0.1:{redis_port}/0", **{port_variable: str(free_port())})
    code, said = ended_once_redis_answers([SENTINEL, kind], env, tmp_path, redis_port=redis_port, options=EVICTING)
    assert code == 2, said
    assert "sentinel: configuration error: Redis maxmemory-policy is 'allkeys-lru'" in said
    assert f"{ALLOW_VARIABLE}=true" in said
