"""StreamHub: one blocking XREAD fanned out to many subscribers, against a real redis-server."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio as aioredis

from shared.errors import ShuttingDown
from shared.queue import connect_blocking
from shared.settings import RedisSettings
from shared.streams import Entry, StreamHub, Subscription, parse_id
from tests.support import RedisProcess, wait_for

KEY = "sentinel:{test}:progress:job-1"
OTHER = "sentinel:{test}:progress:job-2"


@pytest.fixture
async def hub(redis_server: RedisProcess, redis_client: aioredis.Redis) -> AsyncIterator[StreamHub]:
    reader = aioredis.Redis.from_url(
        redis_server.url, decode_responses=True, single_connection_client=True, socket_timeout=None
    )
    # A long block: every prompt delivery below must come from the wake-up, not a timeout.
    stream_hub = StreamHub(reader, redis_client, block_ms=30_000)
    await stream_hub.start()
    try:
        yield stream_hub
    finally:
        await stream_hub.stop()
        await reader.aclose()


async def take(sub: Subscription, n: int, *, within: float = 10) -> list[Entry]:
    """The next `n` entries of `sub`, failing if they do not all arrive within `within` seconds."""
    out: list[Entry] = []
    async with asyncio.timeout(within):
        async for entry in sub.entries():
            out.append(entry)
            if len(out) == n:
                break
    return out


async def add(client: aioredis.Redis, key: str, n: int, *, start: int = 0) -> list[str]:
    return [str(await client.xadd(key, {"n": str(start + i)})) for i in range(n)]


def ids(entries: list[Entry]) -> list[str]:
    return [entry_id for entry_id, _ in entries]


async def test_entries_reach_every_subscriber_in_order(hub: StreamHub, redis_client: aioredis.Redis) -> None:
    a = await hub.subscribe(KEY, "0-0")
    b = await hub.subscribe(KEY, "0-0")
    other = await hub.subscribe(OTHER, "0-0")
    assert hub.subscriber_count == 3

    added = await add(redis_client, KEY, 20)
    got_a, got_b = await asyncio.gather(take(a, 20), take(b, 20))

    assert ids(got_a) == added
    assert ids(got_b) == added
    assert [fields["n"] for _, fields in got_a] == [str(i) for i in range(20)]
    other_added = await add(redis_client, OTHER, 2)
    assert ids(await take(other, 2)) == other_added
    assert a.queue.empty() and b.queue.empty()


async def test_subscriber_from_a_position_gets_only_later_entries(hub: StreamHub, redis_client: aioredis.Redis) -> None:
    added = await add(redis_client, KEY, 5)
    sub = await hub.subscribe(KEY, added[2])
    assert ids(await take(sub, 2)) == added[3:]
    more = await add(redis_client, KEY, 1)
    assert ids(await take(sub, 1)) == more
    assert sub.queue.empty()


async def test_late_subscriber_behind_the_hub_rewinds_without_duplicates(
    hub: StreamHub, redis_client: aioredis.Redis
) -> None:
    first = await hub.subscribe(KEY, "0-0")
    added = await add(redis_client, KEY, 3)
    assert ids(await take(first, 3)) == added  # the hub's position is now past all three

    late = await hub.subscribe(KEY, "0-0")
    assert ids(await take(late, 3)) == added  # rewound: the older entries are delivered

    more = await add(redis_client, KEY, 2, start=3)
    got_late, got_first = await asyncio.gather(take(late, 2), take(first, 2))
    assert ids(got_late) == more
    assert ids(got_first) == more  # not the three again
    assert first.queue.empty() and late.queue.empty()


async def test_subscriber_in_the_middle_rewinds_only_to_its_position(
    hub: StreamHub, redis_client: aioredis.Redis
) -> None:
    first = await hub.subscribe(KEY, "0-0")
    added = await add(redis_client, KEY, 4)
    assert ids(await take(first, 4)) == added
    middle = await hub.subscribe(KEY, added[1])
    assert ids(await take(middle, 2)) == added[2:]
    more = await add(redis_client, KEY, 1)
    assert ids(await take(first, 1)) == more
    assert ids(await take(middle, 1)) == more
    assert first.queue.empty() and middle.queue.empty()


async def test_unsubscribe_removes_the_key(hub: StreamHub, redis_client: aioredis.Redis) -> None:
    a = await hub.subscribe(KEY, "0-0")
    b = await hub.subscribe(KEY, "0-0")
    hub.unsubscribe(a)
    assert hub.subscriber_count == 1
    assert KEY in hub._subs and KEY in hub._pos

    hub.unsubscribe(b)
    assert hub.subscriber_count == 0
    assert KEY not in hub._subs
    assert KEY not in hub._pos
    hub.unsubscribe(b)  # a second unsubscribe is harmless

    await add(redis_client, KEY, 1)
    again = await hub.subscribe(KEY, "0-0")  # the hub follows the key again from scratch
    assert len(await take(again, 1)) == 1
    assert a.queue.empty() and b.queue.empty()


async def test_stop_makes_waiting_subscribers_raise_hub_closed(hub: StreamHub) -> None:
    subs = [await hub.subscribe(KEY, "0-0"), await hub.subscribe(OTHER, "0-0")]
    waiting = [asyncio.create_task(take(sub, 1)) for sub in subs]
    await asyncio.sleep(0)  # let both start waiting on their queues
    assert not any(task.done() for task in waiting)

    await hub.stop()

    for task in waiting:
        with pytest.raises(ShuttingDown):
            await asyncio.wait_for(task, timeout=10)
    assert hub.subscriber_count == 0
    with pytest.raises(ShuttingDown):
        await hub.subscribe(KEY, "0-0")


async def blocked_readers(client: aioredis.Redis) -> list[int]:
    """Client ids of the connections blocked in XREAD right now."""
    return [int(c["id"]) for c in await client.client_list() if c.get("cmd") == "xread"]


async def test_new_subscriber_is_followed_at_once_after_the_reader_reconnects(
    redis_server: RedisProcess, redis_client: aioredis.Redis
) -> None:
    # The reader exactly as ApiServer.start builds it.
    reader = connect_blocking(RedisSettings(url=redis_server.url, configured=True))
    hub = StreamHub(reader, redis_client, block_ms=30_000)
    await hub.start()
    try:
        first = await hub.subscribe(KEY, "0-0")
        await add(redis_client, KEY, 1)
        await take(first, 1)
        (old,) = await wait_for(lambda: blocked_readers(redis_client), within=10, what="the hub to block")
        await redis_client.client_kill_filter(_id=str(old))  # a network blip drops the reader's connection

        async def reblocked() -> list[int]:
            return [i for i in await blocked_readers(redis_client) if i != old]

        await wait_for(reblocked, within=10, what="the hub to block again on a new connection")

        late = await hub.subscribe(OTHER, "0-0")
        added = await add(redis_client, OTHER, 1)
        assert ids(await take(late, 1, within=5)) == added
    finally:
        await hub.stop()
        await reader.aclose()


async def test_subscriber_leaving_before_the_first_read_is_not_a_read_failure(
    redis_server: RedisProcess,
    redis_client: aioredis.Redis,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    reader = aioredis.Redis.from_url(
        redis_server.url, decode_responses=True, single_connection_client=True, socket_timeout=None
    )
    entered, gate, returned = asyncio.Event(), asyncio.Event(), asyncio.Event()
    original = reader.client_id

    async def gated_client_id(**kwargs: Any) -> Any:
        entered.set()
        await gate.wait()
        try:
            return await original(**kwargs)
        finally:
            returned.set()

    monkeypatch.setattr(reader, "client_id", gated_client_id)
    hub = StreamHub(reader, redis_client, block_ms=30_000)
    await hub.start()
    try:
        with caplog.at_level(logging.WARNING, logger="shared.streams"):
            sub = await hub.subscribe(KEY, "0-0")
            await asyncio.wait_for(entered.wait(), timeout=10)
            hub.unsubscribe(sub)  # the client went away before the hub's first read
            gate.set()
            await asyncio.wait_for(returned.wait(), timeout=10)
            # _run resumed and went on synchronously to its next suspension point.
            again = await hub.subscribe(KEY, "0-0")
            added = await add(redis_client, KEY, 1)
            assert ids(await take(again, 1)) == added
        assert [r.getMessage() for r in caplog.records if r.name == "shared.streams"] == []
    finally:
        await hub.stop()
        await reader.aclose()


def test_parse_id_orders_like_redis() -> None:
    assert parse_id("1-0") < parse_id("1-1") < parse_id("1-10") < parse_id("2-0")
    assert parse_id("9-99") < parse_id("10-0")  # numeric, not lexicographic
    assert parse_id("1700000000000-5") == (1_700_000_000_000, 5)
    assert parse_id("42") == (42, 0)
    assert parse_id("0-0") == (0, 0)
    ordered = ["10-0", "9-99", "1-10", "1-9", "0-1"]
    assert sorted(ordered, key=parse_id) == ["0-1", "1-9", "1-10", "9-99", "10-0"]


@pytest.mark.parametrize("bad", ["", "abc", "1-x", "x-1", "-", "1-2-3", "$"])
def test_parse_id_rejects_malformed_ids(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_id(bad)


BELL = "sentinel:{test}:events"
#: The doorbell's entries name the stream they announce (as the events stream names its job).
DOORBELLS = {BELL: lambda fields: fields.get("stream")}


async def ring(client: aioredis.Redis, key: str, n: int) -> str:
    """Append to `key` and to the doorbell in one transaction, as Sentinel's scripts do."""
    pipe = client.pipeline(transaction=True)
    pipe.xadd(key, {"n": str(n)})
    pipe.xadd(BELL, {"kind": "progress", "stream": key})
    added, _ = await pipe.execute()
    return str(added)


