"""The API service through a real grpc.aio server and real stubs, on a real redis-server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass

import grpc
import pytest
import redis.asyncio as aioredis

from api_service.server import ApiServer
from protos import sentinel_pb2_grpc as pb_grpc
from shared.keys import Keys
from shared.queue import Queue
from shared.settings import ApiSettings, QueueSettings, RedisSettings
from tests.support import RedisProcess


@dataclass
class Harness:
    server: ApiServer
    stub: pb_grpc.TestExecutionStub
    channel: grpc.aio.Channel
    redis: aioredis.Redis
    queue: Queue  # the executor's view of the same queue, on the test's own connection

    @property
    def keys(self) -> Keys:
        return self.queue.keys


@pytest.fixture
async def api(redis_server: RedisProcess, redis_client: aioredis.Redis) -> AsyncIterator[Harness]:
    server = await ApiServer.start(
        redis=RedisSettings(url=redis_server.url, configured=True),
        queue_settings=QueueSettings(),
        api=ApiSettings(host="127.0.0.1", port=0),
    )
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            yield Harness(
                server=server,
                stub=pb_grpc.TestExecutionStub(channel),
                channel=channel,
                redis=redis_client,
                queue=Queue.open(redis_client, QueueSettings()),
            )
    finally:
        await server.stop(0)


@pytest.fixture
async def servers() -> AsyncIterator[AsyncExitStack]:
    """Servers a test starts, stopped (last started, first stopped) when it ends."""
    async with AsyncExitStack() as stack:
        yield stack
