"""Artifacts go with their job: delete the screenshots of jobs that no longer exist.

Artifacts are files on the executor's disk (`SENTINEL_ARTIFACTS_DIR/<job id>/<attempt>/…`), which
Redis-side retention cannot reach. So each executor sweeps its own directory: a job directory
whose job hash is gone (removed by retention or Clean) is deleted. A directory younger than
`min_age_s` is left alone, so a run that just created its directory is never raced.
It never deletes anything outside the artifacts root and never a directory whose job exists.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import time
from pathlib import Path

from redis.exceptions import RedisError

from shared.queue import Queue
from shared.tasks import Periodic

log = logging.getLogger(__name__)

#: Job directories looked up per round trip.
BATCH = 500


def _candidates(root: Path, min_age_s: float) -> list[Path]:
    if not root.is_dir():
        return []
    cutoff = time.time() - min_age_s
    return [d for d in root.iterdir() if d.is_dir() and not d.is_symlink() and d.stat().st_mtime <= cutoff]


async def sweep(queue: Queue, root: Path, *, min_age_s: float = 60.0) -> int:
    """Delete the artifact directories of jobs that no longer exist; returns how many went."""
    dirs = await asyncio.to_thread(_candidates, root, min_age_s)
    removed = 0
    for start in range(0, len(dirs), BATCH):
        chunk = dirs[start : start + BATCH]
        pipe = queue.redis.pipeline(transaction=False)
        for d in chunk:
            pipe.exists(queue.keys.job(d.name))
        exists = await pipe.execute()
        for d, found in zip(chunk, exists, strict=True):
            if not int(found):
                await asyncio.to_thread(shutil.rmtree, d, True)
                removed += 1
    return removed


class ArtifactSweeper:
    """Runs `sweep` every `interval_s` while the executor runs."""

    def __init__(self, queue: Queue, root: Path, *, interval_s: float = 60.0) -> None:
        self._queue = queue
        self._root = root
        self._loop = Periodic(
            "artifact-sweeper", self.run_once, interval_s=interval_s, first_now=False, tolerated=(RedisError, OSError)
        )

    async def start(self) -> None:
        self._loop.start()

    async def stop(self) -> None:
        await self._loop.stop()

    async def run_once(self) -> int:
        removed = await sweep(self._queue, self._root)
        if removed:
            log.info("deleted the artifacts of %d removed job(s)", removed)
        return removed
