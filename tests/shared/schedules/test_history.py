"""A schedule's history outlives its jobs: how each ended, kept when the events reader judges the
end (`shared.alerts.outcomes.apply_entry`), read by `get_schedule` once retention removed the job.
Against a real redis-server, with jobs ended as an executor ends them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import cast

import pytest
import redis.asyncio as aioredis

from shared import retention
from shared.alerts.outcomes import apply_entry
from shared.model import ErrorCategory, JobError, JobState
from shared.queue import Queue
from shared.schedules import firing, store
from shared.schedules.model import OverlapPolicy
from shared.settings import AlertSettings, QueueSettings
from tests.queue_helpers import run_jobs
from tests.shared.schedules.helpers import TENANT, spec

ERROR = JobError(category=ErrorCategory.ASSERTION, message="expected status 200, got 503\n(body: 'down')")


@pytest.fixture
async def queue(redis_client: aioredis.Redis) -> AsyncIterator[Queue]:
    # Retention that keeps no finished job: every cleaner pass removes them all.
    q = Queue.open(redis_client, QueueSettings(remove_on_complete=0, remove_on_fail=0))
    await q.ensure_groups()
    yield q


async def judge_ends(queue: Queue) -> None:
    """What the events reader does with each job end on the events stream."""
    entries = cast(list[tuple[str, dict[str, str]]], await queue.redis.xrange(queue.keys.events))
    for entry_id, fields in entries:
        await apply_entry(queue, entry_id, fields, settings=AlertSettings())


async def test_a_runs_end_is_kept_with_its_schedule_after_retention_removed_its_job(queue: Queue) -> None:
    schedule = await store.create_schedule(queue, spec(overlap=OverlapPolicy.ALLOW), tenant=TENANT, sealer=None)
    sid, t = schedule.schedule_id, schedule.anchor_ms
    assert await firing.fire_due(queue, sid, now=t + 1000) == [(t + 1000, "started")]
    await run_jobs(queue, 1, state=JobState.FAILED, error=ERROR)
    assert await firing.fire_due(queue, sid, now=t + 2000) == [(t + 2000, "started")]
    await run_jobs(queue, 1)
    assert await firing.fire_due(queue, sid, now=t + 3000) == [(t + 3000, "started")]  # still running

    await judge_ends(queue)
    before = (await store.get_schedule(queue, sid, tenant=TENANT)).recent_runs
    assert [(r.state, r.error, r.removed) for r in before] == [
        (JobState.PENDING, "", False),
        (JobState.COMPLETED, "", False),
        (JobState.FAILED, "expected status 200, got 503", False),  # its first line
    ]

    assert await retention.clean(queue) == 2  # the two finished jobs are gone
    after = (await store.get_schedule(queue, sid, tenant=TENANT)).recent_runs
    assert [(r.state, r.error, r.removed) for r in after] == [
        (JobState.PENDING, "", False),
        (JobState.COMPLETED, "", True),
        (JobState.FAILED, "expected status 200, got 503", True),
    ]
    assert [r.job_id for r in after] == [r.job_id for r in before]

    assert await store.delete_schedule(queue, sid, tenant=TENANT)
    assert await queue.redis.exists(queue.keys.schedule_ends(sid)) == 0  # the history goes with it


async def test_a_job_removed_before_its_end_was_judged_shows_removed_and_no_state(queue: Queue) -> None:
    schedule = await store.create_schedule(queue, spec(), tenant=TENANT, sealer=None)
    sid, t = schedule.schedule_id, schedule.anchor_ms
    await firing.fire_due(queue, sid, now=t + 1000)
    await run_jobs(queue, 1)
    assert await retention.clean(queue) == 1
    [run] = (await store.get_schedule(queue, sid, tenant=TENANT)).recent_runs
    assert (run.state, run.error, run.removed, run.skipped) == (None, "", True, False)


async def test_the_history_keeps_only_the_jobs_its_runs_list_still_names(queue: Queue) -> None:
    schedule = await store.create_schedule(queue, spec(overlap=OverlapPolicy.ALLOW), tenant=TENANT, sealer=None)
    sid, t = schedule.schedule_id, schedule.anchor_ms
    for k in range(1, 46):  # more than twice the 20 runs the list keeps
        await firing.fire_due(queue, sid, now=t + 1000 * k)
        await run_jobs(queue, 1)
    await judge_ends(queue)
    kept = await queue.redis.hlen(queue.keys.schedule_ends(sid))
    assert kept <= 2 * store.RECENT_RUNS
    runs = (await store.get_schedule(queue, sid, tenant=TENANT)).recent_runs
    assert len(runs) == store.RECENT_RUNS and all(r.state is JobState.COMPLETED for r in runs)


async def test_an_error_of_blank_lines_keeps_no_line_and_a_deleted_schedule_keeps_no_history(queue: Queue) -> None:
    schedule = await store.create_schedule(queue, spec(overlap=OverlapPolicy.ALLOW), tenant=TENANT, sealer=None)
    sid, t = schedule.schedule_id, schedule.anchor_ms
    await firing.fire_due(queue, sid, now=t + 1000)
    await run_jobs(queue, 1, state=JobState.FAILED, error=JobError(category=ErrorCategory.BROWSER, message=" \n \n"))
    await firing.fire_due(queue, sid, now=t + 2000)
    await judge_ends(queue)
    [_, failed] = (await store.get_schedule(queue, sid, tenant=TENANT)).recent_runs
    assert (failed.state, failed.error) == (JobState.FAILED, "")

    assert await store.delete_schedule(queue, sid, tenant=TENANT)
    await run_jobs(queue, 1)  # the second run ends after its schedule was deleted
    await judge_ends(queue)
    assert await queue.redis.exists(queue.keys.schedule_ends(sid)) == 0
