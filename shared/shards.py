"""Queue shards: where a tenant, a job and a run live, and reading the shards as one queue.

SENTINEL_QUEUE_SHARDS=N spreads a queue over N hash tags (`{default-0}`, …: `shared.keys.shard_tag`
spreads them over the slot space): N complete key layouts (`shared.keys.Keys`), each in its own
cluster slot, so a Redis Cluster puts them on different nodes and the queue's work is spread over N
Redis cores. Every Lua script still touches one shard only.

Placement, all by one stable hash (`shard_of`, CRC-32 modulo N):

- A tenant's jobs and runs all live on the tenant's shard (`Queue.for_tenant`). Fair share, the
  tenant's queued and running limits, its idempotency keys, its job and tag indexes and its runs
  are therefore exact and atomic on one shard, and ListJobs, a run and a tenant's figures read one
  shard. The price: one busy tenant cannot use more than one shard's Redis core.
- A job or run id names its shard: `new_id` draws uuids until one hashes to the wanted shard (N
  draws on average), so Status, Cancel, StreamProgress, Retry or ListArtifacts go straight to the
  job's shard with no lookup and no broadcast, and ids stay canonical uuids.

The whole queue is the shards together: executors claim from every shard (`executor_service.store`),
GetStats sums them (`shared.stats`), WatchEvents merges their event streams with a cursor holding
one position per shard (`encode_cursor`), dead letters are listed across shards with a token holding
one position per shard (`merge_pages`), and pause, purge and retention run on every shard. The one
queue-wide figure no script can hold exactly is the queue's rate limit: each shard gets its share
(`Queue.context`). With one shard every key, id, cursor and token is what it was before shards existed.
"""

from __future__ import annotations

import asyncio
import uuid
import zlib
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, TypeVar

from shared.errors import FieldViolation, ValidationError
from shared.paging import Page

if TYPE_CHECKING:
    from shared.queue import Queue

T = TypeVar("T")

#: Most uuids drawn for an id on a given shard; (1 - 1/N)^(100·N) makes running out impossible in practice.
_DRAWS_PER_SHARD = 100
#: Separates the per-shard parts of a cursor or page token.
SEPARATOR = ","
#: A shard's part of a page token once that shard has nothing more.
_DONE = "-"


def shard_of(name: str, count: int) -> int:
    """The shard (0 … count-1) of a tenant or an id; always 0 for one shard."""
    if count <= 1:
        return 0
    return zlib.crc32(name.encode("utf-8")) % count


def new_id(index: int, count: int) -> str:
    """A fresh uuid that `shard_of` maps to shard `index` of `count`."""
    for _ in range(_DRAWS_PER_SHARD * max(count, 1)):
        candidate = str(uuid.uuid4())
        if shard_of(candidate, count) == index:
            return candidate
    raise RuntimeError(f"no uuid for shard {index} of {count} after {_DRAWS_PER_SHARD * count} draws")


async def each(queue: Queue, work: Callable[[Queue], Awaitable[T]]) -> list[T]:
    """`work` on every shard of the queue at once; the results in shard order."""
    return list(await asyncio.gather(*(work(shard) for shard in queue.shards)))


def encode_cursor(positions: Sequence[str]) -> str:
    """A cursor over the shards' streams: one stream id per shard (just the id with one shard)."""
    return SEPARATOR.join(positions)


def decode_cursor(cursor: str, count: int, *, field: str = "cursor") -> list[str]:
    """The per-shard stream ids of a cursor from `encode_cursor` (not checked as stream ids here);
    `0-0` alone, "from the start", stands for the start of every shard's stream."""
    parts = cursor.split(SEPARATOR)
    if parts == ["0-0"]:
        return ["0-0"] * count
    if len(parts) != count:
        raise ValidationError([FieldViolation(field, f"is not a cursor of this queue's {count} shard(s): {cursor!r}")])
    return parts


async def merge_pages(
    queue: Queue,
    fetch: Callable[[Queue, str, int], Awaitable[Page[T]]],
    *,
    position: Callable[[T], str],
    order: Callable[[T], tuple[int, str]],
    page_size: int,
    page_token: str = "",
) -> Page[T]:
    """One newest-first page over every shard's index, each shard paged by `fetch(shard, token, size)`.

    `position(item)` is the index token that pages on after `item` (`shared.paging`: score|member);
    `order(item)` sorts newest first when reversed. The merged token holds one token per shard,
    so a page never repeats or skips an item of any shard. With one shard it is `fetch` itself.
    """
    shards = queue.shards
    if len(shards) == 1:
        return await fetch(queue, page_token, page_size)
    tokens = decode_cursor(page_token, len(shards), field="page_token") if page_token else [""] * len(shards)

    async def one(shard: Queue, token: str) -> Page[T]:
        return Page(items=[], next_token=_DONE) if token == _DONE else await fetch(shard, token, page_size)

    pages = await asyncio.gather(*(one(s, t) for s, t in zip(shards, tokens, strict=True)))
    tagged = [(order(item), i, item) for i, page in enumerate(pages) for item in page.items]
    tagged.sort(key=lambda row: row[0], reverse=True)
    taken = tagged[:page_size]
    counts = [0] * len(shards)
    last: list[T | None] = [None] * len(shards)
    for _, i, item in taken:
        counts[i] += 1
        last[i] = item
    after: list[str] = []
    for i, page in enumerate(pages):
        if tokens[i] == _DONE:
            after.append(_DONE)
        elif counts[i] == len(page.items):  # all of this shard's page went out: go on where it stopped
            after.append(page.next_token or _DONE)
        else:
            kept = last[i]
            after.append(tokens[i] if kept is None else position(kept))
    next_token = "" if all(t == _DONE for t in after) else SEPARATOR.join(after)
    return Page(items=[item for _, _, item in taken], next_token=next_token)
