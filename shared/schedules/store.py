"""Schedules in Redis: create, read, list, update, pause, resume, delete, and their notifications.

Plain async functions over a `Queue`; no grpc. Schedules are tenant-scoped like jobs: another
tenant's schedule is `NotFoundError`. Every write is one `schedule_save.lua` call (the tenant's limit,
the hash, the tenant index and the due zset together); what fires them is `shared.schedules.firing`.

A change of timing restarts the schedule's count from now (a new anchor, nothing to catch up), and
so does a resume: fires that fell while a schedule was paused never run. A fire BUFFER_ONE held is
dropped by a pause or a change of timing, and recorded among the runs as skipped (schedule_save.lua).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import cast

from shared import codec
from shared.alerts.guard import PUBLIC_ONLY
from shared.clock import now_ms
from shared.errors import FieldViolation, LimitError, NotFoundError, ValidationError
from shared.model import JobState
from shared.navigation_policy import NavigationPolicy
from shared.notifications import Notification
from shared.paging import Page, scan_index
from shared.queue import Queue
from shared.schedules import encoding
from shared.schedules.history import ended_from_json
from shared.schedules.model import RECENT_RUNS, Schedule, ScheduleRun, ScheduleSpec
from shared.schedules.rules import MAX_NOTE_CHARS, apply_mask, seal_spec, validate_spec
from shared.schedules.timing import Timing, jitter_of, next_fire, next_fires
from shared.schema import JobField
from shared.schema import ScheduleField as F
from shared.sealed import Sealer
from shared.stored_notifications import resolve_shown

__all__ = [
    "HELD",
    "NEXT_FIRES",
    "RECENT_RUNS",
    "create_schedule",
    "delete_schedule",
    "due_after",
    "get_schedule",
    "list_schedules",
    "load_schedule",
    "pause_schedule",
    "resume_schedule",
    "schedule_notifications",
    "update_schedule",
]

#: Fire times a schedule shows ahead, and runs it keeps to show.
NEXT_FIRES = 5
#: The reason of the fire BUFFER_ONE holds, shown first among the runs while it waits (no job, not skipped).
HELD = "held: waits for the running fire to end"


def due_after(schedule_id: str, timing: Timing, *, anchor_ms: int, after_ms: int) -> int:
    """When the first fire after `after_ms` is due: its fire time plus its jitter."""
    fire = next_fire(timing, anchor_ms=anchor_ms, after_ms=after_ms)
    return fire + jitter_of(schedule_id, fire, timing.jitter_ms)


async def _save(
    queue: Queue,
    schedule_id: str,
    *,
    mode: str,
    tenant: str,
    fields: dict[str, str],
    next_due: int | None,
    retime: bool = False,
) -> str:
    queue = queue.for_job(schedule_id)  # a schedule id names its shard, its tenant's (`Queue.new_id`)
    keys = queue.keys
    outcome = await queue.scripts.schedule_save(
        keys=[
            keys.schedule(schedule_id),
            keys.tenant_schedules(tenant),
            keys.schedules_due,
            keys.schedule_runs(schedule_id),
        ],
        args=[
            queue.context(
                mode=mode,
                id=schedule_id,
                tenant=tenant,
                fields=fields,
                max=queue.settings.tenant_max_schedules,
                retime=retime,
                next_due="" if next_due is None else next_due,
                runs_max=RECENT_RUNS,
            )
        ],
    )
    return str(outcome)


async def create_schedule(
    queue: Queue, spec: ScheduleSpec, *, tenant: str, sealer: Sealer | None, policy: NavigationPolicy = PUBLIC_ONLY
) -> Schedule:
    """Validate, seal and store a new schedule; its first fire comes after now.

    `policy`: the webhook policy the notifications' targets are checked by (the API's, built from
    SENTINEL_WEBHOOK_ALLOW; by default only public addresses).

    Raises:
        ValidationError: with every problem, each naming its field (`schedule.cron`).
        LimitError: the tenant has SENTINEL_TENANT_MAX_SCHEDULES schedules already.
    """
    await validate_spec(spec, policy=policy)
    spec = seal_spec(spec, sealer)
    # On the tenant's shard, with its jobs: a fire submits the job in the same script.
    schedule_id = queue.for_tenant(tenant).new_id()
    now = now_ms()
    fields = encoding.spec_fields(spec) | {
        F.ID: schedule_id,
        F.TENANT: tenant,
        F.CREATED: str(now),
        F.UPDATED: str(now),
        F.ANCHOR: str(now),
        F.GENERATION: "0",
        F.LAST_FIRE: str(now),
        F.LAST_JOB: "",
        F.BUFFERED: "",
        F.FIRED: "0",
        F.SKIPPED: "0",
        F.MISSED: "0",
    }
    next_due = due_after(schedule_id, spec.timing, anchor_ms=now, after_ms=now)
    if await _save(queue, schedule_id, mode="create", tenant=tenant, fields=fields, next_due=next_due) == "limited":
        limit = queue.settings.tenant_max_schedules
        raise LimitError(f"tenant {tenant!r} already has {limit} schedules (SENTINEL_TENANT_MAX_SCHEDULES)")
    return await get_schedule(queue, schedule_id, tenant=tenant)


async def load_schedule(queue: Queue, schedule_id: str, *, tenant: str | None) -> Schedule:
    """The schedule as stored (no next fires, no runs); NotFoundError for another tenant's."""
    queue = queue.for_job(schedule_id)
    raw = cast(dict[str, str], await queue.redis.hgetall(queue.keys.schedule(schedule_id))) if schedule_id else {}
    if not raw or (tenant is not None and raw.get(F.TENANT) != tenant):
        raise NotFoundError(f"schedule {schedule_id!r} not found")
    return encoding.schedule_from_hash(raw)


