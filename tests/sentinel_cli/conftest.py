"""What the CLI's tests share: a real API server on a free port over the test's redis-server."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from api_service.server import ApiServer
from shared.settings import ApiSettings, QueueSettings, RedisSettings
from tests.support import RedisProcess


@pytest.fixture
async def api(redis_server: RedisProcess) -> AsyncIterator[ApiServer]:
    server = await ApiServer.start(
        redis=RedisSettings(url=redis_server.url, configured=True),
        queue_settings=QueueSettings(),
        api=ApiSettings(host="127.0.0.1", port=0),
    )
    try:
        yield server
    finally:
        await server.stop(0)
