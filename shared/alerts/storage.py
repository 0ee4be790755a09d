"""The two Redis habits the alerts modules share: reading many hashes in one round trip, and
calling an alert script by name."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar, cast

from redis.commands.core import AsyncScript

from shared import scripts
from shared.queue import Queue

__all__ = ["load_hashes", "script"]

T = TypeVar("T")


async def load_hashes(queue: Queue, keys: Sequence[str], decode: Callable[[dict[str, str]], T]) -> list[T | None]:
    """Each hash of `keys` decoded, in order, in one pipelined round trip (None where one is gone)."""
    pipe = queue.redis.pipeline(transaction=False)
    for key in keys:
        pipe.hgetall(key)
    hashes = cast(list[dict[str, str]], await pipe.execute())
    return [decode(raw) if raw else None for raw in hashes]


def script(queue: Queue, name: str) -> AsyncScript:
    """The Lua script `shared/scripts/<name>.lua` on the queue's client (EVALSHA, loaded when missing)."""
    return queue.redis.register_script(scripts.source(name))