def _with_end(run: ScheduleRun, job: list[str | None], ended_raw: str | None) -> ScheduleRun:
    """`run` with its job's state and error: as the job holds them, or, once retention removed the
    job, as the schedule's history kept them."""
    if not run.job_id:
        return run
    state, error = job
    if state:
        return dataclasses.replace(run, state=JobState(state), error=_error_line(error))
    ended = ended_from_json(ended_raw)
    if ended is None:
        return dataclasses.replace(run, removed=True)
    return dataclasses.replace(run, state=ended.state, error=ended.error, removed=True)


def _error_line(raw: str | None) -> str:
    """The first line of a job hash's error, as the history keeps it."""
    error = codec.error_from_json(raw) if raw else None
    return error.headline if error is not None else ""


def _with_next_fires(schedule: Schedule, now: int) -> Schedule:
    if schedule.spec.paused:
        return schedule
    timing = schedule.spec.timing
    fires = next_fires(timing, anchor_ms=schedule.anchor_ms, after_ms=max(schedule.last_fire_ms, now), count=NEXT_FIRES)
    return dataclasses.replace(schedule, next_fires=fires)


async def get_schedule(queue: Queue, schedule_id: str, *, tenant: str | None) -> Schedule:
    """The schedule with its next fire times and its latest runs, newest fire first (each with its
    job's state now), the fire BUFFER_ONE holds first of all (`HELD`)."""
    schedule = await load_schedule(queue, schedule_id, tenant=tenant)
    queue = queue.for_job(schedule_id)
    entries = cast(list[str], await queue.redis.lrange(queue.keys.schedule_runs(schedule_id), 0, RECENT_RUNS - 1))
    runs = [encoding.run_from_json(e) for e in entries]
    pipe = queue.redis.pipeline(transaction=False)
    for run in runs:
        pipe.hmget(queue.keys.job(run.job_id or "-"), [JobField.STATE, JobField.ERROR])
    ids = [run.job_id for run in runs if run.job_id]
    if ids:
        pipe.hmget(queue.keys.schedule_ends(schedule_id), ids)
    read = await pipe.execute() if runs else []
    ends = dict(zip(ids, cast(list[str | None], read[-1]), strict=True)) if ids else {}
    runs = [
        _with_end(run, cast(list[str | None], now), ends.get(run.job_id))
        for run, now in zip(runs, read[: len(runs)], strict=True)
    ]
    runs.sort(key=lambda run: run.fire_time_ms, reverse=True)  # a held fire is recorded when it runs, later
    if schedule.buffered_ms and not schedule.spec.paused:
        runs.insert(0, ScheduleRun(fire_time_ms=schedule.buffered_ms, reason=HELD))
    return dataclasses.replace(_with_next_fires(schedule, now_ms()), recent_runs=tuple(runs))


async def list_schedules(queue: Queue, *, tenant: str, page_size: int = 50, page_token: str = "") -> Page[Schedule]:
    """A page of the tenant's schedules, newest first, with their next fire times (runs: see get)."""
    queue = queue.for_tenant(tenant)
    now = now_ms()

    async def load(ids: list[str]) -> list[Schedule | None]:
        pipe = queue.redis.pipeline(transaction=False)
        for schedule_id in ids:
            pipe.hgetall(queue.keys.schedule(schedule_id))
        hashes = cast(list[dict[str, str]], await pipe.execute())
        return [_with_next_fires(encoding.schedule_from_hash(raw), now) if raw else None for raw in hashes]

    return await scan_index(
        queue.redis,
        queue.keys.tenant_schedules(tenant),
        load=load,
        keep=lambda schedule: schedule.tenant_id == tenant,
        page_size=page_size,
        page_token=page_token,
    )


