"""Artifacts go with their job: the sweeper deletes directories of jobs retention removed."""

from __future__ import annotations

import os
import time
from pathlib import Path

import redis.asyncio as aioredis

from executor_service.artifacts import sweep
from shared import retention
from shared.queue import Queue
from shared.settings import QueueSettings
from tests.queue_helpers import run_jobs, submit_jobs


def make_dir(root: Path, name: str, *, age_s: float = 3600) -> Path:
    d = root / name / "1"
    d.mkdir(parents=True)
    (d / "step-00-failure.png").write_bytes(b"png")
    old = time.time() - age_s
    os.utime(root / name, (old, old))
    return root / name


async def test_directories_of_removed_jobs_go_the_others_stay(redis_client: aioredis.Redis, tmp_path: Path) -> None:
    queue = Queue.open(redis_client, QueueSettings())
    await queue.ensure_groups()
    kept, removed = await submit_jobs(queue, 2)
    await run_jobs(queue, 2)
    root = tmp_path / "artifacts"
    dirs = {name: make_dir(root, name) for name in (kept, removed)}
    fresh = make_dir(root, "just-created", age_s=0)
    (root / "loose-file.txt").write_text("not a job directory")

    assert await sweep(queue, root) == 0  # every job still exists
    await redis_client.zadd(queue.keys.completed, {removed: 0})  # finished long ago
    assert await retention.clean(queue, older_than_ms=60_000) == 1
    assert await sweep(queue, root) == 1

    assert not dirs[removed].exists()
    assert dirs[kept].exists() and fresh.exists() and (root / "loose-file.txt").exists()
    assert await sweep(queue, tmp_path / "missing") == 0
