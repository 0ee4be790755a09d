"""A durable stack (Redis with AOF, fsync always) whose parts the chaos tests kill and restart."""

from __future__ import annotations

import signal
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import grpc
import pytest
import redis.asyncio as aioredis

from protos import sentinel_pb2_grpc as pb_grpc
from tests.e2e.conftest import PAGES, Stack
from tests.support import serve_directory, start_redis


class DurableStack(Stack):
    def restart_redis(self, *, kill: bool = True) -> None:
        """Stop Redis (kill -9 by default) and start it again on the same port and data dir."""
        port, directory = self.redis.port, self.redis.directory
        self.redis.stop(kill=kill)
        self.redis = start_redis(directory, port=port, aof=True)


@pytest.fixture
def chaos(tmp_path: Path) -> Iterator[DurableStack]:
    data = tmp_path / "redis"
    data.mkdir()
    redis = start_redis(data, aof=True)
    seen: list[str] = []
    with serve_directory(PAGES, seen=seen) as site:
        stack = DurableStack(redis=redis, directory=tmp_path, site=site, seen=seen)
        try:
            yield stack
        finally:
            codes = [svc.stop(timeout=30) for svc in reversed(stack.services)]
            if any(c not in (0, -signal.SIGKILL) for c in codes):
                sys.stderr.write(stack.logs())
            stack.redis.stop()


@pytest.fixture
async def chaos_api(chaos: DurableStack) -> AsyncIterator[pb_grpc.TestExecutionStub]:
    api = chaos.start("api")
    async with grpc.aio.insecure_channel(f"127.0.0.1:{api.port}") as channel:
        yield pb_grpc.TestExecutionStub(channel)


@pytest.fixture
async def chaos_redis(chaos: DurableStack) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(chaos.redis.url, decode_responses=True)
    try:
        yield client
    finally:
        await client.aclose()