@pytest.fixture
async def bell_hub(redis_server: RedisProcess, redis_client: aioredis.Redis) -> AsyncIterator[StreamHub]:
    reader = connect_blocking(RedisSettings(url=redis_server.url, configured=True))
    # A long block: every prompt delivery below must come from the doorbell or a wake-up.
    hub = StreamHub(reader, redis_client, block_ms=30_000, doorbells=DOORBELLS)
    await hub.start()
    try:
        yield hub
    finally:
        await hub.stop()
        await reader.aclose()


async def test_with_a_doorbell_the_hub_blocks_on_it_alone_and_delivers_what_rang_it(
    bell_hub: StreamHub, redis_client: aioredis.Redis
) -> None:
    sub = await bell_hub.subscribe(KEY, "0-0")
    other = await bell_hub.subscribe(OTHER, "0-0")

    async def blocked_on_the_bell() -> bool:
        return any(c.get("cmd") == "xread" for c in await redis_client.client_list())

    await wait_for(blocked_on_the_bell, within=10, what="the hub to block")
    first = [await ring(redis_client, KEY, i) for i in range(3)]
    assert ids(await take(sub, 3, within=5)) == first
    more = await ring(redis_client, OTHER, 0)
    assert ids(await take(other, 1, within=5)) == [more]
    assert sub.queue.empty() and other.queue.empty()


