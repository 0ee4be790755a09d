"""Shards: settings, placement, and a sharded queue on one redis-server (every shard's tag on one Redis)."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as aioredis
from redis.crc import key_slot

from executor_service import store
from shared import jobs
from shared.errors import ConfigError, ValidationError
from shared.keys import Keys
from shared.queue import Queue, connect_blocking
from shared.settings import QueueSettings, RedisSettings
from shared.shards import decode_cursor, encode_cursor, new_id, shard_of
from tests.queue_helpers import command
from tests.support import RedisProcess


def test_redis_cluster_and_shards_come_from_the_environment() -> None:
    assert not RedisSettings.from_env({}).cluster
    settings = RedisSettings.from_env({"REDIS_CLUSTER": "true", "REDIS_URL": "rediss://u:p@node-1:7000/0"})
    assert settings.cluster and settings.url == "rediss://u:p@node-1:7000/0"
    assert RedisSettings.from_env({"REDIS_CLUSTER": "yes", "REDIS_HOST": "node-2"}).cluster
    with pytest.raises(ConfigError, match="REDIS_CLUSTER"):
        RedisSettings.from_env({"REDIS_CLUSTER": "true", "REDIS_URL": "unix:///tmp/redis.sock"})
    with pytest.raises(ConfigError, match="REDIS_CLUSTER"):
        RedisSettings.from_env({"REDIS_CLUSTER": "maybe"})
    assert QueueSettings.from_env({}).shards == 1
    assert QueueSettings.from_env({"SENTINEL_QUEUE_SHARDS": "3"}).shards == 3
    for bad in ("0", "65", "x"):
        with pytest.raises(ConfigError, match="SENTINEL_QUEUE_SHARDS"):
            QueueSettings.from_env({"SENTINEL_QUEUE_SHARDS": bad})


def test_one_shard_keeps_the_queue_tag_and_more_spread_over_the_slot_space() -> None:
    assert Keys.of_shards("default", 1) == (Keys("default"),)
    assert Keys("default").prefix == "sentinel:{default}:"
    for count in (2, 3, 5, 8):
        layouts = Keys.of_shards("default", count)
        assert len({k.tag for k in layouts}) == count
        for i, keys in enumerate(layouts):
            assert keys.tag.startswith(f"default-{i}")
            assert i * 16384 // count <= key_slot(keys.tag.encode()) < (i + 1) * 16384 // count


def test_ids_name_their_shard_and_placement_is_stable() -> None:
    for count in (1, 3, 7):
        for index in range(count):
            assert shard_of(new_id(index, count), count) == index
    assert shard_of("acme", 3) == shard_of("acme", 3)
    assert {shard_of(f"tenant-{i}", 3) for i in range(50)} == {0, 1, 2}
    assert decode_cursor(encode_cursor(["1-0", "2-5", "0-0"]), 3) == ["1-0", "2-5", "0-0"]
    with pytest.raises(ValidationError):
        decode_cursor("1-0,2-0", 3)
    assert decode_cursor("0-0", 3) == ["0-0"] * 3  # "from the start" (the README's --cursor 0-0) on every shard
    with pytest.raises(ValidationError):
        decode_cursor("5-0", 3)  # any other lone id: which shard's?


async def test_an_idle_executor_wakes_for_a_job_on_any_shard(
    redis_server: RedisProcess, redis_client: aioredis.Redis
) -> None:
    queue = Queue.open(redis_client, QueueSettings(shards=3))
    await queue.ensure_groups()
    idle = await store.claim(queue, consumer="w", worker_id="w", count=5)
    assert idle.claims == [] and set(idle.last_ids) == {lane for s in queue.shards for lane in s.keys.lanes}
    blocking = connect_blocking(RedisSettings(url=redis_server.url, configured=True))
    try:
        tenant = next(f"t{i}" for i in range(100) if shard_of(f"t{i}", 3) == 2)
        waiting = asyncio.create_task(store.wait_for_entries(queue, blocking, idle.last_ids, block_ms=60_000))
        job_id = (await jobs.submit(queue, command(), tenant=tenant)).job_id
        await asyncio.wait_for(waiting, timeout=30)  # woken by the entry, not the 60 s block
    finally:
        await blocking.aclose()
    batch = await store.claim(queue, consumer="w", worker_id="w", count=5)
    assert [c.job_id for c in batch.claims] == [job_id]
    assert queue.for_job(job_id) == queue.shards[2]
