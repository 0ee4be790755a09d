"""Pause and resume a queue: a paused queue claims nothing new, running jobs go on to their end.

Submits are still accepted while paused; the jobs wait in their lanes. Each change writes one
`paused` / `resumed` event to the queue's event stream (see `shared/scripts/pause.lua`).
"""

from __future__ import annotations

from shared.queue import Queue


async def _set(queue: Queue, paused: bool) -> bool:
    changed = await queue.scripts.pause(keys=[queue.keys.paused, queue.keys.events], args=[queue.context(pause=paused)])
    return bool(int(changed))


async def pause(queue: Queue) -> bool:
    """Pause the queue; returns False when it already was paused."""
    return await _set(queue, True)


async def resume(queue: Queue) -> bool:
    """Resume the queue; returns False when it was not paused."""
    return await _set(queue, False)
