"""A durable stack (Redis with AOF, fsync always) whose parts the chaos tests kill and restart."""

from __future__ import annotations

import signal
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import PAGES, Stack, api_stub, redis_of
from tests.support import serve_directory, start_redis


class DurableStack(Stack):
    def restart_redis(self, *, kill: bool = True) -> None:
        """Stop Redis (kill -9 by default) and start it again on the same port and data dir."""
        port, directory = self.redis.port, self.redis.directory
        self.redis.stop(kill=kill)
        self.redis = start_redis(directory, port=port, aof=True)


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[DurableStack]:
    """Like the e2e stack, on a durable Redis; `api_stub` and `redis_of` come with it."""
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


__all__ = ["DurableStack", "api_stub", "redis_of", "stack"]
