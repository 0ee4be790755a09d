"""Schedules in the SDK: building the Schedule message, the calls (as `_ops` describes RPCs), and
their replies as `models.Schedule`.

Both clients run these descriptions, so a schedule is built and read the same way whichever client
asks. `ScheduleFields` are the keyword arguments of `create_schedule` and `update_schedule`; an
update sends exactly the fields given, as its update mask.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypedDict

from google.protobuf import field_mask_pb2, json_format

from protos import sentinel_pb2 as pb
from sentinel_client._convert import enum_from_proto, enum_to_proto, job, notification, parse_enum, time
from sentinel_client._ops import Unary
from sentinel_client._requests import (
    SubmitOptions,
    check_keywords,
    parse_document,
    set_scalar,
    template_request,
    with_scalars,
)
from sentinel_client._sources import TestSource
from sentinel_client.errors import InvalidArgumentError
from sentinel_client.models import Job, JobState, OverlapPolicy, Page, Schedule, ScheduleRun

_SCHEDULES = "/sentinel.v1.Schedules/"
#: Where the Schedule message sits in its requests: the API names a bad field `schedule.cron`.
PREFIX = "schedule."


class ScheduleFields(TypedDict, total=False):
    """What a schedule is: when it fires, what a fire does while the last run goes on, and more."""

    name: str
    cron: str  # "*/5 * * * *", or 6 fields with seconds first; or...
    interval_ms: int  # ...every this many ms (>= 1000); exactly one of cron and interval_ms
    timezone: str  # IANA, default UTC (for cron)
    jitter_ms: int  # each fire runs up to this much later (fixed per fire time)
    overlap: OverlapPolicy | str  # "skip" (default), "allow", "buffer_one"
    catchup_window_ms: int  # fires missed while no API replica ran are run if this recent
    paused: bool
    note: str
    #: Webhooks: each {"url": ..., "events": [...], "secret": ...}; a secret is never handed back.
    notifications: Sequence[Mapping[str, Any]]


#: ScheduleFields' names as the update mask spells them.
_MASK = {
    "name": "name",
    "cron": "cron",
    "interval_ms": "interval_ms",
    "timezone": "timezone",
    "jitter_ms": "jitter_ms",
    "overlap": "overlap",
    "catchup_window_ms": "catchup_window_ms",
    "paused": "paused",
    "note": "note",
    "notifications": "notifications",
}


def notification_messages(notifications: Iterable[Mapping[str, Any]], *, prefix: str) -> list[pb.Notification]:
    """Notification messages from dicts like `{"url": ..., "events": [...], "secret": ...}`; a bad
    one is named below `prefix` as the API names it (`schedule.notifications[0].events`)."""
    messages = []
    for i, given in enumerate(notifications):
        path = f"{prefix}notifications[{i}]"
        if not isinstance(given, Mapping):
            raise InvalidArgumentError.of(path, f"must be a dict of url, events and secret, got {given!r}")
        messages.append(parse_document(given, pb.Notification(), path, path))
    return messages


def schedule_message(
    fields: ScheduleFields, *, test: TestSource | None = None, options: SubmitOptions | None = None
) -> pb.Schedule:
    """The Schedule message for `fields`, with `test` (a definition or SubmitRequest, dict or file)
    as its template and `options` applied to it.

    Raises:
        TypeError: a field `ScheduleFields` does not have.
        InvalidArgumentError: a field of the wrong kind, named as the API names it (`schedule.jitter_ms`).
    """
    check_keywords(fields, ScheduleFields, also=("test", "options"))
    message = pb.Schedule()
    for name in ("name", "cron", "interval_ms", "timezone", "jitter_ms", "catchup_window_ms", "paused", "note"):
        if name in fields:
            set_scalar(message, name, fields[name], f"{PREFIX}{name}")
    if "overlap" in fields:
        given = fields["overlap"]
        spelt = given.replace("-", "_") if isinstance(given, str) else given
        message.overlap = enum_to_proto(parse_enum(OverlapPolicy, spelt, f"{PREFIX}overlap"))  # type: ignore[assignment]
    message.notifications.extend(notification_messages(fields.get("notifications", ()), prefix=PREFIX))
    if test is not None:
        message.template.CopyFrom(template_request(test, options or {}, prefix=f"{PREFIX}template."))
    return message


def default_name(test: TestSource) -> str:
    """A schedule's name when none is given: its file's name without the extension, as `sentinel
    schedules create` names it ("" for a dict: the API then asks for a name)."""
    return "" if isinstance(test, Mapping) else Path(test).stem


def schedule(s: pb.Schedule) -> Schedule:
    return Schedule(
        id=s.schedule_id,
        name=s.name,
        cron=s.cron,
        interval_ms=s.interval_ms,
        timezone=s.timezone or "UTC",
        jitter_ms=s.jitter_ms,
        overlap=enum_from_proto(OverlapPolicy, s.overlap) or OverlapPolicy.SKIP,
        catchup_window_ms=s.catchup_window_ms,
        paused=s.paused,
        note=s.note,
        tenant=s.tenant_id,
        template=json_format.MessageToDict(s.template),
        notifications=tuple(notification(n) for n in s.notifications),
        next_fires=tuple(t for t in (time(f) for f in s.next_fires) if t is not None),
        recent_runs=tuple(
            ScheduleRun(
                job_id=r.job_id,
                fire_time=time(r.fire_time),
                state=enum_from_proto(JobState, r.state),
                skipped=r.skipped,
                reason=r.reason,
                triggered=r.triggered,
                error=r.error,
                removed=r.job_removed,
            )
            for r in s.recent_runs
        ),
        created_at=time(s.created_at),
        updated_at=time(s.updated_at),
    )


def _page(reply: pb.ListSchedulesResponse) -> Page[Schedule]:
    return Page(tuple(schedule(s) for s in reply.schedules), reply.next_page_token)


def create(test: TestSource, fields: ScheduleFields, *, options: SubmitOptions | None) -> Unary[Schedule]:
    """Schedule `test`; with no `name` (or an empty one), a file's schedule is named after the file."""
    message = schedule_message(fields, test=test, options=options)
    if not message.name.strip():
        message.name = default_name(test)
    # Not safe to repeat: a CreateSchedule sent twice makes two schedules.
    request = pb.CreateScheduleRequest(schedule=message)
    return Unary(_SCHEDULES + "CreateSchedule", request, pb.Schedule, schedule, safe=False)


