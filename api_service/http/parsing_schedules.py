"""Reading a schedule from an HTTP body, and naming a schedule's fields as the HTTP API spells them.

The body of `POST /schedules` and `PATCH /schedules/{id}` is the schedule as `GET` shows it, in the
same names, with its test as `POST /tests/execute` takes one:

    {"name": "Health API", "intervalMs": 60000, "overlap": "skip",
     "test": {"testDefinition": {...}, "options": {"tags": ["prod"]}},
     "notifications": [{"url": "https://hooks.example/...", "afterFailures": 2, "format": "text"}]}

Only the shape is checked here (`api_service.http.parsing`'s helpers); what a value may be is
`shared.schedules.rules.validate_spec`'s, as for gRPC. A PATCH replaces the fields it holds, each
whole (`null`: the field's default); the rest stay. A notification sent back as `GET` showed it
(masked URL, `secretSet`) keeps its stored URL and secret. No rule lives here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from api_service.http.envelope import http_field
from api_service.http.parsing import (
    fields_renamed,
    invalid,
    notifications_from_json,
    submit_from_json,
    text_field,
    whole_field,
    word_field,
)
from shared.errors import FieldViolation, ValidationError
from shared.field_paths import json_path
from shared.model import JobOptions, SubmitCommand, TestDefinition
from shared.schedules.model import OverlapPolicy, ScheduleSpec
from shared.schedules.rules import PREFIX
from shared.schedules.timing import Timing

#: Each field a body may set, as the HTTP API names it, and the update-mask path it is
#: (`shared.schedules.rules.MASK_PATHS`).
FIELDS: dict[str, str] = {
    "name": "name",
    "cron": "cron",
    "intervalMs": "interval_ms",
    "timezone": "timezone",
    "jitterMs": "jitter_ms",
    "overlap": "overlap",
    "catchupWindowMs": "catchup_window_ms",
    "paused": "paused",
    "note": "note",
    "test": "template",
    "notifications": "notifications",
}
#: What `GET` shows but no request sets: named as read-only when sent.
READ_ONLY = frozenset(
    {"id", "testName", "tags", "nextFires", "recentRuns", "fired", "skipped", "missed", "createdAt", "updatedAt"}
)
#: Fields a PATCH may not set to null: they have no default.
NO_DEFAULT = ("name", "test")
#: Stands in for the test of a PATCH that does not change it (never stored: its path is not in the mask).
_UNCHANGED = SubmitCommand(definition=TestDefinition(name="", steps=()), options=JobOptions())


def schedule_from_json(body: Mapping[str, Any], *, patch: bool = False) -> tuple[ScheduleSpec, list[str]]:
    """The schedule a body sets, and the update-mask paths of the fields it holds.

    Raises:
        ValidationError: every shape problem, each naming its field as the body spells it
            (`intervalMs`, `test.testDefinition.steps[0].click`, `notifications[1].url`); an
            unknown or read-only field; a create without `test`, a PATCH without any field.
    """
    found: list[FieldViolation] = []
    for key in body:
        if key in READ_ONLY:
            found.append(FieldViolation(key, "is read-only (shown by GET; no request sets it)"))
        elif key not in FIELDS:
            found.append(FieldViolation(key, f"is not a known field; expected one of {', '.join(sorted(FIELDS))}"))
    if not patch and body.get("test") is None:
        found.append(FieldViolation("test", "is required: the test each fire runs, as POST /tests/execute takes it"))
    if patch and not body:
        found.append(FieldViolation("body", f"give at least one field to change: {', '.join(sorted(FIELDS))}"))
    found += [
        FieldViolation(key, "has no default to set back to: give a value")
        for key in NO_DEFAULT
        if key in body and body[key] is None
    ]
    value: dict[str, Any] = {key: body[key] for key in FIELDS if body.get(key) is not None}
    text = {key: text_field(found, key, value[key]) for key in ("name", "cron", "timezone", "note") if key in value}
    numbers = {
        key: whole_field(found, key, value[key])
        for key in ("intervalMs", "jitterMs", "catchupWindowMs")
        if key in value
    }
    overlap = word_field(found, "overlap", value["overlap"], OverlapPolicy) if "overlap" in value else None
    paused = _bool(found, "paused", value.get("paused", False))
    notifications = notifications_from_json(found, value.get("notifications", []))
    template = _UNCHANGED
    if "test" in value:
        try:
            with fields_renamed(lambda field: f"test.{field}"):
                template = submit_from_json(_object(value["test"], "test"))
        except ValidationError as exc:
            found += exc.violations
    if found:
        raise ValidationError(found)
    spec = ScheduleSpec(
        name=text.get("name", "").strip(),
        timing=Timing(
            cron=" ".join(text.get("cron", "").split()),
            interval_ms=numbers.get("intervalMs", 0),
            timezone=text.get("timezone", "").strip() or "UTC",
            jitter_ms=numbers.get("jitterMs", 0),
        ),
        template=template,
        overlap=overlap or OverlapPolicy.SKIP,
        catchup_window_ms=numbers.get("catchupWindowMs", 0),
        paused=paused,
        note=text.get("note", ""),
        notifications=notifications,
    )
    return spec, [FIELDS[key] for key in body]


def _object(value: Any, field: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise invalid(field, "must be a JSON object")
    return value


def _bool(found: list[FieldViolation], field: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    found.append(FieldViolation(field, "must be true or false"))
    return False


def schedule_field(path: str) -> str:
    """A schedule's field as `shared.schedules.rules` names it (`schedule.template.options.timeout_ms`)
    spelt as the HTTP body does (`test.options.timeout`)."""
    path = path.removeprefix(PREFIX)
    if path == "template" or path.startswith("template."):
        rest = path.removeprefix("template").removeprefix(".")
        return f"test.{http_field(rest)}" if rest else "test"
    return json_path(path)
