"""Hybrid write-back on a real redis-server: finished direct jobs become queue records, once."""

from __future__ import annotations

from dataclasses import replace
from typing import cast

import redis.asyncio as aioredis

from shared import codec, jobs
from shared.direct.table import JobTable
from shared.direct.writeback import WriteBack
from shared.model import JobResult, JobState, Progress
from shared.progress import follow_progress
from shared.queue import Queue
from shared.schema import EventField
from shared.settings import QueueSettings
from shared.streams import StreamHub
from tests.queue_helpers import command

NOW = 1_700_000_000_000


async def test_finished_direct_jobs_are_written_once_and_found_like_queued_ones(redis_client: aioredis.Redis) -> None:
    queue = Queue.open(redis_client, QueueSettings())
    table = JobTable(max_jobs=10)
    entries = []
    for i, tags in enumerate([("smoke",), ()]):
        record = jobs.new_job_record(
            QueueSettings(), command(tags=tags), job_id=f"d{i}", tenant="acme", trace="", now=NOW + i
        )
        entries.append(table.add(codec.job_from_hash(record), record, ""))
    running = entries[1]
    done = entries[0]
    result = JobResult(success=True, worker_id="exec-a", attempt=1, total_attempts=3)
    table.update(
        done,
        replace(
            done.job,
            state=JobState.COMPLETED,
            attempt=1,
            tries=1,
            result=result,
            worker_id="exec-a",
            started_at_ms=NOW + 10,
            finished_at_ms=NOW + 20,
            progress=Progress(percentage=100, total_steps=1, current_step=1, message="Complete"),
        ),
    )
    writeback = WriteBack(queue, table)
    await writeback.run_once()
    assert done.written and not running.written  # only finished jobs are written

    stored = await jobs.get_job(queue, "d0", tenant="acme")
    assert stored.state is JobState.COMPLETED and stored.result == result and stored.finished_at_ms == NOW + 20
    assert stored.options.tags == ("smoke",) and stored.worker_id == "exec-a" and stored.attempt == 1
    listed = await jobs.list_jobs(queue, tenant="acme", tag="smoke")
    assert [j.job_id for j in listed.items] == ["d0"]
    assert await redis_client.zscore(queue.keys.completed, "d0") == NOW + 20
    hub = StreamHub(redis_client, redis_client)
    events = [e async for e in follow_progress(queue, hub, "d0", tenant="acme")]
    assert len(events) == 1 and events[0].terminal and events[0].state is JobState.COMPLETED
    ended = cast(list[tuple[str, dict[str, str]]], await redis_client.xrange(queue.keys.events))
    assert [(e[EventField.JOB], e[EventField.KIND], e[EventField.TS]) for _, e in ended] == [
        ("d0", "completed", str(NOW + 20))
    ]

    # A second write of the same job (a reply lost, a restart) changes nothing.
    await redis_client.hset(queue.keys.job("d0"), "worker", "changed since")
    done.written = False
    await writeback.run_once()
    assert done.written
    assert await redis_client.hget(queue.keys.job("d0"), "worker") == "changed since"
    assert await redis_client.xlen(queue.keys.progress("d0")) == 1
    assert await redis_client.xlen(queue.keys.events) == 1
