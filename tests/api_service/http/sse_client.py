"""A small Server-Sent Events reader for the tests, as a browser's fetch() reader would parse them."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp


@dataclass(frozen=True)
class Event:
    id: str
    event: str
    data: Any


async def events(response: aiohttp.ClientResponse) -> AsyncIterator[Event]:
    """The events of an SSE response, until it ends; comment lines (keep-alives) are skipped."""
    fields: dict[str, str] = {}
    async for raw in response.content:
        line = raw.decode().rstrip("\n")
        if not line:
            if "data" in fields:
                yield Event(
                    id=fields.get("id", ""), event=fields.get("event", "message"), data=json.loads(fields["data"])
                )
            fields = {}
        elif not line.startswith(":"):
            name, _, value = line.partition(": ")
            fields[name] = value


async def opening_position(response: aiohttp.ClientResponse) -> str:
    """The id of the stream's first block, which must carry no data: a position (an EventSource sets
    its `lastEventId` from it and dispatches nothing)."""
    fields: dict[str, str] = {}
    async for raw in response.content:
        line = raw.decode().rstrip("\n")
        if not line and fields:
            assert "data" not in fields, fields
            return fields["id"]
        if line and not line.startswith(":"):
            name, _, value = line.partition(": ")
            fields[name] = value
    raise AssertionError("the stream ended before its position")


async def take(response: aiohttp.ClientResponse, n: int) -> list[Event]:
    """The next `n` events of `response`."""
    found: list[Event] = []
    if n == 0:
        return found
    async for event in events(response):
        found.append(event)
        if len(found) == n:
            break
    return found


async def rest(response: aiohttp.ClientResponse) -> list[Event]:
    """Every event until the stream ends."""
    return [event async for event in events(response)]
