"""Pause and resume a queue: a paused queue claims nothing new, running jobs go on to their end.

Submits are still accepted while paused; the jobs wait in their lanes. Each change writes one
`paused` / `resumed` event to the queue's event stream (see `shared/scripts/pause.lua`); with
shards, every shard has its flag and its event (WatchEvents shows the first shard's).
"""

from __future__ import annotations

from shared.queue import Queue
from shared.shards import each


async def _set(queue: Queue, paused: bool) -> bool:
    """Every shard's flag (each claims on its own): changed when any shard's flag changed."""

    async def one(shard: Queue) -> bool:
        keys = shard.keys
        return bool(int(await shard.scripts.pause(keys=[keys.paused, keys.events], args=[shard.context(pause=paused)])))

    return any(await each(queue, one))


async def pause(queue: Queue) -> bool:
    """Pause the queue; returns False when it already was paused."""
    return await _set(queue, True)


async def resume(queue: Queue) -> bool:
    """Resume the queue; returns False when it was not paused."""
    return await _set(queue, False)