def get(schedule_id: str) -> Unary[Schedule]:
    request = pb.GetScheduleRequest(schedule_id=schedule_id)
    return Unary(_SCHEDULES + "GetSchedule", request, pb.Schedule, schedule, safe=True)


def list_page(page_size: int, page_token: str) -> Unary[Page[Schedule]]:
    request = with_scalars(pb.ListSchedulesRequest(page_token=page_token), page_size=page_size)
    return Unary(_SCHEDULES + "ListSchedules", request, pb.ListSchedulesResponse, _page, safe=True)


def update(
    schedule_id: str, fields: ScheduleFields, *, test: TestSource | None, options: SubmitOptions | None
) -> Unary[Schedule]:
    """Change the fields given (and the template, when `test` is given), nothing else."""
    message = schedule_message(fields, test=test, options=options)
    message.schedule_id = schedule_id
    paths = [_MASK[name] for name in fields if name in _MASK] + (["template"] if test is not None else [])
    if not paths:
        raise InvalidArgumentError.of("update_mask", "name at least one field to change")
    request = pb.UpdateScheduleRequest(schedule=message, update_mask=field_mask_pb2.FieldMask(paths=paths))
    return Unary(_SCHEDULES + "UpdateSchedule", request, pb.Schedule, schedule, safe=True)


def delete(schedule_id: str) -> Unary[bool]:
    request = pb.DeleteScheduleRequest(schedule_id=schedule_id)
    return Unary(_SCHEDULES + "DeleteSchedule", request, pb.DeleteScheduleResponse, lambda r: bool(r.deleted), False)


def pause(schedule_id: str, note: str) -> Unary[Schedule]:
    request = pb.PauseScheduleRequest(schedule_id=schedule_id, note=note)
    return Unary(_SCHEDULES + "PauseSchedule", request, pb.Schedule, schedule, safe=True)


def resume(schedule_id: str, note: str) -> Unary[Schedule]:
    request = pb.ResumeScheduleRequest(schedule_id=schedule_id, note=note)
    return Unary(_SCHEDULES + "ResumeSchedule", request, pb.Schedule, schedule, safe=True)


def trigger(schedule_id: str) -> Unary[Job]:
    # Not safe to repeat: each TriggerSchedule runs the test once more.
    request = pb.TriggerScheduleRequest(schedule_id=schedule_id)
    return Unary(_SCHEDULES + "TriggerSchedule", request, pb.Job, job, safe=False)
