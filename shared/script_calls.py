"""Many calls of one Lua script on one Redis: each sent as soon as it is made, the replies read after.

A SubmitBatch of 1,000 jobs is ten submit.lua calls. Sent as a redis-py pipeline, every call is made
and packed first and only then sent, so the API's work and Redis's work on a batch add up (about
31 and 35 µs a job). Here each call goes out the moment it is made, on one connection, and Redis
runs it while the next is being made; the replies are read at the end, in order. The calls are
packed by hiredis (`pack_command`, in C) rather than argument by argument in Python (redis-py's
packer was a third of the API's time on such a batch).

One connection keeps the calls in the order given, as a pipeline does. A call whose script Redis
does not hold (`NOSCRIPT`: a restart or `SCRIPT FLUSH`) did nothing; the script is loaded and those
calls are made again, in order, after the others. On a Redis Cluster, whose keys live on several
nodes, the calls go through redis-py instead: a lone call through the script object, more in a
cluster pipeline (`_through_cluster`). Callers need not tell the two apart.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import hiredis
import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster
from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError, ResponseError

__all__ = ["Call", "call_each", "load_on_cluster"]

Call = tuple[Sequence[str], Sequence[str]]


async def call_each(client: aioredis.Redis, script: AsyncScript, calls: Iterable[Call]) -> list[Any]:
    """Run `script` once per (keys, args) of `calls`, each sent as soon as `calls` yields it; the
    replies in order.

    A connection error is retried as the client's other commands are (its `retry`): the calls made
    so far are sent again, as redis-py's pipeline would send its whole stack again.

    Raises:
        ResponseError: the first call Redis answered with an error (the others were still run).
        RedisError: the connection failed past the retries (calls sent before may have run).
    """
    if isinstance(client, RedisCluster):
        return await _through_cluster(client, script, list(calls))
    pool = client.connection_pool
    connection = await pool.get_connection()  # type: ignore[no-untyped-call]
    pending = iter(calls)
    made: list[Call] = []

    async def send(call: Call) -> None:
        keys, args = call
        command = ("EVALSHA", script.sha, len(keys), *keys, *args)
        packed = hiredis.pack_command(command)  # type: ignore[arg-type]  # the stub types a 1-tuple
        await connection.send_packed_command(packed, check_health=call is made[0])

    async def send_and_read() -> list[Any]:
        for call in made:  # a retry: what was made before the connection failed
            await send(call)
        for call in pending:
            made.append(call)
            await send(call)
        replies: list[Any] = []
        for _ in made:
            try:
                replies.append(await connection.read_response())
            except ResponseError as exc:
                replies.append(exc)
        return replies

    async def failed(_: Exception) -> None:
        await connection.disconnect()  # a reply left unread would answer the next command

    try:
        try:
            replies: list[Any] = await connection.retry.call_with_retry(send_and_read, failed)
        except BaseException:
            await connection.disconnect()
            raise
    finally:
        await pool.release(connection)
    for index, reply in enumerate(replies):
        if isinstance(reply, NoScriptError):  # did nothing: the script is loaded by its ordinary call
            keys, args = made[index]
            try:
                replies[index] = await script(keys=keys, args=args)
            except ResponseError as exc:
                replies[index] = exc
    for reply in replies:
        if isinstance(reply, ResponseError):
            raise reply
    return replies


async def _through_cluster(client: RedisCluster, script: AsyncScript, calls: list[Call]) -> list[Any]:
    """`calls` on a Redis Cluster: a lone call through the script object (which loads the script
    where it is missing), more in one cluster pipeline, after loading the script on every primary (a
    cluster pipeline cannot load it, and a primary promoted by a failover starts without it)."""
    if len(calls) == 1:
        keys, args = calls[0]
        return [await script(keys=keys, args=args)]
    await load_on_cluster(client, script)
    pipe = client.pipeline(transaction=False)
    for keys, args in calls:
        await script(keys=keys, args=args, client=pipe)  # type: ignore[arg-type]  # a cluster pipeline runs it as one Redis's would
    return list(await pipe.execute())


async def load_on_cluster(client: aioredis.Redis | RedisCluster, *scripts: AsyncScript) -> None:
    """Load `scripts` on every primary of a Redis Cluster before a cluster pipeline calls them.

    A pipeline on one Redis loads missing scripts itself; a cluster pipeline cannot, and a primary
    promoted by a failover starts with an empty script cache. One Redis: nothing to do.
    """
    if isinstance(client, RedisCluster):
        for script in scripts:
            await client.script_load(script.script)
