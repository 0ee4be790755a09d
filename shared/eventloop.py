"""The event loop of the long-running services (`sentinel api`, `sentinel executor`): one place.

uvloop runs the same asyncio code (gRPC's aio server, redis-py, aiohttp, Playwright's driver pipe) on
libuv, with less CPU per callback, socket read and timer than the standard library's loop; it is
used where it is installed unless SENTINEL_EVENT_LOOP=asyncio. Nothing here starts a service.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from shared.settings import EventLoopSettings

T = TypeVar("T")


def loop_factory(settings: EventLoopSettings) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """A new-loop factory for `asyncio.Runner`: uvloop's when chosen and installed, else None
    (asyncio's default loop)."""
    if not settings.uvloop:
        return None
    try:
        import uvloop
    except ImportError:  # a platform without uvloop: asyncio's loop does the same work
        return None
    return uvloop.new_event_loop


def run(main: Coroutine[Any, Any, T], settings: EventLoopSettings) -> T:
    """Run `main` to completion on a new loop of the kind `settings` chooses, like `asyncio.run`."""
    with asyncio.Runner(loop_factory=loop_factory(settings)) as runner:
        return runner.run(main)
