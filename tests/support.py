"""Test helpers: a private redis-server, a page server on 127.0.0.1, deadline-bound waits."""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

from executor_service.browser import DEFAULT_ARGS
from sentinel_cli.redis_proc import RedisProcess, free_port, start_redis
from sentinel_cli.static_site import serve_directory

__all__ = ["RedisProcess", "free_port", "serve_directory", "start_redis"]

T = TypeVar("T")

CHROMIUM_ARGS = DEFAULT_ARGS


async def wait_for(
    probe: Callable[[], Awaitable[T | None]], *, within: float = 10.0, interval: float = 0.05, what: str = ""
) -> T:
    """Poll `probe` until it returns a truthy value, or fail after `within` seconds."""
    deadline = time.monotonic() + within
    while True:
        value = await probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within} s waiting for {what or probe}")
        await asyncio.sleep(interval)


def chromium_path() -> str:
    for candidate in ("/usr/bin/chromium", shutil.which("chromium") or ""):
        if candidate and Path(candidate).exists():
            return candidate
    raise RuntimeError("chromium is not installed (apt-get install chromium)")
