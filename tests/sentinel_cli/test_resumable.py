"""The CLI's reconnect-with-cursor loop, used by `submit --follow` and `events`."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import pytest

from sentinel_cli.client import resumable


def unavailable() -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(grpc.StatusCode.UNAVAILABLE, grpc.aio.Metadata(), grpc.aio.Metadata(), "gone")


async def test_a_dropped_stream_is_reopened_from_the_last_cursor() -> None:
    opened: list[str] = []
    items = ["1", "2", "3", "4"]

    async def stream(cursor: str) -> AsyncIterator[str]:
        opened.append(cursor)
        start = int(cursor) if cursor else 0
        for item in items[start:]:
            yield item
            if item == "2" and len(opened) == 1:
                raise unavailable()  # the server went away after item 2

    got = [item async for item in resumable(stream, lambda item: item, reconnect_deadline_s=5)]
    assert got == items
    assert opened == ["", "2"]


async def test_other_errors_and_a_lasting_outage_are_raised() -> None:
    async def refused(cursor: str) -> AsyncIterator[str]:
        raise grpc.aio.AioRpcError(grpc.StatusCode.NOT_FOUND, grpc.aio.Metadata(), grpc.aio.Metadata(), "no")
        yield cursor  # pragma: no cover - makes this an async generator

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        [item async for item in resumable(refused, lambda item: item)]
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND

    async def down(cursor: str) -> AsyncIterator[str]:
        raise unavailable()
        yield cursor  # pragma: no cover

    with pytest.raises(grpc.aio.AioRpcError) as gave_up:
        [item async for item in resumable(down, lambda item: item, reconnect_deadline_s=1)]
    assert gave_up.value.code() == grpc.StatusCode.UNAVAILABLE
