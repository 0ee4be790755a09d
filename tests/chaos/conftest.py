"""A durable stack (Redis with AOF, fsync always) whose parts the chaos tests kill and restart."""

from __future__ import annotations

import signal
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import (
    FAILED,
    PAGES,
    Stack,
    api_stub,
    pytest_runtest_makereport,  # noqa: F401  (marks failed tests: their logs are shown)
    redis_of,
)
from tests.support import serve_directory, start_redis


class DurableStack(Stack):
    def restart_redis(self, *, kill: bool = True) -> None:
        """Stop Redis (kill -9 by default) and start it again on the same port and data dir."""
        port, directory = self.redis.port, self.redis.directory
        self.redis.stop(kill=kill)
        self.redis = start_redis(directory, port=port, aof=True)


@pytest.fixture
def stack(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[DurableStack]:
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
            failed = request.node.stash.get(FAILED, False)
            codes = stack.stop_services(failed=failed, timeout=30)
            if failed or any(c not in (0, -signal.SIGKILL) for c in codes):
                sys.stderr.write(stack.logs())
            stack.redis.stop()


__all__ = ["DurableStack", "api_stub", "redis_of", "stack"]
