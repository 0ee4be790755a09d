"""`AsyncClient` and event loops: one made outside any loop (at a module's top level, as httpx users
make theirs) works in `asyncio.run`, and in a second `asyncio.run`; one in use by a loop that is still
open refuses another loop with a ConfigError that says what to do; no channel is left open."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from sentinel_client import AsyncClient, ConfigError, NotFoundError, QueueStats, UnavailableError
from sentinel_client._loop_channel import LoopChannel
from tests.e2e.conftest import Stack
from tests.sentinel_client.conftest import api_of
from tests.support import closed_port

pytestmark = pytest.mark.timeout(60)


def test_an_async_client_made_outside_a_loop_works_in_each_asyncio_run(stack: Stack) -> None:
    client = AsyncClient(api_of(stack))  # no loop is running here: as at a module's top level

    async def use() -> QueueStats:
        with pytest.raises(NotFoundError):
            await client.get_run("no-such-run")
        with pytest.raises(NotFoundError):
            [event async for event in client.events("no-such-job")]
        return await client.stats()

    assert asyncio.run(use()).queue == "default"
    assert asyncio.run(use()).queue == "default"  # a new loop: the channel is opened again, in it
    asyncio.run(client.aclose())
    with pytest.raises(ConfigError, match="is closed"):
        asyncio.run(client.stats())


def test_an_async_client_in_use_by_another_open_loop_says_to_make_one_per_loop() -> None:
    client = AsyncClient(f"127.0.0.1:{closed_port()}", retries=0)
    first = asyncio.new_event_loop()
    try:
        with pytest.raises(UnavailableError):
            first.run_until_complete(client.get("some-job"))
        with pytest.raises(ConfigError) as refused:
            asyncio.run(client.get("some-job"))
        assert str(refused.value) == (
            f"AsyncClient('127.0.0.1:{client.target.rpartition(':')[2]}') is in use by another event loop, which"
            " is still open: make (and close) each AsyncClient inside the event loop that uses it"
        )
        first.run_until_complete(client.aclose())
    finally:
        first.close()


def test_a_closed_loops_channel_is_closed_when_the_next_loop_opens_its_own() -> None:
    opened: list[grpc.aio.Channel] = []

    def opener() -> grpc.aio.Channel:
        opened.append(grpc.aio.insecure_channel(f"127.0.0.1:{closed_port()}"))
        return opened[-1]

    channel = LoopChannel(opener, "AsyncClient('test')")

    async def twice() -> grpc.aio.Channel:
        got = await channel.get()
        assert await channel.get() is got  # one channel per loop
        return got

    first = asyncio.run(twice())
    second = asyncio.run(twice())
    assert opened == [first, second]
    assert first.get_state() is grpc.ChannelConnectivity.SHUTDOWN
    asyncio.run(channel.aclose())
    assert second.get_state() is grpc.ChannelConnectivity.SHUTDOWN
    asyncio.run(channel.aclose())  # twice is harmless, as is closing a client that never called
