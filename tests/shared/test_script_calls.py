"""Script calls sent as they are made on one connection: replies in order, NOSCRIPT recovered, errors raised."""

from __future__ import annotations

import functools
from collections.abc import Iterator

import pytest
import redis
import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from shared.queue import connect
from shared.script_calls import Call, call_each
from shared.settings import RedisSettings
from tests.support import RedisProcess, wait_for_blocking

#: Appends its argument to a list and returns the list's length: the order the calls ran in shows.
APPEND = "return redis.call('RPUSH', KEYS[1], ARGV[1])"


async def test_each_call_is_sent_before_the_next_is_made_and_they_run_in_order(
    redis_client: aioredis.Redis, redis_server: RedisProcess
) -> None:
    script = redis_client.register_script(APPEND)
    await script(keys=["warm"], args=["x"])  # loaded: no call comes back NOSCRIPT
    watcher = redis.Redis.from_url(redis_server.url, decode_responses=True)

    def calls() -> Iterator[Call]:
        for i in range(20):
            # Making call i waits until Redis has run call i - 1: it must have been sent already.
            ran = functools.partial(lambda n: watcher.llen("order") == n, i)
            wait_for_blocking(ran, within=10, interval=0.002, what=f"call {i - 1} to run")
            yield ["order"], [str(i)]

    try:
        replies = await call_each(redis_client, script, calls())
    finally:
        watcher.close()
    assert replies == list(range(1, 21))
    assert await redis_client.lrange("order", 0, -1) == [str(i) for i in range(20)]


async def test_a_script_redis_lost_is_loaded_and_its_calls_made_again(redis_client: aioredis.Redis) -> None:
    script = redis_client.register_script(APPEND)
    await script(keys=["warm"], args=["x"])
    await redis_client.script_flush()  # as after a restart: EVALSHA answers NOSCRIPT
    replies = await call_each(redis_client, script, ((["again"], [str(i)]) for i in range(5)))
    assert replies == [1, 2, 3, 4, 5]
    assert await redis_client.lrange("again", 0, -1) == ["0", "1", "2", "3", "4"]


async def test_an_error_is_raised_after_every_call_ran_and_the_connection_stays_usable(
    redis_client: aioredis.Redis,
) -> None:
    script = redis_client.register_script(APPEND)
    await redis_client.set("not-a-list", "v")
    calls: list[Call] = [(["list"], ["a"]), (["not-a-list"], ["b"]), (["list"], ["c"])]
    with pytest.raises(ResponseError, match="WRONGTYPE"):
        await call_each(redis_client, script, calls)
    assert await redis_client.lrange("list", 0, -1) == ["a", "c"]
    assert await call_each(redis_client, script, [(["list"], ["d"])]) == [3]


async def test_a_connection_redis_closed_is_retried_as_the_clients_other_commands_are(
    redis_server: RedisProcess,
) -> None:
    client = connect(RedisSettings(url=redis_server.url))  # Sentinel's client: it retries connection errors
    try:
        script = client.register_script(APPEND)
        assert await call_each(client, script, [(["kept"], ["a"])]) == [1]  # a pooled connection now
        killer = redis.Redis.from_url(redis_server.url)
        try:
            assert killer.client_kill_filter(_type="normal", skipme=True) >= 1  # as a Redis restart would
        finally:
            killer.close()
        assert await call_each(client, script, ((["kept"], [v]) for v in "bc")) == [2, 3]
        assert await client.lrange("kept", 0, -1) == ["a", "b", "c"]
    finally:
        await client.aclose()