async def update_schedule(
    queue: Queue,
    schedule_id: str,
    given: ScheduleSpec,
    *,
    paths: Sequence[str],
    tenant: str,
    sealer: Sealer | None,
    policy: NavigationPolicy = PUBLIC_ONLY,
) -> Schedule:
    """Change the fields `paths` name (none: all of them) to `given`'s.

    `policy`: as `create_schedule`'s.

    A change of timing counts fire times from now on (no burst of catch-up fires); unpausing is a
    resume. A notification given with its URL as it is shown (masked) keeps the stored URL.
    Raises `ValidationError` naming the bad fields (of the schedule as it would become).
    """
    current = await load_schedule(queue, schedule_id, tenant=tenant)
    stored = current.spec.notifications
    # Sent back as they were shown, the notifications' URLs are masked: each stands for its stored URL.
    given = dataclasses.replace(given, notifications=resolve_shown(given.notifications, stored, sealer))
    # Checked as it would become; the stored notifications are not checked again (sealed, their URLs
    # and secrets are not what a caller sends), the ones given are.
    unchecked = dataclasses.replace(current.spec, notifications=())
    await validate_spec(apply_mask(unchecked, given, paths), policy=policy, stored=current.spec.timing)
    spec = apply_mask(current.spec, seal_spec(given, sealer, stored=stored), paths)
    return await _store_change(queue, current, spec, tenant=tenant)


def _check_note(note: str) -> None:
    if len(note) > MAX_NOTE_CHARS:
        raise ValidationError([FieldViolation("note", f"at most {MAX_NOTE_CHARS} characters")])


async def pause_schedule(queue: Queue, schedule_id: str, *, tenant: str, note: str) -> Schedule:
    """Stop firing (TriggerSchedule still runs it); `note` says why."""
    _check_note(note)
    current = await load_schedule(queue, schedule_id, tenant=tenant)
    return await _store_change(queue, current, dataclasses.replace(current.spec, paused=True, note=note), tenant=tenant)


async def resume_schedule(queue: Queue, schedule_id: str, *, tenant: str, note: str) -> Schedule:
    """Fire again from now on (what fell while it was paused does not run)."""
    _check_note(note)
    current = await load_schedule(queue, schedule_id, tenant=tenant)
    return await _store_change(
        queue, current, dataclasses.replace(current.spec, paused=False, note=note), tenant=tenant
    )


async def _store_change(queue: Queue, current: Schedule, spec: ScheduleSpec, *, tenant: str) -> Schedule:
    now = now_ms()
    fields = encoding.spec_fields(spec) | {F.UPDATED: str(now)}
    retime = spec.timing != current.spec.timing
    resumed = current.spec.paused and not spec.paused
    next_due: int | None = None
    sid = current.schedule_id
    if retime:
        fields |= {F.ANCHOR: str(now), F.LAST_FIRE: str(now), F.BUFFERED: ""}
        next_due = due_after(sid, spec.timing, anchor_ms=now, after_ms=now)
    elif resumed:
        fields |= {F.LAST_FIRE: str(now)}
        next_due = due_after(sid, spec.timing, anchor_ms=current.anchor_ms, after_ms=now)
    if await _save(queue, sid, mode="update", tenant=tenant, fields=fields, next_due=next_due, retime=retime) != "ok":
        raise NotFoundError(f"schedule {sid!r} not found")
    return await get_schedule(queue, sid, tenant=tenant)


async def delete_schedule(queue: Queue, schedule_id: str, *, tenant: str) -> bool:
    """Delete the schedule; the jobs it fired stay (and ListJobs still finds them by its id)."""
    await load_schedule(queue, schedule_id, tenant=tenant)
    queue = queue.for_job(schedule_id)
    keys = queue.keys
    pipe = queue.redis.pipeline(transaction=True)
    pipe.delete(keys.schedule(schedule_id), keys.schedule_runs(schedule_id), keys.schedule_ends(schedule_id))
    pipe.zrem(keys.tenant_schedules(tenant), schedule_id)
    pipe.zrem(keys.schedules_due, schedule_id)
    deleted, *_ = await pipe.execute()
    return bool(deleted)


async def schedule_notifications(queue: Queue, tenant: str, schedule_id: str) -> tuple[Notification, ...]:
    """The schedule's webhook notifications, secrets still sealed; NotFoundError when there is no
    such schedule for this tenant."""
    return (await load_schedule(queue, schedule_id, tenant=tenant)).spec.notifications
