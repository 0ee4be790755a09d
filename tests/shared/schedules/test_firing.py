"""schedule_fire.lua and the scheduler's walk over fire times, against a real redis-server.

The tests pass `now` to the firing functions, so fire times are exact: an interval schedule fires at
anchor + k * interval. Jobs are ended as an executor would end them (tests.queue_helpers.run_jobs).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from shared import jobs, retention
from shared.model import JobSource, JobState
from shared.queue import Queue, connect
from shared.schedules import firing, store
from shared.schedules.model import OverlapPolicy, Schedule
from shared.schema import ScheduleField
from shared.settings import QueueSettings, RedisSettings
from tests.queue_helpers import run_jobs
from tests.shared.schedules.helpers import TENANT, spec
from tests.support import RedisProcess, start_redis, wait_for


@pytest.fixture
async def queue(redis_client: aioredis.Redis) -> AsyncIterator[Queue]:
    q = Queue.open(redis_client, QueueSettings())
    await q.ensure_groups()
    yield q


async def fired_jobs(queue: Queue, schedule: Schedule) -> list[tuple[int, str]]:
    """(fire time, job id) of every job the schedule fired, by fire time."""
    page = await jobs.list_jobs(queue, tenant=TENANT, schedule_id=schedule.schedule_id, page_size=500)
    return sorted((j.metadata.fire_time_ms, j.job_id) for j in page.items)


async def test_two_replicas_racing_for_one_fire_time_make_one_job(queue: Queue, redis_server: RedisProcess) -> None:
    schedule = await store.create_schedule(queue, spec(overlap=OverlapPolicy.ALLOW), tenant=TENANT, sealer=None)
    others = [aioredis.Redis.from_url(redis_server.url, decode_responses=True) for _ in range(4)]
    try:
        replicas = [queue, *(Queue.open(c, QueueSettings()) for c in others)]
        fire = schedule.anchor_ms + 1000
        for k in range(3):  # three fire times, five replicas each
            now = fire + k * 1000 + 100
            await asyncio.gather(*(firing.fire_due(r, schedule.schedule_id, now=now) for r in replicas))
    finally:
        for c in others:
            await c.aclose()
    made = await fired_jobs(queue, schedule)
    assert [t for t, _ in made] == [fire, fire + 1000, fire + 2000]
    job = await jobs.get_job(queue, made[0][1], tenant=TENANT)
    assert job.metadata.source is JobSource.SCHEDULER
    assert job.metadata.schedule_id == schedule.schedule_id
    assert job.options.tags == ("sched",)


async def test_a_fire_time_is_claimed_once_and_the_claim_only_moves_forward(queue: Queue) -> None:
    schedule = await store.create_schedule(queue, spec(overlap=OverlapPolicy.ALLOW), tenant=TENANT, sealer=None)
    later = schedule.anchor_ms + 2000
    assert (await firing._fire(queue, schedule, op="fire", now=later, fire=later, next_due=later + 1000))[
        0
    ] == "started"
    for fire in (later, later - 1000):  # the same fire time again, and an earlier one: both refused
        outcome, job_id = await firing._fire(queue, schedule, op="fire", now=later, fire=fire, next_due=later + 1000)
        assert (outcome, job_id) == ("late", "")
    assert len(await fired_jobs(queue, schedule)) == 1
    assert (await store.load_schedule(queue, schedule.schedule_id, tenant=TENANT)).last_fire_ms == later


async def test_skip_skips_fires_while_the_previous_run_is_unfinished(queue: Queue) -> None:
    schedule = await store.create_schedule(queue, spec(overlap=OverlapPolicy.SKIP), tenant=TENANT, sealer=None)
    t = schedule.anchor_ms
    sid = schedule.schedule_id
    assert await firing.fire_due(queue, sid, now=t + 1000) == [(t + 1000, "started")]
    assert await firing.fire_due(queue, sid, now=t + 2000) == [(t + 2000, "skipped")]
    await run_jobs(queue, 1)  # the first run ends
    assert await firing.fire_due(queue, sid, now=t + 3000) == [(t + 3000, "started")]
    assert [f for f, _ in await fired_jobs(queue, schedule)] == [t + 1000, t + 3000]
    shown = await store.get_schedule(queue, sid, tenant=TENANT)
    assert [(r.fire_time_ms, r.skipped) for r in shown.recent_runs] == [
        (t + 3000, False),
        (t + 2000, True),
        (t + 1000, False),
    ]
    assert "previous run" in shown.recent_runs[1].reason
    assert shown.recent_runs[2].state is JobState.COMPLETED
    assert shown.skipped == 1


async def test_allow_runs_beside_the_unfinished_run(queue: Queue) -> None:
    schedule = await store.create_schedule(queue, spec(overlap=OverlapPolicy.ALLOW), tenant=TENANT, sealer=None)
    t = schedule.anchor_ms
    for k in (1, 2, 3):
        assert await firing.fire_due(queue, schedule.schedule_id, now=t + k * 1000) == [(t + k * 1000, "started")]
    assert len(await fired_jobs(queue, schedule)) == 3


async def holding_a_fire(queue: Queue) -> tuple[Schedule, int]:
    """A BUFFER_ONE schedule whose fire at anchor + 1 s started and whose fire at + 2 s is held;
    the schedule and its anchor."""
    schedule = await store.create_schedule(queue, spec(overlap=OverlapPolicy.BUFFER_ONE), tenant=TENANT, sealer=None)
    t = schedule.anchor_ms
    assert await firing.fire_due(queue, schedule.schedule_id, now=t + 1000) == [(t + 1000, "started")]
    assert await firing.fire_due(queue, schedule.schedule_id, now=t + 2000) == [(t + 2000, "buffered")]
    return schedule, t


async def test_buffer_one_runs_one_held_fire_when_the_previous_run_ends(queue: Queue) -> None:
    schedule, t = await holding_a_fire(queue)
    sid = schedule.schedule_id
    # The buffered fire waits; a third fire is skipped, and the schedule is looked at again soon.
    assert await firing.fire_due(queue, sid, now=t + 3000) == [(t + 2000, "busy"), (t + 3000, "skipped")]
    score = await queue.redis.zscore(queue.keys.schedules_due, sid)
    assert score is not None and score <= t + 3000 + firing.BUFFER_POLL_MS
    await run_jobs(queue, 1)
    assert await firing.fire_due(queue, sid, now=t + 3500) == [(t + 2000, "started")]
    assert [f for f, _ in await fired_jobs(queue, schedule)] == [t + 1000, t + 2000]
    assert (await store.load_schedule(queue, sid, tenant=TENANT)).buffered_ms == 0
    shown = await store.get_schedule(queue, sid, tenant=TENANT)  # by fire time, though the held one ran last
    assert [(r.fire_time_ms, r.skipped) for r in shown.recent_runs] == [
        (t + 3000, True),
        (t + 2000, False),
        (t + 1000, False),
    ]


async def test_a_held_fire_is_shown_first_among_the_runs_while_it_waits(queue: Queue) -> None:
    schedule, t = await holding_a_fire(queue)
    sid = schedule.schedule_id
    held, started = (await store.get_schedule(queue, sid, tenant=TENANT)).recent_runs
    assert (held.fire_time_ms, held.job_id, held.skipped, held.reason) == (t + 2000, "", False, store.HELD)
    assert started.fire_time_ms == t + 1000 and started.job_id
    await run_jobs(queue, 1)
    await firing.fire_due(queue, sid, now=t + 2500)  # it runs: now a run like any other
    shown = await store.get_schedule(queue, sid, tenant=TENANT)
    assert [(r.fire_time_ms, bool(r.job_id)) for r in shown.recent_runs] == [(t + 2000, True), (t + 1000, True)]


async def test_a_pause_drops_the_held_fire_and_records_it_as_skipped(queue: Queue) -> None:
    schedule, t = await holding_a_fire(queue)
    sid = schedule.schedule_id
    paused = await store.pause_schedule(queue, sid, tenant=TENANT, note="deploying")
    assert paused.buffered_ms == 0 and paused.skipped == 1
    dropped = paused.recent_runs[0]
    assert (dropped.fire_time_ms, dropped.job_id, dropped.skipped) == (t + 2000, "", True)
    assert "paused while this fire was held" in dropped.reason
    # The run it waited for ends, and the schedule is resumed: the dropped fire never runs.
    await run_jobs(queue, 1)
    resumed = await store.resume_schedule(queue, sid, tenant=TENANT, note="")
    assert await firing.fire_due(queue, sid, now=resumed.last_fire_ms + 500) == []
    assert [f for f, _ in await fired_jobs(queue, schedule)] == [t + 1000]


async def test_a_change_of_timing_drops_the_held_fire_and_says_so(queue: Queue) -> None:
    schedule, _ = await holding_a_fire(queue)
    sid = schedule.schedule_id
    changed = await store.update_schedule(
        queue, sid, spec(interval_ms=60_000), paths=["interval_ms"], tenant=TENANT, sealer=None
    )
    assert changed.buffered_ms == 0 and changed.recent_runs[0].skipped
    assert "timing changed while this fire was held" in changed.recent_runs[0].reason
    # An update that neither pauses nor retimes keeps it held.
    await firing.fire_due(queue, sid, now=changed.anchor_ms + 60_000)
    assert (await store.load_schedule(queue, sid, tenant=TENANT)).buffered_ms == changed.anchor_ms + 60_000
    renamed = await store.update_schedule(queue, sid, spec(), paths=["name"], tenant=TENANT, sealer=None)
    assert renamed.buffered_ms == changed.anchor_ms + 60_000 and renamed.recent_runs[0].reason == store.HELD


async def test_catch_up_runs_each_fire_within_the_window_once(queue: Queue) -> None:
    schedule = await store.create_schedule(
        queue, spec(overlap=OverlapPolicy.ALLOW, catchup_window_ms=60_000), tenant=TENANT, sealer=None
    )
    t = schedule.anchor_ms
    tried = await firing.fire_due(queue, schedule.schedule_id, now=t + 10_500)
    assert tried == [(t + k * 1000, "started") for k in range(1, 11)]
    assert await firing.fire_due(queue, schedule.schedule_id, now=t + 10_600) == []  # nothing new is due
    assert [f for f, _ in await fired_jobs(queue, schedule)] == [t + k * 1000 for k in range(1, 11)]


async def test_catch_up_drops_fires_older_than_the_window(queue: Queue) -> None:
    schedule = await store.create_schedule(queue, spec(overlap=OverlapPolicy.ALLOW), tenant=TENANT, sealer=None)
    t = schedule.anchor_ms
    # No catch-up window: only fires at most GRACE_MS (5 s) late run.
    tried = await firing.fire_due(queue, schedule.schedule_id, now=t + 20_000)
    assert tried == [(t + k * 1000, "started") for k in range(15, 21)]
    shown = await store.get_schedule(queue, schedule.schedule_id, tenant=TENANT)
    assert shown.missed == 14
    assert any(r.skipped and r.fire_time_ms == t + 14_000 and "14 fire(s)" in r.reason for r in shown.recent_runs)


async def test_catch_up_with_skip_makes_one_run(queue: Queue) -> None:
    schedule = await store.create_schedule(
        queue, spec(overlap=OverlapPolicy.SKIP, catchup_window_ms=60_000), tenant=TENANT, sealer=None
    )
    tried = await firing.fire_due(queue, schedule.schedule_id, now=schedule.anchor_ms + 5_500)
    assert [o for _, o in tried] == ["started", "skipped", "skipped", "skipped", "skipped"]
    assert len(await fired_jobs(queue, schedule)) == 1


async def test_trigger_runs_now_and_counts_for_overlap(queue: Queue) -> None:
    schedule = await store.create_schedule(queue, spec(overlap=OverlapPolicy.SKIP), tenant=TENANT, sealer=None)
    job = await firing.trigger_schedule(queue, schedule.schedule_id, tenant=TENANT)
    assert job.metadata.source is JobSource.SCHEDULER
    assert (job.metadata.schedule_id, job.metadata.fire_time_ms) == (schedule.schedule_id, 0)
    assert await firing.fire_due(queue, schedule.schedule_id, now=schedule.anchor_ms + 1000) == [
        (schedule.anchor_ms + 1000, "skipped")
    ]
    shown = await store.get_schedule(queue, schedule.schedule_id, tenant=TENANT)
    assert shown.recent_runs[-1].triggered and shown.recent_runs[-1].job_id == job.job_id


async def test_a_paused_schedule_does_not_fire_and_a_resumed_one_does_not_catch_up(queue: Queue) -> None:
    schedule = await store.create_schedule(queue, spec(catchup_window_ms=60_000), tenant=TENANT, sealer=None)
    sid = schedule.schedule_id
    await store.pause_schedule(queue, sid, tenant=TENANT, note="maintenance")
    assert await queue.redis.zscore(queue.keys.schedules_due, sid) is None
    assert await firing.fire_due(queue, sid, now=schedule.anchor_ms + 3000) == []
    resumed = await store.resume_schedule(queue, sid, tenant=TENANT, note="back")
    assert resumed.last_fire_ms > schedule.anchor_ms and resumed.spec.note == "back"
    assert resumed.next_fires[0] > resumed.last_fire_ms
    assert await fired_jobs(queue, schedule) == []


async def test_a_fire_computed_under_an_old_timing_is_refused(queue: Queue) -> None:
    schedule = await store.create_schedule(queue, spec(interval_ms=1000), tenant=TENANT, sealer=None)
    changed = await store.update_schedule(
        queue, schedule.schedule_id, spec(interval_ms=60_000), paths=["interval_ms"], tenant=TENANT, sealer=None
    )
    assert changed.generation == schedule.generation + 1
    far = changed.anchor_ms + 5000
    outcome, _ = await firing._fire(queue, schedule, op="fire", now=far, fire=far, next_due=far + 1000)
    assert outcome == "stale"
    # No burst of fires for the changed schedule: its first fire is one new interval after the change.
    assert changed.next_fires[0] == changed.anchor_ms + 60_000


async def test_retention_takes_a_removed_job_out_of_its_schedules_index(queue: Queue) -> None:
    schedule = await store.create_schedule(queue, spec(), tenant=TENANT, sealer=None)
    job = await firing.trigger_schedule(queue, schedule.schedule_id, tenant=TENANT)
    await run_jobs(queue, 1)
    assert await queue.redis.zscore(queue.keys.schedule_jobs(schedule.schedule_id), job.job_id) is not None
    assert await retention.clean(queue) == 1
    assert await queue.redis.exists(queue.keys.schedule_jobs(schedule.schedule_id)) == 0
    assert await fired_jobs(queue, schedule) == []


async def test_the_scheduler_tick_fires_every_due_schedule(queue: Queue) -> None:
    made = [await store.create_schedule(queue, spec(), tenant=TENANT, sealer=None) for _ in range(3)]
    latest = max(s.anchor_ms for s in made)
    assert await firing.tick(queue, now=latest + 1000) == 3
    for schedule in made:
        assert len(await fired_jobs(queue, schedule)) == 1
    assert await firing.tick(queue, now=latest + 1000) == 0


async def test_a_schedule_resumed_while_a_tick_read_it_paused_stays_due(queue: Queue) -> None:
    schedule = await store.create_schedule(queue, spec(paused=True), tenant=TENANT, sealer=None)
    sid = schedule.schedule_id
    assert await queue.redis.zscore(queue.keys.schedules_due, sid) is None
    await store.resume_schedule(queue, sid, tenant=TENANT, note="")
    # A tick that read the paused hash just before the resume asks to forget it: the script sees the resume.
    await queue.scripts.schedule_fire(
        keys=firing._schedule_keys(queue, sid), args=[queue.context(op="forget", schedule_id=sid)]
    )
    assert await queue.redis.zscore(queue.keys.schedules_due, sid) is not None
    await store.delete_schedule(queue, sid, tenant=TENANT)
    await queue.redis.zadd(queue.keys.schedules_due, {sid: 0})  # a due entry left by a fire racing the delete
    assert await firing.fire_due(queue, sid, now=schedule.anchor_ms + 1000) == []
    assert await queue.redis.zscore(queue.keys.schedules_due, sid) is None


async def test_an_unreadable_schedule_does_not_stop_the_others(queue: Queue, caplog: pytest.LogCaptureFixture) -> None:
    bad, good = [await store.create_schedule(queue, spec(), tenant=TENANT, sealer=None) for _ in range(2)]
    await queue.redis.hset(queue.keys.schedule(bad.schedule_id), ScheduleField.DEFINITION, "{not json")
    now = max(bad.anchor_ms, good.anchor_ms) + 1000
    assert await firing.tick(queue, now=now) == 2
    assert len(await fired_jobs(queue, good)) == 1
    assert await queue.redis.zscore(queue.keys.schedules_due, bad.schedule_id) == now + firing.RETRY_BAD_MS
    assert f"schedule {bad.schedule_id} could not be fired" in caplog.text


async def test_the_scheduler_rides_out_a_redis_outage(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    server = start_redis(tmp_path, aof=True)
    client = connect(RedisSettings(url=server.url, configured=True))
    queue = Queue.open(client, QueueSettings())
    scheduler = firing.Scheduler(queue, tick_s=0.05)
    try:
        schedule = await store.create_schedule(queue, spec(overlap=OverlapPolicy.ALLOW), tenant=TENANT, sealer=None)
        scheduler.start()
        await wait_for(lambda: fired_jobs(queue, schedule), within=30, what="a first fire")
        server.stop()
        await wait_for(lambda: "scheduler failed" in caplog.text, within=30, what="a failed round, logged")
        server = start_redis(tmp_path, port=server.port, aof=True)
        seen = len(await wait_for(lambda: fired_jobs(queue, schedule), within=30, ignoring=(RedisError,)))

        async def fired_again() -> bool:
            return len(await fired_jobs(queue, schedule)) > seen

        await wait_for(fired_again, within=30, what="fires after Redis came back", ignoring=(RedisError,))
        assert scheduler.running
    finally:
        await scheduler.stop()
        await client.aclose()
        server.stop()