async def test_with_a_doorbell_a_late_subscriber_is_served_at_once(
    bell_hub: StreamHub, redis_client: aioredis.Redis
) -> None:
    first = await bell_hub.subscribe(KEY, "0-0")
    added = await ring(redis_client, KEY, 0)
    assert ids(await take(first, 1, within=5)) == [added]
    waiting = await add(redis_client, OTHER, 2)  # already there: no doorbell will ring for it

    late = await bell_hub.subscribe(OTHER, "0-0")
    assert ids(await take(late, 2, within=5)) == waiting
    again = await bell_hub.subscribe(KEY, "0-0")  # behind the hub: rewound, without duplicates
    assert ids(await take(again, 1, within=5)) == [added]
    assert first.queue.empty()


async def test_an_entry_without_its_doorbell_arrives_after_the_block_at_most(
    redis_server: RedisProcess, redis_client: aioredis.Redis
) -> None:
    reader = connect_blocking(RedisSettings(url=redis_server.url, configured=True))
    hub = StreamHub(reader, redis_client, block_ms=200, doorbells=DOORBELLS)
    await hub.start()
    try:
        sub = await hub.subscribe(KEY, "0-0")
        silent = await add(redis_client, KEY, 1)
        assert ids(await take(sub, 1, within=10)) == silent
    finally:
        await hub.stop()
        await reader.aclose()


async def test_with_a_doorbell_the_hub_reads_everything_again_after_its_reader_reconnects(
    bell_hub: StreamHub, redis_client: aioredis.Redis
) -> None:
    first = await bell_hub.subscribe(KEY, "0-0")
    rung = await ring(redis_client, KEY, 0)
    assert ids(await take(first, 1)) == [rung]
    (old,) = await wait_for(lambda: blocked_readers(redis_client), within=10, what="the hub to block")
    unrung = await add(redis_client, KEY, 1)  # no doorbell: the blocked hub does not see it...
    await redis_client.client_kill_filter(_id=str(old))  # ...until a network blip: then it reads everything

    assert ids(await take(first, 1, within=10)) == unrung
    late = await bell_hub.subscribe(OTHER, "0-0")
    rung = await ring(redis_client, OTHER, 0)
    assert ids(await take(late, 1, within=5)) == [rung]


async def test_a_doorbells_own_followers_get_its_ring_without_a_second_read(
    bell_hub: StreamHub, redis_client: aioredis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """WatchEvents follows the events stream, which is also the hub's doorbell: the entries a ring
    brings are handed to its followers from the ring itself, not read again in the next round."""
    watcher = await bell_hub.subscribe(BELL, "0-0")
    await ring(redis_client, KEY, 0)  # nobody follows KEY: only the watcher gets anything
    assert [fields["stream"] for _, fields in await take(watcher, 1, within=5)] == [KEY]
    await wait_for(lambda: blocked_readers(redis_client), within=10, what="the hub to block")

    read: list[str] = []
    packed = bell_hub._packed
    poll = packed.poll

    async def recording(client: aioredis.Redis, streams: dict[str, Any], bells: Any) -> Any:
        read.extend(streams)
        return await poll(client, streams, bells)

    monkeypatch.setattr(packed, "poll", recording)
    for n in range(1, 4):
        await ring(redis_client, KEY, n)
        assert [fields["stream"] for _, fields in await take(watcher, 1, within=5)] == [KEY]
    assert read == [], "the doorbell's entries were read a second time"
    assert watcher.queue.empty()
