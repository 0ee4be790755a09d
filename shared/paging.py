"""Paging through a sorted-set index newest first, with a filter, by an opaque token.

A token is `<score>|<member>` of the last entry examined, so pages stay stable while new
entries arrive (they are newer, so they sort before the token). Entries sharing one score (a
batch submitted in the same millisecond) are ordered by member and walked without gaps.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, TypeVar, cast

import redis.asyncio as aioredis

from shared.errors import FieldViolation, ValidationError

T = TypeVar("T")


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    next_token: str
    partial: str = ""  # not empty: why the page holds only part of what was asked for (hybrid, Redis away)


#: A page's size when the request names none, and the most one request may ask for.
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500


def page_size(requested: int) -> int:
    """The page size to use for a request's `page_size` (0 = the default)."""
    if requested > MAX_PAGE_SIZE:
        raise ValidationError([FieldViolation("page_size", f"must be at most {MAX_PAGE_SIZE}")])
    return requested or DEFAULT_PAGE_SIZE


def parse_token(token: str) -> tuple[float, str] | None:
    if not token:
        return None
    score, sep, member = token.partition("|")
    if not sep or not re.fullmatch(r"\d{1,16}", score, re.ASCII):
        raise ValidationError([FieldViolation("page_token", "is not a token from a previous page")])
    return float(score), member


async def scan_index(
    redis: aioredis.Redis,
    index: str,
    *,
    load: Callable[[list[str]], Awaitable[list[T | None]]],
    keep: Callable[[T], bool],
    page_size: int,
    page_token: str = "",
    scan_limit: int = 5000,
) -> Page[T]:
    """Up to `page_size` loaded items that `keep` accepts, newest first after `page_token`.

    At most `scan_limit` index entries are examined per call; a partial page still carries a
    token to go on from. `load` turns members into items (None for a member that is gone).
    """
    after = parse_token(page_token)
    items: list[T] = []
    examined = 0
    last = after
    batch = max(page_size * 2, 100)
    offset = 0
    exhausted = False
    while len(items) < page_size and examined < scan_limit:
        maximum = "+inf" if last is None else f"{last[0]:.0f}"
        rows = cast(
            list[tuple[str, float]],
            await redis.zrevrangebyscore(index, maximum, "-inf", start=offset, num=batch, withscores=True),
        )
        fresh = rows if last is None else [(m, s) for m, s in rows if s < last[0] or m < last[1]]
        if not fresh:
            if len(rows) < batch:
                exhausted = True
                break
            offset += batch  # a long run of one score, all already seen: look further along it
            continue
        offset = 0
        loaded = await load([m for m, _ in fresh])
        for i, ((member, score), item) in enumerate(zip(fresh, loaded, strict=True)):
            examined += 1
            last = (score, member)
            if item is not None and keep(item):
                items.append(item)
                if len(items) == page_size:
                    # Filled by the index's last entry: no token that would lead to an empty page.
                    exhausted = i == len(fresh) - 1 and len(rows) < batch
                    break
        else:
            if len(rows) < batch:
                exhausted = True
                break
    token = "" if exhausted or last is None or last == after else f"{last[0]:.0f}|{last[1]}"
    return Page(items=items, next_token=token)
