"""What a caller may set on a schedule: validation naming each field, update masks, and sealing.

`validate_spec` reports every problem at once, each with its field as a client spells it
(`schedule.cron`, `schedule.template.definition.steps[0].click.selector`); notifications are
checked as an alert rule's are (`shared.alerts.guard.webhook_violations`), targets by the webhook
policy. `seal_spec` makes a valid spec storable: the template's secret fill values, the
notifications' signing secrets and (with a key) their URLs sealed (`shared.sealed`), a notification
sent again without its secret keeping the one stored. `shown` is what a caller is given: URLs masked
(`shared.stored_notifications`). No Redis, no protobuf; it never echoes a secret.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from shared.alerts.guard import webhook_violations
from shared.errors import FieldViolation, ValidationError
from shared.navigation_policy import NavigationPolicy
from shared.notifications import Notification
from shared.schedules.model import Schedule, ScheduleSpec
from shared.schedules.timing import Timing, timing_violations
from shared.sealed import Sealer, seal_command
from shared.stored_notifications import seal_notifications, shown_notifications
from shared.validation import shown_text_problem, validate_submit

__all__ = ["MASK_PATHS", "apply_mask", "seal_spec", "shown", "validate_spec"]

MAX_NAME_CHARS = 200
MAX_NOTE_CHARS = 500
MAX_CATCHUP_MS = 366 * 86_400_000
PREFIX = "schedule."

#: The fields an UpdateSchedule mask may name (an empty mask means all of them). `cron` and
#: `interval_ms` go together: naming either sets both, so a schedule can switch between them.
MASK_PATHS = (
    "name",
    "cron",
    "interval_ms",
    "timezone",
    "jitter_ms",
    "overlap",
    "catchup_window_ms",
    "template",
    "paused",
    "notifications",
    "note",
)


async def validate_spec(
    spec: ScheduleSpec, *, policy: NavigationPolicy, stored: Timing | None = None, prefix: str = PREFIX
) -> None:
    """Raise `ValidationError` with every problem of `spec`, each naming its field.

    Args:
        policy: the webhook policy (SENTINEL_WEBHOOK_ALLOW) the notifications' targets are checked by.
        stored: the timing stored, when `spec` changes a schedule: the same timing is not checked
            again (a cron's shortest gap takes up to tens of ms to find, for a rename).
    """
    found: list[FieldViolation] = []
    if not spec.name.strip():
        found.append(FieldViolation(f"{prefix}name", "must not be empty"))
    elif len(spec.name) > MAX_NAME_CHARS:
        found.append(FieldViolation(f"{prefix}name", f"at most {MAX_NAME_CHARS} characters"))
    elif shown_text_problem(spec.name):
        found.append(FieldViolation(f"{prefix}name", shown_text_problem(spec.name)))
    if spec.timing != stored:
        found += timing_violations(spec.timing, prefix=prefix)
    if spec.catchup_window_ms > MAX_CATCHUP_MS:
        found.append(FieldViolation(f"{prefix}catchup_window_ms", f"at most {MAX_CATCHUP_MS} ms (366 days)"))
    if len(spec.note) > MAX_NOTE_CHARS:
        found.append(FieldViolation(f"{prefix}note", f"at most {MAX_NOTE_CHARS} characters"))
    try:
        validate_submit(spec.template, prefix=f"{prefix}template.")
    except ValidationError as exc:
        found += exc.violations
    if spec.template.options.idempotency_key:
        found.append(
            FieldViolation(f"{prefix}template.options.idempotency_key", "must be empty: each fire is a job of its own")
        )
    found += await webhook_violations(spec.notifications, policy, prefix=prefix)
    if found:
        raise ValidationError(found)


def apply_mask(current: ScheduleSpec, given: ScheduleSpec, paths: Sequence[str]) -> ScheduleSpec:
    """`current` with the fields `paths` name taken from `given` (no paths: every settable field).

    Raises:
        ValidationError: a path names no settable field, or a part of one (`template.definition.name`:
            a field is replaced whole, so a path into it would replace what it does not name).
    """
    unknown = [p for p in paths if p.split(".")[0] not in MASK_PATHS]
    if unknown:
        raise ValidationError(
            [FieldViolation("update_mask", f"unknown field {unknown[0]!r}; one of {', '.join(MASK_PATHS)}")]
        )
    nested = [p for p in paths if "." in p]
    if nested:
        whole = nested[0].split(".")[0]
        why = f"{nested[0]!r} names a part of a field; fields are replaced whole: give {whole!r} with all of it"
        raise ValidationError([FieldViolation("update_mask", why)])
    chosen = set(paths) or set(MASK_PATHS)
    timing = current.timing
    if chosen & {"cron", "interval_ms"}:
        timing = dataclasses.replace(timing, cron=given.timing.cron, interval_ms=given.timing.interval_ms)
    if "timezone" in chosen:
        timing = dataclasses.replace(timing, timezone=given.timing.timezone)
    if "jitter_ms" in chosen:
        timing = dataclasses.replace(timing, jitter_ms=given.timing.jitter_ms)
    plain = {"name", "overlap", "catchup_window_ms", "template", "paused", "notifications", "note"}
    return dataclasses.replace(current, timing=timing, **{name: getattr(given, name) for name in plain & chosen})


def seal_spec(
    spec: ScheduleSpec, sealer: Sealer | None, *, stored: Sequence[Notification] = (), prefix: str = PREFIX
) -> ScheduleSpec:
    """`spec` ready to store: secret fill values and signing secrets sealed, and the notifications'
    URLs when there is a key (valid input only).

    `stored`: the schedule's notifications as stored (sealed); one given again with the same URL and
    no secret keeps its stored secret, since secrets are never handed back to be sent again.

    Raises:
        ValidationError: a secret to seal, but this server has no SENTINEL_SECRET_KEY.
    """
    template = seal_command(spec.template, sealer, prefix=f"{prefix}template.")
    notifications = seal_notifications(spec.notifications, sealer, prefix=prefix, stored=stored)
    return dataclasses.replace(spec, template=template, notifications=notifications)


def shown(schedule: Schedule, sealer: Sealer | None) -> Schedule:
    """`schedule` as a caller sees it: each notification's URL masked (secrets stay sealed)."""
    spec = dataclasses.replace(schedule.spec, notifications=shown_notifications(schedule.spec.notifications, sealer))
    return dataclasses.replace(schedule, spec=spec)
