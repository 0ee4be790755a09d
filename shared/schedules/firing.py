"""Firing schedules: each fire time claimed exactly once, however many API replicas race for it.

Every API replica runs a `Scheduler`. Each tick it reads the schedules due by now from the due zset
and, for each, walks its fire times after the last claimed one, in order. A fire that is due runs
through `schedule_fire.lua`, which in one atomic step compares-and-sets the schedule's last fire time
(it only moves forward, so of replicas racing for one fire time one wins and the others write
nothing), applies the overlap policy against the previous run's job, submits the job
(`submit_job.lua`, as Submit does) and records the run. A replica killed at any point leaves either
a claimed fire with its job or neither; the next tick of any replica goes on from there.

A fire whose due time is more than `max(catchup_window_ms, GRACE_MS)` ago — one that fell while no
replica ran — is dropped and counted as missed; the others run, each once (with SKIP, a run started
by the first of them makes the rest skip). GRACE_MS lets a busy replica be a few seconds late
without losing fires.

Nothing here knows protobuf or grpc.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import cast

from shared import jobs
from shared.clock import now_ms
from shared.errors import NotFoundError
from shared.model import Job, JobSource
from shared.queue import Queue
from shared.redis_errors import REDIS_OR_OS_ERRORS
from shared.schedules import encoding
from shared.schedules.model import RECENT_RUNS, Schedule
from shared.schedules.store import due_after, load_schedule
from shared.schedules.timing import fires_after, jitter_of
from shared.schema import ScheduleField
from shared.tasks import Periodic

__all__ = ["GRACE_MS", "Scheduler", "fire_due", "tick", "trigger_schedule"]

log = logging.getLogger(__name__)

#: A fire this late still runs whatever the catch-up window (a replica that was slow, not down).
GRACE_MS = 5_000
#: How soon a schedule with a buffered fire is looked at again (its previous run may have ended).
BUFFER_POLL_MS = 1_000
#: Most due schedules one tick reads, and most fire times one tick walks for one schedule (a long
#: outage is worked off over a few ticks rather than in one long one).
DUE_BATCH = 200
MAX_WALK = 10_000
#: How soon a schedule that could not be fired (unreadable) is tried again.
RETRY_BAD_MS = 60_000


def _schedule_keys(queue: Queue, schedule_id: str) -> list[str]:
    """KEYS[1..4] of schedule_fire.lua."""
    keys = queue.keys
    return [
        keys.schedule(schedule_id),
        keys.schedules_due,
        keys.schedule_runs(schedule_id),
        keys.schedule_jobs(schedule_id),
    ]


async def _fire(
    queue: Queue,
    schedule: Schedule,
    *,
    op: str,
    now: int,
    fire: int = 0,
    next_due: int = 0,
    run: bool = True,
    missed: int = 0,
    missed_last: int = 0,
) -> tuple[str, str]:
    """One schedule_fire.lua call; its (outcome, job id)."""
    sid = schedule.schedule_id
    queue = queue.for_job(sid)  # the schedule's shard: its tenant's, where the job goes too
    command = dataclasses.replace(
        schedule.spec.template,
        source=JobSource.SCHEDULER,
        schedule_id=sid,
        fire_time_ms=0 if op == "trigger" else fire,
    )
    submit_keys, members = jobs.submit_parts(
        queue, command, tenant=schedule.tenant_id, trace="", now=now, job_id=queue.new_id()
    )
    outcome, job_id = await queue.scripts.schedule_fire(
        keys=[*_schedule_keys(queue, sid), *submit_keys],
        args=[
            queue.context(
                **members,
                op=op,
                schedule_id=sid,
                gen=schedule.generation,
                fire=fire,
                run="1" if run else "0",
                missed=missed,
                missed_last=missed_last,
                next_due=next_due,
                poll_ms=BUFFER_POLL_MS,
                runs_max=RECENT_RUNS,
            )
        ],
    )
    return str(outcome), str(job_id)


async def fire_due(queue: Queue, schedule_id: str, *, now: int) -> list[tuple[int, str]]:
    """Do what is due of one schedule by `now`; returns the (fire time, outcome) of each fire tried."""
    queue = queue.for_job(schedule_id)
    raw = cast(dict[str, str], await queue.redis.hgetall(queue.keys.schedule(schedule_id)))
    if not raw or raw.get(ScheduleField.PAUSED) == "1":
        # Deleted or paused meanwhile: out of the due zset (the script checks again, atomically).
        await queue.scripts.schedule_fire(
            keys=_schedule_keys(queue, schedule_id), args=[queue.context(op="forget", schedule_id=schedule_id)]
        )
        return []
    schedule = encoding.schedule_from_hash(raw)
    timing = schedule.spec.timing

    def due_of(fire: int) -> int:
        return fire + jitter_of(schedule_id, fire, timing.jitter_ms)

    def next_due(after: int) -> int:
        return due_after(schedule_id, timing, anchor_ms=schedule.anchor_ms, after_ms=after)

    tried: list[tuple[int, str]] = []
    moved = False
    if schedule.buffered_ms:
        outcome, _ = await _fire(
            queue, schedule, op="drain", now=now, fire=schedule.buffered_ms, next_due=next_due(schedule.last_fire_ms)
        )
        tried.append((schedule.buffered_ms, outcome))
        moved = True
    window = max(schedule.spec.catchup_window_ms, GRACE_MS)
    missed, missed_last = 0, 0
    walked = 0
    for fire in fires_after(timing, anchor_ms=schedule.anchor_ms, after_ms=schedule.last_fire_ms):
        walked += 1
        due = due_of(fire)
        if due > now or walked > MAX_WALK:
            break
        if now - due > window:
            missed, missed_last = missed + 1, fire
            continue
        outcome, _ = await _fire(
            queue,
            schedule,
            op="fire",
            now=now,
            fire=fire,
            next_due=next_due(fire),
            missed=missed,
            missed_last=missed_last,
        )
        tried.append((fire, outcome))
        moved = True
        missed = 0
        if outcome in ("late", "stale", "gone"):
            return tried  # another replica is ahead, or the schedule changed: the next tick rereads it
    if missed:
        outcome, _ = await _fire(
            queue,
            schedule,
            op="fire",
            now=now,
            fire=missed_last,
            next_due=next_due(missed_last),
            run=False,
            missed=missed,
            missed_last=missed_last,
        )
        tried.append((missed_last, outcome))
    elif not moved:
        # Due by its score, yet nothing was: the score was early (a change read an older last fire).
        await _fire(
            queue, schedule, op="touch", now=now, fire=schedule.last_fire_ms, next_due=next_due(schedule.last_fire_ms)
        )
    return tried


async def tick(queue: Queue, *, now: int | None = None) -> int:
    """One round of the scheduler: every schedule due by now, on every shard; returns how many were
    looked at."""
    at = now_ms() if now is None else now
    looked = 0
    for shard in queue.shards:
        looked += await _tick_shard(shard, at)
    return looked


async def _tick_shard(queue: Queue, at: int) -> int:
    due = cast(list[str], await queue.redis.zrangebyscore(queue.keys.schedules_due, "-inf", at, start=0, num=DUE_BATCH))
    for schedule_id in due:
        try:
            await fire_due(queue, schedule_id, now=at)
        except REDIS_OR_OS_ERRORS:
            raise  # the round fails and is logged; the next one tries again
        except Exception:
            # One schedule that cannot be fired (unreadable) must not stop the others: it is looked at
            # again in a minute.
            log.exception("schedule %s could not be fired; trying again in %d s", schedule_id, RETRY_BAD_MS // 1000)
            await queue.redis.zadd(queue.keys.schedules_due, {schedule_id: at + RETRY_BAD_MS})
    return len(due)


async def trigger_schedule(queue: Queue, schedule_id: str, *, tenant: str) -> Job:
    """Run the schedule's template once now (not a fire time; paused or not). Its job is the schedule's
    latest run, so the overlap policy of the next fires looks at it.

    Raises:
        NotFoundError: no such schedule for this tenant.
        LimitError: the tenant's queue is full.
    """
    schedule = await load_schedule(queue, schedule_id, tenant=tenant)
    outcome, job_id = await _fire(queue, schedule, op="trigger", now=now_ms())
    if outcome == "limited":
        raise jobs.queue_limit_error(queue, tenant)
    if outcome != "started":
        raise NotFoundError(f"schedule {schedule_id!r} not found")
    return await jobs.get_job(queue, job_id, tenant=tenant)


class Scheduler:
    """The scheduler loop of one API replica: a tick every `tick_s`, Redis outages logged and ridden out."""

    def __init__(self, queue: Queue, *, tick_s: float) -> None:
        self._loop = Periodic("scheduler", lambda: tick(queue), interval_s=tick_s, tolerated=REDIS_OR_OS_ERRORS)

    @property
    def running(self) -> bool:
        return self._loop.running

    def start(self) -> None:
        self._loop.start()

    async def stop(self) -> None:
        await self._loop.stop()
