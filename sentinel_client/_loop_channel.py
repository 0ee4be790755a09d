"""The asyncio client's channel, opened in the event loop that first uses it, as httpx's AsyncClient does.

A `grpc.aio` channel belongs to the loop it was made in: one made at import time, outside any loop,
fails its first call inside `asyncio.run` with "attached to a different loop". So the channel is
opened by the first call, in that call's loop. When a later call comes from another loop and the
first one has been closed (a second `asyncio.run`, a test's fresh loop), the stale channel is closed
and a new one opened. A loop that is still open may hold calls on the channel: a call from another
loop then is a ConfigError, never a channel pulled from under the other loop's calls.

Never reads the environment, and never blocks: TLS files are read once, when the client is made.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import grpc

from sentinel_client.errors import ConfigError


class LoopChannel:
    """One `grpc.aio.Channel` at a time, in the running event loop; `opener` makes one."""

    def __init__(self, opener: Callable[[], grpc.aio.Channel], owner: str) -> None:
        self._open = opener
        self._owner = owner  # the client's repr, for messages
        self._channel: grpc.aio.Channel | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def get(self) -> grpc.aio.Channel:
        """The channel of the running loop: opened now if there is none, or if the one there is
        belongs to a loop that has been closed (that one is closed first).

        Raises:
            ConfigError: the channel belongs to another event loop that is still open.
        """
        loop = asyncio.get_running_loop()
        if self._channel is not None and self._loop is loop:
            return self._channel
        stale, stale_loop = self._channel, self._loop
        if stale is not None and stale_loop is not None and not stale_loop.is_closed():
            raise ConfigError(
                f"{self._owner} is in use by another event loop, which is still open: make (and close) "
                "each AsyncClient inside the event loop that uses it"
            )
        # Swapped before any await: a call made meanwhile in this loop finds the new channel.
        self._channel, self._loop = self._open(), loop
        if stale is not None:
            await stale.close()  # its loop is gone, and with it every call it had
        return self._channel

    async def aclose(self) -> None:
        """Close the channel, if one was opened; the calls still on it are cancelled."""
        channel, loop = self._channel, self._loop
        self._channel = self._loop = None
        if channel is None or loop is None:
            return
        if loop is not asyncio.get_running_loop() and loop.is_running():
            # Opened and in use in another thread's loop: closed there, where its calls are.
            await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(channel.close(), loop))
            return
        await channel.close()
