"""A schedule's Redis hash (`shared.schema.ScheduleField`), both ways, and its recent-runs entries.

The template is kept as `shared.codec` keeps a job's definition and options; notifications as a
JSON list with their secrets already sealed. A malformed value raises `DecodeError` naming it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from shared import codec
from shared.errors import DecodeError
from shared.model import JobSource, SubmitCommand
from shared.schedules.model import OverlapPolicy, Schedule, ScheduleRun, ScheduleSpec
from shared.schedules.timing import Timing
from shared.schema import ScheduleField as F
from shared.stored_notifications import notifications_from_json, notifications_to_json

__all__ = ["run_from_json", "schedule_from_hash", "spec_fields"]


def spec_fields(spec: ScheduleSpec) -> dict[str, str]:
    """The hash fields of what a caller sets (notifications' secrets must be sealed already)."""
    template = spec.template
    return {
        F.NAME: spec.name,
        F.CRON: spec.timing.cron,
        F.INTERVAL: str(spec.timing.interval_ms),
        F.TIMEZONE: spec.timing.timezone,
        F.JITTER: str(spec.timing.jitter_ms),
        F.OVERLAP: spec.overlap.value,
        F.CATCHUP: str(spec.catchup_window_ms),
        F.DEFINITION: codec.definition_to_json(template.definition),
        F.OPTIONS: codec.options_to_json(template.options),
        F.USER: template.user_id,
        F.REQUEST: template.request_id,
        F.NOTIFICATIONS: notifications_to_json(spec.notifications),
        F.PAUSED: "1" if spec.paused else "0",
        F.NOTE: spec.note,
    }


def _int(raw: Mapping[str, str], name: F) -> int:
    value = raw.get(name, "") or "0"
    try:
        return int(float(value))
    except ValueError as exc:
        raise DecodeError(f"schedule field {str(name)!r} is not a number: {value!r}") from exc


def schedule_from_hash(raw: Mapping[str, str]) -> Schedule:
    """Decode a schedule hash (HGETALL, decoded to str); its next fires and runs are added by the reader."""
    try:
        overlap = OverlapPolicy(raw.get(F.OVERLAP) or OverlapPolicy.SKIP.value)
        schedule_id = raw[F.ID]
    except (KeyError, ValueError) as exc:
        raise DecodeError(f"malformed schedule hash: {exc!r}") from exc
    template = SubmitCommand(
        definition=codec.definition_from_json(raw.get(F.DEFINITION, "")),
        options=codec.options_from_json(raw.get(F.OPTIONS, "")),
        user_id=raw.get(F.USER, ""),
        request_id=raw.get(F.REQUEST, ""),
        source=JobSource.SCHEDULER,
        schedule_id=schedule_id,
    )
    spec = ScheduleSpec(
        name=raw.get(F.NAME, ""),
        timing=Timing(
            cron=raw.get(F.CRON, ""),
            interval_ms=_int(raw, F.INTERVAL),
            timezone=raw.get(F.TIMEZONE) or "UTC",
            jitter_ms=_int(raw, F.JITTER),
        ),
        template=template,
        overlap=overlap,
        catchup_window_ms=_int(raw, F.CATCHUP),
        paused=raw.get(F.PAUSED) == "1",
        note=raw.get(F.NOTE, ""),
        notifications=notifications_from_json(raw.get(F.NOTIFICATIONS, "")),
    )
    return Schedule(
        schedule_id=schedule_id,
        tenant_id=raw.get(F.TENANT, ""),
        spec=spec,
        created_at_ms=_int(raw, F.CREATED),
        updated_at_ms=_int(raw, F.UPDATED),
        anchor_ms=_int(raw, F.ANCHOR),
        generation=_int(raw, F.GENERATION),
        last_fire_ms=_int(raw, F.LAST_FIRE),
        last_job_id=raw.get(F.LAST_JOB, ""),
        buffered_ms=_int(raw, F.BUFFERED),
        fired=_int(raw, F.FIRED),
        skipped=_int(raw, F.SKIPPED),
        missed=_int(raw, F.MISSED),
    )


def run_from_json(raw: str) -> ScheduleRun:
    """One entry of a schedule's runs list (schedule_fire.lua writes them); its job's state is added later."""
    try:
        data: dict[str, Any] = json.loads(raw)
        return ScheduleRun(
            fire_time_ms=int(float(data.get("fire", 0))),
            job_id=str(data.get("job", "")),
            skipped=bool(data.get("skipped", False)),
            reason=str(data.get("reason", "")),
            triggered=bool(data.get("triggered", False)),
        )
    except (ValueError, TypeError, AttributeError) as exc:
        raise DecodeError(f"malformed schedule run entry: {raw[:80]!r}") from exc
